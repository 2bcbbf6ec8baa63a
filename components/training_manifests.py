"""Kubernetes manifests of a training job, rendered from plain values by pure functions.

Two engines run the same image and the same `python -m training.train`:

- `hyperpod`: a `HyperPodPyTorchJob` (`sagemaker.amazonaws.com/v1`) for HyperPod's training
  operator. `hyperpodrun` (torchrun plus the operator's agent) launches the ranks; the run policy
  retries and restarts the job, log monitoring on the `Loss:` line detects a job that never starts
  or hangs, and node affinity keeps pods on nodes HyperPod's health checks mark schedulable.
- `eks`: a Kubeflow `PyTorchJob` (`kubeflow.org/v1`) with an elastic policy: c10d rendezvous,
  min/max nodes, torchrun restarts.

Both: the image by digest, all GPUs and EFA interfaces of the node type (from the catalog),
`/dev/shm` in memory, the node's NVMe as the tier-1 checkpoint directory `/checkpoints/<job>`,
the S3 tier at `s3://<models bucket>/checkpoints/<job>/`, a service account (IRSA, made by the
TrainingJob component) and the recipe YAML from a ConfigMap.

`TrainingJobSettings` is what a job is, declared once: a stack file's `trainingJobs` entries and
the TrainingJob component's Args are these settings, and its `recipe` and `overrides` are checked
against the trainer's own config at plan time. Everything else here is data in, dicts out: the
TrainingJob component feeds a `TrainingJobSpec` (settings plus resolved Outputs) to `render`,
tests call it directly, and `check_job_structure` is our structural check of the two custom
resources (kubernetes-validate knows core objects only).
"""

import dataclasses
import enum
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from pydantic import Field, field_validator, model_validator

from mlplatform.components.catalog import efa_interfaces, gpus_per_instance
from mlplatform.components.schema import SettingError, schema, settings_of
from mlplatform.training.efa import NodeFacts, efa_env
from mlplatform.training.recipes import load_recipe, recipe_names


class TrainingEngine(enum.StrEnum):
    """What runs a training job: HyperPod's training operator, or Kubeflow's on the EKS nodes."""

    HYPERPOD = "hyperpod"
    """A `HyperPodPyTorchJob` on the nodes of a HyperPod cluster that joins the EKS cluster."""
    EKS = "eks"
    """An elastic Kubeflow `PyTorchJob` on the EKS cluster's GPU node groups."""


ENGINES: tuple[TrainingEngine, ...] = tuple(TrainingEngine)
# The job object each engine runs: (apiVersion, kind).
JOB_KINDS: dict[TrainingEngine, tuple[str, str]] = {
    TrainingEngine.HYPERPOD: ("sagemaker.amazonaws.com/v1", "HyperPodPyTorchJob"),
    TrainingEngine.EKS: ("kubeflow.org/v1", "PyTorchJob"),
}

RECIPE_DIR = "/etc/mlplatform/recipe"
RECIPE_FILE = "recipe.yaml"
CHECKPOINT_MOUNT = "/checkpoints"
# The image's unprivileged user (docker/training/Dockerfile).
IMAGE_UID = 10001
# Where the node's instance-store NVMe is mounted: HyperPod mounts it at /opt/dlami/nvme; the EKS
# AL2023 AMI (nodeadm localStorage RAID0) at /mnt/k8s-disks/0.
# The only host directories a job may mount for its tier-1 checkpoints.
NVME_ROOTS = ("/opt/dlami/nvme", "/mnt/k8s-disks")
NVME_HOST_PATHS: dict[TrainingEngine, str] = {
    TrainingEngine.HYPERPOD: "/opt/dlami/nvme",
    TrainingEngine.EKS: "/mnt/k8s-disks/0",
}
# HyperPod's health agents label nodes; unhealthy ones are also tainted.
HEALTH_LABEL = "sagemaker.amazonaws.com/node-health-status"
DEEP_HEALTH_LABEL = "sagemaker.amazonaws.com/deep-health-check-status"
# The line the trainer logs every step (training/metrics); HyperPod's hang detection keys on it.
LOSS_PATTERN = ".*Loss:.*"
# hyperpodrun's agent endpoint that the operator talks to.
HYPERPOD_AGENT_PORT = 8080

# Job names and namespaces: Kubernetes names short enough for the objects derived from them.
_KUBERNETES_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IMAGE_BY_DIGEST = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")
# Trainer settings the job decides (`training_arguments`, `environment`): flags win over the
# recipe, so an override of one would be silently ignored.
_SET_BY_THE_JOB = {
    "checkpoint_dir": "tier-1 checkpoints go to the node's NVMe, /checkpoints/<job>",
    "checkpoint_interval": "use the job's checkpoint interval setting",
    "metrics_file": "metrics go next to the job's tier-1 checkpoints",
    "instance_type": "the trainer is told its nodes' instance type",
    "checkpoint_s3_uri": "its role may write only s3://<models bucket>/checkpoints/<job>/",
}


@schema
class TrainingJobSettings:
    """One training job on the platform's Kubernetes cluster: engine, nodes, recipe, policies.

    A stack file's `trainingJobs` entries are these settings (camelCase keys); `recipe` and
    `overrides` are checked against the trainer's own config (`training.config.TrainConfig`).
    """

    name: str
    """The job's name: its Kubernetes objects, service account and checkpoint prefix."""
    engine: TrainingEngine
    """`hyperpod` (HyperPodPyTorchJob on HyperPod nodes) or `eks` (elastic PyTorchJob)."""
    instance_type: str
    """The nodes' GPU instance type: `ml.p5.48xlarge` for hyperpod, `p5.48xlarge` for eks."""
    recipe: str
    """A recipe of the training core (training/configs/<recipe>.yaml)."""
    overrides: dict[str, Any] = Field(default_factory=dict)
    """Trainer settings over the recipe (`max_steps: 200`): TrainConfig's keys and types."""
    nodes: int = Field(default=1, ge=1, le=256)
    """Nodes the job starts on; one rank per GPU of each."""
    min_nodes: int | None = Field(default=None, ge=1)
    """engine eks: fewest nodes of the elastic c10d rendezvous (default: nodes)."""
    max_nodes: int | None = Field(default=None, ge=1)
    """engine eks: most nodes of the elastic c10d rendezvous (default: nodes)."""
    hyperpod_cluster: str | None = None
    """engine hyperpod: the stack's HyperPod cluster whose nodes run it (default: the only one)."""
    namespace: str = "training"
    """The Kubernetes namespace of the job's objects."""
    max_retries: int = Field(default=3, ge=0, le=20)
    """Restarts of a failed job before it is given up."""
    checkpoint_interval: int = Field(default=100, ge=1)
    """Save a checkpoint every N steps (the trainer's --checkpoint-interval)."""
    shm_size_gib: int = Field(default=64, ge=1, le=2048)
    """Size of the in-memory /dev/shm of each pod (data loader workers, NCCL)."""
    require_deep_health_check: bool = False
    """engine hyperpod: only nodes whose deep health check passed (otherwise merely preferred)."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables of the trainer; they win over the EFA/NCCL defaults."""
    efa: bool = True
    """Use all EFA interfaces of the node type; false where the nodes have none attached."""
    start_timeout_seconds: int = Field(default=1200, ge=60, le=86400)
    """engine hyperpod: seconds until the first `Loss:` line before the job counts as stuck."""
    hang_timeout_seconds: int = Field(default=600, ge=60, le=86400)
    """engine hyperpod: most seconds between two `Loss:` lines before the job counts as hung."""
    nvme_host_path: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9_./-]*$")
    """Where the nodes mount their instance-store NVMe, under /opt/dlami/nvme or /mnt/k8s-disks
    (default: the engine's AMI's path)."""

    @field_validator("nvme_host_path")
    @classmethod
    def _instance_store(cls, path: str | None) -> str | None:
        # The directory is mounted writable into the trainer and chowned by a root init
        # container: a stack file must not be able to hand it /, /etc or /var/lib/kubelet.
        if path is None:
            return path
        inside = any(path == root or path.startswith(f"{root}/") for root in NVME_ROOTS)
        if ".." in path.split("/") or not inside:
            raise ValueError(
                f"{path!r} is not an instance-store mount (under {' or '.join(NVME_ROOTS)})"
            )
        return path

    @field_validator("name", "namespace")
    @classmethod
    def _kubernetes_name(cls, name: str) -> str:
        if not _KUBERNETES_NAME.match(name):
            raise ValueError(
                f"{name!r} is not a Kubernetes name "
                "(lowercase letters, digits and hyphens, at most 40)"
            )
        return name

    @field_validator("instance_type")
    @classmethod
    def _gpu_type(cls, instance_type: str) -> str:
        if gpus_per_instance(instance_type) == 0:
            raise ValueError(f"{instance_type!r} is not a GPU instance type")
        return instance_type

    @field_validator("recipe")
    @classmethod
    def _recipe(cls, recipe: str) -> str:
        known = recipe_names()
        if recipe not in known:
            raise ValueError(
                f"{recipe!r} is not a recipe of training/configs (known: {', '.join(known)})"
            )
        return recipe

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        """The trainer's keys (`max-steps` spelt `max_steps`) with values of its types."""
        return {
            key.replace("-", "_"): _trainer_value(key, value) for key, value in overrides.items()
        }

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        for key in env:
            if not _ENV_NAME.match(key):
                raise ValueError(f"{key!r} is not an environment variable name")
        return env

    @model_validator(mode="after")
    def _shape(self) -> "TrainingJobSettings":
        if self.engine == TrainingEngine.HYPERPOD:
            if not self.instance_type.startswith("ml."):
                raise SettingError("instance_type", "HyperPod instance types are ml.* names")
            for key, value in (("min_nodes", self.min_nodes), ("max_nodes", self.max_nodes)):
                if value is not None:
                    raise SettingError(key, "elastic bounds are for engine eks")
        else:
            if self.instance_type.startswith("ml."):
                raise SettingError("instance_type", "EKS node groups use EC2 names (no ml. prefix)")
            if self.hyperpod_cluster is not None:
                raise SettingError("hyperpod_cluster", "is only for engine hyperpod")
        low, high = self.node_bounds
        if not low <= self.nodes <= high:
            raise SettingError("nodes", f"{self.nodes} is outside min..max nodes ({low}..{high})")
        _check_trainer_config(self)
        return self

    def recipe_content(self) -> dict[str, Any]:
        """The recipe file with `overrides` applied: what the job's ConfigMap holds."""
        return {**load_recipe(self.recipe), **self.overrides}

    @property
    def node_bounds(self) -> tuple[int, int]:
        return (self.min_nodes or self.nodes, self.max_nodes or self.nodes)

    @property
    def gpus(self) -> int:
        return gpus_per_instance(self.instance_type)

    @property
    def efa_interfaces(self) -> int:
        return efa_interfaces(self.instance_type) if self.efa else 0

    @property
    def nproc_per_node(self) -> int:
        """One rank per GPU."""
        return self.gpus or 1

    @property
    def checkpoint_dir(self) -> str:
        return f"{CHECKPOINT_MOUNT}/{self.name}"

    @property
    def metrics_file(self) -> str:
        # next to the tier-1 checkpoints: the recipe's path may not exist on this node
        return f"{self.checkpoint_dir}/metrics.jsonl"

    @property
    def recipe_config_map_name(self) -> str:
        return f"{self.name}-recipe"

    @property
    def labels(self) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": self.name,
            "app.kubernetes.io/component": "training",
            "app.kubernetes.io/part-of": "mlplatform",
        }


@schema
class TrainingJobSpec(TrainingJobSettings):
    """The settings plus what the stack resolves: every value the manifests depend on."""

    image: str
    """`<repository>@sha256:<digest>`: a tag could move under a running job."""
    models_bucket: str
    """The models bucket; tier-2 checkpoints go under `checkpoints/<job>/` of it."""
    service_account: str
    """The job's Kubernetes service account (IRSA)."""

    @field_validator("image")
    @classmethod
    def _by_digest(cls, image: str) -> str:
        if not _IMAGE_BY_DIGEST.match(image):
            raise ValueError(f"{image!r} is not referenced by digest (repo@sha256:...)")
        return image

    @classmethod
    def of(cls, settings: TrainingJobSettings, **resolved: Any) -> "TrainingJobSpec":
        """`settings` (or Args built on them) with the resolved values."""
        return cls(**settings_of(settings, TrainingJobSettings), **resolved)

    @property
    def checkpoint_s3_uri(self) -> str:
        return f"s3://{self.models_bucket}/{checkpoint_prefix(self.name)}"


def checkpoint_prefix(job: str) -> str:
    """The job's key prefix in the models bucket: its role may write nowhere else."""
    return f"checkpoints/{job}/"


# --- the trainer's config: recipe and overrides checked as `python -m training.train` will -----


def _trainer_value(key: str, value: Any) -> Any:
    """`value` as the trainer's setting `key` holds it (the trainer's own conversion)."""
    from mlplatform.training.config import TrainConfigError, coerce_setting

    try:
        name, converted = coerce_setting(key, value)
    except TrainConfigError as error:
        raise SettingError(key, error.problem) from None
    if name in _SET_BY_THE_JOB:
        raise SettingError(key, f"is set by the job ({_SET_BY_THE_JOB[name]})")
    return converted


def _check_trainer_config(job: TrainingJobSettings) -> None:
    """Validate the config the job's trainer will start with, as the trainer does: the recipe,
    the overrides and what the job sets, on `nodes` nodes. A problem is named by the override
    or job setting that causes it, else by the recipe (or by `nodes` for the world size)."""
    from mlplatform.training.config import TrainConfig, TrainConfigError, flag_name

    values: dict[str, Any] = {}
    for key, value in load_recipe(job.recipe).items():
        try:
            values[key.replace("-", "_")] = _trainer_value(key, value)
        except SettingError as error:
            if key.replace("-", "_") not in _SET_BY_THE_JOB:  # the job's own value replaces it
                raise SettingError("recipe", f"{job.recipe}: {key}: {error}") from None
    values.update(job.overrides)
    own = {
        "checkpoint_dir": job.checkpoint_dir,
        "checkpoint_interval": job.checkpoint_interval,
        "metrics_file": job.metrics_file,
        "instance_type": job.instance_type.removeprefix("ml."),
        # in the pod, $MLPLATFORM_CHECKPOINT_S3_URI (environment()); its bucket is not known here
        "checkpoint_s3_uri": f"s3://models-bucket/{checkpoint_prefix(job.name)}",
    }
    values.update(own)
    names = {flag_name(f.name): f.name for f in dataclasses.fields(TrainConfig)}

    def named(error: TrainConfigError, fallback: str, context: str) -> SettingError:
        flag, _, problem = str(error).partition(": ")
        name = names.get(flag)
        if name in job.overrides:
            return SettingError(f"overrides.{name}", problem)
        return SettingError(fallback, f"{error} ({context})")

    config = TrainConfig(**values)
    try:
        config.validate()
    except TrainConfigError as error:
        raise named(error, "recipe", f"from recipe {job.recipe!r}") from None
    try:
        config.validate_world(job.nodes * job.nproc_per_node, job.nproc_per_node)
    except TrainConfigError as error:
        raise named(error, "nodes", f"{job.nodes} nodes of {job.nproc_per_node} GPUs") from None


def efa_environment(instance_type: str, efa_devices: int) -> dict[str, str]:
    """The NCCL/EFA environment of a node type, computed by the training core (`training.efa`)
    for a pod that holds `efa_devices` EFA interfaces. The interfaces a pod requests and the
    environment both come from the one instance catalog, and the trainer computes the same at
    start-up and keeps what is already set, so the two cannot disagree."""
    facts = NodeFacts(
        instance_type=instance_type.removeprefix("ml."),
        efa_devices=efa_devices,
        has_cuda=gpus_per_instance(instance_type) > 0,
    )
    return efa_env(facts).env


def resources(spec: TrainingJobSpec) -> dict[str, dict[str, int]]:
    """The whole node: every GPU and EFA interface. Extended resources need limits only."""
    limits = {}
    if spec.gpus:
        limits["nvidia.com/gpu"] = spec.gpus
    if spec.efa_interfaces:
        limits["vpc.amazonaws.com/efa"] = spec.efa_interfaces
    return {"limits": limits, "requests": dict(limits)}


def training_arguments(spec: TrainingJobSpec) -> list[str]:
    """Flags of `python -m training.train` (the training core's stable interface)."""
    return [
        "--config",
        f"{RECIPE_DIR}/{RECIPE_FILE}",
        "--checkpoint-dir",
        spec.checkpoint_dir,
        "--checkpoint-interval",
        str(spec.checkpoint_interval),
        "--metrics-file",
        spec.metrics_file,
        # the trainer's EFA/NCCL set-up keys on it (training/efa.py)
        "--instance-type",
        spec.instance_type.removeprefix("ml."),
    ]


def launcher(spec: TrainingJobSpec) -> list[str]:
    """The container command: hyperpodrun on HyperPod, torchrun (rendezvous from the operator's
    PET_* variables) on EKS."""
    if spec.engine == "hyperpod":
        return [
            "hyperpodrun",
            f"--nnodes={spec.nodes}",
            f"--nproc-per-node={spec.nproc_per_node}",
            "--server-host=0.0.0.0",
            f"--server-port={HYPERPOD_AGENT_PORT}",
            "--tee=3",
            "--log-dir=/tmp/hyperpod",
            "-m",
            "training.train",
        ]
    return ["torchrun", f"--nproc-per-node={spec.nproc_per_node}", "-m", "training.train"]


def environment(spec: TrainingJobSpec) -> list[dict[str, str]]:
    env = {
        **efa_environment(spec.instance_type, spec.efa_interfaces),
        "MLPLATFORM_JOB": spec.name,
        "MLPLATFORM_CHECKPOINT_S3_URI": spec.checkpoint_s3_uri,
        "HOME": "/tmp",
        **spec.env,
    }
    return [{"name": key, "value": value} for key, value in env.items()]


def node_affinity(spec: TrainingJobSpec) -> dict[str, Any]:
    instance_type = spec.instance_type.removeprefix("ml.")
    if spec.engine == "hyperpod":
        instance_type = f"ml.{instance_type}"
    required = [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [instance_type]}
    ]
    preferred: list[dict[str, Any]] = []
    if spec.engine == "hyperpod":
        required.append({"key": HEALTH_LABEL, "operator": "In", "values": ["Schedulable"]})
        deep = {"key": DEEP_HEALTH_LABEL, "operator": "In", "values": ["Passed"]}
        if spec.require_deep_health_check:
            required.append(deep)
        else:
            preferred.append({"weight": 100, "preference": {"matchExpressions": [deep]}})
    affinity: dict[str, Any] = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": required}]
        }
    }
    if preferred:
        affinity["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    return {"nodeAffinity": affinity}


def _restricted(run_as_user: int, *, add: Sequence[str] = ()) -> dict[str, Any]:
    context: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "runAsUser": run_as_user,
        "runAsNonRoot": run_as_user != 0,
    }
    if add:
        context["capabilities"]["add"] = list(add)
    return context


def pod_template(spec: TrainingJobSpec, container_name: str) -> dict[str, Any]:
    """The pod every node runs (same for both engines, apart from launcher and affinity)."""
    nvme = spec.nvme_host_path or NVME_HOST_PATHS[spec.engine]
    mounts = [
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "nvme", "mountPath": CHECKPOINT_MOUNT},
        {"name": "recipe", "mountPath": RECIPE_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    return {
        "metadata": {"labels": spec.labels},
        "spec": {
            "serviceAccountName": spec.service_account,
            "securityContext": {
                "runAsUser": IMAGE_UID,
                "runAsGroup": IMAGE_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "affinity": node_affinity(spec),
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
            if spec.gpus
            else [],
            # hostPath directories are created root-owned: hand the job's tier-1 directory to the
            # image's user before the trainer starts (root, CHOWN only, then exits).
            "initContainers": [
                {
                    "name": "checkpoint-dir",
                    "image": spec.image,
                    "command": [
                        "install",
                        "-d",
                        "-o",
                        str(IMAGE_UID),
                        "-g",
                        str(IMAGE_UID),
                        spec.checkpoint_dir,
                    ],
                    "volumeMounts": [{"name": "nvme", "mountPath": CHECKPOINT_MOUNT}],
                    "securityContext": _restricted(0, add=["CHOWN"]),
                }
            ],
            "containers": [
                {
                    "name": container_name,
                    "image": spec.image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": launcher(spec),
                    "args": training_arguments(spec),
                    "env": environment(spec),
                    "resources": resources(spec),
                    "volumeMounts": mounts,
                    "securityContext": _restricted(IMAGE_UID),
                }
            ],
            "volumes": [
                {
                    "name": "dshm",
                    "emptyDir": {"medium": "Memory", "sizeLimit": f"{spec.shm_size_gib}Gi"},
                },
                {"name": "nvme", "hostPath": {"path": nvme, "type": "DirectoryOrCreate"}},
                {"name": "recipe", "configMap": {"name": spec.recipe_config_map_name}},
                {"name": "tmp", "emptyDir": {}},
            ],
        },
    }


def recipe_config_map(spec: TrainingJobSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(spec, spec.recipe_config_map_name),
        "data": {RECIPE_FILE: yaml.safe_dump(spec.recipe_content(), sort_keys=False)},
    }


def service_account(spec: TrainingJobSpec, role_arn: str) -> dict[str, Any]:
    """The job's identity: IRSA maps it to `role_arn`; no API token is mounted by default."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            **_metadata(spec, spec.service_account),
            "annotations": {"eks.amazonaws.com/role-arn": role_arn},
        },
        "automountServiceAccountToken": False,
    }


def hyperpod_job(spec: TrainingJobSpec) -> dict[str, Any]:
    return _job_object(
        spec,
        {
            "replicaSpecs": [
                {
                    "name": "pods",
                    "replicas": spec.nodes,
                    "template": pod_template(spec, "pytorch"),
                }
            ],
            "runPolicy": {
                "cleanPodPolicy": "None",
                "jobMaxRetryCount": spec.max_retries,
                "restartPolicy": {
                    # a few in-place restarts, then a full job restart, within an hour's budget
                    "numRestartBeforeFullJobRestart": spec.max_retries,
                    "evalPeriodSeconds": 3600,
                    "maxFullJobRestarts": spec.max_retries,
                },
                "logMonitoringConfiguration": [
                    {
                        "name": "JobStart",
                        "logPattern": LOSS_PATTERN,
                        "expectedStartCutOffInSeconds": spec.start_timeout_seconds,
                    },
                    {
                        "name": "JobHangingDetection",
                        "logPattern": LOSS_PATTERN,
                        "expectedRecurringFrequencyInSeconds": spec.hang_timeout_seconds,
                    },
                ],
            },
        },
    )


def pytorch_job(spec: TrainingJobSpec) -> dict[str, Any]:
    low, high = spec.node_bounds
    return _job_object(
        spec,
        {
            "elasticPolicy": {
                "rdzvBackend": "c10d",
                "minReplicas": low,
                "maxReplicas": high,
                "maxRestarts": spec.max_retries,
            },
            "pytorchReplicaSpecs": {
                "Worker": {
                    "replicas": spec.nodes,
                    "restartPolicy": "OnFailure",
                    # the operator finds the training container by this name
                    "template": pod_template(spec, "pytorch"),
                }
            },
            "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": spec.max_retries},
        },
    )


def _job_object(spec: TrainingJobSpec, body: dict[str, Any]) -> dict[str, Any]:
    """The engine's job object around `body`: one rank per GPU on each node."""
    api_version, kind = JOB_KINDS[spec.engine]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": _metadata(spec, spec.name),
        "spec": {"nprocPerNode": str(spec.nproc_per_node), **body},
    }


def job(spec: TrainingJobSpec) -> dict[str, Any]:
    """The job object of the spec's engine."""
    return hyperpod_job(spec) if spec.engine == "hyperpod" else pytorch_job(spec)


def render(spec: TrainingJobSpec, role_arn: str) -> list[dict[str, Any]]:
    """Everything a job needs in the cluster, in apply order."""
    return [service_account(spec, role_arn), recipe_config_map(spec), job(spec)]


def _metadata(spec: TrainingJobSpec, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": spec.namespace, "labels": spec.labels}


# --- structural checks of the two custom resources ---------------------------------------------
# Allowed keys per path, from the CRDs' published schemas (HyperPod training operator v1, Kubeflow
# training-operator v1). Unknown keys are refused, as the API server's structural pruning would
# silently drop them; the pod template inside is checked by kubernetes-validate in the tests.
_HYPERPOD_KEYS: dict[str, set[str]] = {
    "spec": {"nprocPerNode", "replicaSpecs", "runPolicy", "elasticPolicy"},
    "spec.replicaSpecs[]": {"name", "replicas", "maxReplicas", "spares", "template"},
    "spec.runPolicy": {
        "activeDeadlineSeconds",
        "cleanPodPolicy",
        "faultDeadlineSeconds",
        "jobMaxRetryCount",
        "logMonitoringConfiguration",
        "restartPolicy",
        "startupDeadlineSeconds",
        "suspend",
        "ttlSecondsAfterFinished",
        "workloadMode",
    },
    "spec.runPolicy.restartPolicy": {
        "evalPeriodSeconds",
        "maxFullJobRestarts",
        "numRestartBeforeFullJobRestart",
        "maxNumRepeatOffendersToAvoid",
        "scaleUpSnoozeTimeInSeconds",
    },
    "spec.runPolicy.logMonitoringConfiguration[]": {
        "name",
        "logPattern",
        "expectedStartCutOffInSeconds",
        "expectedRecurringFrequencyInSeconds",
        "metricEvaluationDataPoints",
        "metricThreshold",
        "operator",
        "stopPattern",
    },
}
_PYTORCHJOB_KEYS: dict[str, set[str]] = {
    "spec": {"nprocPerNode", "elasticPolicy", "pytorchReplicaSpecs", "runPolicy"},
    "spec.elasticPolicy": {
        "minReplicas",
        "maxReplicas",
        "rdzvBackend",
        "rdzvHost",
        "rdzvPort",
        "rdzvId",
        "rdzvConf",
        "standalone",
        "nProcPerNode",
        "maxRestarts",
        "metrics",
    },
    "spec.pytorchReplicaSpecs": {"Master", "Worker"},
    "spec.pytorchReplicaSpecs.Worker": {"replicas", "restartPolicy", "template"},
    "spec.runPolicy": {
        "cleanPodPolicy",
        "ttlSecondsAfterFinished",
        "activeDeadlineSeconds",
        "backoffLimit",
        "schedulingPolicy",
        "suspend",
        "managedBy",
    },
}
_CLEAN_POD_POLICIES = {"All", "Running", "None"}


def check_job_structure(manifest: Mapping[str, Any]) -> list[str]:
    """Problems in a rendered HyperPodPyTorchJob or PyTorchJob (empty list: structurally sound)."""
    kind = manifest.get("kind")
    allowed = {"HyperPodPyTorchJob": _HYPERPOD_KEYS, "PyTorchJob": _PYTORCHJOB_KEYS}.get(str(kind))
    if allowed is None:
        return [f"kind {kind!r} is not a training job"]
    api = {kind: api_version for api_version, kind in JOB_KINDS.values()}
    problems = []
    if manifest.get("apiVersion") != api[str(kind)]:
        problems.append(f"apiVersion {manifest.get('apiVersion')!r} is not {api[str(kind)]}")
    if not _DNS_LABEL.match(str(manifest.get("metadata", {}).get("name", ""))):
        problems.append("metadata.name is not a DNS label")
    for path, keys in allowed.items():
        for where, value in _walk(manifest, path):
            if not isinstance(value, Mapping):
                problems.append(f"{where} is not a mapping")
                continue
            problems += [f"{where}.{key} is not a known field" for key in value if key not in keys]
    spec = manifest.get("spec", {})
    nproc = spec.get("nprocPerNode", "auto")
    if not isinstance(nproc, str) or not (nproc.isdigit() or nproc in ("auto", "cpu", "gpu")):
        problems.append("spec.nprocPerNode must be a number as a string, auto, cpu or gpu")
    policy = spec.get("runPolicy", {})
    if policy.get("cleanPodPolicy", "None") not in _CLEAN_POD_POLICIES:
        problems.append(f"spec.runPolicy.cleanPodPolicy not one of {sorted(_CLEAN_POD_POLICIES)}")
    if kind == "HyperPodPyTorchJob":
        for i, rule in enumerate(policy.get("logMonitoringConfiguration", [])):
            if not {"name", "logPattern"} <= set(rule):
                problems.append(
                    f"spec.runPolicy.logMonitoringConfiguration[{i}] needs name, logPattern"
                )
        restart = policy.get("restartPolicy")
        if restart is not None and "evalPeriodSeconds" not in restart:
            problems.append("spec.runPolicy.restartPolicy.evalPeriodSeconds is required")
        for i, replica in enumerate(spec.get("replicaSpecs", [])):
            if "name" not in replica:
                problems.append(f"spec.replicaSpecs[{i}].name is required")
    else:
        elastic = spec.get("elasticPolicy", {})
        if elastic.get("rdzvBackend") not in (None, "c10d", "etcd", "etcd-v2"):
            problems.append("spec.elasticPolicy.rdzvBackend is not c10d, etcd or etcd-v2")
        if elastic.get("minReplicas", 1) > elastic.get(
            "maxReplicas", elastic.get("minReplicas", 1)
        ):
            problems.append("spec.elasticPolicy.minReplicas exceeds maxReplicas")
    return problems


def pod_templates(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pod templates inside a job manifest (for validating them as core objects)."""
    spec = manifest.get("spec", {})
    if manifest.get("kind") == "HyperPodPyTorchJob":
        return [r["template"] for r in spec.get("replicaSpecs", [])]
    return [r["template"] for r in spec.get("pytorchReplicaSpecs", {}).values()]


def _walk(node: Any, path: str, where: str = "") -> list[tuple[str, Any]]:
    """Values at a dotted path where `[]` steps into every list item."""
    if not path:
        return [(where, node)]
    head, _, rest = path.partition(".")
    is_list = head.endswith("[]")
    key = head.removesuffix("[]")
    if not isinstance(node, Mapping) or key not in node:
        return []
    child, child_where = node[key], f"{where}.{key}" if where else key
    if not is_list:
        return _walk(child, rest, child_where)
    return [
        found
        for i, item in enumerate(child if isinstance(child, list) else [])
        for found in _walk(item, rest, f"{child_where}[{i}]")
    ]
