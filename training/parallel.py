"""Parallelism applied to a plain model from outside: mesh, FSDP2, precision, AC, compile.

Order per block: activation checkpointing (wrapper), then `torch.compile`, then `fully_shard`;
finally `fully_shard` on the root (embeddings, final norm, output head). `full` sharding uses a
1-D mesh over every rank; `hybrid` a 2-D mesh ("replicate", "shard"): parameters are sharded
inside a replica group (typically one node, fast NVLink) and replicated across groups, so only
gradient all-reduces cross the slower inter-node network.
"""

from __future__ import annotations

import logging

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor

from mlplatform.training.config import TrainConfig

log = logging.getLogger(__name__)


def build_mesh(
    cfg: TrainConfig, device_type: str, world_size: int, local_world_size: int
) -> DeviceMesh:
    if cfg.sharding == "hybrid":
        replicas = cfg.replicas(world_size, local_world_size)
        return init_device_mesh(
            device_type, (replicas, world_size // replicas), mesh_dim_names=("replicate", "shard")
        )
    return init_device_mesh(device_type, (world_size,), mesh_dim_names=("shard",))


def mixed_precision_policy(name: str) -> MixedPrecisionPolicy:
    if name == "bf16":
        # compute in bf16, reduce gradients in fp32: the sum over many ranks keeps its precision
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy(param_dtype=torch.float32, reduce_dtype=torch.float32)


def parallelize(model: nn.Module, cfg: TrainConfig, mesh: DeviceMesh) -> FSDPModule:
    """Shard `model` (built on meta or a real device) in place; returns the root FSDP module."""
    layers: nn.ModuleDict = model.layers  # type: ignore[assignment]
    mp = mixed_precision_policy(cfg.mixed_precision)
    ac_every = cfg.ac_every
    n = len(layers)
    for i, (name, block) in enumerate(list(layers.items())):
        if ac_every and i % ac_every == 0:
            block = checkpoint_wrapper(block, preserve_rng_state=False)
        if cfg.compile:
            block.compile()
        # the last block stays unsharded after forward: backward needs it right away
        fully_shard(block, mesh=mesh, mp_policy=mp, reshard_after_forward=i < n - 1)
        layers[name] = block
    fully_shard(model, mesh=mesh, mp_policy=mp)
    log.info(
        "fully_shard: %d blocks + root, mesh %s, %s, activation checkpointing %s%s",
        n,
        dict(zip(mesh.mesh_dim_names or (), mesh.shape, strict=True)),
        cfg.mixed_precision,
        cfg.activation_checkpointing,
        ", compiled" if cfg.compile else "",
    )
    assert isinstance(model, FSDPModule)
    return model


def set_micro_step_sync(model: FSDPModule, *, final: bool, micro_step_sync: bool) -> None:
    """Gradient communication for one micro-step of accumulation.

    Default: no reduce-scatter and no all-reduce until the final micro-step (gradients accumulate
    unsharded, the least communication). With `micro_step_sync`, every micro-step reduce-scatters
    (sharded accumulation, less memory) and only the hybrid all-reduce across replicas waits.
    """
    if micro_step_sync:
        model.set_requires_gradient_sync(True)
        model.set_requires_all_reduce(final)
    else:
        model.set_requires_gradient_sync(final)


@torch.no_grad()
def clip_and_reduce(
    params: list[nn.Parameter], max_norm: float, loss_sum: torch.Tensor, mesh: DeviceMesh
) -> tuple[torch.Tensor, torch.Tensor]:
    """Global gradient norm (clipping to `max_norm` when > 0) and the loss summed over ranks,
    with ONE all-reduce per step (clip_grad_norm_ on DTensors plus a loss all-reduce costs three
    collectives and as many synchronisations). Returns 0-d tensors: read them after the
    optimizer step so the device is not idle while the host waits.

    Every gradient is a sharded DTensor (fully_shard manages every parameter): each rank sums the
    squares of its shards; under hybrid sharding each shard exists once per replica, so the world
    sum counts it `replicate` times.
    """
    grads = [p.grad for p in params if p.grad is not None]
    assert all(isinstance(g, DTensor) for g in grads), "every parameter must be fully_shard-ed"
    local = [g.to_local() for g in grads if isinstance(g, DTensor)]
    norms = torch._foreach_norm(local, 2.0)
    packed = torch.stack([torch.stack(norms).float().square().sum(), loss_sum.float()])
    dist.all_reduce(packed)
    replicas = mesh.size(0) if mesh.ndim == 2 else 1
    total_norm = (packed[0] / replicas).sqrt()
    if max_norm > 0:
        # the same coefficient as torch.nn.utils.clip_grad_norm_
        coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)
        torch._foreach_mul_(local, coef)
    return total_norm, packed[1]
