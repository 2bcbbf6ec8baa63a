"""Metrics: the `Loss:` line, JSON lines, TFLOP/s and MFU from the model's shape, ETA."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from mlplatform.training.metrics import Metrics, StepStats, format_line, peak_tflops

CPU = torch.device("cpu")


def metrics(tmp_path, rank=0, **kw) -> Metrics:
    defaults = {"rank": rank, "world_size": 2, "flops_per_token": 1e9, "peak": None, "device": CPU,
                "metrics_file": str(tmp_path / "m.jsonl"), "interactive": False}  # fmt: skip
    return Metrics(**{**defaults, **kw})


STATS = StepStats(step=3, loss=2.5, lr=1e-4, grad_norm=0.75, tokens=4000, step_time_s=2.0)


def test_line_has_the_loss_key_hyperpod_matches(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="training"):
        metrics(tmp_path, peak=1.0).record(STATS)
    line = caplog.records[-1].getMessage()
    assert line == (
        "step=3 Loss: 2.5000 lr=1.000e-04 grad_norm=0.750 tokens/s=2000 tflops=1.00 mfu=100.0% "
        f"mem={line.split('mem=')[1]}"
    )
    assert line.endswith("GiB")


def test_throughput_is_per_device(tmp_path):
    record = metrics(tmp_path, peak=4.0).record(STATS)
    assert record["tokens_per_s"] == 2000
    assert record["tflops"] == pytest.approx(2000 * 1e9 / 2 / 1e12)  # 2 ranks share the tokens
    assert record["mfu_pct"] == pytest.approx(25.0)


def test_mfu_omitted_without_a_peak(tmp_path):
    record = metrics(tmp_path).record(STATS)
    assert "mfu_pct" not in record and "mfu=" not in format_line(record)


def test_json_lines_only_on_rank_0(tmp_path):
    m0 = metrics(tmp_path / "r0")
    m1 = metrics(tmp_path / "r1", rank=1)
    m0.record(STATS), m1.record(STATS)
    m0.close(), m1.close()
    assert json.loads((tmp_path / "r0" / "m.jsonl").read_text())["loss"] == 2.5
    assert not (tmp_path / "r1" / "m.jsonl").exists()


def test_log_interval_thins_lines_but_not_json(tmp_path, caplog):
    m = metrics(tmp_path, log_interval=2, max_steps=5)
    with caplog.at_level(logging.INFO, logger="training"):
        for step in range(1, 6):
            m.record(StepStats(step, 1.0, 1e-3, 1.0, 100, 1.0))
    m.close()
    assert [r.getMessage().split()[0] for r in caplog.records] == ["step=2", "step=4", "step=5"]
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 5


def test_interactive_runs_show_an_eta(tmp_path, caplog):
    m = metrics(tmp_path, interactive=True, max_steps=10)
    with caplog.at_level(logging.INFO, logger="training"):
        m.record(StepStats(1, 1.0, 1e-3, 1.0, 100, 1.0))
    assert "[1/10 eta " in caplog.records[-1].getMessage()


def test_peak_table():
    assert peak_tflops(CPU, "bf16") is None
    assert peak_tflops(CPU, "bf16", override=500.0) == 500.0


@pytest.mark.parametrize(
    ("name", "precision", "peak"),
    [("NVIDIA H100 80GB HBM3", "bf16", 989.0), ("NVIDIA H200", "bf16", 989.0),
     ("NVIDIA A100-SXM4-40GB", "bf16", 312.0), ("NVIDIA A100-SXM4-80GB", "fp32", 156.0),
     ("Tesla T4", "bf16", None)],
)  # fmt: skip
def test_peak_by_gpu_name(monkeypatch, name, precision, peak):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    assert peak_tflops(torch.device("cuda", 0), precision) == peak
