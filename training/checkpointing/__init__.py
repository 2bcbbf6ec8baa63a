"""Tiered, asynchronous, atomic checkpointing (README: Checkpointing).

The loop builds `build_checkpointer(CheckpointConfig(...), Trainable(model, optimizer, scheduler))`
(a Checkpointer for backend 'dcp', an MtcCheckpointer for 'mtc'),
calls `restore()` once (the newest complete checkpoint across tiers, or None), `save_if_due(step,
Progress(...))` after every step and `close()` at the end.

Importing the package loads only the settings (`CheckpointConfig`, pure Python): the trainer's
config validates them where torch is not installed (the offline plan). The torch-using parts load
on first use of their names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlplatform.training.checkpointing.config import CheckpointConfig, CheckpointConfigError

if TYPE_CHECKING:
    from mlplatform.training.checkpointing.checkpointer import Checkpointer, CheckpointError
    from mlplatform.training.checkpointing.state import Progress, Trainable

# Name -> the submodule that defines it (imported, with torch, when the name is first used).
_LAZY = {
    "Checkpointer": "checkpointer",
    "CheckpointError": "checkpointer",
    "Progress": "state",
    "Trainable": "state",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    from mlplatform.training.checkpointing.checkpointer import Checkpointer

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
