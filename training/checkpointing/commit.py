"""The commit marker: a checkpoint exists for resume only once COMMIT.json is in place.

COMMIT.json is written last, after every rank's files, atomically (temporary file, fsync, rename,
fsync of the directory). It records what the checkpoint is (step, world size, mesh, config hash,
code version) and the size and CRC-32 of every file, so a resume can tell a complete checkpoint
from a torn or corrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import zlib
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

COMMIT_FILE = "COMMIT.json"
FORMAT_VERSION = 1
_CHUNK = 8 << 20


@dataclass(frozen=True)
class FileEntry:
    size: int
    crc32: int


@dataclass
class Commit:
    step: int
    world_size: int
    files: dict[str, FileEntry]
    mesh: dict[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    code_version: str = ""
    created_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Commit:
        raw = json.loads(text)
        raw["files"] = {name: FileEntry(**entry) for name, entry in raw["files"].items()}
        return cls(**raw)


def file_entry(path: Path) -> FileEntry:
    """Size and CRC-32 of one file, read in chunks (zlib's CRC runs at about 2 GB/s here)."""
    crc = 0
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return FileEntry(size=size, crc32=crc)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `path` so that readers see either nothing or all of `data`, even after a crash."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_commit(directory: Path, commit: Commit) -> None:
    write_atomic(directory / COMMIT_FILE, commit.to_json().encode())


def read_commit(directory: Path) -> Commit | None:
    """The commit marker of `directory`, or None when it has none (or an unreadable one)."""
    try:
        return Commit.from_json((directory / COMMIT_FILE).read_text())
    except (OSError, ValueError, TypeError, KeyError):
        return None


def verify(directory: Path, commit: Commit, names: list[str] | None = None) -> list[str]:
    """Problems with the files of `directory` against its commit (all files, or `names`)."""
    problems = []
    for name in commit.files if names is None else names:
        expected = commit.files[name]
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        if path.stat().st_size != expected.size:
            problems.append(f"{name}: {path.stat().st_size} bytes, committed {expected.size}")
            continue
        if file_entry(path).crc32 != expected.crc32:
            problems.append(f"{name}: CRC-32 differs from the commit marker")
    return problems


def config_hash(config: Any) -> str:
    """A stable hash of the run's configuration (any JSON-able value)."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@cache
def code_version() -> str:
    """The code that wrote a checkpoint: $MLPLATFORM_CODE_VERSION, else the git commit, else
    'unknown' (images built without .git set the variable)."""
    if env := os.environ.get("MLPLATFORM_CODE_VERSION"):
        return env
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def now() -> float:
    return round(time.time(), 3)
