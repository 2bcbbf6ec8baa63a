"""SageMaker training jobs: `mlplatform train submit --engine sagemaker` against a moto server,
and the image's launcher that turns SageMaker's config files back into a torchrun command."""

from __future__ import annotations

import importlib.util
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from mlplatform import sagemaker_training as sm
from mlplatform.cli import main
from tests.conftest import ROOT

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlplatform-training@sha256:" + "cd" * 32
ROLE = "arn:aws:iam::123456789012:role/mlplatform-production-notebook-role"
KMS = "arn:aws:kms:us-east-1:123456789012:key/0b0c0d0e-0000-4000-8000-000000000000"
RECIPE = {"model": "llama3-8b", "max_steps": 2000, "lr": 3.0e-4, "data": {"kind": "synthetic"}}


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A SageMaker client of the moto server; boto3 in the CLI reaches the same server."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return boto3.client("sagemaker", region_name="us-east-1")


@pytest.fixture
def recipe_file(tmp_path: Path) -> Path:
    path = tmp_path / "llama3-8b.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return path


@pytest.fixture
def outputs_file(tmp_path: Path) -> Path:
    """What `pulumi stack output --json` gives for the stack."""
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                "modelsBucket": "mlplatform-production-models-abc1234",
                "kmsKeyArn": KMS,
                "notebookRoleArn": ROLE,
                "privateSubnetIds": ["subnet-0aaa1111bbbb22223", "subnet-0ccc3333dddd44445"],
                "trainingSecurityGroupId": "sg-0123456789abcdef0",
                "trainingImage": IMAGE,
            }
        )
    )
    return path


def test_submit_sends_the_platform_job_to_sagemaker(
    aws: Any, recipe_file: Path, outputs_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train", "submit", "--engine", "sagemaker",
            "--recipe", str(recipe_file),
            "--instance-type", "ml.p5.48xlarge",
            "--instance-count", "4",
            "--job-name", "llama3-8b-run1",
            "--outputs", str(outputs_file),
            "--data", "s3://mlplatform-production-datasets-abc1234/tokenized/fineweb/",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    job = aws.describe_training_job(TrainingJobName="llama3-8b-run1")

    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert job["AlgorithmSpecification"]["ContainerEntrypoint"] == [
        "python",
        "/opt/mlplatform/sagemaker_launch.py",
    ]
    assert job["RoleArn"] == ROLE
    assert job["ResourceConfig"]["InstanceType"] == "ml.p5.48xlarge"
    assert job["ResourceConfig"]["InstanceCount"] == 4
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == KMS
    # SageMaker syncs our tier-1 directory to the job's prefix of the models bucket.
    assert job["CheckpointConfig"] == {
        "S3Uri": "s3://mlplatform-production-models-abc1234/checkpoints/llama3-8b-run1/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert job["OutputDataConfig"] == {
        "S3OutputPath": "s3://mlplatform-production-models-abc1234/model/llama3-8b/",
        "KmsKeyId": KMS,
    }
    assert job["VpcConfig"] == {
        "Subnets": ["subnet-0aaa1111bbbb22223", "subnet-0ccc3333dddd44445"],
        "SecurityGroupIds": ["sg-0123456789abcdef0"],
    }
    (channel,) = job["InputDataConfig"]
    assert channel["ChannelName"] == "train"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"].endswith("/tokenized/fineweb/")
    assert job["HyperParameters"] == {
        "model": "llama3-8b",
        "max_steps": "2000",
        "lr": "0.0003",
        "data": '{"kind": "synthetic"}',
    }
    out = capsys.readouterr().out
    assert (
        "s3://mlplatform-production-models-abc1234/model/llama3-8b/llama3-8b-run1/output/model.tar.gz"
        in out
    )


def test_options_win_over_stack_outputs(aws: Any, recipe_file: Path, outputs_file: Path) -> None:
    other_role = "arn:aws:iam::123456789012:role/other"
    code = main(
        [
            "train", "submit", "--engine", "sagemaker", "--recipe", str(recipe_file),
            "--instance-type", "ml.g5.12xlarge", "--job-name", "override-run",
            "--outputs", str(outputs_file), "--role-arn", other_role,
            "--security-group", "sg-0fedcba9876543210", "--spot",
        ]
    )  # fmt: skip
    assert code == 0
    job = aws.describe_training_job(TrainingJobName="override-run")
    assert job["RoleArn"] == other_role
    assert job["VpcConfig"]["SecurityGroupIds"] == ["sg-0fedcba9876543210"]
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"]["MaxWaitTimeInSeconds"] == 2 * 120 * 3600


def test_dry_run_prints_the_request_and_sends_nothing(
    aws: Any, recipe_file: Path, outputs_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train", "submit", "--engine", "sagemaker", "--recipe", str(recipe_file),
            "--instance-type", "ml.p4d.24xlarge", "--job-name", "dry",
            "--outputs", str(outputs_file), "--dry-run",
        ]
    )  # fmt: skip
    assert code == 0
    request = json.loads(capsys.readouterr().out)
    assert request["TrainingJobName"] == "dry"
    assert request["ResourceConfig"]["InstanceType"] == "ml.p4d.24xlarge"
    names = [j["TrainingJobName"] for j in aws.list_training_jobs()["TrainingJobSummaries"]]
    assert "dry" not in names


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--instance-type", "ml.m5.xlarge"], "--instance-type: ml.m5.xlarge has no GPUs"),
        (["--instance-type", "p5.48xlarge"], "is not an ml.* type"),
        (["--instance-type", "ml.p5.48xlarge", "--instance-count", "0"], "--instance-count: 0"),
        (["--instance-type", "ml.p5.48xlarge", "--data", "/local/data"], "--data: '/local/data'"),
        (["--instance-type", "ml.p5.48xlarge", "--job-name", "bad_name"], "--job-name: 'bad_name'"),
    ],
)
def test_submissions_that_cannot_run_fail_with_one_line(
    recipe_file: Path,
    outputs_file: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    argv = ["train", "submit", "--engine", "sagemaker", "--recipe", str(recipe_file)]
    code = main([*argv, "--outputs", str(outputs_file), "--dry-run", *extra])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_missing_stack_values_name_the_option(
    recipe_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "submit", "--engine", "sagemaker", "--recipe", str(recipe_file)]
    assert main([*argv, "--instance-type", "ml.p5.48xlarge", "--dry-run"]) == 1
    assert "--image: required (or output 'trainingImage' in --outputs)" in capsys.readouterr().err


def test_unknown_recipe_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "submit", "--engine", "sagemaker", "--recipe", "no-such-recipe"]
    assert main([*argv, "--instance-type", "ml.p5.48xlarge", "--dry-run"]) == 1
    assert "--recipe: 'no-such-recipe' is neither a YAML file nor a recipe name" in (
        capsys.readouterr().err
    )


# One recipe loader (training/recipes.py) for the trainer, the stack config and this command:
# a recipe that cannot be read is one line naming the file, prefixed with the option.
BROKEN_RECIPES = {
    "binary.yaml": (b"\xff\xfe\x00model: tiny\n", "cannot read ('utf-8' codec can't decode"),
    "list.yaml": (b"- model\n- tiny\n", "expected a mapping of settings, not list"),
    "broken.yaml": (b"model: [tiny\n", "not valid YAML ("),
}


@pytest.mark.parametrize("name", sorted(BROKEN_RECIPES))
def test_an_unreadable_recipe_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    content, problem = BROKEN_RECIPES[name]
    path = tmp_path / name
    path.write_bytes(content)
    argv = ["train", "submit", "--engine", "sagemaker", "--recipe", str(path)]
    assert main([*argv, "--instance-type", "ml.p5.48xlarge", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: --recipe: {path}: {problem}") and err.count("\n") == 1


def test_a_recipe_name_is_found_among_the_training_recipes() -> None:
    name, content = sm.load_recipe("tiny-cpu")
    assert name == "tiny-cpu" and content["model"] == "tiny"


def test_default_job_names_are_valid_and_dated() -> None:
    name = sm.default_job_name("llama3_8b recipe" * 5, now=0)
    assert name.endswith("-19700101-000000") and len(name) <= 63
    sm.SageMakerJob(
        name=name,
        image=IMAGE,
        role_arn=ROLE,
        recipe_name="r",
        recipe={},
        instance_type="ml.p5.48xlarge",
        instance_count=1,
        models_bucket="b",
    )


# --- the launcher inside the image ---------------------------------------------------------------


@pytest.fixture(scope="module")
def launcher() -> ModuleType:
    path = ROOT / "docker" / "training" / "sagemaker_launch.py"
    spec = importlib.util.spec_from_file_location("sagemaker_launch", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_recipe_survives_the_trip_through_hyperparameters(launcher: ModuleType) -> None:
    assert launcher.decode_hyperparameters(sm.hyperparameters(RECIPE)) == RECIPE


def test_launcher_starts_one_torchrun_node_per_host(launcher: ModuleType, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "resourceconfig.json").write_text(
        json.dumps(
            {
                "current_host": "algo-2",
                "hosts": ["algo-3", "algo-1", "algo-2"],
                "network_interface_name": "eth0",
                "current_instance_type": "ml.p5.48xlarge",
            }
        )
    )
    (config / "hyperparameters.json").write_text(json.dumps(sm.hyperparameters(RECIPE)))
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    command, env = launcher.prepare(config, tmp_path, data)
    assert command[:6] == [
        "torchrun",
        "--nnodes=3",
        "--node-rank=1",
        "--nproc-per-node=gpu",
        "--master-addr=algo-1",
        "--master-port=29500",
    ]
    assert command[6:] == [
        "-m",
        "training.train",
        "--config",
        str(tmp_path / "recipe.yaml"),
        "--checkpoint-dir",
        "/opt/ml/checkpoints",
    ]
    assert yaml.safe_load((tmp_path / "recipe.yaml").read_text()) == RECIPE
    assert env == {
        "SM_MODEL_DIR": "/opt/ml/model",
        "SM_CURRENT_INSTANCE_TYPE": "ml.p5.48xlarge",
        "SM_CHANNEL_TRAIN": str(data / "train"),
        "NCCL_SOCKET_IFNAME": "eth0",
        "GLOO_SOCKET_IFNAME": "eth0",
    }


def test_launcher_without_a_data_channel_leaves_the_recipe_data_alone(
    launcher: ModuleType, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )
    command, env = launcher.prepare(config, tmp_path, tmp_path / "no-data")
    assert "SM_CHANNEL_TRAIN" not in env and "--nnodes=1" in command
    assert json.loads((tmp_path / "recipe.yaml").read_text()) == {}
