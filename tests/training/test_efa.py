"""EFA/NCCL environment: the table per instance type, node facts, and user values winning."""

from __future__ import annotations

import logging

import pytest

from mlplatform.training import efa
from mlplatform.training.efa import EnvPlan, NodeFacts, apply, efa_env

NCCL_BASE = {
    "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1",
    "TORCH_NCCL_DUMP_ON_TIMEOUT": "1",
    "TORCH_NCCL_TRACE_BUFFER_SIZE": "20000",
    "NCCL_SOCKET_IFNAME": "^lo,docker,veth",
}


def test_p5_uses_efa_with_gpudirect_rdma():
    plan = efa_env(NodeFacts("p5.48xlarge", efa_devices=32, has_cuda=True))
    assert plan.env == {
        **NCCL_BASE,
        "FI_PROVIDER": "efa",
        "FI_EFA_USE_DEVICE_RDMA": "1",
        "FI_EFA_USE_HUGE_PAGE": "0",
    }
    assert plan.warnings == []


def test_p4d_uses_efa_with_gpudirect_rdma():
    plan = efa_env(NodeFacts("p4d.24xlarge", efa_devices=4, has_cuda=True), forks=False)
    assert plan.env == {**NCCL_BASE, "FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": "1"}


def test_g5_12xlarge_uses_efa_without_rdma():
    plan = efa_env(NodeFacts("g5.12xlarge", efa_devices=1, has_cuda=True))
    assert plan.env == {**NCCL_BASE, "FI_PROVIDER": "efa", "FI_EFA_USE_HUGE_PAGE": "0"}


def test_cpu_node_gets_nothing():
    assert efa_env(NodeFacts("", efa_devices=0, has_cuda=False)) == EnvPlan()
    assert efa_env(NodeFacts("p5.48xlarge", efa_devices=32, has_cuda=False)) == EnvPlan()


def test_gpu_without_efa_support_gets_only_nccl_settings():
    plan = efa_env(NodeFacts("g4dn.xlarge", efa_devices=0, has_cuda=True))
    assert plan.env == NCCL_BASE and plan.warnings == []


def test_efa_instance_without_device_warns_and_does_not_force_the_provider():
    plan = efa_env(NodeFacts("p5.48xlarge", efa_devices=0, has_cuda=True))
    assert "FI_PROVIDER" not in plan.env
    assert len(plan.warnings) == 1
    assert "p5.48xlarge supports EFA but this node has no EFA device" in plan.warnings[0]


def test_user_values_win(caplog):
    environ = {"FI_EFA_USE_HUGE_PAGE": "1", "NCCL_SOCKET_IFNAME": "ens5"}
    plan = efa_env(NodeFacts("p5.48xlarge", efa_devices=32, has_cuda=True))
    with caplog.at_level(logging.INFO, logger="mlplatform.training.efa"):
        applied = apply(plan, environ)
    assert environ["FI_EFA_USE_HUGE_PAGE"] == "1" and environ["NCCL_SOCKET_IFNAME"] == "ens5"
    assert environ["FI_PROVIDER"] == "efa"
    assert "FI_EFA_USE_HUGE_PAGE" not in applied and applied["FI_PROVIDER"] == "efa"
    assert "FI_EFA_USE_HUGE_PAGE=1 kept (set by the user" in caplog.text


def test_warnings_are_logged(caplog):
    plan = efa_env(NodeFacts("p4d.24xlarge", efa_devices=0, has_cuda=True))
    with caplog.at_level(logging.WARNING, logger="mlplatform.training.efa"):
        apply(plan, {})
    assert "p4d.24xlarge supports EFA" in caplog.text


@pytest.mark.parametrize(
    ("flag", "environ", "dmi", "expected"),
    [
        (
            "p4d.24xlarge",
            {"SM_CURRENT_INSTANCE_TYPE": "ml.g5.12xlarge"},
            "p5.48xlarge",
            "p4d.24xlarge",
        ),
        ("", {"SM_CURRENT_INSTANCE_TYPE": "ml.g5.12xlarge"}, "p5.48xlarge", "g5.12xlarge"),
        ("", {}, "p5.48xlarge", "p5.48xlarge"),
        ("", {}, None, ""),
    ],
)
def test_instance_type_from_flag_then_sagemaker_then_dmi(
    tmp_path, monkeypatch, flag, environ, dmi, expected
):
    product = tmp_path / "product_name"
    if dmi:
        product.write_text(dmi + "\n")
    monkeypatch.setattr(efa, "DMI_PRODUCT_NAME", product)
    monkeypatch.setattr(efa, "INFINIBAND", tmp_path / "none")
    assert efa.detect_node(flag, environ).instance_type == expected


def test_efa_devices_counted_from_sysfs(tmp_path, monkeypatch):
    ib = tmp_path / "infiniband"
    for name in ("rdmap16s27", "rdmap32s27"):
        (ib / name).mkdir(parents=True)
    monkeypatch.setattr(efa, "INFINIBAND", ib)
    assert efa.detect_node("p5.48xlarge", {}).efa_devices == 2


def test_efa_devices_counted_from_fi_info(tmp_path, monkeypatch):
    fake = tmp_path / "fi_info"
    fake.write_text(
        "#!/bin/sh\n"
        "printf 'provider: efa\\n    fabric: efa\\n    domain: rdmap16s27-rdm\\n'\n"
        "printf 'provider: efa\\n    fabric: efa\\n    domain: rdmap32s27-rdm\\n'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(efa, "INFINIBAND", tmp_path / "none")
    assert efa.detect_node("p5.48xlarge", {}).efa_devices == 2
