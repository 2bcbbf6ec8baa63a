"""Throughput of our trainer against a minimal hand-written FSDP2 loop (a benchmark, not a test).

Both train the same model (`--model`, default `small`, ~30M parameters) on the same batch shape
with the same sharding, precision and optimizer, on `--ranks` gloo processes (or NCCL on GPUs).
Ours runs `training.train.run` end to end (data pipeline, metrics line and JSON file, scheduler,
checkpoint seam); the minimal loop is forward, loss, backward, clip, AdamW on pre-generated random
tokens. Each is timed per step after `--warmup` steps; the two take turns `--rounds` times
(swapping who goes first) and the median step time of each counts, which damps noise from other
processes on a shared machine.
Prints tokens/s of both and the ratio (goal >= 0.95), the model's FLOPs per token and the
achieved TFLOP/s per rank.

    make bench-train        # or: python benchmarks/bench_train.py --ranks 2 --steps 6
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlplatform.training.config import TrainConfig
from mlplatform.training.model import Transformer, count_params, flops_per_token, model_args
from mlplatform.training.parallel import mixed_precision_policy
from mlplatform.training.train import run


def ours(cfg: TrainConfig, warmup: int, workdir: str) -> list[float]:
    """Seconds per step of training.train.run after warm-up: the wall-clock intervals between
    its step records, so data, metrics, logging and the checkpoint seam are all inside."""
    metrics = Path(workdir, f"metrics-{time.monotonic_ns()}.jsonl")
    records = run(TrainConfig(**{**cfg.to_dict(), "metrics_file": str(metrics)}))
    times = [r["time"] for r in records[warmup - 1 :]]
    return [b - a for a, b in itertools.pairwise(times)]


def minimal(cfg: TrainConfig, warmup: int, device: torch.device) -> list[float]:
    """Seconds per step after warm-up of the smallest honest FSDP2 loop, same model and batch."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    world = dist.get_world_size()
    args = model_args(cfg.model, max_seq_len=cfg.seq_len)
    with torch.device("meta"):
        model = Transformer(args)
    mesh = init_device_mesh(device.type, (world,))
    mp_policy = mixed_precision_policy(cfg.mixed_precision)
    blocks = list(model.layers.values())
    for i, block in enumerate(blocks):
        fully_shard(
            block, mesh=mesh, mp_policy=mp_policy, reshard_after_forward=i < len(blocks) - 1
        )
    fully_shard(model, mesh=mesh, mp_policy=mp_policy)
    model.to_empty(device=device)
    model.init_weights(seed=cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, foreach=True)
    micro = cfg.batch_size // world
    tokens = torch.randint(0, args.vocab_size, (micro, cfg.seq_len + 1), device=device)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]

    def step() -> None:
        loss = F.cross_entropy(model(inputs).flatten(0, 1).float(), targets.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(cfg.max_steps - warmup):
        started = time.time()
        step()
        seconds.append(time.time() - started)
    return seconds


def worker(rank: int, world: int, port: int, opts: argparse.Namespace, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
    )  # fmt: skip
    torch.set_num_threads(opts.threads)
    use_cuda = torch.cuda.is_available()
    device = torch.device("cuda", rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if use_cuda else "gloo")
    cfg = TrainConfig(
        model=opts.model, data="synthetic", seq_len=opts.seq_len, batch_size=opts.batch * world,
        max_steps=opts.warmup + opts.steps, warmup_steps=1, mixed_precision=opts.precision,
        log_interval=10**6, device=device.type,
    ).validate()  # fmt: skip
    results: dict[str, list[float]] = {"ours": [], "minimal": []}
    with tempfile.TemporaryDirectory() as workdir:
        for round_ in range(opts.rounds):
            # alternate who goes first: load from other processes drifts over minutes
            for name in ("ours", "minimal") if round_ % 2 == 0 else ("minimal", "ours"):
                if name == "ours":
                    results[name] += ours(cfg, opts.warmup, workdir)
                else:
                    results[name] += minimal(cfg, opts.warmup, device)
    if rank == 0:
        Path(out).write_text(json.dumps(results))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2, help="sequences per rank per step")
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8, help="timed steps after warm-up")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    opts = parser.parse_args()

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp, "result.json"))
        mp.spawn(worker, args=(opts.ranks, port, opts, out), nprocs=opts.ranks)
        results = json.loads(Path(out).read_text())

    args = model_args(opts.model, max_seq_len=opts.seq_len)
    fpt = flops_per_token(args, opts.seq_len)
    tokens_per_step = opts.batch * opts.ranks * opts.seq_len
    print(f"model {opts.model}: {count_params(args) / 1e6:.1f}M parameters, "
          f"{fpt / 1e6:.1f} MFLOPs/token (6N + attention), seq_len {opts.seq_len}, "
          f"{opts.batch} sequences/rank, {opts.ranks} ranks, {opts.precision}, "
          f"{opts.threads} threads/rank")  # fmt: skip
    tps = {}
    for name, seconds in results.items():
        tps[name] = tokens_per_step / statistics.median(seconds)
        spread = f"s/step {min(seconds):.2f}..{max(seconds):.2f}"
        print(f"{name + ':':8} {tps[name]:10.0f} tokens/s  "
              f"{tps[name] * fpt / opts.ranks / 1e12:.4f} TFLOP/s/rank  "
              f"(median of {len(seconds)} steps; {spread})")  # fmt: skip
    print(f"ratio ours/minimal: {tps['ours'] / tps['minimal']:.3f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
