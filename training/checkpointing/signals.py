"""Stopping on SIGTERM/SIGINT (spot reclaim, HyperPod restarting a job, Ctrl-C) without tearing
a checkpoint: the handler only sets a flag; at the next step boundary every rank agrees to stop
(a rank that got the signal a step later must not be left in a collective alone), the loop
leaves, and `Checkpointer.close()` finishes the in-flight save within its timeout or abandons it
(an abandoned save has no commit marker, so it is never resumed from)."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


class StopRequest:
    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)):
        self.received: signal.Signals | None = None
        # Its own gloo group: agreement runs in the loop while checkpoint commits use theirs.
        self._distributed = dist.is_available() and dist.is_initialized()
        self._pg = dist.new_group(backend="gloo") if self._distributed else None
        self._previous: dict[signal.Signals, Any] = {
            sig: signal.signal(sig, self._handle) for sig in signals
        }

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum)

    def should_stop(self) -> bool:
        """True on every rank once any rank got a signal (a collective: call it on every rank
        at the same point of the loop)."""
        local = torch.tensor([1 if self.received else 0], dtype=torch.int32)
        if self._distributed:
            dist.all_reduce(local, op=dist.ReduceOp.MAX, group=self._pg)
        stop = bool(local.item())
        if stop:
            name = self.received.name if self.received else "a signal on another rank"
            log.warning("stopping on %s: finishing the in-flight checkpoint, then exiting", name)
        return stop

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
