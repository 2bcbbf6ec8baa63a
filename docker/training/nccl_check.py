"""Make torch use the system NCCL that aws-ofi-nccl works with, and prove it at build time.

The known failure on EFA: torch's pip wheel brings its own libnccl (the `nvidia-nccl-*` wheel)
and loads it through its RPATH, so the NCCL the EFA stack was installed and tested against is
never used and the plugin fails with `NET/OFI aws-ofi-nccl initialization failed` (or NCCL
silently falls back to TCP sockets). The image therefore keeps exactly one NCCL:

    python nccl_check.py link    # pip's libnccl.so.2 becomes a symlink to the system library
    python nccl_check.py check   # fail the build unless torch really uses that library and the
                                 # plugin's dependencies (libfabric, ...) all resolve

Both run without a GPU: `ncclGetVersion` needs no device, and the driver libraries (which only
exist on a GPU host) are the one dependency allowed to be missing at build time.
Standard library only, so it runs in the image before anything else is importable.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

SYSTEM_NCCL = Path("/usr/lib/x86_64-linux-gnu/libnccl.so.2")
OFI_NCCL_ROOT = Path("/opt/amazon/ofi-nccl")
NCCL_SONAME = "libnccl.so.2"
# Provided by the NVIDIA driver on the host (mounted by the container toolkit), never in the image.
DRIVER_LIBRARIES = frozenset({"libcuda.so.1", "libnvidia-ml.so.1"})


def version_from_code(code: int) -> tuple[int, int, int]:
    """NCCL's integer version (2.9 and later: major*10000 + minor*100 + patch) as a tuple."""
    if code < 10000:  # NCCL before 2.9 used major*1000 + minor*100 + patch
        return code // 1000, (code % 1000) // 100, code % 100
    return code // 10000, (code % 10000) // 100, code % 100


def library_version(path: Path) -> tuple[int, int, int]:
    """The version a libnccl reports through `ncclGetVersion`."""
    lib = ctypes.CDLL(str(path))
    code = ctypes.c_int(0)
    if lib.ncclGetVersion(ctypes.byref(code)) != 0:
        raise RuntimeError(f"{path}: ncclGetVersion failed")
    return version_from_code(code.value)


def mapped_paths(maps: str, soname: str) -> set[str]:
    """Files of library `soname` mapped into a process, from the text of /proc/<pid>/maps.

    The kernel shows the file a symlink resolved to, so `libnccl.so.2` may appear as
    `libnccl.so.2.27.7`: both count.
    """
    paths = set()
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 6:
            continue
        name = os.path.basename(fields[5].strip())
        if name == soname or name.startswith(soname + "."):
            paths.add(fields[5].strip())
    return paths


def missing_dependencies(ldd_output: str, allowed: Iterable[str] = DRIVER_LIBRARIES) -> list[str]:
    """Libraries `ldd` could not resolve, except those the host driver provides at run time."""
    allowed = set(allowed)
    missing = []
    for line in ldd_output.splitlines():
        name, sep, where = line.strip().partition(" => ")
        if sep and where.strip() == "not found" and name not in allowed:
            missing.append(name)
    return missing


def find_plugin(root: Path = OFI_NCCL_ROOT) -> Path:
    """aws-ofi-nccl's NCCL net plugin as the EFA installer lays it out (lib/ or lib/<triplet>/)."""
    found = sorted(glob.glob(str(root / "lib*" / "**" / "libnccl-net-ofi.so"), recursive=True))
    if not found:
        raise FileNotFoundError(f"no libnccl-net-ofi.so under {root}: is aws-ofi-nccl installed?")
    return Path(found[0])


def pip_nccl_dirs(site_packages: Iterable[str]) -> list[Path]:
    """Directories holding the NCCL of an `nvidia-nccl-*` wheel."""
    return [
        Path(d)
        for sp in site_packages
        for d in glob.glob(os.path.join(sp, "nvidia", "nccl*", "lib"))
        if os.path.isdir(d)
    ]


def link_system_nccl(lib_dirs: Iterable[Path], system: Path = SYSTEM_NCCL) -> list[Path]:
    """Replace each wheel's libnccl.so.2 by a symlink to `system`; return what was replaced."""
    if not system.is_file():
        raise FileNotFoundError(f"{system}: system NCCL is not installed")
    replaced = []
    for lib_dir in lib_dirs:
        target = lib_dir / NCCL_SONAME
        if target.is_symlink() and target.resolve() == system.resolve():
            continue
        if target.exists() or target.is_symlink():
            target.unlink()
        target.symlink_to(system)
        replaced.append(target)
    return replaced


def check(system: Path = SYSTEM_NCCL, plugin_root: Path = OFI_NCCL_ROOT) -> list[str]:
    """Every problem found (empty when the image is right); prints what it verified."""
    import torch  # the image's torch; imported here so `link` runs without it

    problems = []
    system_version = library_version(system)
    print(f"system NCCL {'.'.join(map(str, system_version))} at {system.resolve()}")
    torch_version = tuple(torch.cuda.nccl.version())
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}) reports NCCL {torch_version}")
    if torch_version != system_version:
        problems.append(f"torch uses NCCL {torch_version}, the system has {system_version}")
    mapped = mapped_paths(Path("/proc/self/maps").read_text(), NCCL_SONAME)
    if {os.path.realpath(p) for p in mapped} != {str(system.resolve())}:
        problems.append(f"loaded NCCL libraries {sorted(mapped)}, expected only {system}")
    plugin = find_plugin(plugin_root)
    ldd = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, check=True)
    missing = missing_dependencies(ldd.stdout)
    print(f"aws-ofi-nccl plugin {plugin}: unresolved dependencies {missing or 'none'}")
    if missing:
        problems.append(f"{plugin} cannot load: missing {', '.join(missing)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["link", "check"])
    args = parser.parse_args(argv)
    if args.action == "link":
        import site

        replaced = link_system_nccl(pip_nccl_dirs(site.getsitepackages()))
        for path in replaced:
            print(f"{path} -> {SYSTEM_NCCL}")
        return 0
    problems = check()
    for problem in problems:
        print(f"nccl_check: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
