"""One rank of a small training run with checkpointing, for tests/test_checkpoint_*.py.

Run as `python tests/checkpoint_worker.py SPEC.json RANK`: SPEC gives the world size, the
rendezvous port, the checkpoint config and what to do; the rank writes `out_dir/rank{R}.json`
with its per-step losses, the restored step and a digest of the full model after restore.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlplatform.training.checkpointing import (  # noqa: E402
    CheckpointConfig,
    Checkpointer,
    CheckpointError,
    Progress,
    Trainable,
)
from mlplatform.training.checkpointing.signals import StopRequest  # noqa: E402


class TinyModel(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Dropout(0.1)) for _ in range(3)
        )
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + layer(x)
        return self.head(x)


def build(spec: dict[str, Any]) -> tuple[nn.Module, torch.optim.Optimizer, Any, dict[str, Any]]:
    torch.manual_seed(0)
    model = TinyModel(spec.get("width", 32))
    mesh_info: dict[str, Any] = {"world_size": dist.get_world_size(), "shard": spec["shard"]}
    if spec["shard"] != "none":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        world = dist.get_world_size()
        if spec["shard"] == "hybrid":
            mesh = init_device_mesh("cpu", (2, world // 2), mesh_dim_names=("replicate", "shard"))
        else:
            mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("shard",))
        mesh_info["mesh"] = list(mesh.shape)
        for layer in model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 / (1 + 0.05 * s))
    return model, optimizer, scheduler, mesh_info


def digest(model: nn.Module) -> str:
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
    h = hashlib.sha256()
    for name in sorted(full):
        h.update(name.encode())
        h.update(full[name].detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    rank = int(sys.argv[2])
    os.environ.update(spec.get("env", {}))
    logging.basicConfig(level=logging.INFO, format=f"[rank {rank}] %(levelname)s %(message)s")
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{spec['port']}",
        rank=rank,
        world_size=spec["world_size"],
    )
    model, optimizer, scheduler, mesh_info = build(spec)
    config = CheckpointConfig(**spec["checkpoint"])
    ckpt = Checkpointer(
        config,
        Trainable(model, optimizer, scheduler),
        run_config=spec.get("run_config", {"lr": 1e-2}),
        mesh=mesh_info,
    )
    restored = ckpt.restore()
    start = restored.step if restored else 0
    out: dict[str, Any] = {
        "restored_step": restored.step if restored else None,
        "restored_loader": restored.loader if restored else None,
        "restored_rank_state": restored.rank_state if restored else None,
        "digest_after_restore": digest(model),
        "losses": {},
        "errors": [],
    }
    out_path = Path(spec["out_dir"]) / f"rank{rank}.json"
    out_path.write_text(json.dumps(out))
    stop = StopRequest()
    try:
        for step in range(start + 1, spec["steps"] + 1):
            if stop.should_stop():
                out["stopped_before"] = step
                break
            x = torch.randn(8, spec.get("width", 32))
            loss = model(x).pow(2).mean()
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            out["losses"][step] = loss.item()
            progress = Progress(
                step=step,
                tokens_seen=step * 8,
                loader={"position": step * 8},
                rank_state={"rank": rank, "position": step},
            )
            if ckpt.save_if_due(step, progress) and step in spec.get("digest_at", []):
                out.setdefault("digests", {})[step] = digest(model)
            if spec.get("step_sleep"):
                time.sleep(spec["step_sleep"])
            out_path.write_text(json.dumps(out))
        ckpt.close()
        out["last_saved_step"] = ckpt.last_saved_step
    except CheckpointError as exc:
        out["errors"].append(str(exc))
    out_path.write_text(json.dumps(out))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
