"""Tiered, asynchronous, atomic checkpointing (README: Checkpointing).

The loop builds a `Checkpointer(CheckpointConfig(...), Trainable(model, optimizer, scheduler))`,
calls `restore()` once (the newest complete checkpoint across tiers, or None), `save_if_due(step,
Progress(...))` after every step and `close()` at the end.
"""

from training.checkpointing.checkpointer import Checkpointer, CheckpointError
from training.checkpointing.config import CheckpointConfig, CheckpointConfigError
from training.checkpointing.state import Progress, Trainable

__all__ = [
    "CheckpointConfig",
    "CheckpointConfigError",
    "CheckpointError",
    "Checkpointer",
    "Progress",
    "Trainable",
]
