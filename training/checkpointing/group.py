"""The checkpoint process group: a dedicated gloo group, so checkpoint collectives (which run in a
background thread during async saves) never interleave with the training collectives on the
default group (measured: async_save on the default group hangs or crashes; FINDINGS.md).
Without torch.distributed every helper degrades to the single-process answer."""

from __future__ import annotations

from typing import Any, TypeVar

import torch.distributed as dist

T = TypeVar("T")


class CheckpointGroup:
    def __init__(self) -> None:
        self.distributed = dist.is_available() and dist.is_initialized()
        # Collective: every rank creates it at the same point (Checkpointer construction).
        self.pg = dist.new_group(backend="gloo") if self.distributed else None
        self.rank = dist.get_rank() if self.distributed else 0
        self.world_size = dist.get_world_size() if self.distributed else 1

    @property
    def is_coordinator(self) -> bool:
        return self.rank == 0

    def all_gather(self, value: T) -> list[T]:
        if not self.distributed:
            return [value]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value, group=self.pg)
        return out

    def broadcast(self, value: T) -> T:
        """Rank 0's `value` on every rank."""
        if not self.distributed:
            return value
        assert self.pg is not None
        box = [value]
        dist.broadcast_object_list(box, src=dist.get_global_rank(self.pg, 0), group=self.pg)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier(group=self.pg)

    def destroy(self) -> None:
        if self.pg is not None and dist.is_initialized():
            dist.destroy_process_group(self.pg)
            self.pg = None
