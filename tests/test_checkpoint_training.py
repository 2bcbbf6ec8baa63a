"""The trainer's checkpointing: flags -> tiers, resume from S3 through `training.train.run`,
SIGTERM to `python -m training.train`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlplatform.training.checkpointing.config import CheckpointConfig
from mlplatform.training.checkpointing.tiers import LocalTier
from mlplatform.training.config import TrainConfig, TrainConfigError, parse_args
from mlplatform.training.train import run
from tests.checkpoint_harness import ROOT, Bucket


def tiny(**overrides: object) -> TrainConfig:
    return TrainConfig(**{**parse_args(["--config", "tiny-cpu"]).to_dict(), **overrides}).validate()


def test_checkpoint_flags_map_onto_the_tiers() -> None:
    cfg = parse_args(
        ["--checkpoint-dir", "/nvme/ckpt", "--checkpoint-interval", "50", "--checkpoint-keep", "4",
         "--checkpoint-s3-uri", "s3://models/ckpt/run1", "--checkpoint-s3-interval", "500",
         "--checkpoint-s3-keep", "5", "--checkpoint-mode", "sync"]
    )  # fmt: skip
    assert cfg.checkpoint_config({}) == CheckpointConfig(
        local_dir="/nvme/ckpt",
        local_every=50,
        local_keep=4,
        s3_uri="s3://models/ckpt/run1",
        s3_every=500,
        s3_keep=5,
        mode="sync",
    )


def test_interval_zero_saves_only_at_the_end() -> None:
    cfg = parse_args(["--checkpoint-dir", "/c", "--checkpoint-interval", "0", "--max-steps", "70"])
    assert cfg.checkpoint_config({}).local_every == 70


def test_the_job_environment_supplies_the_s3_tier_when_a_directory_is_set() -> None:
    env = {"MLPLATFORM_CHECKPOINT_S3_URI": "s3://models/checkpoints/job/"}
    assert (
        parse_args(["--checkpoint-dir", "/c"]).checkpoint_config(env).s3_uri
        == env["MLPLATFORM_CHECKPOINT_S3_URI"]
    )
    assert parse_args([]).checkpoint_config(env).s3_uri == ""  # checkpointing off: stays off


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--checkpoint-dir", "/c", "--checkpoint-s3-uri", "bucket/x"],
         "--checkpoint-s3-uri: 'bucket/x' is not s3://bucket[/prefix]"),
        (["--checkpoint-s3-uri", "s3://bucket/x"],
         "--checkpoint-s3-uri: the S3 tier uploads committed tier-1 checkpoints: set a local"),
        (["--checkpoint-mode", "later"], "--checkpoint-mode: 'later' is not one of async, sync"),
        (["--checkpoint-backend", "mtc"], "--checkpoint-backend: 'mtc' needs an S3 URI"),
        (["--checkpoint-keep", "0"], "--checkpoint-keep: 0 must be >= 1"),
    ],
)  # fmt: skip
def test_invalid_checkpoint_flags_name_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(TrainConfigError) as error:
        parse_args(argv)
    assert str(error.value).startswith(message)


def test_trainer_resumes_from_s3_on_a_fresh_disk_with_identical_losses(
    s3: Bucket, tmp_path: Path
) -> None:
    settings = {"max_steps": 6, "checkpoint_interval": 2, "checkpoint_s3_uri": s3.uri(),
                "checkpoint_s3_interval": 4}  # fmt: skip
    first = run(tiny(checkpoint_dir=str(tmp_path / "node-a"), **settings))
    assert LocalTier(tmp_path / "node-a").committed_steps() == [6, 4]
    resumed = run(tiny(checkpoint_dir=str(tmp_path / "node-b"), **settings))  # S3 has step 4
    assert [r["step"] for r in resumed] == [5, 6]
    assert [r["loss"] for r in resumed] == [r["loss"] for r in first[4:]]


def test_sigterm_stops_the_trainer_cleanly_with_a_committed_checkpoint(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "MASTER_ADDR")}
    log = tmp_path / "train.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "training.train", "--config", "tiny-cpu", "--max-steps", "100000",
             "--checkpoint-dir", str(tmp_path / "ckpt"), "--checkpoint-interval", "3"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while "step=4 Loss:" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "stopping on SIGTERM" in text
    newest = LocalTier(tmp_path / "ckpt").newest_complete()
    assert newest is not None and not list((tmp_path / "ckpt").glob("*.partial"))
