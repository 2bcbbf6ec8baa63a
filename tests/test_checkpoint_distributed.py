"""Checkpointing across ranks (gloo on 127.0.0.1): FSDP2-sharded state, async saves on the
dedicated group, bit-identical resume, resharding 2 -> 4 ranks and full -> hybrid."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.checkpoint_harness import run
from training.checkpointing.commit import read_commit

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
    assert {"__0_0.distcp", "__1_0.distcp", "rng_rank00000.pt", "rng_rank00001.pt"} <= set(
        commit.files
    )


def test_two_rank_resume_is_bit_identical(two_rank_run: tuple[Path, list], tmp_path: Path) -> None:
    directory, uninterrupted = two_rank_run
    source = Path(shutil.copytree(directory, tmp_path / "src"))
    shutil.rmtree(source / "step_000000012")
    resumed = resume(source, tmp_path, world_size=2, shard="full", steps=12)
    for rank in range(2):
        assert resumed[rank]["restored_step"] == 8
        assert resumed[rank]["restored_loader"] == {"position": 64}
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
    assert {r["digest_after_restore"] for r in resumed} == {uninterrupted[0]["digests"]["12"]}
    assert all(list(r["losses"]) == ["13"] for r in resumed)  # and training goes on
