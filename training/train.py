"""Entry point and training loop: `python -m training.train --config RECIPE [--flag value ...]`.

Runs the same way under `torchrun` (env:// rendezvous, c10d for multi-node), on SageMaker
training jobs (SM_* variables: data channel, /opt/ml/checkpoints, /opt/ml/model; hyperparameters
arrive as flags) and as a single process (a world of one, same code path). Flags are the fields
of `training.config.TrainConfig`; invalid values print `error: --flag: problem` and exit 2.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from mlplatform.training import efa
from mlplatform.training.checkpoint import TrainState, TrainStateCheckpointer
from mlplatform.training.checkpointing.signals import StopRequest
from mlplatform.training.config import TrainConfig, TrainConfigError, parse_args
from mlplatform.training.data import Batches, open_stream
from mlplatform.training.metrics import Metrics, StepStats, peak_tflops, setup_logging
from mlplatform.training.model import Transformer, count_params, flops_per_token, model_args
from mlplatform.training.optim import build_optimizer, build_scheduler
from mlplatform.training.parallel import (
    build_mesh,
    clip_and_reduce,
    parallelize,
    set_micro_step_sync,
)
from mlplatform.training.tokenizer import load_tokenizer

log = logging.getLogger("training")


@dataclass(frozen=True)
class Runtime:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device
    owns_group: bool  # run() created the process group and destroys it


def sagemaker_defaults(environ: Mapping[str, str]) -> dict[str, Any]:
    """Defaults a SageMaker training job implies; recipe and flags still override them."""
    if "SM_MODEL_DIR" not in environ and "SM_TRAINING_ENV" not in environ:
        return {}
    defaults: dict[str, Any] = {
        "checkpoint_dir": "/opt/ml/checkpoints",  # synced to S3 by SageMaker
        "model_dir": environ.get("SM_MODEL_DIR", "/opt/ml/model"),
    }
    if environ.get("SM_CHANNEL_TRAIN"):
        defaults["data"] = environ["SM_CHANNEL_TRAIN"]
    if environ.get("SM_CURRENT_INSTANCE_TYPE"):
        defaults["instance_type"] = environ["SM_CURRENT_INSTANCE_TYPE"].removeprefix("ml.")
    return defaults


def init_distributed(cfg: TrainConfig) -> Runtime:
    """Join the job's process group (torchrun's env://), or make a world of one."""
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise TrainConfigError("--device: cuda requested but no CUDA device is available")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        # NCCL for CUDA tensors, gloo for CPU ones (checkpoint metadata, object broadcasts)
        backend = "cuda:nccl,cpu:gloo" if use_cuda else "gloo"
        if "WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ:
            dist.init_process_group(
                backend, init_method="env://", device_id=device if use_cuda else None
            )
        else:
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    world = dist.get_world_size()
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    return Runtime(dist.get_rank(), world, local_rank, local_world, device, owns)


def run(cfg: TrainConfig) -> list[dict[str, Any]]:
    """Train per `cfg`; returns the per-step metrics records (the same on every rank)."""
    if torch.cuda.is_available() and cfg.device != "cpu":
        efa.configure(cfg.instance_type)  # before NCCL initialises
    rt = init_distributed(cfg)
    setup_logging(rt.rank)
    try:
        return _train(cfg, rt)
    finally:
        if rt.owns_group:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, rt: Runtime) -> list[dict[str, Any]]:
    cfg.validate_world(rt.world_size, rt.local_world_size)
    torch.manual_seed(cfg.seed)
    args = model_args(cfg.model, max_seq_len=cfg.seq_len)
    with torch.device("meta"):
        model = Transformer(args)
    mesh = build_mesh(cfg, rt.device.type, rt.world_size, rt.local_world_size)
    parallelize(model, cfg, mesh)
    model.to_empty(device=rt.device)
    model.init_weights(seed=cfg.seed)

    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    tokenizer = load_tokenizer(cfg.tokenizer) if cfg.data != "synthetic" else None
    stream = open_stream(
        cfg.data,
        seq_len=cfg.seq_len,
        vocab_size=args.vocab_size,
        seed=cfg.seed,
        rank=rt.rank,
        world_size=rt.world_size,
        tokenizer=tokenizer,  # type: ignore[arg-type]
        data_field=cfg.data_field,
        data_split=cfg.data_split,
        token_dtype=cfg.token_dtype,
    )
    micro_batch = cfg.micro_batch(rt.world_size)
    batches = Batches(stream, micro_batch, args.vocab_size, rt.device)
    state = TrainState(step=0, model=model, optimizer=optimizer, scheduler=scheduler, data=batches)
    checkpointer = TrainStateCheckpointer(
        cfg.checkpoint_config(os.environ),
        cfg.max_steps,
        cfg.to_dict(),
        tokens_per_step=cfg.batch_size * cfg.seq_len,
        mesh={"shape": list(mesh.shape), "dims": list(mesh.mesh_dim_names or ())},
    )
    checkpointer.restore(state)
    stop = StopRequest()  # SIGTERM / Ctrl-C: leave at a step boundary, finish the save, exit

    fpt = flops_per_token(args, cfg.seq_len)
    metrics = Metrics(
        rank=rt.rank,
        world_size=rt.world_size,
        flops_per_token=fpt,
        peak=peak_tflops(rt.device, cfg.mixed_precision, cfg.peak_tflops),
        device=rt.device,
        metrics_file=cfg.metrics_file,
        log_interval=cfg.log_interval,
        max_steps=cfg.max_steps,
    )
    log.info(
        "model %s: %.1fM parameters, %.3g FLOPs/token; world %d, micro-batch %d x %d tokens, "
        "grad accumulation %d, starting at step %d",
        cfg.model, count_params(args) / 1e6, fpt, rt.world_size, micro_batch, cfg.seq_len,
        cfg.grad_accum_steps, state.step + 1,
    )  # fmt: skip

    records = []
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        for step in range(state.step + 1, cfg.max_steps + 1):
            if stop.should_stop():
                break
            started = time.perf_counter()
            loss_sum = torch.zeros((), device=rt.device)
            for micro in range(cfg.grad_accum_steps):
                final = micro == cfg.grad_accum_steps - 1
                set_micro_step_sync(model, final=final, micro_step_sync=cfg.micro_step_sync)  # type: ignore[arg-type]
                inputs, targets = batches.next()
                logits = model(inputs)
                loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
                (loss / cfg.grad_accum_steps).backward()
                loss_sum += loss.detach()
            # one all-reduce: the global gradient norm (clipped) and the global batch's loss
            grad_norm, loss_total = clip_and_reduce(params, cfg.grad_clip, loss_sum, mesh)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            norm_value, loss_value = torch.stack([grad_norm, loss_total]).tolist()
            loss_value /= cfg.grad_accum_steps * rt.world_size
            stats = StepStats(
                step=step,
                loss=loss_value,
                lr=float(lr),
                grad_norm=norm_value,
                tokens=cfg.batch_size * cfg.seq_len,
                step_time_s=time.perf_counter() - started,
            )
            records.append(metrics.record(stats))
            state.step = step
            checkpointer.save_if_due(step, state)
        if cfg.model_dir:
            save_model(model, args, cfg.model_dir, rt.rank)
    finally:
        checkpointer.close()
        stop.uninstall()
        metrics.close()
    return records


def save_model(model: torch.nn.Module, args: Any, model_dir: str, rank: int) -> None:
    """Gather the full weights to rank 0 (CPU) and write model.safetensors + config.json."""
    from safetensors.torch import save_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )
    if rank == 0:
        if args.tie_embeddings:
            full.pop("output.weight", None)  # the same tensor as tok_embeddings.weight
        out = Path(model_dir)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.contiguous() for k, v in full.items() if isinstance(v, torch.Tensor)}
        save_file(tensors, str(out / "model.safetensors"))
        (out / "config.json").write_text(json.dumps(asdict(args), indent=2) + "\n")
        log.info("saved model weights to %s", out)
    dist.barrier()


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse_args(argv, defaults=sagemaker_defaults(os.environ))
        run(cfg)
    except TrainConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
