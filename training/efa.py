"""EFA and NCCL environment from the instance type and what the node actually has.

`configure()` runs before the process group is created (NCCL and libfabric read the environment
at initialisation). It detects the node (instance type from the flag, SageMaker's variable or the
Nitro DMI product name; EFA devices from `fi_info -p efa` and `/sys/class/infiniband`), computes
the variables with `efa_env()`, and sets only variables the user has not set: user values always
win. On a node without CUDA it does nothing. Which types have EFA and GPUDirect RDMA comes from
the platform's one instance catalog (`mlplatform.components.catalog`), the same table the
training manifests size a pod's `vpc.amazonaws.com/efa` request from.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from mlplatform.components.catalog import instance_type as catalog_entry

log = logging.getLogger(__name__)

DMI_PRODUCT_NAME = Path("/sys/devices/virtual/dmi/id/product_name")
INFINIBAND = Path("/sys/class/infiniband")


@dataclass(frozen=True)
class NodeFacts:
    instance_type: str  # "" when unknown
    efa_devices: int
    has_cuda: bool


@dataclass
class EnvPlan:
    env: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def efa_env(node: NodeFacts, *, forks: bool = True) -> EnvPlan:
    """The variables this node should run with (pure: no environment read or written).

    `forks`: the process forks children after libfabric initialises (torch.compile workers, data
    loader workers, an async checkpoint process); libfabric's huge-page buffers are not fork-safe,
    so EFA then runs with FI_EFA_USE_HUGE_PAGE=0.
    """
    plan = EnvPlan()
    if not node.has_cuda:
        return plan
    plan.env.update(
        {
            # fail fast (and tear the job down) on a NCCL error or timeout instead of hanging,
            # and dump the flight recorder of the collectives that were in flight
            "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1",
            "TORCH_NCCL_DUMP_ON_TIMEOUT": "1",
            "TORCH_NCCL_TRACE_BUFFER_SIZE": "20000",
            # NCCL's bootstrap socket: any real interface, never loopback or container bridges
            "NCCL_SOCKET_IFNAME": "^lo,docker,veth",
        }
    )
    entry = catalog_entry(node.instance_type)
    if entry is None or not entry.efa:
        return plan
    if node.efa_devices == 0:
        plan.warnings.append(
            f"{node.instance_type} supports EFA but this node has no EFA device "
            "(fi_info -p efa found none, /sys/class/infiniband is empty): NCCL falls back to TCP "
            "sockets at a fraction of the bandwidth. Attach EFA interfaces (and a security group "
            "allowing all traffic to itself) or expect slow multi-node training."
        )
        return plan
    plan.env["FI_PROVIDER"] = "efa"
    if entry.gpudirect_rdma:
        plan.env["FI_EFA_USE_DEVICE_RDMA"] = "1"
    if forks:
        plan.env["FI_EFA_USE_HUGE_PAGE"] = "0"
    return plan


def detect_node(
    instance_type: str = "", environ: MutableMapping[str, str] | None = None
) -> NodeFacts:
    env = os.environ if environ is None else environ
    kind = instance_type or env.get("SM_CURRENT_INSTANCE_TYPE", "").removeprefix("ml.")
    if not kind and DMI_PRODUCT_NAME.is_file():
        kind = DMI_PRODUCT_NAME.read_text().strip()  # Nitro: the instance type itself
    import torch

    return NodeFacts(
        instance_type=kind, efa_devices=_count_efa(), has_cuda=torch.cuda.is_available()
    )


def _count_efa() -> int:
    devices = sorted(INFINIBAND.iterdir()) if INFINIBAND.is_dir() else []
    if devices:
        return len(devices)
    fi_info = shutil.which("fi_info")
    if not fi_info:
        return 0
    try:
        out = subprocess.run(
            [fi_info, "-p", "efa", "-t", "FI_EP_RDM"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return 0
    domains = {
        line.split(":", 1)[1].strip() for line in out.stdout.splitlines() if "domain:" in line
    }
    return len(domains) if out.returncode == 0 else 0


def apply(plan: EnvPlan, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the plan's variables the user has not set; log what was set and what was kept."""
    env = os.environ if environ is None else environ
    applied = {}
    for key, value in plan.env.items():
        if key in env:
            if env[key] != value:
                log.info("%s=%s kept (set by the user; would have been %s)", key, env[key], value)
            continue
        env[key] = value
        applied[key] = value
    for warning in plan.warnings:
        log.warning(warning)
    if applied:
        log.info("network environment: %s", " ".join(f"{k}={v}" for k, v in applied.items()))
    return applied


def configure(instance_type: str = "", *, forks: bool = True) -> dict[str, str]:
    node = detect_node(instance_type)
    return apply(efa_env(node, forks=forks))
