"""Launch the checkpoint worker on N local ranks (gloo over 127.0.0.1) and read what they wrote."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

WORKER = Path(__file__).resolve().parent / "checkpoint_worker.py"
ROOT = WORKER.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(spec: dict[str, Any], tmp: Path, world_size: int) -> list[subprocess.Popen[bytes]]:
    spec = {"shard": "full", **spec, "world_size": world_size, "port": free_port()}
    out_dir = Path(spec.setdefault("out_dir", str(tmp / f"out-{spec['port']}")))
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_path = out_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(spec_path), str(rank)],
            env=env,
            stdout=open(out_dir / f"rank{rank}.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        for rank in range(world_size)
    ]


def results(spec_out_dir: Path, world_size: int) -> list[dict[str, Any]]:
    return [json.loads((spec_out_dir / f"rank{r}.json").read_text()) for r in range(world_size)]


def run(spec: dict[str, Any], tmp: Path, world_size: int = 2, timeout: float = 120) -> list[dict]:
    """Run to completion; fail with every rank's log if a rank fails."""
    procs = launch(spec, tmp, world_size)
    out_dir = Path(json.loads(Path(procs[0].args[2]).read_text())["out_dir"])  # type: ignore[index]
    codes = [p.wait(timeout=timeout) for p in procs]
    if any(codes):
        logs = "\n".join(
            f"--- rank {r} (exit {c})\n{(out_dir / f'rank{r}.log').read_text()[-3000:]}"
            for r, c in enumerate(codes)
        )
        raise AssertionError(f"worker failed:\n{logs}")
    return results(out_dir, world_size)
