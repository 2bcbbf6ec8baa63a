"""The checkpoint seam: what the training loop calls. Behind it: training/checkpointing (tiers,
async saves, commit markers, verified resume, MTC), whose backends (`Checkpointer` for DCP,
`MtcCheckpointer`) save a `Trainable`; this adapter saves the loop's whole `TrainState` through
them, and schedules the last save at `max_steps`.

Interface (stable):

    state = TrainState(step=0, model=..., optimizer=..., scheduler=..., data=...)
    checkpointer = TrainStateCheckpointer(cfg.checkpoint_config(environ), max_steps, run_config)
    checkpointer.restore(state) -> TrainState | None   # newest complete checkpoint loaded into
                                                      # state in place; None when there is none
    checkpointer.save_if_due(step, state) -> bool     # after optimizer step `step` (1-based)
    checkpointer.close()                              # finish the in-flight save and uploads

Every rank calls all three (they are collective). `TrainState` holds the whole training state:
model and optimizer (sharded, through DCP's `get_state_dict` / `set_state_dict`, so a checkpoint
reshards onto another world size or mesh), the LR scheduler, the data position of every rank and
the step. `save_if_due` saves every `local_every` steps (tier 1; S3 every `s3_every`) and at
`max_steps`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from mlplatform.training.checkpointing import (
    CheckpointConfig,
    Progress,
    Trainable,
    build_checkpointer,
)

log = logging.getLogger(__name__)


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


class TrainStateCheckpointer:
    """The loop's checkpointer: a TrainState in, a backend checkpointer (built on first use)
    underneath; disabled when the config names no tier."""

    def __init__(
        self,
        config: CheckpointConfig,
        max_steps: int,
        run_config: dict[str, Any] | None = None,
        *,
        tokens_per_step: int = 0,
        mesh: dict[str, Any] | None = None,
    ) -> None:
        self.config, self.max_steps = config, max_steps
        self.run_config = run_config or {}
        self.tokens_per_step = tokens_per_step
        self.mesh = mesh
        self._impl: Any = None

    def _checkpointer(self, state: TrainState) -> Any:
        if self._impl is None:
            trainable = Trainable(state.model, state.optimizer, state.scheduler)
            self._impl = build_checkpointer(
                self.config, trainable, run_config=self.run_config, mesh=self.mesh
            )
        return self._impl

    def restore(self, state: TrainState) -> TrainState | None:
        if not self.config.enabled:
            return None
        progress = self._checkpointer(state).restore()
        if progress is None:
            return None
        state.step = progress.step
        if "data" in progress.rank_state:
            state.data.load_state_dict(progress.rank_state["data"])
        else:  # a rank the saving job did not have: its data starts from its beginning
            log.warning("no data position saved for this rank; it starts its shard afresh")
        return state

    def due(self, step: int) -> bool:
        return self.config.enabled and (self.config.due(step) or step == self.max_steps)

    def save_if_due(self, step: int, state: TrainState) -> bool:
        if not self.due(step):
            return False
        impl = self._checkpointer(state)
        if step == impl.last_saved_step:
            return False
        state.step = step
        impl.save(
            step,
            Progress(
                step=step,
                tokens_seen=step * self.tokens_per_step,
                config=self.run_config,
                rank_state={"data": state.data.state_dict()},
            ),
        )
        return True

    def close(self) -> None:
        if self._impl is not None:
            self._impl.close()
