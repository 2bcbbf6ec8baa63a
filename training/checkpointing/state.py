"""What a checkpoint holds: model and optimizer through DCP's state-dict APIs (sharded, so a
checkpoint reshards on load), the LR scheduler and training progress, and each rank's RNG states.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict


@dataclass
class Progress:
    """Training progress restored with the weights: where the loop and its data stand."""

    step: int = 0
    tokens_seen: int = 0
    loader: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    # This rank's own state (e.g. its data position), saved per rank beside its RNG states;
    # empty after a resume onto a rank the saving job did not have.
    rank_state: dict[str, Any] = field(default_factory=dict)

    def shared(self) -> dict[str, Any]:
        """What every rank agrees on (saved once)."""
        return {k: v for k, v in asdict(self).items() if k != "rank_state"}


@dataclass
class Trainable:
    """The objects whose state is checkpointed. `scheduler` is optional."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    def state_dict(self, progress: Progress) -> dict[str, Any]:
        """The DCP state dict: sharded tensors plus small objects every rank agrees on."""
        model_sd, optim_sd = get_state_dict(self.model, self.optimizer)
        return {
            "model": model_sd,
            "optim": optim_sd,
            "scheduler": self.scheduler.state_dict() if self.scheduler else {},
            # One JSON string: DCP loads into the keys of the template it is given, and an
            # empty loader dict in a fresh template would silently drop the saved position.
            "progress": json.dumps(progress.shared(), sort_keys=True),
        }

    def load_state_dict(self, state: dict[str, Any]) -> Progress:
        set_state_dict(
            self.model,
            self.optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optim"],
        )
        if self.scheduler and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        return Progress(**json.loads(state["progress"]))


def rank_file(rank: int) -> str:
    return f"rank_{rank:05d}.pt"


def rank_payload(rank_state: dict[str, Any]) -> dict[str, Any]:
    """What is saved per rank: its RNG states (captured now) and its own state."""
    return {"rng": rng_state(), "state": rank_state}


def rank_bytes(rank_state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(rank_payload(rank_state), buffer)
    return buffer.getvalue()


def load_rank(source: Path | bytes) -> dict[str, Any]:
    """Restore this rank's RNG states from a saved payload (file or bytes, loaded weights-only:
    no pickled code runs) and return its own state."""
    payload = torch.load(
        io.BytesIO(source) if isinstance(source, bytes) else source, weights_only=True
    )
    set_rng_state(payload["rng"])
    return dict(payload["state"])


def rng_state() -> dict[str, Any]:
    """This rank's python, numpy and torch RNG states, as plain tensors (loadable weights-only)."""
    version, py_state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = cast(
        tuple[str, np.ndarray, int, int, float], np.random.get_state()
    )
    return {
        "python": {"version": version, "state": torch.tensor(py_state), "gauss": gauss},
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": np_pos,
            "has_gauss": np_has_gauss,
            "gauss": np_gauss,
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
