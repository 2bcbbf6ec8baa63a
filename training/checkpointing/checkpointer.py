"""The checkpointer the training loop talks to: `restore()` once, `save_if_due()` every step,
`close()` at the end.

A save goes to tier 1 (a local directory) every `local_every` steps; every `s3_every` steps the
committed tier-1 checkpoint is also uploaded to tier 2 (S3) in the background. A checkpoint is
complete once COMMIT.json is written (commit.py), which happens only after every rank's files are.
"""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp

from mlplatform.training.checkpointing.async_save import CheckpointWriter
from mlplatform.training.checkpointing.commit import (
    Commit,
    code_version,
    config_hash,
    file_entry,
    now,
    read_commit,
    verify,
    write_commit,
)
from mlplatform.training.checkpointing.config import CheckpointConfig
from mlplatform.training.checkpointing.group import CheckpointGroup
from mlplatform.training.checkpointing.retention import expired
from mlplatform.training.checkpointing.s3 import S3Tier
from mlplatform.training.checkpointing.state import (
    Progress,
    Trainable,
    load_rank,
    rank_file,
    rank_payload,
)
from mlplatform.training.checkpointing.tiers import LocalTier, step_name

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint could not be written; the previous complete checkpoint is still there."""


def _is_disk_full(exc: BaseException) -> bool:
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):  # DCP wraps rank failures as (exception, traceback)
            stack.extend(item)
            continue
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, OSError) and item.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        stack.extend([item.__cause__, item.__context__])
        stack.extend(getattr(item, "failures", {}).values())
    return "No space left on device" in str(exc)


class ScheduledSaves:
    """What both backends share: `save_if_due` on their schedule, one save in flight."""

    config: CheckpointConfig
    writer: CheckpointWriter
    last_saved_step: int | None = None

    def due(self, step: int) -> bool:
        return self.config.due(step)

    def save(self, step: int, progress: Progress) -> None:
        raise NotImplementedError

    def save_if_due(self, step: int, progress: Progress) -> bool:
        if not self.due(step) or step == self.last_saved_step:
            return False
        self.save(step, progress)
        return True

    def wait(self) -> None:
        """Block until the in-flight save is done (raises its error)."""
        self.writer.wait()


class Checkpointer(ScheduledSaves):
    def __init__(
        self,
        config: CheckpointConfig,
        trainable: Trainable,
        *,
        run_config: dict[str, Any] | None = None,
        mesh: dict[str, Any] | None = None,
        remote: S3Tier | None = None,
    ) -> None:
        if not config.local_dir:
            raise ValueError("Checkpointer needs config.local_dir (tier 1)")
        self.config = config
        self.trainable = trainable
        self.run_config = run_config or {}
        self.mesh = mesh or {}
        self.group = CheckpointGroup()
        self.local = LocalTier(config.local_dir)
        self.remote = remote or (S3Tier(config) if config.s3_uri else None)
        self.writer = CheckpointWriter(self.group, config.mode)
        self.last_saved_step: int | None = None

    # ---- saving -------------------------------------------------------------------------
    def _remote_due(self, step: int) -> bool:
        return self.remote is not None and step % self.config.s3_every == 0

    def save(self, step: int, progress: Progress) -> None:
        """Stage (async) or write (sync) the checkpoint of `step`. Raises CheckpointError for
        the previous async save's failure, or for this save's in sync mode."""
        self.writer.wait()  # at most one save in flight: its buffers are about to be reused
        directory = self.local.partial_dir(step)
        # captured now, written with the rest (where write errors are gathered)
        mine = rank_payload(progress.rank_state)
        state = self.trainable.state_dict(progress)
        storage = dcp.FileSystemWriter(directory, sync_files=True, overwrite=True)
        self.writer.write(state, storage, lambda error: self._commit(step, directory, mine, error))
        self.last_saved_step = step

    def _commit(
        self,
        step: int,
        directory: Path,
        rank_payload: dict[str, Any],
        write_error: BaseException | None,
    ) -> None:
        """Runs on every rank once its write is done (or failed): gather every rank's file
        sizes and checksums; rank 0 writes the commit marker, publishes, uploads, prunes."""
        mine: dict[str, Any]
        if write_error is None:
            try:
                torch.save(rank_payload, directory / rank_file(self.group.rank))
                names = [p.name for p in directory.glob(f"__{self.group.rank}_*.distcp")]
                names.append(rank_file(self.group.rank))
                mine = {"files": {name: file_entry(directory / name) for name in names}}
            except OSError as exc:
                mine = {"error": f"rank {self.group.rank}: {exc}", "disk_full": _is_disk_full(exc)}
        else:
            mine = {"error": f"{write_error}", "disk_full": _is_disk_full(write_error)}
        gathered = self.group.all_gather(mine)
        failures = [g for g in gathered if "error" in g]
        if failures:
            raise self._failed(step, directory, failures)
        outcome: dict[str, Any] | None = None
        if self.group.is_coordinator:
            try:
                self._publish(step, directory, gathered)
            except OSError as exc:
                outcome = {"error": f"commit: {exc}", "disk_full": _is_disk_full(exc)}
        # every rank learns whether the commit happened (and raises the same error if not)
        outcome = self.group.broadcast(outcome)
        if outcome is not None:
            raise self._failed(step, directory, [outcome])

    def _publish(self, step: int, directory: Path, gathered: list[dict[str, Any]]) -> None:
        """Rank 0: write the commit marker, publish, hand S3 its copy, apply retention."""
        files = {name: e for g in gathered for name, e in g["files"].items()}
        files[".metadata"] = file_entry(directory / ".metadata")
        commit = Commit(
            step=step,
            world_size=self.group.world_size,
            files=files,
            mesh=self.mesh,
            config_hash=config_hash(self.run_config),
            code_version=code_version(),
            created_at=now(),
        )
        write_commit(directory, commit)
        final = self.local.publish(step)
        log.info("checkpoint step %d committed: %s", step, final)
        if self.remote is not None and self._remote_due(step):
            self.remote.submit(step, final)
        try:
            self._prune()
        except OSError as exc:  # a checkpoint that cannot be deleted is no reason to stop
            log.warning("tier-1 retention failed: %s", exc)

    def _failed(self, step: int, directory: Path, failures: list[dict[str, Any]]) -> Exception:
        previous = self.local.committed_steps()
        kept = f"{self.local.final_dir(previous[0])} is kept" if previous else "none exists yet"
        if any(f.get("disk_full") for f in failures):
            free = shutil.disk_usage(self.local.root).free
            what = f"tier-1 disk full ({free / 2**20:.0f} MiB free in {self.local.root})"
        else:
            what = "; ".join(sorted({str(f["error"]) for f in failures}))[:2000]
        if self.group.is_coordinator:
            shutil.rmtree(directory, ignore_errors=True)
        return CheckpointError(
            f"checkpoint of step {step} failed: {what}; its partial files are removed and the "
            f"previous checkpoint {kept}"
        )

    def _prune(self) -> None:
        pinned = self.remote.pinned() if self.remote is not None else set()
        for step in expired(self.local.committed_steps(), self.config.local_keep, pinned):
            log.info("retention: removing %s", self.local.final_dir(step))
            self.local.remove(step)

    # ---- resuming -----------------------------------------------------------------------
    def restore(self) -> Progress | None:
        """Load the newest complete checkpoint across tiers into the trainable; None if none.

        Every candidate is verified against its commit marker (each rank checksums a share of
        the files); a corrupt or partial one is skipped with a warning naming it."""
        candidates: list[tuple[int, str]] = []
        error = ""
        if self.group.is_coordinator:
            try:
                self.local.remove_partials()
                candidates = [(s, "local") for s in self.local.committed_steps()]
                if self.remote is not None:
                    candidates += [(s, "s3") for s in self.remote.committed_steps()]
            except Exception as exc:  # e.g. S3 unreachable: starting afresh would be wrong
                error = f"cannot list checkpoints: {exc}"
            candidates.sort(key=lambda c: (-c[0], c[1] != "local"))
        candidates, error = self.group.broadcast((candidates, error))
        if error:
            raise CheckpointError(error)
        for step, tier in candidates:
            if tier == "s3" and not self._fetch(step):
                continue
            directory = self.local.final_dir(step)
            if self._verified(directory):
                return self._load(step, directory)
        return None

    def _fetch(self, step: int) -> bool:
        """Rank 0 downloads the S3 checkpoint of `step` into tier 1 (shared with all ranks)."""
        ok = True
        if self.group.is_coordinator and self.remote is not None:
            try:
                self.remote.download(step, self.local.partial_dir(step))
                self.local.publish(step)
            except Exception as exc:
                log.warning("skipping checkpoint %s: download failed: %s", step_name(step), exc)
                ok = False
        return self.group.broadcast(ok)

    def _verified(self, directory: Path) -> bool:
        commit = read_commit(directory)
        problems: list[str] = []
        if commit is None:
            problems = ["unreadable commit marker"]
        else:
            share = sorted(commit.files)[self.group.rank :: self.group.world_size]
            try:
                problems = verify(directory, commit, share)
            except OSError as exc:
                problems = [f"{exc}"]
        everyone = [p for rank_problems in self.group.all_gather(problems) for p in rank_problems]
        if everyone and self.group.is_coordinator:
            log.warning("skipping corrupt checkpoint %s: %s", directory, "; ".join(everyone[:5]))
        return not everyone

    def _load(self, step: int, directory: Path) -> Progress:
        state = self.trainable.state_dict(Progress())
        dcp.load(
            state,
            checkpoint_id=directory,
            process_group=self.group.pg,
            no_dist=not self.group.distributed,
        )
        progress = self.trainable.load_state_dict(state)
        mine = directory / rank_file(self.group.rank)
        if mine.is_file():
            progress.rank_state = load_rank(mine)
        else:
            log.warning(
                "%s has no state for rank %d (saved by fewer ranks): it keeps its seeded RNG "
                "and starting data position",
                directory,
                self.group.rank,
            )
        commit = read_commit(directory)
        if commit and commit.config_hash != config_hash(self.run_config):
            log.warning("resuming %s written with a different config", directory)
        log.info("resumed from %s (step %d)", directory, progress.step)
        self.last_saved_step = step
        return progress

    # ---- shutdown -----------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> None:
        """Finish the in-flight save and uploads within `timeout` (config.close_timeout_s), else
        abandon them: an abandoned save has no commit marker and is never resumed from."""
        timeout = self.config.close_timeout_s if timeout is None else timeout
        try:
            self.writer.close(timeout)
        finally:
            if self.remote is not None:
                self.remote.close(timeout)
