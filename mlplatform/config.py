"""The stack's configuration, parsed once into typed, validated objects.

Everything the program reads from `Pulumi.<stack>.yaml` goes through `parse_stack_config`, so a
mistake (unknown key, wrong type, out-of-range value, impossible combination) stops the program
before any resource is registered, with one line naming the stack file and the key:

    Pulumi.staging.yaml: mlplatform:notebooks[1].instanceType: 'ml.t3.huge' is not a SageMaker
    notebook instance type

Components never read `pulumi.Config`; the stack builder hands them Args built from this object.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from mlplatform.components.catalog import (
    DEFAULT_INTERFACE_ENDPOINTS,
    EC2_INSTANCE_HOURLY_USD,
    EKS_KUBERNETES_VERSIONS,
    FSX_LUSTRE_GB_MONTH_USD,
    HYPERPOD_INSTANCE_HOURLY_USD,
    INTERFACE_ENDPOINTS,
    NOTEBOOK_INSTANCE_HOURLY_USD,
    NOTEBOOK_PLATFORMS,
    efa_interfaces,
    gpus_per_instance,
    instance_family,
)
from mlplatform.components.schema import SettingError as _KeyError
from mlplatform.components.schema import describe
from mlplatform.components.training_manifests import TrainingEngine, TrainingJobSettings

PROJECT = "mlplatform"


_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_NOTEBOOK_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,39}$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
# HyperPod cluster, instance group and Slurm partition names (CreateCluster's pattern).
_HYPERPOD_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_EKS_CLUSTER_ARN = re.compile(
    r"^arn:aws[a-z-]*:eks:[a-z0-9-]+:\d{12}:cluster/[0-9A-Za-z][A-Za-z0-9_-]*$"
)
_TRAINING_PLAN_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:training-plan/.+$")
# Interface endpoints EKS-orchestrated HyperPod nodes need when they have no internet route.
HYPERPOD_EKS_ENDPOINTS = ("sagemaker.api", "eks-auth")
_IAM_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")
# EKS node group names: DNS-label-like.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


# What an undecryptable `secure:` value stands for outside the Pulumi engine.
SECURE_PLACEHOLDER = "[secret]"


class ConfigError(pulumi.RunError):
    """A stack configuration mistake. Its message is the whole report; no traceback follows."""


class _Model(BaseModel):
    """Config objects: camelCase keys as in the stack file, unknown keys refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class GitRepository(_Model):
    """A repository cloned into the notebook; private ones authenticate through Secrets Manager."""

    url: NonEmpty
    branch: NonEmpty = "main"
    secret_arn: str | None = None

    @field_validator("url")
    @classmethod
    def _https_only(cls, url: str) -> str:
        if not url.startswith("https://"):
            raise ValueError(f"{url!r} is not an https:// git URL")
        return url

    @field_validator("secret_arn")
    @classmethod
    def _secret_arn(cls, arn: str | None) -> str | None:
        if arn is not None and not _SECRET_ARN.match(arn):
            raise ValueError(f"{arn!r} is not a Secrets Manager secret ARN")
        return arn


class NotebookConfig(_Model):
    """One SageMaker notebook instance on the shared infrastructure."""

    name: str
    owner: NonEmpty
    instance_type: str = "ml.t3.medium"
    volume_size_gb: int = Field(default=20, ge=5, le=16384)
    platform_identifier: str = "notebook-al2-v3"
    root_access: bool = False
    idle_stop_minutes: int = Field(default=60, ge=0, le=1440)
    subnet_index: int = Field(default=0, ge=0)
    git_repository: GitRepository | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NOTEBOOK_NAME.match(name):
            raise ValueError(
                f"{name!r} is not a notebook name (letters, digits and hyphens, at most 40)"
            )
        return name

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, instance_type: str) -> str:
        if instance_type not in NOTEBOOK_INSTANCE_HOURLY_USD:
            raise ValueError(f"{instance_type!r} is not a SageMaker notebook instance type")
        return instance_type

    @field_validator("platform_identifier")
    @classmethod
    def _platform(cls, platform: str) -> str:
        if platform not in NOTEBOOK_PLATFORMS:
            known = ", ".join(sorted(NOTEBOOK_PLATFORMS))
            raise ValueError(f"{platform!r} is not a notebook platform (one of {known})")
        return platform

    @field_validator("idle_stop_minutes")
    @classmethod
    def _idle(cls, minutes: int) -> int:
        if 0 < minutes < 5:
            raise ValueError(f"{minutes} is too short: 0 disables auto-stop, otherwise at least 5")
        return minutes


class KubernetesTaint(_Model):
    """A taint HyperPod puts on an EKS-orchestrated instance group's nodes."""

    key: str
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        if not _LABEL_KEY.match(key):
            raise ValueError(f"{key!r} is not a Kubernetes taint key")
        return key


class HyperPodInstanceGroup(_Model):
    """One instance group of a HyperPod cluster."""

    name: str
    instance_type: str
    count: int = Field(ge=0, le=256)
    min_count: int | None = Field(default=None, ge=0)
    # 1 turns simultaneous multithreading off, the usual choice for GPU training.
    threads_per_core: Literal[1, 2] = 1
    ebs_volume_size_gb: int = Field(default=500, ge=1, le=16384)
    deep_health_checks: tuple[Literal["InstanceStress", "InstanceConnectivity"], ...] = ()
    # Slurm only: what the group's nodes are, and the partition compute nodes join.
    slurm_role: Literal["controller", "login", "compute"] = "compute"
    partition: str | None = None
    # EKS only.
    labels: dict[str, str] = Field(default_factory=dict)
    taints: tuple[KubernetesTaint, ...] = ()
    training_plan_arn: str | None = None

    @field_validator("name", "partition")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        if name is not None and not _HYPERPOD_NAME.match(name):
            raise ValueError(
                f"{name!r} is not a HyperPod name (letters, digits, hyphens, at most 63)"
            )
        return name

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, instance_type: str) -> str:
        if instance_type in HYPERPOD_INSTANCE_HOURLY_USD:
            return instance_type
        families = sorted({instance_family(t) for t in HYPERPOD_INSTANCE_HOURLY_USD})
        family = instance_family(instance_type)
        if not instance_type.startswith("ml.") or family not in families:
            raise ValueError(
                f"{instance_type!r} is not a HyperPod instance type: unknown instance family "
                f"{family or instance_type!r} (known: {', '.join(families)})"
            )
        sizes = [t for t in HYPERPOD_INSTANCE_HOURLY_USD if instance_family(t) == family]
        raise ValueError(
            f"{instance_type!r} is not a HyperPod instance type (ml.{family}: "
            f"{', '.join(sorted(sizes))})"
        )

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if not _LABEL_KEY.match(key):
                raise ValueError(f"{key!r} is not a Kubernetes label key")
        return labels

    @field_validator("deep_health_checks")
    @classmethod
    def _checks(cls, checks: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(checks)) != len(checks):
            raise ValueError("lists a health check twice")
        return checks

    @field_validator("training_plan_arn")
    @classmethod
    def _plan(cls, arn: str | None) -> str | None:
        if arn is not None and not _TRAINING_PLAN_ARN.match(arn):
            raise ValueError(f"{arn!r} is not a SageMaker training plan ARN")
        return arn

    @model_validator(mode="after")
    def _min_count(self) -> HyperPodInstanceGroup:
        if self.min_count is not None and self.min_count > self.count:
            raise _KeyError("minCount", f"{self.min_count} is above count ({self.count})")
        return self


class FsxLustre(_Model):
    """An FSx for Lustre file system in the cluster's subnet, mounted by the lifecycle scripts."""

    storage_capacity_gb: int = Field(default=1200, ge=1200, le=1200 * 1000)
    deployment_type: Literal["PERSISTENT_2", "PERSISTENT_1", "SCRATCH_2"] = "PERSISTENT_2"
    # MB/s per TiB of storage, persistent types only (default: 250 for PERSISTENT_2, 200 for 1).
    throughput_per_tib: int | None = None
    mount_path: str = "/fsx"

    @field_validator("storage_capacity_gb")
    @classmethod
    def _capacity(cls, gb: int) -> int:
        if gb % 1200:
            raise ValueError(f"{gb} is not a multiple of 1200 GB")
        return gb

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, path: str) -> str:
        if not re.match(r"^/[A-Za-z0-9_./-]*$", path) or ".." in path or path == "/":
            raise ValueError(f"{path!r} is not an absolute mount path")
        return path

    @model_validator(mode="after")
    def _throughput_offered(self) -> FsxLustre:
        if self.deployment_type == "SCRATCH_2":
            if self.throughput_per_tib is not None:
                raise _KeyError("throughputPerTib", "is not set for SCRATCH_2 file systems")
            return self
        allowed = sorted(
            t for kind, t in FSX_LUSTRE_GB_MONTH_USD if kind == self.deployment_type and t
        )
        if self.throughput not in allowed:
            raise _KeyError(
                "throughputPerTib",
                f"{self.throughput_per_tib} is not offered for {self.deployment_type} "
                f"(one of {', '.join(map(str, allowed))})",
            )
        return self

    @property
    def throughput(self) -> int | None:
        if self.deployment_type == "SCRATCH_2":
            return None
        default = 250 if self.deployment_type == "PERSISTENT_2" else 200
        return self.throughput_per_tib or default


class TieredStorage(_Model):
    """SageMaker managed tiered checkpointing: part of each node's memory holds checkpoints."""

    enabled: bool = True
    memory_percent: int = Field(default=20, ge=20, le=100)


class ChartSource(_Model):
    """Where a chart that no public repository offers is published (by the operator)."""

    chart: NonEmpty  # a chart name in `repo`, or an oci:// reference
    version: NonEmpty
    repo: str | None = None

    @model_validator(mode="after")
    def _where(self) -> ChartSource:
        if self.repo is None and not self.chart.startswith("oci://"):
            raise _KeyError("repo", "is required unless chart is an oci:// reference")
        if self.repo is not None and not self.repo.startswith("https://"):
            raise _KeyError("repo", f"{self.repo!r} is not an https:// chart repository")
        return self


class HyperPodClusterConfig(_Model):
    """A SageMaker HyperPod cluster on the shared network, orchestrated by EKS or Slurm."""

    name: str
    orchestrator: Literal["eks", "slurm"] = "eks"
    # EKS orchestration: the cluster the nodes join.
    eks_cluster_arn: str | None = None
    instance_groups: tuple[HyperPodInstanceGroup, ...] = Field(min_length=1, max_length=20)
    node_recovery: Literal["Automatic", "None"] = "Automatic"
    # EKS only: provision nodes as capacity appears instead of failing the whole group.
    continuous_provisioning: bool = True
    subnet_index: int = Field(default=0, ge=0)
    fsx: FsxLustre | None = None
    tiered_storage: TieredStorage | None = None
    # HTTPS to the internet through the stack's NAT (package mirrors, Hugging Face); off: the
    # nodes reach only the VPC endpoints and S3.
    internet_egress: bool = False
    # EKS prerequisites this stack installs on the EKS cluster (components/hyperpod_eks.py).
    cert_manager: bool = True
    training_operator: bool = True
    dependencies_chart: ChartSource | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _HYPERPOD_NAME.match(name) or len(name) > 40:
            raise ValueError(
                f"{name!r} is not a cluster name (letters, digits, hyphens, at most 40)"
            )
        return name

    @field_validator("eks_cluster_arn")
    @classmethod
    def _arn(cls, arn: str | None) -> str | None:
        if arn is not None and not _EKS_CLUSTER_ARN.match(arn):
            raise ValueError(f"{arn!r} is not an EKS cluster ARN")
        return arn

    @model_validator(mode="after")
    def _orchestration(self) -> HyperPodClusterConfig:
        names = [g.name for g in self.instance_groups]
        for index, group in enumerate(self.instance_groups):
            if names.index(group.name) != index:
                raise _KeyError(f"instanceGroups[{index}].name", f"{group.name!r} is used twice")
        if self.orchestrator == "slurm":
            self._check_slurm()
        else:
            self._check_eks()
        return self

    def _check_slurm(self) -> None:
        if self.eks_cluster_arn is not None:
            raise _KeyError("eksClusterArn", "is only for orchestrator eks")
        if self.dependencies_chart is not None:
            raise _KeyError("dependenciesChart", "is only for orchestrator eks")
        if self.tiered_storage is not None:
            raise _KeyError(
                "tieredStorage",
                "managed tiered checkpointing needs orchestrator eks (HyperPod offers it only "
                "on EKS-orchestrated clusters)",
            )
        controllers = [g for g in self.instance_groups if g.slurm_role == "controller"]
        if len(controllers) != 1:
            raise _KeyError(
                "instanceGroups",
                f"a Slurm cluster needs exactly one group with slurmRole controller, "
                f"found {len(controllers)}",
            )
        for index, group in enumerate(self.instance_groups):
            if group.slurm_role == "controller" and group.count != 1:
                raise _KeyError(
                    f"instanceGroups[{index}].count", "the Slurm controller group has one node"
                )
            if group.labels or group.taints:
                key = "labels" if group.labels else "taints"
                raise _KeyError(f"instanceGroups[{index}].{key}", "are for orchestrator eks only")
            if group.partition is not None and group.slurm_role != "compute":
                raise _KeyError(f"instanceGroups[{index}].partition", "is for compute groups only")
        if len([g for g in self.instance_groups if g.slurm_role == "login"]) > 1:
            raise _KeyError("instanceGroups", "a Slurm cluster has at most one login group")
        if not any(g.slurm_role == "compute" for g in self.instance_groups):
            raise _KeyError("instanceGroups", "a Slurm cluster needs at least one compute group")

    def _check_eks(self) -> None:
        for index, group in enumerate(self.instance_groups):
            if group.slurm_role != "compute" or group.partition is not None:
                key = "slurmRole" if group.slurm_role != "compute" else "partition"
                raise _KeyError(f"instanceGroups[{index}].{key}", "is for orchestrator slurm only")

    @property
    def joins_stack_cluster(self) -> bool:
        """EKS orchestration on the stack's own GpuEksCluster (no ARN of another cluster)."""
        return self.orchestrator == "eks" and self.eks_cluster_arn is None

    @property
    def slurm_groups(self) -> dict[str, list[HyperPodInstanceGroup]]:
        """Instance groups by Slurm role."""
        roles: dict[str, list[HyperPodInstanceGroup]] = {
            "controller": [],
            "login": [],
            "compute": [],
        }
        for group in self.instance_groups:
            roles[group.slurm_role].append(group)
        return roles


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise ValueError(f"{key!r} is not a Kubernetes label key")
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes label value (label {key})")
    return labels


class SystemNodeGroupConfig(_Model):
    """The small CPU node group that runs cluster add-ons, controllers and CPU workloads."""

    instance_type: str = "m6i.large"
    min_size: int = Field(default=2, ge=1, le=100)
    desired_size: int | None = None
    max_size: int = Field(default=3, ge=1, le=100)
    disk_size_gb: int = Field(default=50, ge=20, le=16384)

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, instance_type: str) -> str:
        if instance_type not in EC2_INSTANCE_HOURLY_USD or gpus_per_instance(instance_type):
            raise ValueError(f"{instance_type!r} is not a CPU instance type of the catalog")
        return instance_type

    @model_validator(mode="after")
    def _sizes(self) -> SystemNodeGroupConfig:
        _check_sizes(self.min_size, self.desired_size, self.max_size)
        return self


class GpuNodeGroupConfig(_Model):
    """One GPU node group: tainted nvidia.com/gpu NoSchedule, NVIDIA AMI, optionally EFA."""

    name: str
    instance_types: tuple[str, ...]
    min_size: int = Field(default=0, ge=0, le=1000)
    desired_size: int | None = None
    max_size: int = Field(default=1, ge=0, le=1000)
    capacity_type: Literal["onDemand", "spot"] = "onDemand"
    disk_size_gb: int = Field(default=200, ge=20, le=16384)
    labels: dict[str, str] = Field(default_factory=dict)
    efa: bool = False
    # EFA groups live in one subnet (one AZ, one cluster placement group): this one.
    subnet_index: int = Field(default=0, ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _DNS_LABEL.match(name):
            raise ValueError(
                f"{name!r} is not a node group name "
                "(lowercase letters, digits and hyphens, at most 40)"
            )
        return name

    @field_validator("instance_types")
    @classmethod
    def _instance_types(cls, types: tuple[str, ...]) -> tuple[str, ...]:
        if not types:
            raise ValueError("must list at least one instance type")
        for instance_type in types:
            if instance_type not in EC2_INSTANCE_HOURLY_USD or not gpus_per_instance(instance_type):
                raise ValueError(f"{instance_type!r} is not a GPU instance type of the catalog")
        if len({gpus_per_instance(t) for t in types}) != 1:
            raise ValueError("instance types of one group must have the same number of GPUs")
        return types

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        return _check_labels(labels)

    @model_validator(mode="after")
    def _combinations(self) -> GpuNodeGroupConfig:
        _check_sizes(self.min_size, self.desired_size, self.max_size)
        if self.efa:
            for instance_type in self.instance_types:
                if not efa_interfaces(instance_type):
                    raise _KeyError(
                        "efa", f"{instance_type!r} does not support EFA (instanceTypes)"
                    )
            if len({efa_interfaces(t) for t in self.instance_types}) != 1:
                raise _KeyError("efa", "instance types of an EFA group need the same EFA count")
        return self

    @property
    def gpus_per_node(self) -> int:
        return gpus_per_instance(self.instance_types[0])


def _check_sizes(min_size: int, desired_size: int | None, max_size: int) -> None:
    if max_size < min_size:
        raise _KeyError("maxSize", f"{max_size} is below minSize {min_size}")
    if desired_size is not None and not min_size <= desired_size <= max_size:
        raise _KeyError("desiredSize", f"{desired_size} is outside minSize..maxSize")


# The retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)
LogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]
ALL_LOG_TYPES: tuple[LogType, ...] = (
    "api",
    "audit",
    "authenticator",
    "controllerManager",
    "scheduler",
)


class EksConfig(_Model):
    """A GPU EKS cluster on the stack's network (GpuEksCluster)."""

    kubernetes_version: str = "1.34"
    # IAM roles/users granted cluster admin through EKS access entries.
    admins: tuple[str, ...] = ()
    # The API endpoint is private; a public one is opt-in and needs CIDRs (never 0.0.0.0/0).
    public_endpoint: bool = False
    public_access_cidrs: tuple[str, ...] = ()
    log_types: tuple[LogType, ...] = ALL_LOG_TYPES
    log_retention_days: int = Field(default=90, ge=1, le=3653)
    deletion_protection: bool = False
    cluster_autoscaler: bool = True
    # IMDSv2 response hop limit of the nodes: 1 keeps pods off the node role's credentials.
    imds_hop_limit: int = Field(default=1, ge=1, le=3)
    system_node_group: SystemNodeGroupConfig = Field(default_factory=SystemNodeGroupConfig)
    gpu_node_groups: tuple[GpuNodeGroupConfig, ...] = ()

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _version(cls, version: Any) -> Any:
        if isinstance(version, float):
            version = f"{version:.2f}"  # unquoted in YAML, 1.30 is the float 1.3
        if version not in EKS_KUBERNETES_VERSIONS:
            raise ValueError(
                f"{version!r} is not a supported EKS version (one of "
                f"{', '.join(EKS_KUBERNETES_VERSIONS)})"
            )
        return version

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            raise ValueError(f"{days} is not a CloudWatch Logs retention period")
        return days

    @field_validator("admins")
    @classmethod
    def _admins(cls, arns: tuple[str, ...]) -> tuple[str, ...]:
        for arn in arns:
            if not _IAM_PRINCIPAL_ARN.match(arn):
                raise ValueError(f"{arn!r} is not an IAM role or user ARN")
        if len(set(arns)) != len(arns):
            raise ValueError("lists an admin twice")
        return arns

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, cidrs: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in cidrs:
            try:
                network = ipaddress.ip_network(cidr)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR block") from None
            if network.prefixlen == 0:
                raise ValueError(f"{cidr!r} opens the API to the whole internet")
        return cidrs

    @model_validator(mode="after")
    def _combinations(self) -> EksConfig:
        if self.public_endpoint and not self.public_access_cidrs:
            raise _KeyError("publicAccessCidrs", "is required when publicEndpoint is true")
        if self.public_access_cidrs and not self.public_endpoint:
            raise _KeyError("publicAccessCidrs", "is set but publicEndpoint is false")
        names = [group.name for group in self.gpu_node_groups]
        for index, group in enumerate(self.gpu_node_groups):
            if names.index(group.name) != index or group.name == "system":
                raise _KeyError(f"gpuNodeGroups[{index}].name", f"{group.name!r} is used twice")
        return self


_GITHUB_CONFIG_URL = re.compile(
    r"^https://(github\.com|[a-z0-9.-]+)/[A-Za-z0-9][A-Za-z0-9-]{0,38}(/[A-Za-z0-9._-]{1,100})?$"
)
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")


class RunnerClassConfig(_Model):
    """One ARC runner scale set; its name is the `runs-on` label workflows use."""

    name: str
    gpu: bool = False
    # The GPU node group the runners run on (default: the first GPU group).
    node_group: str | None = None
    gpus: int = Field(default=1, ge=1, le=8)
    min_runners: int = Field(default=0, ge=0, le=100)
    max_runners: int = Field(default=4, ge=1, le=100)
    cpu: str = "2"
    memory: str = "8Gi"

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _DNS_LABEL.match(name):
            raise ValueError(
                f"{name!r} is not a runner class name "
                "(lowercase letters, digits and hyphens, at most 40)"
            )
        return name

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, quantity: str) -> str:
        if not _QUANTITY.match(quantity):
            raise ValueError(f"{quantity!r} is not a Kubernetes quantity")
        return quantity

    @model_validator(mode="after")
    def _combinations(self) -> RunnerClassConfig:
        if self.max_runners < self.min_runners:
            raise _KeyError("maxRunners", f"{self.max_runners} is below minRunners")
        if not self.gpu and self.node_group is not None:
            raise _KeyError("nodeGroup", "is for GPU runner classes (gpu: true)")
        return self


DEFAULT_RUNNER_CLASSES = (
    RunnerClassConfig(name="cpu"),
    RunnerClassConfig(name="gpu", gpu=True, cpu="4", memory="16Gi"),
)


class ArcConfig(_Model):
    """GitHub Actions Runner Controller on the stack's EKS cluster (ArcRunners)."""

    # The organization or repository the runners register with.
    github_config_url: str
    # GitHub App (app ID and installation ID here, private key in the secret config key
    # githubAppPrivateKey), or a token (secret config key githubToken) as the fallback.
    auth: Literal["app", "token"] = "app"
    github_app_id: int | None = Field(default=None, ge=1)
    github_app_installation_id: int | None = Field(default=None, ge=1)
    runner_group: str = "default"
    runner_classes: tuple[RunnerClassConfig, ...] = DEFAULT_RUNNER_CLASSES
    # Build the runner images (docker/runner-*) into ECR with Pulumi; off: the official image.
    build_images: bool = True

    @field_validator("github_config_url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not _GITHUB_CONFIG_URL.match(url):
            raise ValueError(
                f"{url!r} is not a GitHub organization or repository URL "
                "(https://github.com/<org>[/<repo>])"
            )
        return url

    @model_validator(mode="after")
    def _combinations(self) -> ArcConfig:
        if self.auth == "app":
            for key, value in (
                ("githubAppId", self.github_app_id),
                ("githubAppInstallationId", self.github_app_installation_id),
            ):
                if value is None:
                    raise _KeyError(key, "is required with auth app")
        names = [runner.name for runner in self.runner_classes]
        if not names:
            raise _KeyError("runnerClasses", "must list at least one runner class")
        for index, runner in enumerate(self.runner_classes):
            if names.index(runner.name) != index:
                raise _KeyError(f"runnerClasses[{index}].name", f"{runner.name!r} is used twice")
        return self


class StackConfig(_Model):
    """Every setting of one stack. Field names are the config keys (camelCase in the file)."""

    region: str
    owner: NonEmpty
    cost_center: NonEmpty
    # Network: create a VPC ...
    vpc_cidr: str = "10.0.0.0/16"
    availability_zones: int = Field(default=2, ge=1, le=6)
    nat_gateways: Literal["none", "single", "perAz"] = "single"
    # ... or adopt an existing one.
    existing_vpc_id: str | None = None
    existing_private_subnet_ids: tuple[str, ...] = ()
    existing_private_route_table_ids: tuple[str, ...] = ()
    vpc_endpoints: tuple[str, ...] = DEFAULT_INTERFACE_ENDPOINTS
    # Data.
    protect_data: bool = False
    force_destroy_buckets: bool = False
    noncurrent_version_days: int = Field(default=30, ge=1, le=3650)
    abort_multipart_days: int = Field(default=7, ge=1, le=365)
    per_user_s3_prefixes: bool = False
    # Notebooks.
    notebooks: tuple[NotebookConfig, ...] = ()
    # SageMaker HyperPod clusters.
    hyperpod_clusters: tuple[HyperPodClusterConfig, ...] = ()
    # GPU Kubernetes (GpuEksCluster); none when absent.
    eks: EksConfig | None = None
    # Training jobs deployed onto the stack's EKS cluster (components/training_manifests).
    training_jobs: tuple[TrainingJobSettings, ...] = ()
    # GitHub Actions runners on that cluster (ArcRunners); none when absent.
    arc: ArcConfig | None = None
    # Secrets (`pulumi config set --secret`): the GitHub App's private key, or a token.
    github_app_private_key: SecretStr | None = None
    github_token: SecretStr | None = None

    @field_validator("region")
    @classmethod
    def _region(cls, region: str) -> str:
        if not _REGION.match(region):
            raise ValueError(f"{region!r} is not an AWS region")
        return region

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, cidr: str) -> str:
        try:
            network = ipaddress.IPv4Network(cidr)
        except ValueError:
            raise ValueError(f"{cidr!r} is not an IPv4 CIDR block") from None
        if not 16 <= network.prefixlen <= 22:
            raise ValueError(f"{cidr!r} must be between /16 and /22 to hold the subnets")
        return cidr

    @field_validator("existing_vpc_id")
    @classmethod
    def _vpc_id(cls, vpc_id: str | None) -> str | None:
        if vpc_id == "":
            return None
        if vpc_id is not None and not re.match(r"^vpc-[0-9a-f]{8,17}$", vpc_id):
            raise ValueError(f"{vpc_id!r} is not a VPC ID")
        return vpc_id

    @field_validator("existing_private_subnet_ids")
    @classmethod
    def _subnet_ids(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        for subnet_id in ids:
            if not re.match(r"^subnet-[0-9a-f]{8,17}$", subnet_id):
                raise ValueError(f"{subnet_id!r} is not a subnet ID")
        return ids

    @field_validator("existing_private_route_table_ids")
    @classmethod
    def _route_table_ids(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        for table_id in ids:
            if not re.match(r"^rtb-[0-9a-f]{8,17}$", table_id):
                raise ValueError(f"{table_id!r} is not a route table ID")
        return ids

    @field_validator("vpc_endpoints")
    @classmethod
    def _endpoints(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if name not in INTERFACE_ENDPOINTS:
                raise ValueError(f"{name!r} is not a known interface endpoint")
        if len(set(names)) != len(names):
            raise ValueError("lists an endpoint twice")
        return names

    @model_validator(mode="after")
    def _combinations(self) -> StackConfig:
        if self.existing_vpc_id is not None:
            if not self.existing_private_subnet_ids:
                raise _KeyError("existingPrivateSubnetIds", "is required with existingVpcId")
            if not self.existing_private_route_table_ids:
                raise _KeyError("existingPrivateRouteTableIds", "is required with existingVpcId")
        elif self.existing_private_subnet_ids or self.existing_private_route_table_ids:
            raise _KeyError("existingVpcId", "is required when existing subnets are given")
        if self.protect_data and self.force_destroy_buckets:
            raise _KeyError("forceDestroyBuckets", "cannot be true while protectData is true")
        names = [notebook.name for notebook in self.notebooks]
        for index, notebook in enumerate(self.notebooks):
            if names.index(notebook.name) != index:
                raise _KeyError(f"notebooks[{index}].name", f"{notebook.name!r} is used twice")
            if notebook.subnet_index >= self.private_subnet_count:
                raise _KeyError(
                    f"notebooks[{index}].subnetIndex",
                    f"{notebook.subnet_index} is out of range: "
                    f"the stack has {self.private_subnet_count} private subnets",
                )
        clusters = [cluster.name for cluster in self.hyperpod_clusters]
        for index, cluster in enumerate(self.hyperpod_clusters):
            key = f"hyperpodClusters[{index}]"
            if clusters.index(cluster.name) != index:
                raise _KeyError(f"{key}.name", f"{cluster.name!r} is used twice")
            if cluster.subnet_index >= self.private_subnet_count:
                raise _KeyError(
                    f"{key}.subnetIndex",
                    f"{cluster.subnet_index} is out of range: "
                    f"the stack has {self.private_subnet_count} private subnets",
                )
            if cluster.orchestrator == "eks" and cluster.eks_cluster_arn is None and not self.eks:
                raise _KeyError(
                    f"{key}.eksClusterArn",
                    "is required with orchestrator eks when the stack has no eks cluster "
                    "(mlplatform:eks): the EKS cluster the nodes join",
                )
            no_nat = self.existing_vpc_id is None and self.nat_gateways == "none"
            if cluster.internet_egress and no_nat:
                raise _KeyError(
                    f"{key}.internetEgress", "needs a NAT gateway (natGateways is none)"
                )
            if cluster.orchestrator == "eks" and not cluster.internet_egress:
                missing = [e for e in HYPERPOD_EKS_ENDPOINTS if e not in self.vpc_endpoints]
                if missing:
                    raise _KeyError(
                        "vpcEndpoints",
                        f"lacks {', '.join(missing)}: the nodes of HyperPod cluster "
                        f"{cluster.name!r} (orchestrator eks, no internetEgress) reach SageMaker "
                        "and EKS Pod Identity only through them",
                    )
            if cluster.dependencies_chart is not None and cluster.eks_cluster_arn is not None:
                raise _KeyError(
                    f"{key}.dependenciesChart",
                    "needs the stack's own EKS cluster (no kubeconfig for a cluster given by ARN)",
                )
        if self.arc is not None:
            self._check_arc(self.arc)
        if self.eks is not None:
            for index, group in enumerate(self.eks.gpu_node_groups):
                if group.efa and group.subnet_index >= self.private_subnet_count:
                    raise _KeyError(
                        f"eks.gpuNodeGroups[{index}].subnetIndex",
                        f"{group.subnet_index} is out of range: "
                        f"the stack has {self.private_subnet_count} private subnets",
                    )
        self._check_training_jobs()
        return self

    def _check_arc(self, arc: ArcConfig) -> None:
        if self.eks is None:
            raise _KeyError("arc", "needs the stack's EKS cluster (mlplatform:eks)")
        if arc.auth == "app" and self.github_app_private_key is None:
            raise _KeyError(
                "githubAppPrivateKey",
                "is required with arc.auth app (pulumi config set --secret "
                "mlplatform:githubAppPrivateKey < key.pem)",
            )
        if arc.auth == "token" and self.github_token is None:
            raise _KeyError(
                "githubToken",
                "is required with arc.auth token "
                "(pulumi config set --secret mlplatform:githubToken)",
            )
        groups = [group.name for group in self.eks.gpu_node_groups]
        for index, runner in enumerate(arc.runner_classes):
            if not runner.gpu:
                continue
            key = f"arc.runnerClasses[{index}].nodeGroup"
            if not groups:
                raise _KeyError(
                    key, "a GPU runner class needs a GPU node group (eks.gpuNodeGroups)"
                )
            if runner.node_group is not None and runner.node_group not in groups:
                raise _KeyError(key, f"{runner.node_group!r} is not a GPU node group")
            group = self.eks.gpu_node_groups[groups.index(runner.node_group or groups[0])]
            if runner.gpus > group.gpus_per_node:
                raise _KeyError(
                    f"arc.runnerClasses[{index}].gpus",
                    f"{runner.gpus} is more than a node of {group.name!r} has "
                    f"({group.gpus_per_node})",
                )

    def _check_training_jobs(self) -> None:
        names = [job.name for job in self.training_jobs]
        for index, job in enumerate(self.training_jobs):
            key = f"trainingJobs[{index}]"
            if names.index(job.name) != index:
                raise _KeyError(f"{key}.name", f"{job.name!r} is used twice")
            if self.eks is None:
                raise _KeyError(
                    key,
                    "needs the stack's EKS cluster (mlplatform:eks): jobs are deployed through "
                    "its Kubernetes API",
                )
            if job.engine == TrainingEngine.HYPERPOD:
                cluster = self.hyperpod_cluster_of(job, key)
                capacity = sum(
                    g.count for g in cluster.instance_groups if g.instance_type == job.instance_type
                )
                where, has = f"HyperPod cluster {cluster.name!r}", "has"
            else:
                groups = self.node_groups_of(job)
                capacity = sum(g.max_size for g in groups)
                where, has = "the EKS GPU node groups", "have"
            if capacity == 0:
                raise _KeyError(
                    f"{key}.instanceType", f"{where} {has} no {job.instance_type} nodes"
                )
            if job.nodes > capacity or (job.max_nodes or 0) > capacity:
                wanted = max(job.nodes, job.max_nodes or 0)
                raise _KeyError(
                    f"{key}.maxNodes" if wanted > job.nodes else f"{key}.nodes",
                    f"{wanted} is more than the {capacity} {job.instance_type} nodes of {where}",
                )

    def hyperpod_cluster_of(self, job: TrainingJobSettings, key: str = "") -> HyperPodClusterConfig:
        """The HyperPod cluster whose nodes run a `hyperpod` job: one that joins the stack's
        EKS cluster, the cluster the job is deployed through."""
        on_stack = [c for c in self.hyperpod_clusters if c.joins_stack_cluster]
        if job.hyperpod_cluster is None:
            if len(on_stack) != 1:
                raise _KeyError(
                    f"{key}.hyperpodCluster",
                    f"is required: the stack has {len(on_stack)} HyperPod clusters on its "
                    "EKS cluster",
                )
            return on_stack[0]
        for cluster in on_stack:
            if cluster.name == job.hyperpod_cluster:
                return cluster
        raise _KeyError(
            f"{key}.hyperpodCluster",
            f"{job.hyperpod_cluster!r} is not a HyperPod cluster on the stack's EKS cluster "
            "(orchestrator eks, no eksClusterArn)",
        )

    def node_groups_of(self, job: TrainingJobSettings) -> list[GpuNodeGroupConfig]:
        """The EKS GPU node groups that can run an `eks` job (its instance type)."""
        groups = self.eks.gpu_node_groups if self.eks else ()
        return [g for g in groups if job.instance_type in g.instance_types]

    @property
    def private_subnet_count(self) -> int:
        if self.existing_vpc_id is not None:
            return len(self.existing_private_subnet_ids)
        return self.availability_zones

    @property
    def git_secret_arns(self) -> tuple[str, ...]:
        """Secrets the notebooks need to clone their repositories."""
        arns = {
            nb.git_repository.secret_arn
            for nb in self.notebooks
            if nb.git_repository and nb.git_repository.secret_arn
        }
        return tuple(sorted(arns))


# Keys outside our namespace that the program reads; everything else outside it is ignored.
_PROVIDER_KEYS = {"aws:region": "region"}


def parse_stack_config(raw: Mapping[str, Any], stack_file: str) -> StackConfig:
    """Validate raw config (`{"mlplatform:key": value, "aws:region": ...}`) into a StackConfig.

    Values may be native (from YAML) or strings as the Pulumi engine passes them (JSON for
    structured values). Raises ConfigError with one line naming `stack_file` and the key.
    """
    data: dict[str, Any] = {}
    for full_key, value in raw.items():
        if full_key in _PROVIDER_KEYS:
            data[_PROVIDER_KEYS[full_key]] = _decode(value)
            continue
        namespace, _, key = full_key.partition(":")
        if namespace != PROJECT:
            continue
        data[key] = _decode(value)
    if "region" not in data:
        raise ConfigError(f"{stack_file}: aws:region: is required")
    try:
        return StackConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, data, stack_file)) from None


def load_stack_config() -> StackConfig:
    """Parse the running Pulumi program's config (engine-provided, or set by mocks)."""
    from pulumi.runtime import config as runtime_config

    raw = dict(runtime_config.get_config_env() or {})
    raw.update(runtime_config.CONFIG.get())
    return parse_stack_config(raw, f"Pulumi.{pulumi.get_stack()}.yaml")


def _decode(value: Any) -> Any:
    """The engine passes structured config as JSON strings; YAML gives native values."""
    if isinstance(value, Mapping) and set(value) == {"secure"}:
        # A stack file read directly: only the Pulumi CLI can decrypt this value.
        return SECURE_PLACEHOLDER
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _describe(error: ValidationError, data: Mapping[str, Any], stack_file: str) -> str:
    """One line for the first problem: `<file>: mlplatform:<key path>: <what is wrong>`."""
    line = describe(error, f"{PROJECT}:", camel=True, schema_root=StackConfig)
    if line.startswith(f"{PROJECT}:region:"):
        line = "aws:region:" + line.removeprefix(f"{PROJECT}:region:")
    return f"{stack_file}: {line}"
