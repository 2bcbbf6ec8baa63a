"""Checkpoint benchmark (not a test): `make bench-checkpoint`.

A ~300M-parameter model with AdamW state, fully sharded over 2 gloo ranks on this machine:
synchronous save time, async blocking time (what the loop waits: staging) and total time, load
time, and tier-1 throughput against this disk's raw sequential write speed measured in the same
run (one writer, 64 MiB blocks, fsync at the end, like `dd conv=fsync`).

    python benchmarks/bench_checkpoint.py [--dir DIR] [--layers 32] [--width 3072]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlplatform.training.checkpointing import (
    CheckpointConfig,
    Checkpointer,
    Progress,
    Trainable,
)
from mlplatform.training.checkpointing.config import Mode

GiB = 2**30


def raw_write_speed(directory: Path, size: int) -> float:
    """Bytes/s of one sequential writer of `size` bytes, fsync included."""
    block = os.urandom(64 << 20)
    path = directory / "raw-write-test"
    start = time.perf_counter()
    with open(path, "wb") as f:
        written = 0
        while written < size:
            f.write(block)
            written += len(block)
        f.flush()
        os.fsync(f.fileno())
    elapsed = time.perf_counter() - start
    path.unlink()
    return written / elapsed


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(fn: Callable[[], object]) -> float:
    dist.barrier()
    start = time.perf_counter()
    fn()
    elapsed = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
    dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)  # the slowest rank is what the job waits for
    return float(elapsed.item())


def worker(rank: int, world: int, port: int, args: argparse.Namespace) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    torch.set_num_threads(1)
    from torch.distributed.fsdp import fully_shard

    torch.manual_seed(0)
    with torch.device("meta"):  # shard first, then allocate: no rank ever holds the full model
        model = nn.Sequential(*(nn.Linear(args.width, args.width) for _ in range(args.layers)))
    for layer in model:
        fully_shard(layer)
    fully_shard(model)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(std=0.02)
    params = sum(p.numel() for p in model.parameters())  # DTensor numel: the global count
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model(torch.randn(2, args.width)).sum().backward()
    optimizer.step()  # AdamW state exists (exp_avg, exp_avg_sq)
    root = Path(args.dir)
    out: dict[str, float] = {}

    def checkpointer(mode: Mode, name: str) -> Checkpointer:
        cfg = CheckpointConfig(local_dir=str(root / name), local_every=1, local_keep=1, mode=mode)
        return Checkpointer(cfg, Trainable(model, optimizer))

    sync = checkpointer("sync", "sync")
    out["sync save s"] = timed(lambda: sync.save(1, Progress(step=1)))
    size = directory_bytes(root / "sync" / "step_000000001")

    async_ = checkpointer("async", "async")
    for step in (1, 2):  # step 1 allocates the staging buffers, step 2 reuses them
        blocking = timed(partial(async_.save, step, Progress(step=step)))
        out[f"async blocking s (save {step})"] = blocking
        out[f"async total s (save {step})"] = blocking + timed(async_.wait)
    out["load s"] = timed(lambda: checkpointer("sync", "async").restore())
    raw = 0.0
    if rank == 0:
        raw = raw_write_speed(root, min(size, 4 * GiB))
    dist.barrier()
    if rank == 0:
        print(f"model: {params / 1e6:.0f}M params fp32 + AdamW, {world} ranks (FSDP2, gloo)")
        print(f"checkpoint: {size / GiB:.2f} GiB on {root}")
        for key, value in out.items():
            print(f"{key:32s} {value:8.2f}")
        tier1 = size / out["sync save s"]
        print(f"{'tier-1 throughput (sync) GiB/s':32s} {tier1 / GiB:8.2f}")
        print(f"{'raw sequential write GiB/s':32s} {raw / GiB:8.2f}")
        blocking = out["async blocking s (save 2)"] / out["sync save s"]
        print(f"blocking / sync save: {blocking:.1%} (goal <= 10%)")
        print(f"tier-1 / raw disk:    {tier1 / raw:.0%} (goal >= 70%)")
    sync.close()
    async_.close()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--dir", default="", help="tier-1 directory (default: a temp dir on /tmp)")
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--width", type=int, default=3072)
    parser.add_argument("--ranks", type=int, default=2)
    args = parser.parse_args()
    owned = not args.dir
    args.dir = args.dir or tempfile.mkdtemp(prefix="bench-checkpoint-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        mp.spawn(worker, args=(args.ranks, port, args), nprocs=args.ranks, join=True)
    finally:
        if owned:
            shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
