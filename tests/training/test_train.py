"""The training loop in one process (a world of one, the same code path as torchrun)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlplatform.training.config import TrainConfig, parse_args
from mlplatform.training.train import run, sagemaker_defaults

ROOT = Path(__file__).resolve().parents[2]


def tiny(**overrides) -> TrainConfig:
    """The tiny-cpu recipe with `overrides`."""
    return TrainConfig(**{**parse_args(["--config", "tiny-cpu"]).to_dict(), **overrides}).validate()


def test_loss_decreases_on_the_learnable_synthetic_task():
    records = run(tiny(max_steps=40, warmup_steps=4))
    first, last = records[0]["loss"], records[-1]["loss"]
    assert first > 6.0  # about ln(512): near uniform over the vocabulary
    assert last < 0.6 * first


def test_runs_are_deterministic_given_the_seed():
    a = [r["loss"] for r in run(tiny(max_steps=4))]
    b = [r["loss"] for r in run(tiny(max_steps=4))]
    c = [r["loss"] for r in run(tiny(max_steps=4, seed=1))]
    assert a == b
    assert a != c


def test_metrics_file_has_one_json_line_per_step(tmp_path):
    path = tmp_path / "m" / "metrics.jsonl"
    records = run(tiny(max_steps=3, metrics_file=str(path)))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3]
    assert lines == records
    for line in lines:
        assert line["tokens"] == 8 * 64
        assert line["tokens_per_s"] > 0 and line["tflops"] > 0 and line["mem_gib"] > 0
        assert "mfu_pct" not in line  # CPU: no peak known, MFU omitted rather than invented


def test_mfu_with_a_peak_override(tmp_path):
    records = run(tiny(max_steps=2, peak_tflops=1.0))
    assert records[-1]["mfu_pct"] == pytest.approx(100 * records[-1]["tflops"] / 1.0)


def test_lr_follows_warmup_then_decay():
    records = run(
        tiny(max_steps=6, warmup_steps=2, lr=1e-3, min_lr_ratio=0.0, lr_schedule="linear")
    )
    lrs = [r["lr"] for r in records]
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3, 0.75e-3, 0.5e-3, 0.25e-3])


def test_final_model_weights_are_written(tmp_path):
    from safetensors.torch import load_file

    run(tiny(max_steps=1, model_dir=str(tmp_path)))
    weights = load_file(tmp_path / "model.safetensors")
    assert weights["tok_embeddings.weight"].shape == (512, 64)
    assert "layers.1.feed_forward.w2.weight" in weights
    assert json.loads((tmp_path / "config.json").read_text())["n_layers"] == 2


def test_sagemaker_environment_sets_paths():
    env = {"SM_MODEL_DIR": "/opt/ml/model", "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train",
           "SM_CURRENT_INSTANCE_TYPE": "ml.p5.48xlarge"}  # fmt: skip
    assert sagemaker_defaults(env) == {
        "checkpoint_dir": "/opt/ml/checkpoints",
        "model_dir": "/opt/ml/model",
        "data": "/opt/ml/input/data/train",
        "instance_type": "p5.48xlarge",
    }
    assert sagemaker_defaults({}) == {}


def test_entry_point_logs_loss_lines_with_the_rank(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "MASTER_ADDR")}
    proc = subprocess.run(
        [sys.executable, "-m", "training.train", "--config", "tiny-cpu", "--max-steps", "2",
         "--metrics-file", str(tmp_path / "m.jsonl")],
        cwd=ROOT, capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    loss_lines = [line for line in proc.stderr.splitlines() if " Loss: " in line]
    assert len(loss_lines) == 2
    assert "[rank0]" in loss_lines[0] and "step=1 Loss: " in loss_lines[0]
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 2
