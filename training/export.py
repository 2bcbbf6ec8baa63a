"""Export a checkpoint for inference: consolidated safetensors weights plus the model config.

    python -m training.export CHECKPOINT OUT [--sagemaker]

CHECKPOINT is one checkpoint directory (`.../step_000001000`) or a tier-1 root, where the newest
complete one is taken. Its files are verified against the commit marker first. OUT receives
`model.safetensors` (the model's full, unsharded tensors, whatever the world size or mesh that
wrote them) and `config.json` (the run config the checkpoint recorded, plus where it came from);
with --sagemaker also `model.tar.gz` holding both (and `code/` from --code), the artifact layout
SageMaker inference expects.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch.distributed.checkpoint.state_dict_loader import _load_state_dict_from_keys

from mlplatform.training.checkpointing.commit import COMMIT_FILE, read_commit, verify
from mlplatform.training.checkpointing.tiers import LocalTier


class ExportError(RuntimeError):
    pass


def resolve(path: Path) -> Path:
    """The verified checkpoint directory `path` names."""
    if (path / COMMIT_FILE).is_file():
        commit = read_commit(path)
        problems = verify(path, commit) if commit else ["unreadable commit marker"]
        if problems:
            raise ExportError(f"{path} is corrupt: {'; '.join(problems[:5])}")
        return path
    newest = LocalTier(path).newest_complete()
    if newest is None:
        raise ExportError(f"{path}: no complete checkpoint (directory with a valid COMMIT.json)")
    return newest


def export(
    checkpoint: Path, out: Path, *, sagemaker: bool = False, code: Path | None = None
) -> Path:
    """Write OUT/model.safetensors and OUT/config.json (and OUT/model.tar.gz); returns the
    checkpoint directory exported."""
    directory = resolve(checkpoint)
    commit = read_commit(directory)
    assert commit is not None
    with warnings.catch_warnings():  # "assuming ... a single process": exactly the intent
        warnings.filterwarnings("ignore", "torch.distributed is unavailable", UserWarning)
        state = _load_state_dict_from_keys(keys={"model", "progress"}, checkpoint_id=str(directory))
    weights = {
        name: tensor.detach().to("cpu").contiguous()
        for name, tensor in state["model"].items()
        if isinstance(tensor, torch.Tensor)
    }
    progress = json.loads(state["progress"])
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    config: dict[str, Any] = {
        **progress.get("config", {}),
        "checkpoint": {
            "path": str(directory),
            "step": commit.step,
            "tokens_seen": progress.get("tokens_seen"),
            "world_size": commit.world_size,
            "mesh": commit.mesh,
            "config_hash": commit.config_hash,
            "code_version": commit.code_version,
        },
    }
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if sagemaker:
        with tarfile.open(out / "model.tar.gz", "w:gz") as tar:
            tar.add(out / "model.safetensors", arcname="model.safetensors")
            tar.add(out / "config.json", arcname="config.json")
            if code is not None:
                tar.add(code, arcname="code")
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__)
    parser.add_argument("checkpoint", type=Path, help="a checkpoint directory or a tier-1 root")
    parser.add_argument("out", type=Path, help="output directory")
    parser.add_argument("--sagemaker", action="store_true", help="also pack model.tar.gz")
    parser.add_argument("--code", type=Path, help="inference code directory packed as code/")
    args = parser.parse_args(argv)
    if args.code is not None and not args.code.is_dir():
        parser.error(f"--code {args.code}: not a directory")
    try:
        directory = export(args.checkpoint, args.out, sagemaker=args.sagemaker, code=args.code)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"exported {directory} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
