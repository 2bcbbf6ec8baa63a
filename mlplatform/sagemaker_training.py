"""SageMaker training jobs with the platform's training image: `mlplatform train submit`.

The third engine beside HyperPod and EKS: the same image and `training.train`, run by SageMaker
Training. The recipe travels as the job's hyperparameters (SageMaker writes them to
`/opt/ml/input/config/hyperparameters.json`, the seeds' layout); the image's
`sagemaker_launch.py` turns them back into the recipe and starts torchrun across the job's hosts.
SageMaker syncs `/opt/ml/checkpoints` (our tier 1) to `s3://<models>/checkpoints/<job>/`, and
the model to `s3://<models>/model/<recipe>/<job>/output/model.tar.gz` (the seeds' layout).

The request is made with boto3's `CreateTrainingJob`, the API the SageMaker SDK calls, so
submitting needs no extra packages; tests send it to a moto server.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlplatform.components.catalog import gpus_per_instance
from mlplatform.components.training_manifests import checkpoint_prefix
from mlplatform.training.recipes import RecipeError, find_recipe, read_recipe

# Where SageMaker puts the tier-1 directory it syncs with `CheckpointConfig.S3Uri`.
SAGEMAKER_CHECKPOINT_DIR = "/opt/ml/checkpoints"
# The launcher the training image ships for SageMaker (docker/training/sagemaker_launch.py).
SAGEMAKER_ENTRYPOINT = ["python", "/opt/mlplatform/sagemaker_launch.py"]

_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")


class SubmitError(ValueError):
    """A submission that cannot be made as asked; the message says which option to fix."""


@dataclass(frozen=True)
class SageMakerJob:
    """One SageMaker training job of the platform's image."""

    name: str
    image: str
    role_arn: str
    recipe_name: str  # groups the job's model with its recipe's other runs
    recipe: Mapping[str, Any]
    instance_type: str
    instance_count: int
    models_bucket: str
    kms_key_arn: str | None = None
    subnet_ids: Sequence[str] = ()
    security_group_ids: Sequence[str] = ()
    data_uri: str | None = None  # S3 prefix in the datasets bucket: the `train` channel
    volume_size_gb: int = 500
    max_runtime_hours: int = 120
    spot: bool = False
    encrypt_inter_node_traffic: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _JOB_NAME.match(self.name):
            raise SubmitError(f"--job-name: {self.name!r} is not a SageMaker job name")
        if not self.instance_type.startswith("ml."):
            raise SubmitError(f"--instance-type: {self.instance_type!r} is not an ml.* type")
        if gpus_per_instance(self.instance_type) == 0:
            raise SubmitError(f"--instance-type: {self.instance_type} has no GPUs")
        if not 1 <= self.instance_count <= 256:
            raise SubmitError(f"--instance-count: {self.instance_count} is not in 1..256")
        if self.data_uri is not None and not _S3_URI.match(self.data_uri):
            raise SubmitError(f"--data: {self.data_uri!r} is not an s3:// URI")
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            raise SubmitError("--subnet and --security-group go together (the job's VPC)")

    @property
    def checkpoint_s3_uri(self) -> str:
        return f"s3://{self.models_bucket}/{checkpoint_prefix(self.name)}"

    @property
    def output_s3_uri(self) -> str:
        """SageMaker appends `<job>/output/model.tar.gz`: the seeds' model/<pipeline>/<run>/."""
        return f"s3://{self.models_bucket}/model/{self.recipe_name}/"

    @property
    def model_artifact_uri(self) -> str:
        return f"{self.output_s3_uri}{self.name}/output/model.tar.gz"


def hyperparameters(recipe: Mapping[str, Any]) -> dict[str, str]:
    """The recipe as SageMaker hyperparameters (string to string): strings stay as they are,
    anything else is JSON. `sagemaker_launch.decode_hyperparameters` inverts it."""
    return {
        str(key): value if isinstance(value, str) else json.dumps(value)
        for key, value in recipe.items()
    }


def create_training_job_request(job: SageMakerJob) -> dict[str, Any]:
    """The `CreateTrainingJob` request (boto3 keyword arguments)."""
    request: dict[str, Any] = {
        "TrainingJobName": job.name,
        "RoleArn": job.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": job.image,
            "TrainingInputMode": "FastFile",
            "ContainerEntrypoint": SAGEMAKER_ENTRYPOINT,
            # The trainer logs `step=<n> Loss: <x> ...` each step: CloudWatch metrics from it.
            "MetricDefinitions": [
                {"Name": "train:loss", "Regex": r"Loss: ([0-9.eE+-]+)"},
                {"Name": "train:tokens_per_second", "Regex": r"tokens/s=([0-9.eE+-]+)"},
            ],
        },
        "HyperParameters": hyperparameters(job.recipe),
        "ResourceConfig": {
            "InstanceType": job.instance_type,
            "InstanceCount": job.instance_count,
            "VolumeSizeInGB": job.volume_size_gb,
        },
        "OutputDataConfig": {"S3OutputPath": job.output_s3_uri},
        "CheckpointConfig": {
            "S3Uri": job.checkpoint_s3_uri,
            "LocalPath": SAGEMAKER_CHECKPOINT_DIR,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": job.max_runtime_hours * 3600},
        "EnableInterContainerTrafficEncryption": job.encrypt_inter_node_traffic,
        "EnableManagedSpotTraining": job.spot,
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(job.tags.items())],
    }
    if job.spot:  # spot waits for capacity: allow twice the run time in total
        request["StoppingCondition"]["MaxWaitTimeInSeconds"] = job.max_runtime_hours * 7200
    if job.kms_key_arn:
        request["OutputDataConfig"]["KmsKeyId"] = job.kms_key_arn
        request["ResourceConfig"]["VolumeKmsKeyId"] = job.kms_key_arn
    if job.subnet_ids:
        request["VpcConfig"] = {
            "Subnets": list(job.subnet_ids),
            "SecurityGroupIds": list(job.security_group_ids),
        }
    if job.data_uri:
        request["InputDataConfig"] = [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": job.data_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ]
    return request


def submit(job: SageMakerJob, client: Any) -> str:
    """Create the training job; return its ARN. `client` is a boto3 SageMaker client."""
    response = client.create_training_job(**create_training_job_request(job))
    return str(response["TrainingJobArn"])


def load_recipe(recipe: str) -> tuple[str, dict[str, Any]]:
    """A recipe by path (`my.yaml`) or by name (`llama3-8b`: training/configs/llama3-8b.yaml),
    read by the training core's one recipe loader; its errors become `--recipe: ...`."""
    try:
        path = find_recipe(recipe)
        return path.stem, read_recipe(path)
    except RecipeError as error:
        raise SubmitError(f"--recipe: {error}") from None


def default_job_name(recipe_name: str, now: float | None = None) -> str:
    """`<recipe>-<UTC timestamp>`, cut to SageMaker's 63 characters."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    base = re.sub(r"[^a-zA-Z0-9-]+", "-", recipe_name).strip("-")[: 63 - len(stamp) - 1]
    return f"{base}-{stamp}" if base else f"job-{stamp}"
