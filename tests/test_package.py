"""The distribution as a user gets it: what the wheel holds, and a fresh virtualenv outside the
checkout that installs it and plans a separate consumer project importing our components.

The venv test installs the wheel with its dependencies (~450 MB, mostly pulumi-aws). pip keeps no
HTTP cache on these machines, so the downloaded wheels are kept in pytest's cache
(`.pytest_cache/d/mlplatform-wheelhouse`): later runs of this checkout install from there, offline.
"""

import email
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

# What `make`'s build leaves behind and what no wheel should see (and no stale build/ either).
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", "venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "runs",
    "checkpoints", "node_modules",
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# The consumer project (Pulumi.yaml, Pulumi.dev.yaml, __main__.py): a team's own stack importing
# SharedInfra (on an existing VPC), GpuEksCluster and ArcRunners from mlplatform.components.
CONSUMER = ROOT / "tests" / "consumer"
# The extras that program needs: everything else must stay uninstalled.
CONSUMER_EXTRAS = "eks"
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel .` builds from this checkout (from a clean copy: no stale build/)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCE)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(work), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, f"building the wheel failed:\n{result.stderr[-3000:]}"
    (built,) = work.glob("mlplatform-*.whl")
    return built


def names_in(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def checkout_files(folder: str, pattern: str) -> list[str]:
    """Files of a checkout folder, as the wheel names them (`mlplatform/<folder>/...`)."""
    paths = [p for p in (ROOT / folder).glob(pattern) if p.is_file() and p.suffix != ".pyc"]
    files = sorted(p.relative_to(ROOT).as_posix() for p in paths)
    assert files, f"no {pattern} in {folder}/"
    return [f"mlplatform/{name}" for name in files]


def test_readme_shows_the_consumer_program_these_tests_plan() -> None:
    program = (CONSUMER / "__main__.py").read_text()
    assert f"```python\n{program}```" in (ROOT / "README.md").read_text()


def test_wheel_has_no_top_level_package_but_mlplatform(wheel: Path) -> None:
    top_level = {name.split("/")[0] for name in names_in(wheel)}
    version = wheel.name.split("-")[1]
    assert top_level == {"mlplatform", f"mlplatform-{version}.dist-info"}
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(f"mlplatform-{version}.dist-info/top_level.txt").split() == [
            b"mlplatform"
        ]


def test_wheel_ships_type_information_and_every_file_components_read_at_run_time(
    wheel: Path,
) -> None:
    names = names_in(wheel)
    expected = {
        "mlplatform/py.typed",
        "mlplatform/provider.py",
        "mlplatform/components/__init__.py",
        "mlplatform/training/__init__.py",
        *checkout_files("helm", "*/values*.yaml"),
        *checkout_files("components", "hyperpod_lifecycle/*"),  # HyperPod lifecycle scripts
        *checkout_files("components", "scripts/*.sh"),  # ARC job hooks, notebook on-start
        *checkout_files("training", "configs/*.yaml"),  # the training recipes
    }
    assert expected - names == set()
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_requires_no_torch_and_only_the_providers_every_importer_needs(
    wheel: Path,
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith("/METADATA")))
    needs: dict[str, set[str]] = {}
    for line in email.message_from_bytes(metadata).get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        marker = str(requirement.marker or "")
        extra = marker.split("extra ==")[1].strip(" \"'") if "extra ==" in marker else ""
        needs.setdefault(extra, set()).add(canonicalize_name(requirement.name))
    assert needs[""] == {
        "pulumi",
        "pulumi-aws",
        "pulumi-docker-build",
        "boto3",
        "pydantic",
        "pyyaml",
    }
    assert needs["eks"] == {"pulumi-eks", "pulumi-kubernetes"}
    assert needs["hyperpod"] == {"pulumi-aws-native", "mlplatform"}  # + mlplatform[eks]
    assert needs["all"] == {"mlplatform"}  # mlplatform[eks,hyperpod]
    assert [extra for extra, names in needs.items() if "torch" in names] == ["training"]


# ---------------------------------------------------------------------------------------------
# A fresh virtualenv outside the checkout, with the wheel and what CONSUMER_EXTRAS pulls in.


def _run(
    command: list[str], what: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=outside_env())
    if result.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {result.returncode}): {' '.join(command)}\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return result


def outside_env() -> dict[str, str]:
    """The environment of a user's shell: nothing that puts this checkout on sys.path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def venv(
    wheel: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Path:
    """`python -m venv` + `pip install 'mlplatform[eks]'` from the wheel, outside the checkout."""
    started = time.monotonic()
    directory = tmp_path_factory.mktemp("consumer-venv") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(directory)], "creating a virtualenv")
    # This interpreter's pip installs into the new venv (`--python`); no pip is bootstrapped there
    # and nothing is byte-compiled ahead of use: both only cost time.
    install = [sys.executable, "-m", "pip", "--python", str(directory / "bin" / "python")]
    install += ["install", "-q", "--no-compile"]
    requirement = f"{wheel}[{CONSUMER_EXTRAS}]"
    cache = request.config.cache
    wheelhouse = cache.mkdir("mlplatform-wheelhouse") if cache else tmp_path_factory.mktemp("wh")
    from_wheelhouse = [*install, "--no-index", "--find-links", str(wheelhouse), requirement]
    if subprocess.run(from_wheelhouse, capture_output=True, env=outside_env()).returncode != 0:
        # First run here, or the dependencies changed: fetch what is missing from the index. The
        # wheelhouse keeps dependencies only (pip would read a stale wheel of ours from it).
        _run(
            [sys.executable, "-m", "pip", "download", "-q", "-d", str(wheelhouse), requirement],
            "downloading the wheel's dependencies (needs the package index; once per checkout)",
        )
        for ours in wheelhouse.glob("mlplatform-*"):
            ours.unlink()
        _run(from_wheelhouse, "installing the wheel and its dependencies")
    print(f"virtualenv with {requirement} ready in {time.monotonic() - started:.1f} s")
    return directory


def is_subset(part: Any, whole: Any) -> bool:
    """Every key and value of `part` is in `whole` (mappings recursively, anything else equal)."""
    if isinstance(part, Mapping):
        return isinstance(whole, Mapping) and all(
            key in whole and is_subset(value, whole[key]) for key, value in part.items()
        )
    return bool(part == whole)


@pytest.mark.package
def test_installed_wheel_plans_a_consumer_project_outside_the_checkout(
    venv: Path, tmp_path: Path
) -> None:
    """The issue's acceptance test: a user's own project, our wheel, no checkout, no torch."""
    python = str(venv / "bin" / "python")
    probe = (
        "import importlib.util as u, json, mlplatform; print(json.dumps({'file': mlplatform.__file__,"
        " 'found': {m: u.find_spec(m) is not None for m in ('torch', 'pulumi_aws', 'pulumi_eks',"
        " 'pulumi_kubernetes', 'pulumi_aws_native', 'pulumi_docker_build')}}))"
    )
    seen = json.loads(_run([python, "-c", probe], "importing mlplatform", cwd=tmp_path).stdout)
    assert Path(seen["file"]).is_relative_to(venv)  # the installed copy, not this checkout
    assert seen["found"] == {
        "torch": False,
        "pulumi_aws": True,
        "pulumi_eks": True,
        "pulumi_kubernetes": True,
        "pulumi_aws_native": False,  # mlplatform[hyperpod] only
        "pulumi_docker_build": True,
    }
    # A component whose extra is missing fails on import, naming what is missing.
    hyperpod = subprocess.run(
        [python, "-c", "import mlplatform.components.hyperpod"],
        capture_output=True, text=True, cwd=tmp_path, env=outside_env(),
    )  # fmt: skip
    assert hyperpod.returncode == 1
    assert hyperpod.stderr.strip().splitlines()[-1] == (
        "ModuleNotFoundError: HyperPodCluster: pulumi_aws_native is not installed "
        "(pip install 'mlplatform[hyperpod]')"
    )

    consumer = shutil.copytree(CONSUMER, tmp_path / "team-x-gpu", ignore=NOT_SOURCE)

    result = _run(
        [str(venv / "bin" / "mlplatform"), "plan", "dev", "--cwd", str(consumer), "--json"],
        "mlplatform plan of the consumer project",
        cwd=tmp_path,
    )
    plan = json.loads(result.stdout)
    assert plan["project"] == "team-x-gpu"
    assert plan["outputs"] == {"clusterName": "team-x-gpu"}

    providers = {r["name"]: r for r in plan["resources"] if r["type"] == "pulumi:providers:aws"}
    assert providers["eu-west-1"]["inputs"]["region"] == "eu-west-1"  # passed through opts
    vpc_ids = {r["inputs"].get("vpcId") for r in plan["resources"] if "vpcId" in r["inputs"]}
    assert vpc_ids == {"vpc-0a1b2c3d4e5f60708"}  # the existing network, no VPC of ours
    assert not [r for r in plan["resources"] if r["type"] == "aws:ec2/vpc:Vpc"]

    releases = {
        r["inputs"]["chart"].rsplit("/", 1)[-1]: r["inputs"]["values"]
        for r in plan["resources"]
        if r["type"] == "kubernetes:helm.sh/v3:Release"
    }
    assert set(releases) == {
        "nvidia-device-plugin",
        "cluster-autoscaler",
        "gha-runner-scale-set-controller",
        "gha-runner-scale-set",
    }
    # Their values start from the Helm values files inside the installed package.
    helm = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    helm = helm / "site-packages" / "mlplatform" / "helm"
    packaged = {
        "nvidia-device-plugin": "nvidia-device-plugin",
        "cluster-autoscaler": "cluster-autoscaler",
        "gha-runner-scale-set-controller": "arc",
        "gha-runner-scale-set": "arc-runners",
    }
    for chart, folder in packaged.items():
        values = yaml.safe_load((helm / folder / "values.yaml").read_text())
        assert values, folder
        assert is_subset(values, releases[chart]), chart
    assert (
        releases["gha-runner-scale-set"]["template"]["spec"]["containers"][0]["resources"][
            "limits"
        ]["nvidia.com/gpu"]
        == 1
    )
