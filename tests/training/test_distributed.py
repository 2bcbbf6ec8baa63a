"""FSDP2 on several CPU processes (gloo) against a single-process reference, step for step."""

from __future__ import annotations

import pytest

from mlplatform.training.config import TrainConfig
from mlplatform.training.train import run
from tests.training.dist_helpers import (
    clip_matches_torch,
    resume_after_interruption,
    run_configs,
    sharded_fill_equals_full_fill,
    spawn,
)

pytestmark = pytest.mark.distributed

BASE = {
    "model": "tiny", "data": "synthetic", "seq_len": 32, "batch_size": 8, "max_steps": 4,
    "lr": 1e-2, "warmup_steps": 1, "mixed_precision": "fp32", "device": "cpu",
}  # fmt: skip
VARIANTS = {
    "fsdp": {},
    "accumulate-2": {"grad_accum_steps": 2},
    "accumulate-2-sync-every-micro-step": {"grad_accum_steps": 2, "micro_step_sync": True},
    "checkpoint-every-block": {"activation_checkpointing": "full"},
    "checkpoint-every-2nd-block": {"activation_checkpointing": "every-2"},
    "bf16": {"mixed_precision": "bf16"},
    "clipped": {"grad_clip": 0.05},
}


def losses(**overrides) -> list[float]:
    return [r["loss"] for r in run(TrainConfig(**{**BASE, **overrides}).validate())]


@pytest.fixture(scope="module")
def reference() -> list[float]:
    """One process, no accumulation, no activation checkpointing."""
    return losses()


@pytest.fixture(scope="module")
def two_ranks() -> dict[str, list[float]]:
    configs = [{**BASE, **v} for v in VARIANTS.values()]
    results = spawn(run_configs, 2, configs)
    assert results[0] == results[1]  # every rank reports the loss of the global batch
    return dict(zip(VARIANTS, results[0], strict=True))


def close(a: list[float], b: list[float]) -> bool:
    return a == pytest.approx(b, rel=1e-5, abs=1e-6)


def test_reference_learns(reference):
    assert reference[-1] < reference[0]


def test_fsdp_on_two_ranks_matches_one_process(two_ranks, reference):
    assert close(two_ranks["fsdp"], reference)


def test_accumulating_k_micro_batches_equals_one_k_times_larger_batch(two_ranks, reference):
    assert close(two_ranks["accumulate-2"], reference)
    assert close(losses(grad_accum_steps=4), reference)  # and in one process, 4 x 2


def test_reduce_scatter_every_micro_step_gives_the_same_result(two_ranks, reference):
    assert close(two_ranks["accumulate-2-sync-every-micro-step"], reference)


@pytest.mark.parametrize("variant", ["checkpoint-every-block", "checkpoint-every-2nd-block"])
def test_activation_checkpointing_does_not_change_the_loss(two_ranks, reference, variant):
    assert close(two_ranks[variant], reference)


def test_bf16_mixed_precision_trains_close_to_fp32(two_ranks, reference):
    bf16 = two_ranks["bf16"]
    assert bf16 != reference  # really computed in bf16
    assert bf16 == pytest.approx(reference, abs=0.05)


def test_clipping_matches_one_process(two_ranks):
    clipped = losses(grad_clip=0.05)
    assert clipped != losses()  # the clip is active
    assert close(two_ranks["clipped"], clipped)


@pytest.mark.parametrize("mesh", [[2], [2, 2]], ids=["full-2", "hybrid-2x2"])
def test_one_all_reduce_norm_and_clip_equal_torch_clip_grad_norm(mesh):
    world = 4 if len(mesh) == 2 else 2
    results = spawn(clip_matches_torch, world, mesh, 0.05)
    before, ours, after, loss_sum = results[0]
    assert all(r == results[0] for r in results)
    assert ours == pytest.approx(before, rel=1e-5) and before > 0.05
    assert after == pytest.approx(0.05, rel=1e-4)
    assert loss_sum == world  # each rank contributed 1.0


def test_hybrid_2x2_on_4_processes_matches_one_process(reference):
    # 2 simulated nodes of 2 ranks: replicate degree 2 (from the nodes) x shard 2
    results = spawn(run_configs, 4, [{**BASE, "sharding": "hybrid"}], local_world=2)
    assert all(r == results[0] for r in results)
    assert close(results[0][0], reference)


def test_sharded_initialisation_equals_full_initialisation():
    assert spawn(sharded_fill_equals_full_fill, 2) == [True, True]


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    config = {**BASE, "max_steps": 6, "checkpoint_dir": str(tmp_path), "checkpoint_interval": 2,
              "checkpoint_keep": 3, "grad_accum_steps": 2}  # fmt: skip
    result = spawn(resume_after_interruption, 2, config)[0]
    assert result["steps"] == [2.0, 4.0, 6.0]
    # step 6's checkpoint lost its commit marker: resume from step 4, run steps 5 and 6 again
    assert close(result["resumed"], result["straight"][4:])


def test_entry_point_under_torchrun(tmp_path):
    """`torchrun ... -m training.train`: env:// rendezvous, rank-0 lines, one metrics file."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.training.dist_helpers import free_port

    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "MASTER_ADDR")}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-port", str(free_port()), "-m", "training.train", "--config", "tiny-cpu",
         "--max-steps", "2", "--seq-len", "16", "--metrics-file", str(tmp_path / "m.jsonl")],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "world 2, micro-batch 4 x 16 tokens" in proc.stderr
    loss_lines = [line for line in proc.stderr.splitlines() if " Loss: " in line]
    assert len(loss_lines) == 2 and all("[rank0]" in line for line in loss_lines)
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 2
