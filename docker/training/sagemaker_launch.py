"""Start `training.train` under torchrun inside a SageMaker training job.

SageMaker gives the container its hosts in `/opt/ml/input/config/resourceconfig.json` and the
hyperparameters (our recipe, see components/sagemaker_training.py) in `hyperparameters.json`.
This writes the recipe back to a file and replaces itself with torchrun: one node per host,
one rank per GPU, the first host as rendezvous, tier-1 checkpoints in /opt/ml/checkpoints
(which SageMaker syncs to S3). Standard library only: it runs before anything is imported.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CONFIG_DIR = Path("/opt/ml/input/config")
CHECKPOINT_DIR = "/opt/ml/checkpoints"
MODEL_DIR = "/opt/ml/model"  # SageMaker uploads it as <output path>/<job>/output/model.tar.gz
DATA_DIR = Path("/opt/ml/input/data")  # one directory per input channel
RENDEZVOUS_PORT = 29500


def decode_hyperparameters(raw: Mapping[str, str]) -> dict[str, Any]:
    """Inverse of `components.sagemaker_training.hyperparameters`: JSON where it parses."""
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            decoded[key] = json.loads(value)
        except (TypeError, ValueError):
            decoded[key] = value
    return decoded


def torchrun_command(resource_config: Mapping[str, Any], recipe_path: str) -> list[str]:
    hosts = sorted(resource_config["hosts"])
    current = resource_config["current_host"]
    return [
        "torchrun",
        f"--nnodes={len(hosts)}",
        f"--node-rank={hosts.index(current)}",
        "--nproc-per-node=gpu",
        f"--master-addr={hosts[0]}",
        f"--master-port={RENDEZVOUS_PORT}",
        "-m",
        "training.train",
        "--config",
        recipe_path,
        "--checkpoint-dir",
        CHECKPOINT_DIR,
    ]


def prepare(
    config_dir: Path, work_dir: Path, data_dir: Path = DATA_DIR
) -> tuple[list[str], dict[str, str]]:
    """The command to exec and the environment additions, from SageMaker's config files."""
    resource_config = json.loads((config_dir / "resourceconfig.json").read_text())
    hyperparameters_file = config_dir / "hyperparameters.json"
    raw = json.loads(hyperparameters_file.read_text()) if hyperparameters_file.is_file() else {}
    recipe_path = work_dir / "recipe.yaml"
    recipe_path.write_text(json.dumps(decode_hyperparameters(raw), indent=2))  # JSON is YAML
    # What the training core reads on SageMaker (training/train.py `sagemaker_defaults`); the
    # SageMaker training toolkit would set these, our image does not ship it.
    env = {"SM_MODEL_DIR": MODEL_DIR}
    if resource_config.get("current_instance_type"):
        env["SM_CURRENT_INSTANCE_TYPE"] = resource_config["current_instance_type"]
    channel = data_dir / "train"
    if channel.is_dir():
        env["SM_CHANNEL_TRAIN"] = str(channel)
    interface = resource_config.get("network_interface_name")
    if interface:  # NCCL's bootstrap and gloo use the job's network, not loopback or docker0
        env["NCCL_SOCKET_IFNAME"] = interface
        env["GLOO_SOCKET_IFNAME"] = interface
    return torchrun_command(resource_config, str(recipe_path)), env


def main() -> None:
    command, env = prepare(CONFIG_DIR, Path(os.environ.get("TMPDIR", "/tmp")))
    for key, value in env.items():
        os.environ.setdefault(key, value)  # what the job sets explicitly wins
    print("sagemaker_launch:", " ".join(command), file=sys.stderr, flush=True)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
