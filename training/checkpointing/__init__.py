"""Tiered, asynchronous, atomic checkpointing (README: Checkpointing).

The loop builds `build_checkpointer(CheckpointConfig(...), Trainable(model, optimizer, scheduler))`
(a Checkpointer for backend 'dcp', an MtcCheckpointer for 'mtc'),
calls `restore()` once (the newest complete checkpoint across tiers, or None), `save_if_due(step,
Progress(...))` after every step and `close()` at the end.
"""

from typing import Any

from mlplatform.training.checkpointing.checkpointer import Checkpointer, CheckpointError
from mlplatform.training.checkpointing.config import CheckpointConfig, CheckpointConfigError
from mlplatform.training.checkpointing.state import Progress, Trainable


def build_checkpointer(
    config: CheckpointConfig,
    trainable: Trainable,
    *,
    run_config: dict[str, Any] | None = None,
    mesh: dict[str, Any] | None = None,
    namespace: str = "",
    memory_url: str | None = None,
) -> Any:
    """The checkpointer of `config.backend`; `namespace` (mtc) defaults to config.mtc_namespace."""
    if config.backend == "mtc":
        from mlplatform.training.checkpointing.mtc import MtcCheckpointer

        return MtcCheckpointer(
            config,
            trainable,
            namespace=config.mtc_namespace or namespace,
            memory_url=memory_url,
        )
    return Checkpointer(config, trainable, run_config=run_config, mesh=mesh)


__all__ = [
    "CheckpointConfig",
    "CheckpointConfigError",
    "CheckpointError",
    "Checkpointer",
    "Progress",
    "Trainable",
    "build_checkpointer",
]
