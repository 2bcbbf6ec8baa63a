"""Training job manifests (components/training_manifests.py): both engines, rendered and validated."""

from __future__ import annotations

import copy
import dataclasses
import importlib.metadata
import importlib.util
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mlplatform.components import training_manifests as tm
from mlplatform.components.schema import ArgsError
from mlplatform.training.recipes import load_recipe

DIGEST = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlplatform-training@sha256:" + "ab" * 32
OVERRIDES = {"max_steps": 1000, "sharding": "hybrid", "replicate_degree": 2}
K8S_VERSION = "1.33"


def spec(**overrides: Any) -> tm.TrainingJobSpec:
    engine = overrides.get("engine", "hyperpod")
    values: dict[str, Any] = {
        "name": "llama3-8b-pretrain",
        "engine": engine,
        "image": DIGEST,
        # HyperPod names its node types ml.*; EKS node groups use the EC2 names.
        "instance_type": "ml.p5.48xlarge" if engine == "hyperpod" else "p5.48xlarge",
        "nodes": 4,
        "recipe": "llama3-8b",
        "overrides": OVERRIDES,
        "models_bucket": "mlplatform-production-models-abc1234",
        "service_account": "llama3-8b-pretrain",
    }
    return tm.TrainingJobSpec(**{**values, **overrides})


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    (template,) = tm.pod_templates(manifest)
    (main,) = template["spec"]["containers"]
    return main


def env_of(manifest: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(manifest)["env"]}


@pytest.mark.parametrize("engine", tm.ENGINES)
def test_a_p5_job_asks_for_every_gpu_and_efa_interface_of_its_node(engine: str) -> None:
    main = container(tm.job(spec(engine=engine)))
    assert main["resources"]["limits"] == {"nvidia.com/gpu": 8, "vpc.amazonaws.com/efa": 32}
    assert main["resources"]["requests"] == main["resources"]["limits"]


def test_a_node_type_without_efa_asks_for_gpus_only() -> None:
    # one GPU: no hybrid replicas (the trainer would refuse replicate_degree 2 on it)
    main = container(tm.job(spec(engine="eks", instance_type="g5.2xlarge", nodes=1, overrides={})))
    assert main["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert not any(e["name"].startswith("FI_") for e in main["env"])


def test_nodes_without_efa_attached_get_no_efa_request_nor_environment() -> None:
    main = container(tm.job(spec(engine="eks", instance_type="p4d.24xlarge", efa=False)))
    assert main["resources"]["limits"] == {"nvidia.com/gpu": 8}
    assert not any(e["name"].startswith("FI_") for e in main["env"])


def test_efa_environment_comes_from_the_training_cores_table() -> None:
    p5 = tm.efa_environment("ml.p5.48xlarge", 32)
    assert p5["FI_PROVIDER"] == "efa" and p5["FI_EFA_USE_DEVICE_RDMA"] == "1"
    assert p5["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "1"
    g5 = tm.efa_environment("g5.12xlarge", 1)
    assert g5["FI_PROVIDER"] == "efa" and "FI_EFA_USE_DEVICE_RDMA" not in g5
    assert "FI_PROVIDER" not in tm.efa_environment("p4d.24xlarge", 0)  # none attached
    assert tm.efa_environment("m5.xlarge", 0) == {}  # CPU: nothing to set


def test_the_job_carries_the_environment_the_trainer_would_compute() -> None:
    from mlplatform.training.efa import NodeFacts, efa_env

    expected = efa_env(NodeFacts("p5.48xlarge", efa_devices=32, has_cuda=True)).env
    env = env_of(tm.job(spec()))
    assert {k: env[k] for k in expected} == expected


def test_user_environment_wins_over_the_efa_defaults() -> None:
    env = env_of(tm.job(spec(env={"FI_EFA_USE_HUGE_PAGE": "1", "NCCL_DEBUG": "INFO"})))
    assert env["FI_EFA_USE_HUGE_PAGE"] == "1" and env["NCCL_DEBUG"] == "INFO"


@pytest.mark.parametrize("engine", tm.ENGINES)
def test_tier1_checkpoints_live_on_the_node_nvme_and_tier2_under_the_job_prefix(
    engine: str,
) -> None:
    manifest = tm.job(spec(engine=engine))
    (template,) = tm.pod_templates(manifest)
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["nvme"]["hostPath"]["path"] == tm.NVME_HOST_PATHS[engine]
    mounts = {m["name"]: m["mountPath"] for m in container(manifest)["volumeMounts"]}
    assert mounts["nvme"] == "/checkpoints"
    args = container(manifest)["args"]
    assert args[args.index("--checkpoint-dir") + 1] == "/checkpoints/llama3-8b-pretrain"
    assert args[args.index("--metrics-file") + 1] == "/checkpoints/llama3-8b-pretrain/metrics.jsonl"
    assert args[args.index("--instance-type") + 1] == "p5.48xlarge"
    assert (
        env_of(manifest)["MLPLATFORM_CHECKPOINT_S3_URI"]
        == "s3://mlplatform-production-models-abc1234/checkpoints/llama3-8b-pretrain/"
    )


def test_the_tier1_directory_is_handed_to_the_image_user_by_a_chown_only_init_container() -> None:
    (template,) = tm.pod_templates(tm.job(spec()))
    (init,) = template["spec"]["initContainers"]
    assert init["command"][-1] == "/checkpoints/llama3-8b-pretrain"
    assert init["command"][:6] == ["install", "-d", "-o", "10001", "-g", "10001"]
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
    assert init["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("engine", tm.ENGINES)
def test_shared_memory_is_an_in_memory_volume_of_the_configured_size(engine: str) -> None:
    manifest = tm.job(spec(engine=engine, shm_size_gib=128))
    (template,) = tm.pod_templates(manifest)
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "128Gi"}
    mounts = {m["name"]: m["mountPath"] for m in container(manifest)["volumeMounts"]}
    assert mounts["dshm"] == "/dev/shm"


@pytest.mark.parametrize("engine", tm.ENGINES)
def test_the_trainer_runs_unprivileged_as_the_image_user(engine: str) -> None:
    manifest = tm.job(spec(engine=engine))
    (template,) = tm.pod_templates(manifest)
    context = container(manifest)["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert template["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert template["spec"]["serviceAccountName"] == "llama3-8b-pretrain"


def test_the_recipe_comes_from_a_config_map_mounted_read_only() -> None:
    job_spec = spec()
    config_map = tm.recipe_config_map(job_spec)
    assert yaml.safe_load(config_map["data"]["recipe.yaml"]) == {
        **load_recipe("llama3-8b"),
        **OVERRIDES,
    }
    manifest = tm.job(job_spec)
    (template,) = tm.pod_templates(manifest)
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["recipe"]["configMap"]["name"] == config_map["metadata"]["name"]
    mount = next(m for m in container(manifest)["volumeMounts"] if m["name"] == "recipe")
    assert mount["readOnly"] is True
    args = container(manifest)["args"]
    assert args[args.index("--config") + 1] == f"{mount['mountPath']}/recipe.yaml"


def test_hyperpod_job_launches_hyperpodrun_with_one_rank_per_gpu() -> None:
    manifest = tm.hyperpod_job(spec())
    assert manifest["apiVersion"] == "sagemaker.amazonaws.com/v1"
    assert manifest["kind"] == "HyperPodPyTorchJob"
    assert manifest["spec"]["nprocPerNode"] == "8"
    assert manifest["spec"]["replicaSpecs"][0]["replicas"] == 4
    command = container(manifest)["command"]
    assert command[0] == "hyperpodrun"
    assert "--nnodes=4" in command and "--nproc-per-node=8" in command
    assert command[-2:] == ["-m", "training.train"]


def test_hyperpod_job_retries_and_watches_the_loss_line_for_start_and_hangs() -> None:
    policy = tm.hyperpod_job(spec(max_retries=5, hang_timeout_seconds=300))["spec"]["runPolicy"]
    assert policy["jobMaxRetryCount"] == 5
    assert policy["restartPolicy"]["maxFullJobRestarts"] == 5
    rules = {rule["name"]: rule for rule in policy["logMonitoringConfiguration"]}
    assert rules["JobStart"]["logPattern"] == ".*Loss:.*"
    assert rules["JobStart"]["expectedStartCutOffInSeconds"] == 1200
    assert rules["JobHangingDetection"]["logPattern"] == ".*Loss:.*"
    assert rules["JobHangingDetection"]["expectedRecurringFrequencyInSeconds"] == 300


def test_the_loss_pattern_matches_the_trainers_log_line() -> None:
    import re

    line = "step=12 Loss: 3.4172 lr=3.0e-04 grad_norm=1.02 tokens/s=91234 tflops=402.1 mfu=40.6%"
    assert re.fullmatch(tm.LOSS_PATTERN, line)


def test_hyperpod_pods_land_only_on_healthy_nodes_of_the_instance_type() -> None:
    manifest = tm.hyperpod_job(spec())
    (template,) = tm.pod_templates(manifest)
    affinity = template["spec"]["affinity"]["nodeAffinity"]
    (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    required = {e["key"]: e["values"] for e in term["matchExpressions"]}
    assert required == {
        "node.kubernetes.io/instance-type": ["ml.p5.48xlarge"],
        "sagemaker.amazonaws.com/node-health-status": ["Schedulable"],
    }
    (preferred,) = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["preference"]["matchExpressions"][0]["key"] == tm.DEEP_HEALTH_LABEL


def test_hyperpod_can_require_a_passed_deep_health_check() -> None:
    (template,) = tm.pod_templates(tm.hyperpod_job(spec(require_deep_health_check=True)))
    affinity = template["spec"]["affinity"]["nodeAffinity"]
    (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert {e["key"] for e in term["matchExpressions"]} >= {tm.DEEP_HEALTH_LABEL}
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in affinity


def test_eks_job_is_elastic_with_c10d_rendezvous() -> None:
    manifest = tm.pytorch_job(
        spec(engine="eks", instance_type="p4d.24xlarge", min_nodes=2, nodes=4, max_nodes=8)
    )
    assert manifest["apiVersion"] == "kubeflow.org/v1" and manifest["kind"] == "PyTorchJob"
    assert manifest["spec"]["elasticPolicy"] == {
        "rdzvBackend": "c10d",
        "minReplicas": 2,
        "maxReplicas": 8,
        "maxRestarts": 3,
    }
    worker = manifest["spec"]["pytorchReplicaSpecs"]["Worker"]
    assert worker["replicas"] == 4 and worker["restartPolicy"] == "OnFailure"
    assert container(manifest)["command"] == [
        "torchrun",
        "--nproc-per-node=8",
        "-m",
        "training.train",
    ]
    (template,) = tm.pod_templates(manifest)
    term = template["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["p4d.24xlarge"]}
    ]
    assert template["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_service_account_carries_the_irsa_role_and_mounts_no_api_token() -> None:
    account = tm.service_account(spec(), "arn:aws:iam::123456789012:role/job")
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/job"
    }
    assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"image": "repo/training:latest"},
            "TrainingJobSpec.image: 'repo/training:latest' is not referenced by digest "
            "(repo@sha256:...)",
        ),
        ({"name": "Bad_Name"}, "TrainingJobSpec.name: 'Bad_Name' is not a Kubernetes name"),
        ({"engine": "slurm"}, "TrainingJobSpec.engine: 'slurm' is not one of 'hyperpod' or 'eks'"),
        (
            {"engine": "eks", "min_nodes": 5},
            "TrainingJobSpec.nodes: 4 is outside min..max nodes (5..4)",
        ),
        (
            {"engine": "eks", "max_nodes": 2},
            "TrainingJobSpec.nodes: 4 is outside min..max nodes (4..2)",
        ),
        ({"models_bucket": None}, "TrainingJobSpec.models_bucket: expected a string, got None"),
    ],
)
def test_specs_that_cannot_run_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ArgsError) as error:
        spec(**overrides)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", tm.ENGINES)
def test_every_rendered_core_object_passes_kubernetes_validate_strictly(engine: str) -> None:
    objects = tm.render(spec(engine=engine), "arn:aws:iam::123456789012:role/job")
    core = [o for o in objects if o["apiVersion"] == "v1"]
    assert [o["kind"] for o in core] == ["ServiceAccount", "ConfigMap"]
    for obj in core:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    # The pod template inside the custom resource is a core PodTemplateSpec: validate it as a Pod.
    for template in tm.pod_templates(objects[-1]):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **template["metadata"]}}
        kubernetes_validate.validate({**pod, "spec": template["spec"]}, K8S_VERSION, strict=True)


def test_kubernetes_validate_would_catch_a_broken_pod_template() -> None:
    (template,) = tm.pod_templates(tm.job(spec()))
    template["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = [8]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": template["spec"]}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


@pytest.mark.parametrize("engine", tm.ENGINES)
def test_rendered_jobs_are_structurally_sound(engine: str) -> None:
    assert tm.check_job_structure(tm.job(spec(engine=engine))) == []


@pytest.mark.parametrize(
    ("engine", "path", "value", "problem"),
    [
        (
            "hyperpod",
            ("spec", "runPolicy", "maxRetries"),
            3,
            "spec.runPolicy.maxRetries is not a known field",
        ),
        ("hyperpod", ("spec", "runPolicy", "cleanPodPolicy"), "Some", "cleanPodPolicy not one of"),
        ("hyperpod", ("spec", "nprocPerNode"), 8, "nprocPerNode must be a number as a string"),
        ("eks", ("spec", "elasticPolicy", "rdzvBackend"), "static", "rdzvBackend is not c10d"),
        ("eks", ("spec", "pytorchReplicaSpecs", "Workers"), {}, "Workers is not a known field"),
        ("eks", ("apiVersion",), "kubeflow.org/v2", "apiVersion 'kubeflow.org/v2'"),
    ],
)
def test_the_structural_check_finds_what_the_api_server_would_prune_or_refuse(
    engine: str, path: tuple[str, ...], value: Any, problem: str
) -> None:
    manifest = copy.deepcopy(tm.job(spec(engine=engine)))
    node = manifest
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    problems = tm.check_job_structure(manifest)
    assert any(problem in p for p in problems), problems


def test_hyperpod_log_rules_need_a_name() -> None:
    manifest = tm.job(spec())
    del manifest["spec"]["runPolicy"]["logMonitoringConfiguration"][0]["name"]
    assert tm.check_job_structure(manifest) == [
        "spec.runPolicy.logMonitoringConfiguration[0] needs name, logPattern"
    ]


def test_spec_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec().nodes = 8  # type: ignore[misc]


def _hyperpod_sdk_job_model() -> Any:
    """The HyperPodPyTorchJob spec model published in `sagemaker-hyperpod`, if installed.

    Not a dev dependency: sagemaker-hyperpod pins old pytest and ruff. Its spec model is one
    pydantic-only file (generated from the CRD), loaded here by path to skip the SDK's imports.
    """
    try:
        dist = importlib.metadata.distribution("sagemaker-hyperpod")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = dist.locate_file(
        "sagemaker/hyperpod/training/config/hyperpod_pytorch_job_unified_config.py"
    )
    module_spec = importlib.util.spec_from_file_location("hyperpod_job_model", str(path))
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module._HyperPodPytorchJob


def test_hyperpod_job_spec_validates_against_the_published_sdk_model() -> None:
    model = _hyperpod_sdk_job_model()
    if model is None:
        pytest.skip("sagemaker-hyperpod not installed (pip install --no-deps sagemaker-hyperpod)")
    for job_spec in (spec(), spec(instance_type="ml.g5.12xlarge", require_deep_health_check=True)):
        model.model_validate(tm.hyperpod_job(job_spec)["spec"], by_name=True)
    broken = tm.hyperpod_job(spec())
    broken["spec"]["runPolicy"]["maxRetries"] = 3
    with pytest.raises(ValueError, match="maxRetries"):
        model.model_validate(broken["spec"], by_name=True)
