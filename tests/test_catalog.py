"""The one instance catalog: what a training pod requests and what the trainer configures agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlplatform.components import catalog
from mlplatform.components import training_manifests as tm
from mlplatform.training.efa import NodeFacts, efa_env

ROOT = Path(__file__).resolve().parents[1]
DIGEST = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlplatform-training@sha256:" + "ab" * 32
GPU_TYPES = sorted(t.name for t in catalog.INSTANCE_TYPES.values() if t.gpus)


def pod_container(instance_type: str) -> dict[str, Any]:
    """The training container an EKS job on `instance_type` runs (EFA attached where it exists)."""
    spec = tm.TrainingJobSpec(
        name="catalog-check",
        engine="eks",
        image=DIGEST,
        instance_type=instance_type,
        nodes=2,
        recipe="llama3-8b",
        models_bucket="models",
        service_account="catalog-check",
    )
    (template,) = tm.pod_templates(tm.job(spec))
    (main,) = template["spec"]["containers"]
    return main


@pytest.mark.parametrize("instance_type", GPU_TYPES)
def test_a_pod_that_requests_efa_interfaces_is_configured_for_efa(instance_type: str) -> None:
    main = pod_container(instance_type)
    requested = main["resources"]["limits"].get("vpc.amazonaws.com/efa", 0)
    env = {e["name"]: e["value"] for e in main["env"]}
    assert requested == catalog.efa_interfaces(instance_type)
    # What the pod's environment says is what the trainer computes on that node at start-up.
    trainer = efa_env(NodeFacts(instance_type, efa_devices=requested, has_cuda=True)).env
    assert {
        k: v for k, v in env.items() if k.startswith(("FI_", "NCCL_", "TORCH_NCCL_"))
    } == trainer
    assert (env.get("FI_PROVIDER") == "efa") == (requested > 0)


@pytest.mark.parametrize("instance_type", GPU_TYPES)
def test_a_type_without_efa_never_gets_the_efa_provider(instance_type: str) -> None:
    """Even with devices visible (a misdetected node), the catalog decides."""
    trainer = efa_env(NodeFacts(instance_type, efa_devices=4, has_cuda=True)).env
    assert ("FI_PROVIDER" in trainer) == (catalog.efa_interfaces(instance_type) > 0)


# The types the catalog and training/efa used to disagree on, with the value chosen (sources in
# components/catalog.py): (EFA interfaces, GPUDirect RDMA).
PREVIOUSLY_DISAGREEING = {
    "p3dn.24xlarge": (1, False),
    "g4dn.8xlarge": (1, False),
    "g4dn.12xlarge": (1, False),
    "g4dn.metal": (1, False),
    "g6.8xlarge": (1, False),
    "g6.16xlarge": (1, False),
    "g6.24xlarge": (1, False),
    "g6e.12xlarge": (1, False),
    "g6e.48xlarge": (4, False),
    "p6-b200.48xlarge": (8, True),
}


@pytest.mark.parametrize(("instance_type", "expected"), sorted(PREVIOUSLY_DISAGREEING.items()))
def test_previously_disagreeing_types_have_the_documented_values(
    instance_type: str, expected: tuple[int, bool]
) -> None:
    entry = catalog.instance_type(instance_type)
    assert entry is not None and entry.gpus > 0
    assert (entry.efa, entry.gpudirect_rdma) == expected


def test_g6e_48xlarge_pod_gets_four_interfaces_and_the_efa_provider() -> None:
    main = pod_container("g6e.48xlarge")
    env = {e["name"]: e["value"] for e in main["env"]}
    assert main["resources"]["limits"]["vpc.amazonaws.com/efa"] == 4
    assert env["FI_PROVIDER"] == "efa" and "FI_EFA_USE_DEVICE_RDMA" not in env


@pytest.mark.parametrize(
    ("instance_type", "efa", "rdma"),
    [
        ("p5.48xlarge", 32, True),
        ("p5e.48xlarge", 32, True),
        ("p5en.48xlarge", 16, True),
        ("p4d.24xlarge", 4, True),
        ("p4de.24xlarge", 4, True),
        ("g5.48xlarge", 1, False),
        ("g5.2xlarge", 0, False),
        ("g6.xlarge", 0, False),
    ],
)
def test_values_both_tables_agreed_on_are_kept(instance_type: str, efa: int, rdma: bool) -> None:
    entry = catalog.instance_type(instance_type)
    assert entry is not None and (entry.efa, entry.gpudirect_rdma) == (efa, rdma)


def test_gpudirect_rdma_is_only_claimed_over_efa() -> None:
    assert all(t.efa for t in catalog.INSTANCE_TYPES.values() if t.gpudirect_rdma)


def test_sagemaker_names_are_the_same_hardware() -> None:
    assert catalog.instance_type("ml.p5.48xlarge") == catalog.instance_type("p5.48xlarge")
    assert catalog.gpus_per_instance("ml.g6e.48xlarge") == 8
    assert catalog.efa_interfaces("ml.g6e.48xlarge") == 4
    assert catalog.instance_type("x9.huge") is None
    assert catalog.gpus_per_instance("x9.huge") == catalog.efa_interfaces("x9.huge") == 0


def test_every_price_view_is_a_view_of_the_one_table() -> None:
    for name, usd in catalog.EC2_INSTANCE_HOURLY_USD.items():
        assert catalog.INSTANCE_TYPES[name].ec2 == usd
    for name, usd in catalog.HYPERPOD_INSTANCE_HOURLY_USD.items():
        assert name.startswith("ml.") and catalog.INSTANCE_TYPES[name[3:]].hyperpod == usd
    for name, usd in catalog.NOTEBOOK_INSTANCE_HOURLY_USD.items():
        assert name.startswith("ml.") and catalog.INSTANCE_TYPES[name[3:]].notebook == usd


@pytest.mark.parametrize("module", ["mlplatform.components.catalog", "mlplatform.training.efa"])
def test_the_training_image_imports_the_catalog_without_heavy_packages(module: str) -> None:
    heavy = ("torch", "pulumi", "pulumi_aws", "pydantic", "yaml")
    check = (
        f"import sys; import {module}; "
        f"loaded = [m for m in {heavy!r} if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    proc = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


# --- one name per concept (issue 13) -------------------------------------------------------------
SOURCES = [
    path
    for folder in ("mlplatform", "components", "training")
    for path in sorted((ROOT / folder).rglob("*.py"))
    if not path.is_symlink() and not any(p.is_symlink() for p in path.relative_to(ROOT).parents)
]


def test_the_secret_placeholder_is_defined_once() -> None:
    defining = [p.relative_to(ROOT).as_posix() for p in SOURCES if '"[secret]"' in p.read_text()]
    assert defining == ["components/schema.py"]


@pytest.mark.parametrize("name", ["ConfigError", "Checkpointer"])
def test_no_two_classes_share_the_name(name: str) -> None:
    defining = [
        p.relative_to(ROOT).as_posix()
        for p in SOURCES
        if any(line.startswith(f"class {name}(") for line in p.read_text().splitlines())
    ]
    assert len(defining) == 1, defining
