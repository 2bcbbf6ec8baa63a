"""TrainingJob under mocks: IRSA identity scoped to the job's checkpoints, service account,
recipe ConfigMap and the job object of each engine, all through the cluster's provider; its
Args (one settings class, shared with the stack file's trainingJobs) from Python and stack files."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from pulumi.provider.experimental.analyzer import Analyzer

from mlplatform.components import training_manifests as tm
from mlplatform.components.images import ContainerImage
from mlplatform.components.schema import ArgsError
from mlplatform.components.training_job import TrainingJob, TrainingJobArgs, training_image_tag
from mlplatform.config import ConfigError, parse_stack_config
from mlplatform.program import ProgramRun, run_program
from mlplatform.training.recipes import load_recipe
from tests.conftest import MINIMAL, ROOT, policy_statements
from tests.test_rendered_policies import parliament_findings

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlplatform-training@sha256:" + "ef" * 32
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/5C5B0F8D3E7A4B1C9D2E6F0A1B2C3D4E"
OIDC_ARN = f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"
DATASETS_ARN = "arn:aws:s3:::mlp-datasets-0a1b2c3"
MODELS_ARN = "arn:aws:s3:::mlp-models-4d5e6f7"
KMS_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OVERRIDES = {"max_steps": 100, "data": "synthetic"}
ROLE = "aws:iam/role:Role"
# What the stack wires into every job: the image, the cluster's OIDC provider, the buckets, the key.
WIRED: dict[str, Any] = {
    "image": IMAGE,
    "oidc_provider_arn": OIDC_ARN,
    "oidc_provider_url": f"https://{ISSUER}",
    "datasets_bucket_arn": DATASETS_ARN,
    "models_bucket_arn": MODELS_ARN,
    "models_bucket_name": "mlp-models-4d5e6f7",
    "kms_key_arn": KMS_ARN,
}
HP_SETTINGS: dict[str, Any] = {
    "name": "llama3-8b",
    "engine": "hyperpod",
    "instance_type": "ml.p5.48xlarge",
    "nodes": 2,
    "recipe": "llama3-8b",
    "overrides": OVERRIDES,
}


def job_args(**settings: Any) -> TrainingJobArgs:
    return TrainingJobArgs(**{**HP_SETTINGS, **WIRED, **settings})


def build_job(args: TrainingJobArgs | dict[str, Any]) -> ProgramRun:
    def program() -> dict[str, Any]:
        cluster = k8s.Provider("gpu-k8s", kubeconfig="{}")
        job = TrainingJob("mlp-llama3-8b", args, pulumi.ResourceOptions(provider=cluster))
        return {"roleArn": job.role_arn, "checkpoints": job.checkpoint_s3_uri}

    return run_program(program, project="mlplatform", stack="test", config={})


@pytest.fixture(scope="module")
def hyperpod_run() -> ProgramRun:
    return build_job(job_args())


@pytest.fixture(scope="module")
def eks_run() -> ProgramRun:
    return build_job(job_args(engine="eks", instance_type="p5.48xlarge", min_nodes=1, max_nodes=4))


def job_role(run: ProgramRun) -> Any:
    return run.named("mlp-llama3-8b-role", ROLE)


def test_only_the_jobs_service_account_can_assume_its_role(hyperpod_run: ProgramRun) -> None:
    trust = json.loads(job_role(hyperpod_run).inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Federated": OIDC_ARN}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"]["StringEquals"] == {
        f"{ISSUER}:sub": "system:serviceaccount:training:llama3-8b",
        f"{ISSUER}:aud": "sts.amazonaws.com",
    }


def test_the_job_reads_datasets_and_writes_only_its_checkpoint_prefix(
    hyperpod_run: ProgramRun,
) -> None:
    policy = hyperpod_run.named("mlp-llama3-8b-policy").inputs["policy"]
    statements = {s["Sid"]: s for s in policy_statements(policy)}
    assert statements["ReadDatasets"]["Resource"] == [f"{DATASETS_ARN}/*"]
    assert statements["ReadDatasets"]["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert statements["ReadWriteOwnCheckpoints"]["Resource"] == [
        f"{MODELS_ARN}/checkpoints/llama3-8b/*"
    ]
    assert statements["ListOwnCheckpoints"]["Condition"] == {
        "StringLike": {"s3:prefix": ["checkpoints/llama3-8b/", "checkpoints/llama3-8b/*"]}
    }
    assert statements["UseBucketKey"]["Resource"] == [KMS_ARN]
    writes = {"s3:PutObject", "s3:DeleteObject"}
    for sid, statement in statements.items():
        if writes & set(statement["Action"]):
            assert sid == "ReadWriteOwnCheckpoints"
    assert parliament_findings(policy) == []


def test_the_service_account_is_annotated_with_the_role(hyperpod_run: ProgramRun) -> None:
    (account,) = hyperpod_run.of_type("kubernetes:core/v1:ServiceAccount")
    metadata = account.inputs["metadata"]
    assert metadata["name"] == "llama3-8b" and metadata["namespace"] == "training"
    assert metadata["annotations"] == {
        "eks.amazonaws.com/role-arn": job_role(hyperpod_run).outputs["arn"]
    }
    assert account.inputs["automountServiceAccountToken"] is False


def test_the_recipe_is_a_config_map(hyperpod_run: ProgramRun) -> None:
    (config_map,) = hyperpod_run.of_type("kubernetes:core/v1:ConfigMap")
    assert config_map.inputs["metadata"]["name"] == "llama3-8b-recipe"
    recipe = yaml.safe_load(config_map.inputs["data"]["recipe.yaml"])
    assert recipe == {**load_recipe("llama3-8b"), **OVERRIDES}
    assert recipe["max_steps"] == 100 and recipe["model"] == "llama3-8b"


def test_hyperpod_engine_deploys_a_hyperpod_pytorch_job_by_image_digest(
    hyperpod_run: ProgramRun,
) -> None:
    (job,) = hyperpod_run.of_type("kubernetes:sagemaker.amazonaws.com/v1:HyperPodPyTorchJob")
    assert tm.check_job_structure(job.inputs) == []
    (template,) = tm.pod_templates(job.inputs)
    (container,) = template["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 8, "vpc.amazonaws.com/efa": 32}
    assert template["spec"]["serviceAccountName"] == "llama3-8b"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLPLATFORM_CHECKPOINT_S3_URI"] == hyperpod_run.outputs["checkpoints"]


def test_eks_engine_deploys_an_elastic_pytorch_job(eks_run: ProgramRun) -> None:
    (job,) = eks_run.of_type("kubernetes:kubeflow.org/v1:PyTorchJob")
    assert job.inputs["spec"]["elasticPolicy"]["minReplicas"] == 1
    assert job.inputs["spec"]["elasticPolicy"]["maxReplicas"] == 4
    assert tm.check_job_structure(job.inputs) == []
    assert not eks_run.of_type("kubernetes:sagemaker.amazonaws.com/v1:HyperPodPyTorchJob")


def test_the_job_waits_for_its_identity_and_recipe_and_uses_the_cluster_provider(
    hyperpod_run: ProgramRun,
) -> None:
    (job,) = hyperpod_run.of_type("kubernetes:sagemaker.amazonaws.com/v1:HyperPodPyTorchJob")
    (account,) = hyperpod_run.of_type("kubernetes:core/v1:ServiceAccount")
    (config_map,) = hyperpod_run.of_type("kubernetes:core/v1:ConfigMap")
    assert {account.urn, config_map.urn} <= set(job.depends_on)
    (provider,) = hyperpod_run.of_type("pulumi:providers:kubernetes")
    for resource in (job, account, config_map):
        assert resource.provider.startswith(provider.urn)


def test_everything_is_parented_to_the_component(hyperpod_run: ProgramRun) -> None:
    (component,) = hyperpod_run.of_type("mlplatform:index:TrainingJob")
    children = [r for r in hyperpod_run.resources if r.parent == component.urn]
    assert sorted(r.type for r in children) == [
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:core/v1:ServiceAccount",
        "kubernetes:sagemaker.amazonaws.com/v1:HyperPodPyTorchJob",
    ]


def test_the_role_trusts_the_issuer_without_its_scheme(hyperpod_run: ProgramRun) -> None:
    # oidc_provider_url is given with https:// (EKS's issuer URL); IAM conditions key on the host.
    trust = json.loads(job_role(hyperpod_run).inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert all(key.startswith(ISSUER) for key in statement["Condition"]["StringEquals"])


def test_the_component_accepts_a_camel_case_mapping_as_another_language_passes_it() -> None:
    mapping = {
        "name": "llama3-8b",
        "engine": "eks",
        "instanceType": "p5.48xlarge",
        "nodes": 2,
        "maxNodes": 4,
        "recipe": "llama3-8b",
        "overrides": {"max_steps": 100},
        "shmSizeGib": 32,
        "image": IMAGE,
        "oidcProviderArn": OIDC_ARN,
        "oidcProviderUrl": ISSUER,
        "datasetsBucketArn": DATASETS_ARN,
        "modelsBucketArn": MODELS_ARN,
        "modelsBucketName": "mlp-models-4d5e6f7",
        "kmsKeyArn": KMS_ARN,
    }
    run = build_job(mapping)
    (job,) = run.of_type("kubernetes:kubeflow.org/v1:PyTorchJob")
    assert job.inputs["spec"]["elasticPolicy"]["maxReplicas"] == 4
    (template,) = tm.pod_templates(job.inputs)
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["dshm"]["emptyDir"]["sizeLimit"] == "32Gi"
    assert run.outputs["checkpoints"] == "s3://mlp-models-4d5e6f7/checkpoints/llama3-8b/"


def test_a_snake_case_mapping_is_accepted_too() -> None:
    args = {**HP_SETTINGS, **WIRED}
    run = build_job(args)
    (job,) = run.of_type("kubernetes:sagemaker.amazonaws.com/v1:HyperPodPyTorchJob")
    assert job.inputs["spec"]["replicaSpecs"][0]["replicas"] == 2


# --- TrainingJobArgs from Python: one line naming the argument ---------------------------------

ARGS_ERRORS = [
    (
        {"engine": "eks", "instance_type": "p5.48xlarge", "nodes": 8, "max_nodes": 4},
        "TrainingJobArgs.nodes: 8 is outside min..max nodes (8..4)",
    ),
    (
        {"engine": "eks", "instance_type": "p5.48xlarge", "nodes": 1, "min_nodes": 2},
        "TrainingJobArgs.nodes: 1 is outside min..max nodes (2..1)",
    ),
    (
        {"engine": "eks", "instance_type": "ml.p5.48xlarge"},
        "TrainingJobArgs.instance_type: EKS node groups use EC2 names (no ml. prefix)",
    ),
    (
        {"instance_type": "ml.m5.xlarge"},
        "TrainingJobArgs.instance_type: 'ml.m5.xlarge' is not a GPU instance type",
    ),
    (
        {"recipe": "llama9"},
        "TrainingJobArgs.recipe: 'llama9' is not a recipe of training/configs (known: llama3-1b, ",
    ),
    (
        {"overrides": {"max_stepz": 10}},
        "TrainingJobArgs.overrides.max_stepz: not a setting of the trainer "
        "(did you mean 'max_steps'?)",
    ),
    (
        {"overrides": {"max_steps": "ten"}},
        "TrainingJobArgs.overrides.max_steps: 'ten' is not an integer",
    ),
    (
        {"overrides": {"compile": "sometimes"}},
        "TrainingJobArgs.overrides.compile: 'sometimes' is not true or false",
    ),
    (
        {"overrides": {"max_steps": True}},
        "TrainingJobArgs.overrides.max_steps: True is not an integer",
    ),
    (
        {"overrides": {"max_steps": 0}},
        "TrainingJobArgs.overrides.max_steps: 0 must be >= 1",
    ),
    (
        {"overrides": {"lr_schedule": "step"}},
        "TrainingJobArgs.overrides.lr_schedule: 'step' is not one of cosine, linear, constant",
    ),
    (
        {"overrides": {"model": "gpt-5"}},
        "TrainingJobArgs.overrides.model: 'gpt-5' is not one of tiny, small, llama3-1b,",
    ),
    (
        {"overrides": {"batch_size": 100}},
        "TrainingJobArgs.overrides.batch_size: 100 is not divisible by world size 16",
    ),
    (
        {"nodes": 3},
        "TrainingJobArgs.nodes: --batch-size: 512 is not divisible by world size 24",
    ),
    (
        {"overrides": {"checkpoint_interval": 10}},
        "TrainingJobArgs.overrides.checkpoint_interval: is set by the job "
        "(use the job's checkpoint interval setting)",
    ),
    (
        {"overrides": {"checkpoint_s3_uri": "s3://elsewhere/x"}},
        "TrainingJobArgs.overrides.checkpoint_s3_uri: is set by the job",
    ),
    (
        {"env": {"BAD-NAME": "1"}},
        "TrainingJobArgs.env: 'BAD-NAME' is not an environment variable name",
    ),
    (
        {"env": {"NCCL_DEBUG": 1}},
        "TrainingJobArgs.env.NCCL_DEBUG: expected a string, got 1",
    ),
    # The host directory mounted writable into the trainer (and chowned by root): never / or
    # a system directory, only the instance-store mount points.
    (
        {"nvme_host_path": "/"},
        "TrainingJobArgs.nvme_host_path: '/' is not an instance-store mount "
        "(under /opt/dlami/nvme or /mnt/k8s-disks)",
    ),
    (
        {"nvme_host_path": "/opt/dlami/nvme/../../../etc"},
        "TrainingJobArgs.nvme_host_path: '/opt/dlami/nvme/../../../etc' is not an instance-store "
        "mount (under /opt/dlami/nvme or /mnt/k8s-disks)",
    ),
    (
        {"name": "Llama_8B"},
        "TrainingJobArgs.name: 'Llama_8B' is not a Kubernetes name",
    ),
    (
        {"engine": "slurm"},
        "TrainingJobArgs.engine: 'slurm' is not one of 'hyperpod' or 'eks'",
    ),
    (
        {"min_nodes": 1},
        "TrainingJobArgs.min_nodes: elastic bounds are for engine eks",
    ),
    (
        {"nodes": 0},
        "TrainingJobArgs.nodes: 0 is out of range (must be >= 1)",
    ),
    (
        {"image": None},
        "TrainingJobArgs.image: expected a string, got None",
    ),
]


@pytest.mark.parametrize(("settings", "message"), ARGS_ERRORS)
def test_bad_args_from_python_are_one_line_naming_the_argument(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ArgsError) as error:
        job_args(**settings)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_a_mapping_with_a_bad_value_is_the_same_one_line_error() -> None:
    with pytest.raises(ArgsError, match=r"^TrainingJobArgs\.overrides\.max_stepz: not a setting"):
        TrainingJob("bad", {**HP_SETTINGS, **WIRED, "overrides": {"max_stepz": 1}})  # type: ignore[arg-type]


def test_overrides_take_the_trainers_types_and_spelling() -> None:
    # YAML reads `3e-4` as a string and `max-steps` is the trainer's flag spelling: the
    # ConfigMap gets what the trainer would make of them.
    args = job_args(overrides={"lr": "3e-4", "max-steps": "200", "compile": "true"})
    assert args.overrides == {"lr": 0.0003, "max_steps": 200, "compile": True}
    assert args.recipe_content()["max_steps"] == 200


def test_args_are_the_settings_plus_wired_inputs_and_nothing_else() -> None:
    settings = {f for f in tm.TrainingJobSettings.__pydantic_fields__}
    args = set(TrainingJobArgs.__pydantic_fields__)
    assert args - settings == set(WIRED)


def test_validating_a_job_does_not_import_torch() -> None:
    # Plan-time checks run where the trainer's dependencies are not installed.
    code = (
        "import sys; from mlplatform.components.training_manifests import TrainingJobSettings;"
        "TrainingJobSettings(name='j', engine='eks', instance_type='g5.12xlarge',"
        " recipe='tiny-cpu', overrides={'max_steps': 5});"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "False"


# --- the schema other Pulumi languages see ------------------------------------------------------

TRAINING_JOB_INPUTS = {
    "name": False,
    "engine": False,
    "instanceType": False,
    "recipe": False,
    "overrides": True,
    "nodes": True,
    "minNodes": True,
    "maxNodes": True,
    "hyperpodCluster": True,
    "namespace": True,
    "maxRetries": True,
    "checkpointInterval": True,
    "shmSizeGib": True,
    "requireDeepHealthCheck": True,
    "env": True,
    "efa": True,
    "startTimeoutSeconds": True,
    "hangTimeoutSeconds": True,
    "nvmeHostPath": True,
    "image": False,
    "oidcProviderArn": False,
    "oidcProviderUrl": False,
    "datasetsBucketArn": False,
    "modelsBucketArn": False,
    "modelsBucketName": False,
    "kmsKeyArn": False,
}
CONTAINER_IMAGE_INPUTS = {
    "context": False,
    "dockerfile": True,
    "buildArgs": True,
    "kmsKeyArn": True,
    "keepImages": True,
    "untaggedDays": True,
    "platform": True,
    "forceDelete": True,
    "tag": True,
}


def test_the_analyzer_infers_the_schema_of_training_job_and_container_image() -> None:
    """Inputs (name -> optional) and outputs as TypeScript, Go or YAML programs see them."""
    result = Analyzer("mlplatform").analyze([TrainingJob, ContainerImage])
    components = result["component_definitions"]
    job, image = components["TrainingJob"], components["ContainerImage"]
    assert {k: bool(p.optional) for k, p in job.inputs.items()} == TRAINING_JOB_INPUTS
    assert {k: bool(p.optional) for k, p in image.inputs.items()} == CONTAINER_IMAGE_INPUTS
    assert set(job.outputs) == {"roleArn", "checkpointS3Uri"}
    assert set(image.outputs) == {"repositoryUrl", "repositoryArn", "tag", "digest", "imageRef"}
    for outputs in (job.outputs, image.outputs):
        assert all(p.description for p in outputs.values())
    # Values another program computes (another image's ref, a bucket's ARN) are Inputs.
    assert job.inputs["image"].plain is None and image.inputs["buildArgs"].plain
    assert image.inputs["buildArgs"].additional_properties.plain is None
    engine = result["type_definitions"]["TrainingEngine"]
    assert [e.value for e in engine.enum or []] == ["hyperpod", "eks"]
    platform = result["type_definitions"]["ImagePlatform"]
    assert [e.value for e in platform.enum or []] == ["linux/amd64", "linux/arm64"]


# --- config: mlplatform:trainingJobs ------------------------------------------------------------

HP_CLUSTER = {
    "name": "train",
    "instanceGroups": [{"name": "p5", "instanceType": "ml.p5.48xlarge", "count": 4}],
}
EKS = {
    "gpuNodeGroups": [
        {"name": "train", "instanceTypes": ["p4d.24xlarge"], "efa": True, "maxSize": 4},
        {"name": "gpu", "instanceTypes": ["g5.12xlarge"], "maxSize": 2},
    ]
}
# The stack the jobs below run on: its EKS cluster, and a HyperPod cluster whose nodes join it.
JOB_STACK = {
    **MINIMAL,
    "mlplatform:vpcEndpoints": ["sts", "ecr.api", "ecr.dkr", "sagemaker.api", "eks-auth"],
    "mlplatform:eks": EKS,
    "mlplatform:hyperpodClusters": [HP_CLUSTER],
}
HP_JOB = {
    "name": "llama",
    "engine": "hyperpod",
    "instanceType": "ml.p5.48xlarge",
    "nodes": 4,
    "recipe": "llama3-8b",
}
EKS_JOB = {"name": "smoke", "engine": "eks", "instanceType": "g5.12xlarge", "recipe": "tiny-cpu"}


def parse_jobs(jobs: list[Any], **overrides: Any) -> Any:
    raw = {**JOB_STACK, **overrides, "mlplatform:trainingJobs": jobs}
    return parse_stack_config(raw, "Pulumi.test.yaml")


def test_training_jobs_are_empty_by_default() -> None:
    assert parse_stack_config(MINIMAL, "Pulumi.test.yaml").training_jobs == ()


def test_a_job_gets_its_recipe_with_overrides() -> None:
    job = {**HP_JOB, "overrides": {"max_steps": 10, "data": "/fsx/data/mine"}}
    (parsed,) = parse_jobs([job]).training_jobs
    recipe = parsed.recipe_content()
    assert recipe["max_steps"] == 10 and recipe["data"] == "/fsx/data/mine"
    assert recipe["model"] == "llama3-8b"  # the rest comes from training/configs/llama3-8b.yaml


TRAINING_JOB_ERRORS = [
    (
        [{**HP_JOB, "recipe": "llama9"}],
        "mlplatform:trainingJobs[0].recipe: 'llama9' is not a recipe of training/configs (known: ",
    ),
    (
        [{**HP_JOB, "instanceType": "ml.m5.xlarge"}],
        "mlplatform:trainingJobs[0].instanceType: 'ml.m5.xlarge' is not a GPU instance type",
    ),
    (
        [{**HP_JOB, "instanceType": "p5.48xlarge"}],
        "mlplatform:trainingJobs[0].instanceType: HyperPod instance types are ml.* names",
    ),
    (
        [{**HP_JOB, "instanceType": "ml.g5.12xlarge"}],
        "mlplatform:trainingJobs[0].instanceType: HyperPod cluster 'train' has no ml.g5.12xlarge nodes",
    ),
    (
        [{**HP_JOB, "nodes": 8}],
        "mlplatform:trainingJobs[0].nodes: 8 is more than the 4 ml.p5.48xlarge nodes of HyperPod cluster 'train'",
    ),
    (
        [{**HP_JOB, "hyperpodCluster": "other"}],
        "mlplatform:trainingJobs[0].hyperpodCluster: 'other' is not a HyperPod cluster on the stack's EKS cluster",
    ),
    (
        [{**HP_JOB, "minNodes": 2}],
        "mlplatform:trainingJobs[0].minNodes: elastic bounds are for engine eks",
    ),
    (
        [HP_JOB, HP_JOB],
        "mlplatform:trainingJobs[1].name: 'llama' is used twice",
    ),
    (
        [{**HP_JOB, "name": "Llama_8B"}],
        "mlplatform:trainingJobs[0].name: 'Llama_8B' is not a Kubernetes name",
    ),
    (
        [{**HP_JOB, "engine": "slurm"}],
        "mlplatform:trainingJobs[0].engine: 'slurm' is not one of 'hyperpod' or 'eks'",
    ),
    (
        [{**HP_JOB, "engine": "eks", "instanceType": "ml.p5.48xlarge"}],
        "mlplatform:trainingJobs[0].instanceType: EKS node groups use EC2 names (no ml. prefix)",
    ),
    (
        [{**HP_JOB, "engine": "eks", "instanceType": "p5.48xlarge", "minNodes": 5}],
        "mlplatform:trainingJobs[0].nodes: 4 is outside min..max nodes (5..4)",
    ),
    (
        [{**EKS_JOB, "instanceType": "p5.48xlarge"}],
        "mlplatform:trainingJobs[0].instanceType: the EKS GPU node groups have no p5.48xlarge nodes",
    ),
    (
        [{**EKS_JOB, "maxNodes": 3}],
        "mlplatform:trainingJobs[0].maxNodes: 3 is more than the 2 g5.12xlarge nodes of the EKS GPU node groups",
    ),
    (
        [{**HP_JOB, "env": {"BAD-NAME": "1"}}],
        "mlplatform:trainingJobs[0].env: 'BAD-NAME' is not an environment variable name",
    ),
    (
        [{**HP_JOB, "maxRetry": 3}],
        "mlplatform:trainingJobs[0].maxRetry: is not a known key (did you mean 'maxRetries'?)",
    ),
    # recipe and overrides against the trainer's own config (training.config.TrainConfig)
    (
        [{**HP_JOB, "overrides": {"maxSteps": 10}}],
        "mlplatform:trainingJobs[0].overrides.maxSteps: not a setting of the trainer "
        "(did you mean 'max_steps'?)",
    ),
    (
        [{**HP_JOB, "overrides": {"max_steps": "ten"}}],
        "mlplatform:trainingJobs[0].overrides.max_steps: 'ten' is not an integer",
    ),
    (
        [{**HP_JOB, "overrides": {"warmup_steps": -1}}],
        "mlplatform:trainingJobs[0].overrides.warmup_steps: -1 must be >= 0",
    ),
    (
        [{**HP_JOB, "overrides": {"sharding": "zero3"}}],
        "mlplatform:trainingJobs[0].overrides.sharding: 'zero3' is not one of full, hybrid",
    ),
    (
        [{**HP_JOB, "overrides": {"checkpointInterval": 5}}],
        "mlplatform:trainingJobs[0].overrides.checkpointInterval: not a setting of the trainer",
    ),
    (
        [{**HP_JOB, "overrides": {"metrics_file": "/fsx/m.jsonl"}}],
        "mlplatform:trainingJobs[0].overrides.metrics_file: is set by the job",
    ),
    (
        [{**HP_JOB, "env": {"NCCL_DEBUG": ["INFO"]}}],
        "mlplatform:trainingJobs[0].env.NCCL_DEBUG: expected a string, got ['INFO']",
    ),
]


@pytest.mark.parametrize(("jobs", "message"), TRAINING_JOB_ERRORS)
def test_training_job_mistakes_are_one_line_naming_the_key(jobs: list[Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_jobs(jobs)
    assert str(error.value).startswith(f"Pulumi.test.yaml: {message}")
    assert "\n" not in str(error.value)


def test_jobs_need_the_stacks_eks_cluster() -> None:
    with pytest.raises(ConfigError, match=r"trainingJobs\[0\]: needs the stack's EKS cluster"):
        parse_jobs([EKS_JOB], **{"mlplatform:eks": None, "mlplatform:hyperpodClusters": []})


def test_a_hyperpod_job_needs_a_hyperpod_cluster_to_run_on() -> None:
    with pytest.raises(
        ConfigError, match=r"trainingJobs\[0\].hyperpodCluster: is required: the stack has 0"
    ):
        parse_jobs([HP_JOB], **{"mlplatform:hyperpodClusters": []})


def test_a_hyperpod_cluster_in_another_eks_cluster_cannot_run_the_stacks_jobs() -> None:
    elsewhere = {**HP_CLUSTER, "eksClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/x"}
    with pytest.raises(ConfigError, match="'train' is not a HyperPod cluster on the stack's EKS"):
        parse_jobs(
            [{**HP_JOB, "hyperpodCluster": "train"}],
            **{"mlplatform:hyperpodClusters": [elsewhere]},
        )


# --- the real production stack ---------------------------------------------------------------


def test_production_builds_the_training_image_into_its_own_encrypted_repository(
    production: ProgramRun,
) -> None:
    (component,) = [
        r
        for r in production.of_type("mlplatform:index:ContainerImage")
        if r.name == "mlplatform-production-training"
    ]
    repo = production.named("mlplatform-production-training-repo")
    assert repo.parent == component.urn
    assert repo.inputs["encryptionConfigurations"][0]["kmsKey"] == production.outputs["kmsKeyArn"]
    image = production.named("mlplatform-production-training-image")
    # paths relative to the project, as `pulumi up` runs from it: the context is its root
    assert image.inputs["dockerfile"]["location"] == "docker/training/Dockerfile"
    assert image.inputs["context"]["location"] == "."
    (tag,) = image.inputs["tags"]
    assert tag.endswith(":" + training_image_tag())
    assert image.inputs["push"] is True and image.inputs["cacheFrom"]


def test_production_runs_the_example_job_by_the_pushed_digest(production: ProgramRun) -> None:
    (job,) = production.of_type("kubernetes:sagemaker.amazonaws.com/v1:HyperPodPyTorchJob")
    (template,) = tm.pod_templates(job.inputs)
    image = template["spec"]["containers"][0]["image"]
    assert image == production.outputs["trainingImage"]
    assert "@sha256:" in image
    assert job.inputs["metadata"] == {
        "name": "llama3-8b-smoke",
        "namespace": "training",
        "labels": job.inputs["metadata"]["labels"],
    }
    assert job.inputs["spec"]["replicaSpecs"][0]["replicas"] == 2
    (recipe,) = [
        r
        for r in production.of_type("kubernetes:core/v1:ConfigMap")
        if r.name == "mlplatform-production-llama3-8b-smoke-recipe"
    ]
    content = yaml.safe_load(recipe.inputs["data"]["recipe.yaml"])
    assert content["model"] == "llama3-8b" and content["data"] == "synthetic"
    assert production.outputs["trainingJobs"]["llama3-8b-smoke"]["checkpoints"].endswith(
        "/checkpoints/llama3-8b-smoke/"
    )


def test_the_example_job_waits_for_its_hyperpod_cluster_and_namespace(
    production: ProgramRun,
) -> None:
    component = production.named(
        "mlplatform-production-llama3-8b-smoke", "mlplatform:index:TrainingJob"
    )
    # Depending on a component means depending on its children: here the operator add-on that
    # installs the HyperPodPyTorchJob CRD.
    operator = production.named(
        "mlplatform-production-train-amazon-sagemaker-hyperpod-training-operator"
    )
    namespace = production.named("mlplatform-production-ns-training")
    assert {operator.urn, namespace.urn} <= set(component.depends_on)


def test_staging_has_no_training_jobs_and_builds_no_training_image(staging: ProgramRun) -> None:
    assert not staging.of_type("mlplatform:index:TrainingJob")
    assert "trainingImage" not in staging.outputs
