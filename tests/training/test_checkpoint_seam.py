"""The checkpoint seam's schedule and what counts as a complete checkpoint."""

from __future__ import annotations

import pytest

from mlplatform.training.checkpoint import TrainStateCheckpointer
from mlplatform.training.checkpointing import CheckpointConfig
from mlplatform.training.checkpointing.commit import COMMIT_FILE
from mlplatform.training.checkpointing.tiers import LocalTier
from mlplatform.training.config import parse_args


@pytest.mark.parametrize(
    ("interval", "due"),
    [(3, [3, 6, 9, 10]), (0, [10]), (20, [10])],
)
def test_saves_every_interval_and_at_the_end(interval, due):
    cfg = parse_args(["--checkpoint-dir", "/ckpt", "--checkpoint-interval", str(interval),
                      "--max-steps", "10"])  # fmt: skip
    checkpointer = TrainStateCheckpointer(cfg.checkpoint_config({}), max_steps=10)
    assert [s for s in range(1, 11) if checkpointer.due(s)] == due


def test_s3_steps_are_saved_too():
    config = CheckpointConfig(local_dir="/ckpt", local_every=4, s3_uri="s3://bucket/p", s3_every=6)
    checkpointer = TrainStateCheckpointer(config, max_steps=13)
    assert [s for s in range(1, 14) if checkpointer.due(s)] == [4, 6, 8, 12, 13]


def test_no_directory_disables_checkpointing():
    checkpointer = TrainStateCheckpointer(CheckpointConfig(), max_steps=10)
    assert not any(checkpointer.due(s) for s in range(1, 11))
    assert checkpointer.restore(state=None) is None  # type: ignore[arg-type]


def test_only_committed_checkpoints_count(tmp_path):
    tier = LocalTier(tmp_path)
    for step, committed in ((2, True), (4, True), (6, False)):
        path = tier.final_dir(step)
        path.mkdir(parents=True)
        if committed:
            (path / COMMIT_FILE).write_text("{}")
    (tmp_path / "notes").mkdir()
    assert tier.final_dir(4).name == "step_000000004"
    assert tier.committed_steps() == [4, 2]
    assert LocalTier(tmp_path / "missing").committed_steps() == []
