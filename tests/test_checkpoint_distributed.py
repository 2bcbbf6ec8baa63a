"""Checkpointing across ranks (gloo on 127.0.0.1): FSDP2-sharded state, async saves on the
dedicated group, bit-identical resume, resharding 2 -> 4 ranks and full -> hybrid, SIGTERM and
SIGKILL during saves."""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from mlplatform.training.checkpointing.commit import read_commit
from mlplatform.training.checkpointing.tiers import LocalTier, parse_step
from tests.checkpoint_harness import launch, run

pytestmark = pytest.mark.distributed


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """12 steps on 2 ranks, fully sharded, async saves every 4 steps."""
    tmp = tmp_path_factory.mktemp("dist")
    spec = {
        "steps": 12,
        "shard": "full",
        "checkpoint": {"local_dir": str(tmp / "ckpt"), "local_every": 4, "local_keep": 3},
        "digest_at": [8, 12],
    }
    return tmp / "ckpt", run(spec, tmp)


def resume(source: Path, tmp: Path, world_size: int, shard: str, steps: int) -> list[dict]:
    directory = Path(shutil.copytree(source, tmp / "ckpt"))
    spec = {
        "steps": steps,
        "shard": shard,
        "checkpoint": {"local_dir": str(directory), "local_every": 4, "mode": "sync"},
    }
    return run(spec, tmp, world_size=world_size)


def test_every_rank_commits_one_checkpoint_with_all_files(two_rank_run: tuple[Path, list]) -> None:
    commit = read_commit(two_rank_run[0] / "step_000000012")
    assert commit is not None
    assert (commit.step, commit.world_size, commit.mesh["mesh"]) == (12, 2, [2])
    assert {"__0_0.distcp", "__1_0.distcp", "rank_00000.pt", "rank_00001.pt"} <= set(commit.files)


def test_two_rank_resume_is_bit_identical(two_rank_run: tuple[Path, list], tmp_path: Path) -> None:
    directory, uninterrupted = two_rank_run
    source = Path(shutil.copytree(directory, tmp_path / "src"))
    shutil.rmtree(source / "step_000000012")
    resumed = resume(source, tmp_path, world_size=2, shard="full", steps=12)
    for rank in range(2):
        assert resumed[rank]["restored_step"] == 8
        assert resumed[rank]["restored_loader"] == {"position": 64}
        assert resumed[rank]["restored_rank_state"] == {"rank": rank, "position": 8}
        assert resumed[rank]["digest_after_restore"] == uninterrupted[0]["digests"]["8"]
        expected = {s: uninterrupted[rank]["losses"][s] for s in ("9", "10", "11", "12")}
        assert resumed[rank]["losses"] == expected


@pytest.mark.parametrize("shard", ["full", "hybrid"])
def test_two_rank_checkpoint_loads_into_four_ranks(
    two_rank_run: tuple[Path, list], tmp_path: Path, shard: str
) -> None:
    directory, uninterrupted = two_rank_run
    resumed = resume(directory, tmp_path, world_size=4, shard=shard, steps=13)
    assert {r["restored_step"] for r in resumed} == {12}
    # ranks 2 and 3 did not exist in the saving job: no per-rank state for them
    assert [r["restored_rank_state"] for r in resumed] == [
        {"rank": 0, "position": 12},
        {"rank": 1, "position": 12},
        {},
        {},
    ]
    assert {r["digest_after_restore"] for r in resumed} == {uninterrupted[0]["digests"]["12"]}
    assert all(list(r["losses"]) == ["13"] for r in resumed)  # and training goes on


def wait_for_losses(out: Path, count: int, timeout: float = 60) -> None:
    """Until rank 0 has trained `count` steps in this launch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(json.loads((out / "rank0.json").read_text())["losses"]) >= count:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"rank 0 did not reach {count} steps: {(out / 'rank0.log').read_text()}")


def newest_complete(directory: Path) -> int | None:
    """What a correct resume must pick: the newest step whose files match its commit marker."""
    newest = LocalTier(directory).newest_complete()
    return parse_step(newest.name) if newest else None


def test_sigterm_finishes_the_in_flight_save_and_exits_cleanly(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    spec = {
        "steps": 1000,
        "step_sleep": 0.05,
        "out_dir": str(tmp_path / "out"),
        "checkpoint": {"local_dir": str(ckpt), "local_every": 1, "local_keep": 2},
    }
    procs = launch(spec, tmp_path, world_size=2)
    wait_for_losses(tmp_path / "out", 5)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    assert [proc.wait(timeout=60) for proc in procs] == [0, 0]
    outs = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in range(2)]
    assert outs[0]["stopped_before"] == outs[1]["stopped_before"]  # the ranks agreed
    last = outs[0]["last_saved_step"]
    assert last == outs[0]["stopped_before"] - 1  # the in-flight save was finished...
    assert newest_complete(ckpt) == last  # ...and committed
    assert not list(ckpt.glob("*.partial"))
    assert "stopping on SIGTERM" in (tmp_path / "out" / "rank0.log").read_text()


def test_sigkill_at_random_points_during_saves_always_resumes_a_complete_checkpoint(
    two_rank_run: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    uninterrupted = two_rank_run[1]
    ckpt = tmp_path / "ckpt"
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    spec: dict[str, Any] = {
        "steps": 12,
        "step_sleep": 0.15,
        "checkpoint": {"local_dir": str(ckpt), "local_every": 1, "local_keep": 2},
    }
    for attempt in range(3):
        expected = newest_complete(ckpt)
        out = tmp_path / f"out{attempt}"
        procs = launch({**spec, "out_dir": str(out)}, tmp_path, world_size=2)
        wait_for_losses(out, 1)
        time.sleep(rng.uniform(0.0, 0.6))
        victim = rng.randrange(2)  # one rank dies, then the job is torn down
        procs[victim].kill()
        procs[1 - victim].kill()
        for proc in procs:
            proc.wait()
        restored = json.loads((out / "rank0.json").read_text())["restored_step"]
        assert restored == expected, f"seed {seed}, attempt {attempt}"
    expected = newest_complete(ckpt)
    final = run({**spec, "out_dir": str(tmp_path / "final")}, tmp_path)
    assert final[0]["restored_step"] == expected, f"seed {seed}"
    for rank in range(2):
        for step, loss in final[rank]["losses"].items():
            assert loss == uninterrupted[rank]["losses"][step], f"seed {seed}, step {step}"
