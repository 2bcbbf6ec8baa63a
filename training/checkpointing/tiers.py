"""Tier 1: a local directory (instance NVMe, or a shared file system on several nodes).

Layout: `<root>/step_000000100/` holds one committed checkpoint (DCP files, `.metadata`, each
rank's RNG file and COMMIT.json). A save writes `step_000000100.partial/` and renames it once the
commit marker is in; partial directories are never resumed from and are cleaned up.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from mlplatform.training.checkpointing.commit import COMMIT_FILE, fsync_dir, read_commit, verify

log = logging.getLogger(__name__)

_STEP_DIR = re.compile(r"^step_(\d{9})$")
PARTIAL = ".partial"


def step_name(step: int) -> str:
    return f"step_{step:09d}"


def parse_step(name: str) -> int | None:
    match = _STEP_DIR.match(name)
    return int(match[1]) if match else None


class LocalTier:
    name = "local"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def final_dir(self, step: int) -> Path:
        return self.root / step_name(step)

    def partial_dir(self, step: int) -> Path:
        return self.root / (step_name(step) + PARTIAL)

    def committed_steps(self) -> list[int]:
        """Steps with a commit marker, newest first (contents are verified on resume)."""
        if not self.root.is_dir():
            return []
        steps = [parse_step(p.name) for p in self.root.iterdir() if (p / COMMIT_FILE).is_file()]
        return sorted((s for s in steps if s is not None), reverse=True)

    def newest_complete(self) -> Path | None:
        """The newest checkpoint whose files match its commit marker, checked in this process
        (the Checkpointer spreads the same check over its ranks)."""
        for step in self.committed_steps():
            directory = self.final_dir(step)
            commit = read_commit(directory)
            problems = verify(directory, commit) if commit else ["unreadable commit marker"]
            if not problems:
                return directory
            log.warning("skipping corrupt checkpoint %s: %s", directory, "; ".join(problems[:5]))
        return None

    def publish(self, step: int) -> Path:
        """Make the committed partial directory of `step` the checkpoint of `step`."""
        final = self.final_dir(step)
        if final.exists():  # a stale or corrupt checkpoint of the same step from an earlier run
            self.remove(step)
        self.partial_dir(step).rename(final)
        fsync_dir(self.root)
        return final

    def remove(self, step: int) -> None:
        """Delete a checkpoint, commit marker first: a crash mid-way leaves no 'complete' husk."""
        final = self.final_dir(step)
        (final / COMMIT_FILE).unlink(missing_ok=True)
        shutil.rmtree(final, ignore_errors=True)

    def remove_partials(self, keep: Path | None = None) -> None:
        if not self.root.is_dir():
            return
        for path in self.root.glob(f"step_*{PARTIAL}"):
            if path != keep:
                log.info("removing incomplete checkpoint %s", path)
                shutil.rmtree(path, ignore_errors=True)
