"""Helpers for the checkpoint tests: a one-process training run, the multi-rank worker launcher
(gloo over 127.0.0.1) and a moto S3 server on 127.0.0.1 that a test can stop and restart."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import torch
from moto.server import ThreadedMotoServer

from mlplatform.training.checkpointing import (
    CheckpointConfig,
    Progress,
    Trainable,
    build_checkpointer,
)
from tests.checkpoint_worker import TinyModel


class Run:
    """A tiny model + AdamW + LR schedule trained on random batches from the global RNG."""

    def __init__(self, directory: Path, memory_url: str | None = None, **config: object) -> None:
        torch.manual_seed(0)
        self.model = TinyModel()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-2, weight_decay=0.1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: 1 / (1 + s))
        cfg = CheckpointConfig(local_dir=str(directory), **config)  # type: ignore[arg-type]
        trainable = Trainable(self.model, self.optimizer, self.scheduler)
        self.ckpt = build_checkpointer(
            cfg, trainable, run_config={"lr": 1e-2}, memory_url=memory_url
        )
        self.losses: dict[int, float] = {}

    def train(self, until: int, on_step: Callable[[int], object] = lambda step: None) -> Progress:
        progress = self.ckpt.restore() or Progress()
        for step in range(progress.step + 1, until + 1):
            on_step(step)
            loss = self.model(torch.randn(4, 32)).pow(2).mean()
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad()
            self.losses[step] = loss.item()
            progress = Progress(
                step=step,
                tokens_seen=4 * step,
                loader={"position": step},
                rank_state={"seen": step},
            )
            self.ckpt.save_if_due(step, progress)
        self.ckpt.close()
        return progress


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


class MotoS3:
    """A real S3 API over HTTP on 127.0.0.1 (moto); state survives stop() and start()."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self._server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@dataclass
class Bucket:
    server: MotoS3
    name: str

    def uri(self, prefix: str = "ckpt") -> str:
        return f"s3://{self.name}/{prefix}"

    def keys(self, prefix: str = "") -> list[str]:
        return self.server.keys(self.name, prefix)
