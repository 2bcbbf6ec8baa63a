"""The checkpoint seam's schedule and what counts as a complete checkpoint."""

from __future__ import annotations

import pytest

from training.checkpoint import COMMITTED, Checkpointer, committed_steps, step_dir


@pytest.mark.parametrize(
    ("interval", "due"),
    [(3, [3, 6, 9, 10]), (0, [10]), (20, [10])],
)
def test_saves_every_interval_and_at_the_end(interval, due):
    checkpointer = Checkpointer("/ckpt", interval, max_steps=10)
    assert [s for s in range(1, 11) if checkpointer.due(s)] == due


def test_no_directory_disables_checkpointing():
    checkpointer = Checkpointer("", 1, max_steps=10)
    assert not any(checkpointer.due(s) for s in range(1, 11))
    assert checkpointer.restore(state=None) is None  # type: ignore[arg-type]


def test_only_committed_checkpoints_count(tmp_path):
    for step, committed in ((2, True), (4, True), (6, False)):
        path = step_dir(tmp_path, step)
        path.mkdir(parents=True)
        if committed:
            (path / COMMITTED).write_text("{}")
    (tmp_path / "notes").mkdir()
    assert step_dir(tmp_path, 4).name == "step-00000004"
    assert committed_steps(tmp_path) == [2, 4]
    assert committed_steps(tmp_path / "missing") == []
