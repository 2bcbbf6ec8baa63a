"""Tier 2 against a real S3 API (moto server on 127.0.0.1): background upload with the commit
marker last, retention, resume on a fresh disk, corrupt objects, and an S3 outage mid-training."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from mlplatform.training.checkpointing import CheckpointError
from mlplatform.training.checkpointing.config import CheckpointConfig
from mlplatform.training.checkpointing.s3 import S3Tier
from tests.checkpoint_harness import Bucket, Run


def s3_run(directory: Path, bucket: Bucket, **config: object) -> Run:
    settings = {"local_every": 2, "s3_every": 4, "s3_keep": 2, "upload_backoff_max_s": 0.5}
    return Run(directory, s3_uri=bucket.uri(), **{**settings, **config})


def tier(bucket: Bucket) -> S3Tier:
    return S3Tier(CheckpointConfig(local_dir="/unused", s3_uri=bucket.uri()))


def test_every_s3_every_step_is_uploaded_and_s3_retention_keeps_k(
    s3: Bucket, tmp_path: Path
) -> None:
    s3_run(tmp_path / "local", s3).train(12)
    assert tier(s3).committed_steps() == [12, 8]
    local = tmp_path / "local" / "step_000000012"
    expected = sorted(f"ckpt/step_000000012/{p.name}" for p in local.iterdir())
    assert s3.keys("ckpt/step_000000012/") == expected
    assert s3.keys("ckpt/step_000000004/") == []


def test_a_checkpoint_without_its_marker_in_s3_is_not_complete(s3: Bucket, tmp_path: Path) -> None:
    s3_run(tmp_path / "local", s3).train(4)
    s3.server.client().delete_object(Bucket=s3.name, Key="ckpt/step_000000004/COMMIT.json")
    assert tier(s3).committed_steps() == []
    assert Run(tmp_path / "fresh", s3_uri=s3.uri()).ckpt.restore() is None


def test_resume_from_s3_on_a_fresh_disk_is_bit_identical(s3: Bucket, tmp_path: Path) -> None:
    uninterrupted = s3_run(tmp_path / "first", s3)
    uninterrupted.train(12)
    tier(s3).remove(12)  # as if the job died before step 12 reached S3
    resumed = s3_run(tmp_path / "new-node", s3)
    resumed.train(12)
    assert resumed.losses == {s: uninterrupted.losses[s] for s in (9, 10, 11, 12)}


def test_corrupt_object_in_s3_is_skipped_with_a_warning(
    s3: Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s3_run(tmp_path / "first", s3).train(8)
    client = s3.server.client()
    key = "ckpt/step_000000008/__0_0.distcp"
    body = bytearray(client.get_object(Bucket=s3.name, Key=key)["Body"].read())
    body[100] ^= 0x01
    client.put_object(Bucket=s3.name, Key=key, Body=bytes(body))
    with caplog.at_level(logging.WARNING):
        progress = Run(tmp_path / "fresh", s3_uri=s3.uri()).ckpt.restore()
    assert progress is not None and progress.step == 4
    assert "skipping corrupt checkpoint" in caplog.text and "step_000000008" in caplog.text


def test_s3_outage_does_not_stop_training_and_the_upload_completes_when_s3_returns(
    s3: Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = s3_run(tmp_path / "local", s3, local_keep=1, close_timeout_s=60)
    restart = threading.Timer(2.0, s3.server.start)

    def outage(step: int) -> None:
        if step == 3:  # after resume, before the first upload (step 4): S3 goes away for 2 s
            s3.server.stop()
            restart.start()

    with caplog.at_level(logging.WARNING):
        progress = run.train(8, outage)  # close() waits for the upload to the restarted S3
    restart.join()
    assert progress.step == 8 and list(run.losses) == list(range(1, 9))
    assert "S3 upload of s3://" in caplog.text and "training goes on" in caplog.text
    assert tier(s3).committed_steps()[0] == 8


def test_tier1_keeps_a_checkpoint_until_it_is_in_s3(s3: Bucket, tmp_path: Path) -> None:
    run = s3_run(tmp_path / "local", s3, local_keep=1, close_timeout_s=0, mode="sync")
    run.train(
        6, lambda step: step == 3 and s3.server.stop()
    )  # step 4 never reaches S3: close() abandons it at once
    local = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert "step_000000004" in local and "step_000000006" in local


def test_s3_unreachable_at_start_is_a_clear_error_not_a_fresh_start(
    s3: Bucket, tmp_path: Path
) -> None:
    s3.server.stop()
    with pytest.raises(CheckpointError, match=r"^cannot list checkpoints: Could not connect"):
        s3_run(tmp_path / "local", s3).ckpt.restore()
