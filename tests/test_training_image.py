"""The training image (docker/training): lint, build context, pins, entry point, NCCL check;
and the ContainerImage component's Args (the component that builds it).

No Docker engine here: the image is not built in tests. What can be checked without one is:
the scanners, that the build context holds exactly what the Dockerfile copies, that every
package is pinned, the entry point's behaviour, and the logic of nccl_check.py (the build-time
proof that torch uses the system NCCL).
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pulumi
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from mlplatform.components.images import ContainerImage, ContainerImageArgs
from mlplatform.components.schema import ArgsError
from mlplatform.program import run_program
from tests.conftest import ROOT

IMAGE_DIR = ROOT / "docker" / "training"
DOCKERFILE = IMAGE_DIR / "Dockerfile"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name) or str(BIN / name)
    if not Path(path).exists():
        pytest.fail(f"{name} is not installed (dev extra)")
    return path


@pytest.fixture(scope="module")
def nccl_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nccl_check", IMAGE_DIR / "nccl_check.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dockerfile_is_hadolint_clean() -> None:
    result = subprocess.run([tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_is_shellcheck_clean() -> None:
    script = IMAGE_DIR / "entrypoint.sh"
    result = subprocess.run([tool("shellcheck"), str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert os.access(script, os.X_OK)


def _copy_sources() -> list[str]:
    """Paths the Dockerfile copies from the build context (not from other stages)."""
    sources = []
    for line in DOCKERFILE.read_text().replace("\\\n", " ").splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def _in_context(path: str) -> bool:
    """Whether a path survives Dockerfile.dockerignore (last matching pattern wins)."""
    included = True
    for raw in (IMAGE_DIR / "Dockerfile.dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/").removeprefix("**/")
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes) or fnmatch.fnmatch(
            parts[-1], pattern
        ):
            included = negated
    return included


def test_build_context_holds_what_the_dockerfile_copies_and_nothing_else() -> None:
    sources = _copy_sources()
    assert {"training", "pyproject.toml", "docker/training/sagemaker_launch.py"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert _in_context(source), f"{source} is excluded from the build context"
    for private in (
        ".venv",
        ".git",
        "tests/conftest.py",
        "Pulumi.production.yaml",
        "docker/runner-gpu",
    ):
        assert not _in_context(private), f"{private} would be sent to the Docker daemon"
    assert not _in_context("training/__pycache__/x.pyc")


def test_every_python_package_of_the_image_is_pinned() -> None:
    pins = {}
    for line in (IMAGE_DIR / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[requirement.name] = spec.version
    assert {"torch", "hyperpod-elastic-agent", "s3torchconnector"} <= set(pins)
    # The image's torch is one the training core supports (pyproject `training` extra).
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    torch_range = next(Requirement(r) for r in extras["training"] if r.startswith("torch"))
    assert pins["torch"] in SpecifierSet(str(torch_range.specifier))
    # hyperpod-elastic-agent 1.1.3 declares torch<2.12: the reason the image is not on 2.13.
    assert pins["torch"] in SpecifierSet(">=2.4,<2.12")


def test_base_images_and_native_stack_are_pinned() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG CUDA_VERSION=\d+\.\d+\.\d+$", text, re.M)
    assert re.search(r"^ARG EFA_INSTALLER_VERSION=\d+\.\d+\.\d+$", text, re.M)
    assert re.search(r"^ARG NCCL_VERSION=\d+\.\d+\.\d+-\d+\+cuda\d+\.\d+$", text, re.M)
    assert re.search(r"^ARG GDRCOPY_VERSION=\d+\.\d+\.\d+$", text, re.M)
    assert ":latest" not in text
    # Kernel module and memlock limits are the host's business.
    assert "--skip-kmod --skip-limit-conf" in text
    assert "apt-mark hold libnccl2" in text


def test_nccl_is_linked_and_checked_after_the_python_packages_are_installed() -> None:
    text = DOCKERFILE.read_text()
    install = text.index("-r /opt/mlplatform/requirements.txt")
    link = text.index("nccl_check.py link")
    check = text.index("nccl_check.py check")
    assert install < link < check


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    users = re.findall(r"^USER (\S+)$", DOCKERFILE.read_text(), re.M)
    assert users == ["10001"]


# --- entrypoint ---------------------------------------------------------------------------------


def _entrypoint(*args: str, memlock: str, devices: str) -> subprocess.CompletedProcess[str]:
    script = IMAGE_DIR / "entrypoint.sh"
    command = f"ulimit -S -l {memlock}; exec bash {script} " + " ".join(args)
    env = {"PATH": os.environ["PATH"], "MLPLATFORM_EFA_DEVICES": devices}
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env)


def test_entrypoint_runs_the_command_it_is_given(tmp_path: Path) -> None:
    result = _entrypoint("echo", "ready", memlock="64", devices=str(tmp_path / "none*"))
    assert result.returncode == 0
    assert result.stdout == "ready\n" and result.stderr == ""


def test_entrypoint_warns_when_efa_is_present_but_memlock_is_limited(tmp_path: Path) -> None:
    (tmp_path / "uverbs0").touch()
    result = _entrypoint("true", memlock="64", devices=str(tmp_path / "uverbs*"))
    assert result.returncode == 0
    assert "'ulimit -l' is 64 KiB" in result.stderr
    assert "--ulimit memlock=-1:-1" in result.stderr


def test_entrypoint_is_quiet_without_efa_devices(tmp_path: Path) -> None:
    result = _entrypoint("true", memlock="64", devices=str(tmp_path / "uverbs*"))
    assert result.stderr == ""


def test_entrypoint_exit_code_is_the_commands() -> None:
    result = _entrypoint("exit", "3", memlock="64", devices="/nonexistent/*")
    assert result.returncode != 0


# --- nccl_check.py ------------------------------------------------------------------------------


def test_nccl_version_codes(nccl_check: ModuleType) -> None:
    assert nccl_check.version_from_code(22707) == (2, 27, 7)
    assert nccl_check.version_from_code(22803) == (2, 28, 3)
    assert nccl_check.version_from_code(2708) == (2, 7, 8)  # pre-2.9 encoding


def test_mapped_nccl_is_found_under_its_resolved_name(nccl_check: ModuleType) -> None:
    maps = "\n".join(
        [
            "7f0000000000-7f0000100000 r-xp 00000000 08:01 1234 /usr/lib/x86_64-linux-gnu/libnccl.so.2.27.7",
            "7f0000200000-7f0000300000 r--p 00000000 08:01 99 /opt/venv/lib/libtorch_cuda.so",
            "7f0000400000-7f0000500000 rw-p 00000000 00:00 0",
            "7f0000600000-7f0000700000 r-xp 00000000 08:01 77 /opt/venv/nvidia/nccl/lib/libnccl.so.2",
            "7f0000800000-7f0000900000 r-xp 00000000 08:01 78 /usr/lib/libnccl-net-ofi.so",
        ]
    )
    assert nccl_check.mapped_paths(maps, "libnccl.so.2") == {
        "/usr/lib/x86_64-linux-gnu/libnccl.so.2.27.7",
        "/opt/venv/nvidia/nccl/lib/libnccl.so.2",
    }


def test_plugin_dependencies_missing_at_build_time_are_only_the_drivers(
    nccl_check: ModuleType,
) -> None:
    ldd = """\
        linux-vdso.so.1 (0x00007ffd)
        libfabric.so.1 => /opt/amazon/efa/lib/libfabric.so.1 (0x00007f)
        libcuda.so.1 => not found
        libhwloc.so.15 => not found
        libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)
    """
    assert nccl_check.missing_dependencies(ldd) == ["libhwloc.so.15"]


def test_link_makes_every_wheel_nccl_point_at_the_system_library(
    nccl_check: ModuleType, tmp_path: Path
) -> None:
    system = tmp_path / "usr" / "libnccl.so.2.27.7"
    system.parent.mkdir()
    system.write_bytes(b"system")
    site = tmp_path / "site-packages"
    wheel_lib = site / "nvidia" / "nccl" / "lib"
    wheel_lib.mkdir(parents=True)
    (wheel_lib / "libnccl.so.2").write_bytes(b"wheel")

    dirs = nccl_check.pip_nccl_dirs([str(site), str(tmp_path / "absent")])
    assert dirs == [wheel_lib]
    assert nccl_check.link_system_nccl(dirs, system) == [wheel_lib / "libnccl.so.2"]
    assert (wheel_lib / "libnccl.so.2").resolve() == system.resolve()
    assert (wheel_lib / "libnccl.so.2").read_bytes() == b"system"
    assert nccl_check.link_system_nccl(dirs, system) == []  # idempotent


def test_link_refuses_when_there_is_no_system_nccl(nccl_check: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="system NCCL is not installed"):
        nccl_check.link_system_nccl([tmp_path], tmp_path / "missing.so")


def test_plugin_is_found_where_the_efa_installer_puts_it(
    nccl_check: ModuleType, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError, match="is aws-ofi-nccl installed"):
        nccl_check.find_plugin(tmp_path)
    plugin = tmp_path / "lib" / "x86_64-linux-gnu" / "libnccl-net-ofi.so"
    plugin.parent.mkdir(parents=True)
    plugin.touch()
    assert nccl_check.find_plugin(tmp_path) == plugin


# --- ContainerImage: its Args from Python and from another language's mapping ------------------

TRAINING_CONTEXT = str(ROOT)
TRAINING_DOCKERFILE = str(DOCKERFILE)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"context": str(ROOT / "docker" / "nothing-here")},
            f"ContainerImageArgs.context: {str(ROOT / 'docker' / 'nothing-here')!r} "
            "is not a directory",
        ),
        (
            {"context": str(ROOT / "docker"), "dockerfile": None},  # no docker/Dockerfile
            f"ContainerImageArgs.context: {str(ROOT / 'docker' / 'Dockerfile')!r} is not a file",
        ),
        (
            {"dockerfile": str(IMAGE_DIR / "Containerfile")},
            f"ContainerImageArgs.dockerfile: {str(IMAGE_DIR / 'Containerfile')!r} is not a file",
        ),
        (
            {"tag": "buildcache"},
            "ContainerImageArgs.tag: 'buildcache' is the build cache's tag, the only mutable one",
        ),
        ({"tag": "v1 final"}, "ContainerImageArgs.tag: 'v1 final' is not a Docker tag"),
        (
            {"platform": "windows/amd64"},
            "ContainerImageArgs.platform: 'windows/amd64' is not one of 'linux/amd64' or "
            "'linux/arm64'",
        ),
        ({"keep_images": 0}, "ContainerImageArgs.keep_images: 0 is out of range (must be >= 1)"),
        (
            {"build_args": {"CUDA_VERSION": 12}},
            "ContainerImageArgs.build_args.CUDA_VERSION: expected a string, got 12",
        ),
        ({"context": Path(ROOT)}, "ContainerImageArgs.context: expected a string, got "),
    ],
)
def test_bad_container_image_args_are_one_line_naming_the_argument(
    settings: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {"context": TRAINING_CONTEXT, "dockerfile": TRAINING_DOCKERFILE}
    with pytest.raises(ArgsError) as error:
        ContainerImageArgs(**{**values, **settings})  # type: ignore[arg-type]
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_container_image_accepts_a_camel_case_mapping_with_output_build_args() -> None:
    def program() -> dict[str, object]:
        image = ContainerImage(
            "img",
            {  # type: ignore[arg-type]
                "context": TRAINING_CONTEXT,
                "dockerfile": TRAINING_DOCKERFILE,
                "buildArgs": {"BASE_IMAGE": pulumi.Output.from_input("base@sha256:" + "0" * 64)},
                "platform": "linux/arm64",
                "forceDelete": True,
                "tag": "v1.2.3",
            },
        )
        return {"ref": image.image_ref, "tag": image.tag}

    run = run_program(program, project="mlplatform", stack="test", config={})
    built = run.named("img-image", "docker-build:index:Image").inputs
    assert built["platforms"] == ["linux/arm64"]
    assert built["buildArgs"] == {"BASE_IMAGE": "base@sha256:" + "0" * 64}
    assert built["tags"] == [run.named("img-repo").outputs["repositoryUrl"] + ":v1.2.3"]
    assert run.named("img-repo").inputs["forceDelete"] is True
    assert run.outputs["tag"] == "v1.2.3"
    assert run.outputs["ref"].startswith(run.named("img-repo").outputs["repositoryUrl"] + "@")
