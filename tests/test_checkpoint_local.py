"""Tier-1 checkpointing in one process: atomic commit, resume, verification, retention, faults."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from mlplatform.training.checkpointing import (
    CheckpointConfig,
    CheckpointConfigError,
    CheckpointError,
    Progress,
)
from mlplatform.training.checkpointing.async_save import ReusedBufferStager
from mlplatform.training.checkpointing.commit import (
    COMMIT_FILE,
    config_hash,
    file_entry,
    read_commit,
)
from mlplatform.training.checkpointing.retention import expired
from tests.checkpoint_harness import Run
from tests.checkpoint_worker import TinyModel


def steps_on_disk(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, float]]:
    """An uninterrupted async run of 12 steps saving every 4 (tier 1 keeps 3)."""
    directory = tmp_path_factory.mktemp("ckpt") / "run"
    run = Run(directory, local_every=4, local_keep=3)
    run.train(12)
    return directory, run.losses


@pytest.fixture
def copy_of(finished: tuple[Path, dict[int, float]], tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished[0], tmp_path / "run"))


def test_resume_reproduces_the_uninterrupted_losses_bit_for_bit(
    finished: tuple[Path, dict[int, float]], copy_of: Path
) -> None:
    shutil.rmtree(copy_of / "step_000000012")  # the job died between step 8 and step 12
    resumed = Run(copy_of, local_every=4, mode="sync")
    resumed.train(12)
    assert list(resumed.losses) == [9, 10, 11, 12]
    assert resumed.losses == {s: finished[1][s] for s in (9, 10, 11, 12)}


def test_resume_restores_progress_and_loader_position(copy_of: Path) -> None:
    progress = Run(copy_of).ckpt.restore()
    assert progress == Progress(
        step=12, tokens_seen=48, loader={"position": 12}, rank_state={"seen": 12}
    )


def test_commit_marker_describes_every_file(copy_of: Path) -> None:
    directory = copy_of / "step_000000012"
    commit = read_commit(directory)
    assert commit is not None
    assert (commit.step, commit.world_size) == (12, 1)
    assert commit.config_hash == config_hash({"lr": 1e-2})
    assert commit.code_version and commit.code_version != ""
    on_disk = {p.name for p in directory.iterdir()} - {COMMIT_FILE}
    assert set(commit.files) == on_disk == {".metadata", "__0_0.distcp", "rank_00000.pt"}
    for name, entry in commit.files.items():
        assert file_entry(directory / name) == entry


def test_corrupt_checkpoint_is_skipped_with_a_warning_naming_it(
    copy_of: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = copy_of / "step_000000012" / "__0_0.distcp"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, one flipped byte
    data.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        progress = Run(copy_of).ckpt.restore()
    assert progress is not None and progress.step == 8
    assert f"skipping corrupt checkpoint {copy_of / 'step_000000012'}" in caplog.text
    assert "__0_0.distcp: CRC-32 differs" in caplog.text


def test_truncated_file_is_detected(copy_of: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = copy_of / "step_000000012" / "__0_0.distcp"
    data.write_bytes(data.read_bytes()[:-10])
    with caplog.at_level(logging.WARNING):
        assert Run(copy_of).ckpt.restore().step == 8  # type: ignore[union-attr]
    assert "__0_0.distcp:" in caplog.text and "bytes, committed" in caplog.text


def test_checkpoint_without_commit_marker_is_never_resumed_and_partials_are_removed(
    copy_of: Path,
) -> None:
    (copy_of / "step_000000012" / COMMIT_FILE).unlink()  # crashed before the commit
    shutil.copytree(copy_of / "step_000000008", copy_of / "step_000000016.partial")
    assert Run(copy_of).ckpt.restore().step == 8  # type: ignore[union-attr]
    assert not (copy_of / "step_000000016.partial").exists()


def test_no_checkpoint_means_a_fresh_start(tmp_path: Path) -> None:
    assert Run(tmp_path / "empty").ckpt.restore() is None


def test_retention_keeps_the_newest_k_complete_checkpoints(tmp_path: Path) -> None:
    Run(tmp_path, local_every=2, local_keep=2).train(9)
    assert steps_on_disk(tmp_path) == ["step_000000006", "step_000000008"]


def test_retention_never_deletes_the_newest_complete_or_a_pinned_checkpoint() -> None:
    assert expired([10, 20, 30], keep=1) == [10, 20]
    assert expired([10, 20, 30], keep=0) == [10, 20]  # the newest complete one always stays
    assert expired([10, 20, 30], keep=1, pinned={10}) == [20]
    assert expired([], keep=1) == []


def test_staging_buffers_are_reused_and_are_copies() -> None:
    model = TinyModel()
    stager = ReusedBufferStager()
    first = stager.stage({"m": model.state_dict(), "step": 1})
    with torch.no_grad():
        model.head.bias.add_(1.0)
    second = stager.stage({"m": model.state_dict(), "step": 2})
    bias = second["m"]["head.bias"]
    assert bias.data_ptr() == first["m"]["head.bias"].data_ptr()  # same buffer, no new memory
    assert bias.data_ptr() != model.head.bias.data_ptr()  # a copy, not the live parameter
    assert torch.equal(bias, model.head.bias)
    assert second["step"] == 2  # non-tensor values come from the live state


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only): room for one checkpoint of TinyModel, not two."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160k", f"tmpfs-{uuid.uuid4().hex[:8]}", str(mount)],
        capture_output=True,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs to fill: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


def test_disk_full_gives_a_clear_error_and_keeps_the_previous_checkpoint(tiny_disk: Path) -> None:
    run = Run(tiny_disk, local_every=1, local_keep=3, mode="sync")
    with pytest.raises(CheckpointError) as failure:
        run.train(5)
    message = str(failure.value)
    assert "tier-1 disk full" in message
    kept = read_commit(tiny_disk / "step_000000001")
    assert kept is not None and kept.step == 1
    assert f"previous checkpoint {tiny_disk / 'step_000000001'} is kept" in message
    assert not list(tiny_disk.glob("*.partial"))
    assert Run(tiny_disk).ckpt.restore().step == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"local_every": 0}, "local_every: must be >= 1, got 0"),
        ({"mode": "later"}, "mode: 'later' is not 'async' or 'sync'"),
        ({"s3_uri": "bucket/x", "local_dir": "/x"}, "s3_uri: 'bucket/x' is not s3://bucket"),
        ({"s3_uri": "s3://ok-bucket/x"}, "s3_uri: the S3 tier uploads committed tier-1"),
        ({"backend": "mtc"}, "backend: 'mtc' needs an S3 URI"),
    ],
)
def test_config_errors_name_the_setting(settings: dict[str, object], error: str) -> None:
    with pytest.raises(CheckpointConfigError, match=error.replace("(", r"\(")):
        CheckpointConfig(**settings)  # type: ignore[arg-type]


def test_progress_round_trips_through_json() -> None:
    progress = Progress(step=3, tokens_seen=12, loader={"shard": 1, "offset": 7}, config={"a": 1})
    assert Progress(**json.loads(json.dumps(progress.__dict__))) == progress
