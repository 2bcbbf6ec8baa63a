"""The checkpoint seam: what the training loop calls, and a small synchronous DCP checkpointer.

Interface (stable; `training/checkpointing/` plugs richer implementations in behind it):

    state = TrainState(step=0, model=..., optimizer=..., scheduler=..., data=...)
    checkpointer = Checkpointer(directory, interval, max_steps)   # or any object with:
    checkpointer.restore(state) -> TrainState | None   # newest complete checkpoint loaded into
                                                      # state in place; None when there is none
    checkpointer.save_if_due(step, state) -> bool     # after optimizer step `step` (1-based)
    checkpointer.close()                              # flush / wait for pending saves

Every rank calls all three (they are collective). `TrainState` holds the whole training state:
model and optimizer (sharded, through DCP's `get_state_dict` / `set_state_dict`, so a checkpoint
reshards onto another world size or mesh), the LR scheduler, the data position of every rank and
the step. `save_if_due` saves every `interval` steps and at `max_steps` (interval 0: only at the
end).

Layout: `<directory>/step-00000100/` is a DCP checkpoint; it counts as complete only once
`<...>/COMMITTED` exists, written by rank 0 after every rank finished, so a save cut short by a
crash is never resumed from.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.optim.lr_scheduler import LRScheduler

log = logging.getLogger(__name__)

COMMITTED = "COMMITTED"
_STEP_DIR = re.compile(r"^step-(\d+)$")


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrainState:
    step: int  # optimizer steps completed
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    data: Stateful  # this rank's data position


def step_dir(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"step-{step:08d}"


def committed_steps(directory: str | Path) -> list[int]:
    """Steps with a complete checkpoint, ascending."""
    root = Path(directory)
    if not root.is_dir():
        return []
    steps = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / COMMITTED).is_file():
            steps.append(int(match.group(1)))
    return sorted(steps)


class Checkpointer:
    """Synchronous DCP save/restore of a TrainState; disabled when `directory` is empty."""

    def __init__(self, directory: str, interval: int, max_steps: int) -> None:
        self.directory, self.interval, self.max_steps = directory, interval, max_steps

    def _payload(self, state: TrainState) -> dict[str, Any]:
        model_sd, optim_sd = get_state_dict(state.model, state.optimizer)
        return {
            "model": model_sd,
            "optim": optim_sd,
            # plain values travel as JSON strings: DCP stores them as opaque bytes
            "scheduler": json.dumps(state.scheduler.state_dict()),
            "step": state.step,
            f"data_rank{dist.get_rank()}": json.dumps(state.data.state_dict()),
        }

    def restore(self, state: TrainState) -> TrainState | None:
        if not self.directory:
            return None
        # rank 0 decides, so every rank loads the same step even on a racy shared file system
        steps = committed_steps(self.directory)
        choice: list[int | None] = [steps[-1] if steps else None]
        dist.broadcast_object_list(choice, src=0)
        step = choice[0]
        if step is None:
            return None
        path = step_dir(self.directory, step)
        payload = self._payload(state)
        dcp.load(payload, checkpoint_id=str(path))
        set_state_dict(
            state.model,
            state.optimizer,
            model_state_dict=payload["model"],
            optim_state_dict=payload["optim"],
        )
        state.scheduler.load_state_dict(json.loads(payload["scheduler"]))
        state.data.load_state_dict(json.loads(payload[f"data_rank{dist.get_rank()}"]))
        state.step = int(payload["step"])
        log.info("resumed from %s (step %d)", path, state.step)
        return state

    def due(self, step: int) -> bool:
        if not self.directory:
            return False
        return step == self.max_steps or (self.interval > 0 and step % self.interval == 0)

    def save_if_due(self, step: int, state: TrainState) -> bool:
        if not self.due(step):
            return False
        state.step = step
        path = step_dir(self.directory, step)
        dcp.save(self._payload(state), checkpoint_id=str(path))
        if dist.get_rank() == 0:
            (path / COMMITTED).write_text(json.dumps({"step": step}) + "\n")
        dist.barrier()
        log.info("saved checkpoint %s", path)
        return True

    def close(self) -> None:
        """Synchronous saves leave nothing pending."""
