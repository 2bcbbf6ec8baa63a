"""Run a function on several gloo processes (torch.multiprocessing spawn) and collect results."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(
    rank: int,
    fn: Callable[..., Any],
    world: int,
    local_world: int,
    port: int,
    out: str,
    args: tuple,
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank % local_world), LOCAL_WORLD_SIZE=str(local_world),
    )  # fmt: skip
    dist.init_process_group("gloo")
    try:
        result = fn(*args)
        Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def spawn(
    fn: Callable[..., Any], world: int, *args: Any, local_world: int | None = None
) -> list[Any]:
    """fn(*args) on `world` ranks (LOCAL_WORLD_SIZE `local_world`: ranks per simulated node);
    returns each rank's JSON-serialisable result."""
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(
            _worker, args=(fn, world, local_world or world, free_port(), out, args), nprocs=world
        )
        return [json.loads(Path(out, f"rank{r}.json").read_text()) for r in range(world)]


def run_configs(configs: list[dict[str, Any]]) -> list[list[float]]:
    """Train each config in turn in the same process group; the loss curve of each."""
    from mlplatform.training.config import TrainConfig
    from mlplatform.training.train import run

    return [[r["loss"] for r in run(TrainConfig(**c).validate())] for c in configs]


def clip_matches_torch(mesh_shape: list[int], max_norm: float) -> list[float]:
    """clip_and_reduce on a sharded tiny model against torch's clip_grad_norm_: the norm before
    (torch, ours) and after clipping (torch's measure)."""
    import torch
    import torch.nn.functional as F
    from torch.distributed.device_mesh import init_device_mesh

    from mlplatform.training.config import TrainConfig
    from mlplatform.training.model import PRESETS, Transformer
    from mlplatform.training.parallel import clip_and_reduce, parallelize

    names = ("replicate", "shard") if len(mesh_shape) == 2 else ("shard",)
    mesh = init_device_mesh("cpu", tuple(mesh_shape), mesh_dim_names=names)
    with torch.device("meta"):
        model = Transformer(PRESETS["tiny"])
    parallelize(model, TrainConfig(mixed_precision="fp32"), mesh)
    model.to_empty(device="cpu")
    model.init_weights(seed=0)
    tokens = torch.randint(
        0, 512, (2, 17), generator=torch.Generator().manual_seed(dist.get_rank())
    )
    F.cross_entropy(model(tokens[:, :-1]).flatten(0, 1), tokens[:, 1:].flatten()).backward()
    params = list(model.parameters())
    before = torch.nn.utils.clip_grad_norm_(params, float("inf")).full_tensor().item()
    ours, loss = clip_and_reduce(params, max_norm, torch.tensor(1.0), mesh)
    after = torch.nn.utils.clip_grad_norm_(params, float("inf")).full_tensor().item()
    return [before, ours.item(), after, loss.item()]


def sharded_fill_equals_full_fill() -> bool:
    """fill_normal on a DTensor sharded over the world (several row blocks per shard) gives the
    rows a full tensor gets."""
    import torch
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    from mlplatform.training.model import fill_normal

    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    sharded = distribute_tensor(torch.zeros(37, 5), mesh, [Shard(0)])
    fill_normal(sharded, std=1.0, seed=4, key="k", block_elements=15)
    full = torch.zeros(37, 5)
    fill_normal(full, std=1.0, seed=4, key="k", block_elements=15)
    return bool(torch.equal(sharded.full_tensor(), full))


def resume_after_interruption(config: dict[str, Any]) -> dict[str, list[float]]:
    """Train with checkpoints; make the last one incomplete; train again: it resumes from the
    last complete one and must reproduce the same losses."""
    from mlplatform.training.checkpointing.commit import COMMIT_FILE
    from mlplatform.training.checkpointing.tiers import LocalTier

    straight = run_configs([config])[0]
    tier1 = LocalTier(config["checkpoint_dir"])
    steps = sorted(tier1.committed_steps())
    dist.barrier()
    if dist.get_rank() == 0:
        (tier1.final_dir(steps[-1]) / COMMIT_FILE).unlink()
    dist.barrier()
    resumed = run_configs([config])[0]
    return {"straight": straight, "resumed": resumed, "steps": [float(s) for s in steps]}
