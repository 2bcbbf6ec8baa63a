"""Which checkpoints retention removes: all but the newest `keep` complete ones, never the newest
complete one, never one still in use (pinned: being uploaded or being resumed from)."""

from __future__ import annotations

from collections.abc import Iterable


def expired(complete_steps: Iterable[int], keep: int, pinned: Iterable[int] = ()) -> list[int]:
    """Steps to delete, oldest first."""
    newest_first = sorted(set(complete_steps), reverse=True)
    kept = set(newest_first[: max(keep, 1)]) | set(pinned)
    return sorted(step for step in newest_first if step not in kept)
