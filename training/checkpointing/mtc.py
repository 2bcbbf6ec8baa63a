"""backend='mtc': SageMaker managed tiered checkpointing (amzn-sagemaker-checkpointing, extra
`sagemaker`). On HyperPod, tier 1 is the cluster's in-memory checkpoint service (replicated
across nodes: no local disk involved) and tier 2 is S3; the library's DCP writer and reader do
both, and its reader falls back to S3 when memory has nothing (a new cluster) or is unreachable.

Saves go to memory every `local_every` steps and to S3 too every `s3_every` steps; the loop
waits only for staging, as with the dcp backend. Completeness and checksums are the library's
(its metadata is written last; memory shards carry xxh3 checksums; a step is complete in S3 only
when every rank's shard is there), so there is no COMMIT.json in this mode. Each rank's RNG states
and own state ride in the DCP state dict (one entry per rank; ranks a smaller job never wrote
keep their seed).
"""

from __future__ import annotations

import logging
from typing import Any

import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner

from mlplatform.training.checkpointing.async_save import CheckpointWriter
from mlplatform.training.checkpointing.checkpointer import ScheduledSaves
from mlplatform.training.checkpointing.config import CheckpointConfig, parse_s3_uri
from mlplatform.training.checkpointing.group import CheckpointGroup
from mlplatform.training.checkpointing.state import Progress, Trainable, load_rank, rank_bytes

log = logging.getLogger(__name__)

try:
    from amzn_sagemaker_checkpointing.checkpointing.filesystem import (
        SageMakerTieredStorageReader,
        SageMakerTieredStorageWriter,
    )
    from amzn_sagemaker_checkpointing.config.sagemaker_checkpoint_config import (
        SageMakerCheckpointConfig,
    )

    MTC_IMPORT_ERROR: str | None = None
except ImportError as exc:  # the optional extra is not installed
    MTC_IMPORT_ERROR = f"{exc}"


class MtcCheckpointer(ScheduledSaves):
    """Same interface as Checkpointer (restore, save_if_due, save, wait, close)."""

    def __init__(
        self,
        config: CheckpointConfig,
        trainable: Trainable,
        *,
        namespace: str,
        memory_url: str | None = None,
    ) -> None:
        if MTC_IMPORT_ERROR is not None:
            raise RuntimeError(
                "backend 'mtc' needs amzn-sagemaker-checkpointing (pip install "
                f"'mlplatform[sagemaker]'): {MTC_IMPORT_ERROR}"
            )
        parse_s3_uri(config.s3_uri)
        self.config = config
        self.trainable = trainable
        self.namespace = namespace
        self.memory_url = memory_url  # None: the HyperPod service the library knows
        self.group = CheckpointGroup()
        self.writer = CheckpointWriter(self.group, config.mode)
        self.last_saved_step: int | None = None

    def _mtc_config(self, save_to_s3: bool) -> Any:
        return SageMakerCheckpointConfig(
            namespace=self.namespace,
            world_size=self.group.world_size,
            s3_tier_base_path=self.config.s3_uri.rstrip("/"),
            save_to_s3=save_to_s3,
        )

    def _point_at_memory_service(self, storage: Any) -> Any:
        if self.memory_url is not None:
            storage.client.config.base_url = self.memory_url.rstrip("/")
        return storage

    def _state(self, progress: Progress, mine: bytes) -> dict[str, Any]:
        return {**self.trainable.state_dict(progress), "ranks": {f"{self.group.rank}": mine}}

    # ---- saving -------------------------------------------------------------------------
    def save(self, step: int, progress: Progress) -> None:
        self.writer.wait()
        to_s3 = step % self.config.s3_every == 0
        storage = self._point_at_memory_service(
            SageMakerTieredStorageWriter(self._mtc_config(to_s3), step=step)
        )

        def finish(error: BaseException | None) -> None:
            # A failed memory-tier save is not fatal: the next S3 step is the fall-back.
            if error is not None:
                log.warning("MTC checkpoint of step %d failed, training goes on: %s", step, error)
            else:
                log.info("MTC checkpoint of step %d saved%s", step, " (and to S3)" if to_s3 else "")

        self.writer.write(self._state(progress, rank_bytes(progress.rank_state)), storage, finish)
        self.last_saved_step = step

    # ---- resuming -----------------------------------------------------------------------
    def restore(self) -> Progress | None:
        """The newest checkpoint in memory or (fall-back) S3, or None."""
        probe = self._point_at_memory_service(
            SageMakerTieredStorageReader(self._mtc_config(False), step=None)
        )
        metadata = probe.read_metadata()  # finds the newest step across both tiers
        if not metadata.state_dict_metadata:
            log.info("MTC: no checkpoint in memory or S3 for namespace %s", self.namespace)
            return None
        step = self.group.broadcast(probe.step)  # every rank loads the step rank 0 found
        state = self._state(Progress(), b"")  # b"" stays if this rank's state was never saved
        dcp.load(
            state,
            storage_reader=self._point_at_memory_service(
                SageMakerTieredStorageReader(self._mtc_config(False), step=step)
            ),
            planner=DefaultLoadPlanner(allow_partial_load=True),  # ranks the saver did not have
            process_group=self.group.pg,
            no_dist=not self.group.distributed,
        )
        progress = self.trainable.load_state_dict(state)
        mine = state["ranks"][f"{self.group.rank}"]
        if mine:
            progress.rank_state = load_rank(mine)
        else:
            log.warning(
                "MTC step %d has no state for rank %d: RNG stays seeded", step, self.group.rank
            )
        log.info("resumed from MTC step %d (namespace %s)", progress.step, self.namespace)
        self.last_saved_step = step
        return progress

    # ---- shutdown -----------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> None:
        self.writer.close(self.config.close_timeout_s if timeout is None else timeout)
