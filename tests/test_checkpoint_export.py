"""`python -m training.export`: a (sharded) DCP checkpoint -> safetensors + config, and the
SageMaker model.tar.gz; the export loads into a plain model with identical outputs."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from mlplatform.training.export import main
from tests.checkpoint_harness import ROOT, Run, run
from tests.checkpoint_worker import TinyModel, digest


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:
    directory = tmp_path_factory.mktemp("export") / "ckpt"
    run_ = Run(directory, local_every=4)
    run_.train(8)
    return directory, run_


def plain_model(weights: dict[str, torch.Tensor]) -> TinyModel:
    model = TinyModel()
    model.load_state_dict(weights, strict=True)
    return model.eval()


def test_export_loads_into_a_plain_model_with_identical_outputs(
    trained: tuple[Path, Run], tmp_path: Path
) -> None:
    directory, run_ = trained
    assert main([str(directory), str(tmp_path / "out")]) == 0  # the root: newest complete
    exported = plain_model(load_file(tmp_path / "out" / "model.safetensors"))
    x = torch.randn(16, 32)
    with torch.no_grad():
        assert torch.equal(exported(x), run_.model.eval()(x))


def test_export_writes_the_run_config_and_where_it_came_from(
    trained: tuple[Path, Run], tmp_path: Path
) -> None:
    main([str(trained[0] / "step_000000004"), str(tmp_path / "out")])
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["checkpoint"]["step"] == 4
    assert config["checkpoint"]["path"] == str(trained[0] / "step_000000004")
    assert config["checkpoint"]["world_size"] == 1


def test_sagemaker_archive_holds_weights_config_and_code(
    trained: tuple[Path, Run], tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "inference.py").write_text("def model_fn(model_dir):\n    ...\n")
    out = tmp_path / "out"
    assert main([str(trained[0]), str(out), "--sagemaker", "--code", str(code)]) == 0
    with tarfile.open(out / "model.tar.gz") as tar:
        names = sorted(tar.getnames())
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert names == ["code", "code/inference.py", "config.json", "model.safetensors"]
    exported = load_file(tmp_path / "unpacked" / "model.safetensors")
    assert exported.keys() == trained[1].model.state_dict().keys()


def test_corrupt_checkpoint_is_refused(trained: tuple[Path, Run], tmp_path: Path) -> None:
    source = trained[0] / "step_000000008"
    copy = tmp_path / "step_000000008"
    copy.mkdir()
    for f in source.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    (copy / "__0_0.distcp").write_bytes(b"garbage")
    done = subprocess.run(
        [sys.executable, "-m", "training.export", str(copy), str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: {copy} is corrupt: __0_0.distcp:")


@pytest.mark.distributed
def test_a_sharded_two_rank_checkpoint_consolidates(tmp_path: Path) -> None:
    spec: dict[str, Any] = {
        "steps": 4,
        "checkpoint": {"local_dir": str(tmp_path / "ckpt"), "local_every": 4, "mode": "sync"},
        "digest_at": [4],
    }
    ranks = run(spec, tmp_path)
    main([str(tmp_path / "ckpt"), str(tmp_path / "out")])
    exported = load_file(tmp_path / "out" / "model.safetensors")
    assert digest(plain_model(exported)) == ranks[0]["digests"]["4"]
