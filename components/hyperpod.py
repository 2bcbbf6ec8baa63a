"""A SageMaker HyperPod cluster on a private network, orchestrated by EKS or Slurm.

HyperPod exists only in pulumi-aws-native (`aws_native.sagemaker.Cluster`). The component adds
what a cluster needs around it: an execution role, a security group letting the nodes talk to each
other (EFA needs all traffic, both directions), an optional FSx for Lustre file system, and the
lifecycle scripts (`components/hyperpod_lifecycle/`) uploaded to the models bucket under a prefix
named after their content, so that changing a script rolls out a new URI.

For Slurm, `provisioning_parameters.json` is generated from the same instance groups the cluster
gets, so group and partition names cannot drift between the two.

Settings (`HyperPodClusterSettings`, what a stack file's `hyperpodClusters` entry sets) are declared
once here; `HyperPodClusterArgs` adds what the program wires in from other components: network and
bucket IDs, the KMS key, the EKS cluster. A Kubernetes provider (for the dependencies chart) comes
with the options (`providers={"kubernetes": ...}`), ordering with `depends_on`.
"""

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from importlib import resources
from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from mlplatform.components.catalog import (
    FSX_LUSTRE_GB_MONTH_USD,
    HYPERPOD_INSTANCE_HOURLY_USD,
    gpus_per_instance,
    instance_family,
)
from mlplatform.components.eks import GPU_TAINT_KEY
from mlplatform.components.extras import missing_extra
from mlplatform.components.hyperpod_eks import (
    ChartSource,
    dependencies_chart,
    eks_addons,
    prerequisites_report,
)
from mlplatform.components.iam import (
    HYPERPOD_INSTANCE_MANAGED_POLICY,
    assume_role_policy,
    hyperpod_execution_statements,
    managed_policy_arn,
    policy_document,
)
from mlplatform.components.schema import ArgsError, SettingError, check_unique_names, parse, schema
from mlplatform.components.security_groups import rule, security_group

try:
    import pulumi_aws_native as aws_native
except ModuleNotFoundError as missing:
    missing_extra(missing, "HyperPodCluster")

LIFECYCLE_PACKAGE_DIR = "hyperpod_lifecycle"
ON_CREATE = "on_create.sh"
PARAMS_FILE = "provisioning_parameters.json"

# Interface endpoints EKS-orchestrated HyperPod nodes need when they have no internet route.
HYPERPOD_EKS_ENDPOINTS = ("sagemaker.api", "eks-auth")

# HyperPod cluster, instance group and Slurm partition names (CreateCluster's pattern).
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_EKS_CLUSTER_ARN = re.compile(
    r"^arn:aws[a-z-]*:eks:[a-z0-9-]+:\d{12}:cluster/[0-9A-Za-z][A-Za-z0-9_-]*$"
)
_TRAINING_PLAN_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:training-plan/.+$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_MOUNT_PATH = re.compile(r"^/[A-Za-z0-9_./-]*$")


class Orchestrator(StrEnum):
    """What schedules work on the cluster's nodes."""

    EKS = "eks"
    """The nodes join an EKS cluster."""
    SLURM = "slurm"
    """HyperPod runs Slurm on the nodes."""


class NodeRecovery(StrEnum):
    """What HyperPod does with a faulty node."""

    AUTOMATIC = "Automatic"
    """Replace or reboot it."""
    NONE = "None"
    """Only label it."""


class SlurmRole(StrEnum):
    """What a Slurm cluster's instance group is."""

    CONTROLLER = "controller"
    """Runs slurmctld (exactly one group, of one node)."""
    LOGIN = "login"
    """Where users log in (at most one group)."""
    COMPUTE = "compute"
    """Runs slurmd in a partition."""


class DeepHealthCheck(StrEnum):
    """A deep health check HyperPod runs when a node starts."""

    INSTANCE_STRESS = "InstanceStress"
    """Stress the accelerators, memory and disks."""
    INSTANCE_CONNECTIVITY = "InstanceConnectivity"
    """Check EFA and NCCL connectivity between nodes."""


class TaintEffect(StrEnum):
    """What a Kubernetes taint does to pods that do not tolerate it."""

    NO_SCHEDULE = "NoSchedule"
    """Never scheduled on the node."""
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    """Scheduled on the node only when nothing else fits."""
    NO_EXECUTE = "NoExecute"
    """Not scheduled, and evicted if already running."""


class FsxDeploymentType(StrEnum):
    """FSx for Lustre deployment types."""

    PERSISTENT_2 = "PERSISTENT_2"
    """Replicated storage, SSD, 125 to 1000 MB/s per TiB."""
    PERSISTENT_1 = "PERSISTENT_1"
    """Replicated storage, previous generation, 50 to 200 MB/s per TiB."""
    SCRATCH_2 = "SCRATCH_2"
    """Unreplicated, cheapest, 200 MB/s per TiB: for data that can be recreated."""


# Throughput (MB/s per TiB) of a persistent file system that does not set `throughput_per_tib`.
FSX_DEFAULT_THROUGHPUT_PER_TIB = {
    FsxDeploymentType.PERSISTENT_2: 250,
    FsxDeploymentType.PERSISTENT_1: 200,
}


def _hyperpod_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a HyperPod name (letters, digits, hyphens, at most 63)")
    return name


@schema
class TaintArgs:
    """A Kubernetes taint HyperPod puts on the nodes of an EKS-orchestrated instance group."""

    key: str
    """The taint's key, e.g. `nvidia.com/gpu`."""
    value: str | None = None
    """The taint's value."""
    effect: TaintEffect = TaintEffect.NO_SCHEDULE
    """What the taint does to pods that do not tolerate it."""

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        if not _LABEL_KEY.match(key):
            raise ValueError(f"{key!r} is not a Kubernetes taint key")
        return key


@schema
class InstanceGroupArgs:
    """One instance group. Slurm fields apply to Slurm clusters, labels and taints to EKS ones."""

    name: str
    """The group's name (letters, digits, hyphens, at most 63)."""
    instance_type: str
    """An `ml.*` HyperPod instance type of the catalog (`components/catalog.py`)."""
    count: int = Field(ge=0, le=256)
    """Nodes in the group."""
    min_count: int | None = Field(default=None, ge=0)
    """Nodes HyperPod must get for the group to count as created (at most `count`)."""
    threads_per_core: int = Field(default=1, ge=1, le=2)
    """1 turns simultaneous multithreading off (the usual choice for GPU training), 2 on."""
    ebs_volume_size_gb: int = Field(default=500, ge=1, le=16384)
    """EBS storage attached to each node, in GB."""
    deep_health_checks: Sequence[DeepHealthCheck] = ()
    """Deep health checks HyperPod runs when a node starts."""
    slurm_role: SlurmRole = SlurmRole.COMPUTE
    """Slurm only: what the group's nodes are."""
    partition: str | None = None
    """Slurm only: the partition of a compute group (default: the group's name)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """EKS only: Kubernetes labels of the group's nodes."""
    taints: Sequence[TaintArgs] = ()
    """EKS only: Kubernetes taints of the nodes (GPU groups always get `nvidia.com/gpu`)."""
    training_plan_arn: str | None = None
    """A SageMaker training plan whose reserved capacity the group runs on."""

    @field_validator("name", "partition")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        return None if name is None else _hyperpod_name(name)

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
    def _checks(cls, checks: Sequence[DeepHealthCheck]) -> Sequence[DeepHealthCheck]:
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
    def _min_count(self) -> "InstanceGroupArgs":
        if self.min_count is not None and self.min_count > self.count:
            raise SettingError("min_count", f"{self.min_count} is above count ({self.count})")
        return self


@schema
class FsxLustreArgs:
    """An FSx for Lustre file system in the cluster's subnet, mounted by the lifecycle scripts."""

    storage_capacity_gb: int = Field(default=1200, ge=1200, le=1200 * 1000)
    """Storage in GB, a multiple of 1200."""
    deployment_type: FsxDeploymentType = FsxDeploymentType.PERSISTENT_2
    """Persistent (replicated, KMS-encrypted with the stack's key) or scratch."""
    throughput_per_tib: int | None = None
    """MB/s per TiB, persistent types only; unset: 250 for PERSISTENT_2, 200 for PERSISTENT_1."""
    mount_path: str = "/fsx"
    """Where the lifecycle scripts mount it on every node."""

    @field_validator("storage_capacity_gb")
    @classmethod
    def _capacity(cls, gb: int) -> int:
        if gb % 1200:
            raise ValueError(f"{gb} is not a multiple of 1200 GB")
        return gb

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, path: str) -> str:
        if not _MOUNT_PATH.match(path) or ".." in path or path == "/":
            raise ValueError(f"{path!r} is not an absolute mount path")
        return path

    @model_validator(mode="after")
    def _throughput_offered(self) -> "FsxLustreArgs":
        if self.deployment_type == FsxDeploymentType.SCRATCH_2:
            if self.throughput_per_tib is not None:
                raise SettingError("throughput_per_tib", "is not set for SCRATCH_2 file systems")
            return self
        allowed = sorted(
            t for kind, t in FSX_LUSTRE_GB_MONTH_USD if kind == self.deployment_type and t
        )
        if self.throughput not in allowed:
            raise SettingError(
                "throughput_per_tib",
                f"{self.throughput_per_tib} is not offered for {self.deployment_type} "
                f"(one of {', '.join(map(str, allowed))})",
            )
        return self

    @property
    def throughput(self) -> int | None:
        """MB/s per TiB: the setting, or the deployment type's default (none for scratch)."""
        if self.throughput_per_tib is not None:
            return self.throughput_per_tib
        return FSX_DEFAULT_THROUGHPUT_PER_TIB.get(self.deployment_type)

    @property
    def persistent(self) -> bool:
        return self.deployment_type != FsxDeploymentType.SCRATCH_2


@schema
class TieredStorageArgs:
    """SageMaker managed tiered checkpointing: part of each node's memory holds checkpoints."""

    enabled: bool = True
    """Turn the in-memory checkpoint tier on."""
    memory_percent: int = Field(default=20, ge=20, le=100)
    """Share of each node's memory given to it, in percent."""


@schema
class HyperPodClusterSettings:
    """A SageMaker HyperPod cluster on a private network, orchestrated by EKS or Slurm."""

    name: str
    """The HyperPod cluster's name (letters, digits, hyphens)."""
    orchestrator: Orchestrator = Orchestrator.EKS
    """EKS (the nodes join an EKS cluster) or Slurm."""
    eks_cluster_arn: pulumi.Input[str] | None = None
    """EKS only: the EKS cluster the nodes join."""
    instance_groups: Sequence[InstanceGroupArgs] = Field(min_length=1, max_length=20)
    """The cluster's instance groups (1 to 20)."""
    node_recovery: NodeRecovery = NodeRecovery.AUTOMATIC
    """Replace or reboot faulty nodes (`Automatic`) or only label them (`None`)."""
    continuous_provisioning: bool = True
    """EKS only: nodes join as capacity appears instead of all or nothing."""
    subnet_index: int = Field(default=0, ge=0)
    """Which private subnet (one AZ) holds the nodes and the file system."""
    fsx: FsxLustreArgs | None = None
    """An FSx for Lustre file system mounted on every node."""
    tiered_storage: TieredStorageArgs | None = None
    """EKS only: managed tiered checkpointing."""
    internet_egress: bool = False
    """HTTPS to the internet through the NAT; otherwise only the VPC endpoints and S3."""
    cert_manager: bool = True
    """EKS only: install the cert-manager EKS add-on (the training operator needs it)."""
    training_operator: bool = True
    """EKS only: install the HyperPod training operator EKS add-on with its pod identity role."""
    dependencies_chart: ChartSource | None = None
    """EKS only: where the HyperPod dependencies chart is published (installed before the
    cluster through the Kubernetes provider in the options)."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _hyperpod_name(name)

    @field_validator("eks_cluster_arn")
    @classmethod
    def _arn(cls, arn: Any) -> Any:
        if isinstance(arn, str) and not _EKS_CLUSTER_ARN.match(arn):
            raise ValueError(f"{arn!r} is not an EKS cluster ARN")
        return arn

    @model_validator(mode="after")
    def _orchestration(self) -> "HyperPodClusterSettings":
        check_unique_names(self.instance_groups, "instance_groups")
        if self.orchestrator == Orchestrator.SLURM:
            self._check_slurm()
        else:
            self._check_eks()
        return self

    def _check_slurm(self) -> None:
        if self.eks_cluster_arn is not None:
            raise SettingError("eks_cluster_arn", "is only for orchestrator eks")
        if self.dependencies_chart is not None:
            raise SettingError("dependencies_chart", "is only for orchestrator eks")
        if self.tiered_storage is not None:
            raise SettingError(
                "tiered_storage",
                "managed tiered checkpointing needs orchestrator eks (HyperPod offers it only "
                "on EKS-orchestrated clusters)",
            )
        roles = [group.slurm_role for group in self.instance_groups]
        if roles.count(SlurmRole.CONTROLLER) != 1:
            raise SettingError(
                "instance_groups",
                f"a Slurm cluster needs exactly one group with slurmRole controller, "
                f"found {roles.count(SlurmRole.CONTROLLER)}",
            )
        for index, group in enumerate(self.instance_groups):
            key = f"instance_groups[{index}]"
            if group.slurm_role == SlurmRole.CONTROLLER and group.count != 1:
                raise SettingError(f"{key}.count", "the Slurm controller group has one node")
            if group.labels or group.taints:
                field = "labels" if group.labels else "taints"
                raise SettingError(f"{key}.{field}", "are for orchestrator eks only")
            if group.partition is not None and group.slurm_role != SlurmRole.COMPUTE:
                raise SettingError(f"{key}.partition", "is for compute groups only")
        if roles.count(SlurmRole.LOGIN) > 1:
            raise SettingError("instance_groups", "a Slurm cluster has at most one login group")
        if SlurmRole.COMPUTE not in roles:
            raise SettingError(
                "instance_groups", "a Slurm cluster needs at least one compute group"
            )

    def _check_eks(self) -> None:
        for index, group in enumerate(self.instance_groups):
            if group.slurm_role != SlurmRole.COMPUTE or group.partition is not None:
                field = "slurm_role" if group.slurm_role != SlurmRole.COMPUTE else "partition"
                raise SettingError(
                    f"instance_groups[{index}].{field}", "is for orchestrator slurm only"
                )

    @property
    def joins_stack_cluster(self) -> bool:
        """EKS orchestration without an ARN here: whoever wires the component supplies the EKS
        cluster (the stack builder: its own GpuEksCluster)."""
        return self.orchestrator == Orchestrator.EKS and self.eks_cluster_arn is None


@schema
class HyperPodClusterArgs(HyperPodClusterSettings):
    """A cluster's settings plus what the program wires in from the network, the data stores
    and the EKS cluster."""

    vpc_id: pulumi.Input[str]
    """The VPC of the nodes' security group."""
    vpc_cidr: pulumi.Input[str]
    """The VPC's CIDR: the nodes reach HTTPS in it (interface endpoints, the EKS API)."""
    subnet_ids: Sequence[pulumi.Input[str]] = Field(min_length=1)
    """Private subnets; `subnet_index` picks the one of the nodes and the file system."""
    s3_prefix_list_id: pulumi.Input[str]
    """The S3 gateway endpoint's prefix list: the nodes reach S3 through it."""
    kms_key_arn: pulumi.Input[str]
    """Encrypts the uploaded lifecycle scripts and a persistent file system."""
    models_bucket_name: pulumi.Input[str]
    """The bucket the lifecycle scripts are uploaded to."""
    models_bucket_arn: pulumi.Input[str]
    """That bucket's ARN: the execution role reads the cluster's prefix of it."""
    eks_security_group_id: pulumi.Input[str] | None = None
    """EKS only: the EKS cluster's security group (its control plane and other nodes), which
    exchanges all traffic with the nodes; none for a cluster given only by its ARN."""
    protect_data: bool = False
    """Protect and retain the file system through `pulumi destroy`."""

    @model_validator(mode="after")
    def _wiring(self) -> "HyperPodClusterArgs":
        if self.orchestrator == Orchestrator.EKS and self.eks_cluster_arn is None:
            raise SettingError(
                "eks_cluster_arn",
                "is required with orchestrator eks: the EKS cluster the nodes join",
            )
        if self.orchestrator != Orchestrator.EKS and self.eks_security_group_id is not None:
            raise SettingError("eks_security_group_id", "is only for orchestrator eks")
        if self.subnet_index >= len(self.subnet_ids):
            raise SettingError(
                "subnet_index",
                f"{self.subnet_index} is out of range: subnet_ids lists {len(self.subnet_ids)}",
            )
        return self


def lifecycle_scripts() -> dict[str, str]:
    """The packaged lifecycle scripts: file name -> content."""
    folder = resources.files("mlplatform.components").joinpath(LIFECYCLE_PACKAGE_DIR)
    return {
        entry.name: entry.read_text()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.is_file() and entry.name.endswith((".sh", ".py"))
    }


def provisioning_parameters(
    orchestrator: str,
    groups: Sequence[InstanceGroupArgs],
    fsx: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The lifecycle scripts' `provisioning_parameters.json`, from the cluster's own groups.

    For Slurm it names the controller, login and worker groups (HyperPod configures Slurm's
    partitions from it); for both orchestrators it carries the FSx DNS and mount names.
    """
    params: dict[str, Any] = {"version": "1.0.0", "workload_manager": str(orchestrator)}
    if orchestrator == Orchestrator.SLURM:
        for group in groups:
            if group.slurm_role == SlurmRole.CONTROLLER:
                params["controller_group"] = group.name
            elif group.slurm_role == SlurmRole.LOGIN:
                params["login_group"] = group.name
        params["worker_groups"] = [
            {"instance_group_name": g.name, "partition_name": g.partition or g.name}
            for g in groups
            if g.slurm_role == SlurmRole.COMPUTE
        ]
    if fsx:
        params.update(fsx)
    return params


def content_digest(files: Mapping[str, str]) -> str:
    """A short digest of a set of files: changes whenever any name or content changes."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()[:16]


class HyperPodCluster(pulumi.ComponentResource):
    """HyperPod cluster + execution role + node security group + lifecycle scripts (+ FSx for
    Lustre, + the EKS prerequisites)."""

    cluster_arn: pulumi.Output[str]
    """The HyperPod cluster's ARN."""
    cluster_name: pulumi.Output[str]
    """The HyperPod cluster's name."""
    execution_role_arn: pulumi.Output[str]
    """The role the cluster's nodes run with."""
    security_group_id: pulumi.Output[str]
    """The nodes' security group (the file system's too)."""
    lifecycle_script_uri: pulumi.Output[str]
    """S3 folder of the lifecycle scripts; a changed script or group gives a new one."""
    fsx_id: pulumi.Output[str] | None
    """The FSx for Lustre file system's ID (none without `fsx`)."""
    fsx_dns_name: pulumi.Output[str] | None
    """The file system's DNS name (none without `fsx`)."""
    fsx_mount_name: pulumi.Output[str] | None
    """The file system's Lustre mount name (none without `fsx`)."""
    prerequisites: pulumi.Output[dict[str, str]]
    """EKS: each prerequisite on the EKS cluster and whether this component installs it."""

    def __init__(
        self, name: str, args: HyperPodClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args = parse(HyperPodClusterArgs, args)  # a mapping when another language calls
        super().__init__("mlplatform:index:HyperPodCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # What the component waits for (e.g. the EKS cluster whose ARN is only computed) is
        # what the cluster and the dependencies chart wait for: children do not inherit it.
        after = pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None)
        eks = args.orchestrator == Orchestrator.EKS
        chart_provider = self.get_provider("kubernetes:helm.sh/v3:Release")
        if eks and args.dependencies_chart is not None and chart_provider is None:
            raise ArgsError(
                "HyperPodClusterArgs.dependencies_chart: needs a Kubernetes provider for the EKS "
                'cluster (opts=ResourceOptions(providers={"kubernetes": ...}))'
            )
        invoke = pulumi.InvokeOutputOptions(parent=self)
        partition = aws.get_partition_output(opts=invoke).partition
        subnet_id = args.subnet_ids[args.subnet_index]
        lifecycle_prefix = f"code/hyperpod/{args.name}/"

        self.security_group_id = self._security_group(name, args)
        file_system = (
            self._file_system(name, args.fsx, args, subnet_id, self.security_group_id)
            if args.fsx is not None
            else None
        )

        role = aws.iam.Role(
            f"{name}-execution-role",
            description=f"Execution role of the nodes of HyperPod cluster {name}",
            assume_role_policy=assume_role_policy("sagemaker.amazonaws.com"),
            max_session_duration=3600,
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-instance-policy",
            role=role.name,
            policy_arn=managed_policy_arn(partition, HYPERPOD_INSTANCE_MANAGED_POLICY),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=role.id,
            policy=policy_document(
                hyperpod_execution_statements(
                    partition=partition,
                    region=aws.get_region_output(opts=invoke).region,
                    account_id=aws.get_caller_identity_output(opts=invoke).account_id,
                    bucket_arn=args.models_bucket_arn,
                    lifecycle_prefix=lifecycle_prefix,
                    kms_key_arn=args.kms_key_arn,
                )
            ),
            opts=child,
        )
        self.execution_role_arn = role.arn

        fsx_params = (
            pulumi.Output.all(file_system.dns_name, file_system.mount_name).apply(
                lambda v: {"fsx_dns_name": v[0], "fsx_mountname": v[1]}
            )
            if file_system is not None
            else None
        )
        self.lifecycle_script_uri = self._upload_lifecycle(name, args, lifecycle_prefix, fsx_params)

        # AWS installs the dependencies chart before the cluster, the add-ons after it.
        chart = (
            dependencies_chart(name, args.dependencies_chart, after)
            if eks and args.dependencies_chart is not None
            else None
        )
        sagemaker = aws_native.sagemaker
        cluster = sagemaker.Cluster(
            name,
            cluster_name=args.name,
            instance_groups=[
                _instance_group(g, args.orchestrator, role.arn, self.lifecycle_script_uri)
                for g in args.instance_groups
            ],
            orchestrator=(
                sagemaker.ClusterOrchestratorArgs(
                    eks=sagemaker.ClusterOrchestratorEksConfigArgs(cluster_arn=args.eks_cluster_arn)
                )
                if args.eks_cluster_arn is not None  # orchestrator eks (the Args check it)
                else None
            ),
            vpc_config=sagemaker.ClusterVpcConfigArgs(
                security_group_ids=[self.security_group_id], subnets=[subnet_id]
            ),
            node_recovery=sagemaker.ClusterNodeRecovery(args.node_recovery),
            # Continuous provisioning is offered for EKS-orchestrated clusters.
            node_provisioning_mode=(
                sagemaker.ClusterNodeProvisioningMode.CONTINUOUS
                if eks and args.continuous_provisioning
                else None
            ),
            tiered_storage_config=(
                sagemaker.ClusterTieredStorageConfigArgs(
                    mode=sagemaker.ClusterTieredStorageConfigMode.ENABLE,
                    instance_memory_allocation_percentage=args.tiered_storage.memory_percent,
                )
                if args.tiered_storage is not None and args.tiered_storage.enabled
                else None
            ),
            opts=pulumi.ResourceOptions.merge(
                after, pulumi.ResourceOptions(depends_on=[chart] if chart else None)
            ),
        )
        self.cluster_arn = cluster.cluster_arn
        self.cluster_name = cluster.cluster_name.apply(lambda n: n or args.name)
        report: dict[str, str] = {}
        if eks and args.eks_cluster_arn is not None:
            eks_addons(
                name,
                cert_manager=args.cert_manager,
                training_operator=args.training_operator,
                cluster_name=pulumi.Output.from_input(args.eks_cluster_arn).apply(
                    lambda arn: arn.rsplit("/", 1)[-1]
                ),
                partition=partition,
                parent=self,
                after=[cluster],
            )
            report = prerequisites_report(
                cert_manager=args.cert_manager,
                training_operator=args.training_operator,
                chart=args.dependencies_chart,
            )
        self.prerequisites = pulumi.Output.from_input(report)

        if file_system is not None:
            self.fsx_id = file_system.id
            self.fsx_dns_name = file_system.dns_name
            self.fsx_mount_name = file_system.mount_name
        else:
            self.fsx_id = self.fsx_dns_name = self.fsx_mount_name = None

        self.register_outputs(
            {
                "clusterArn": self.cluster_arn,
                "clusterName": self.cluster_name,
                "executionRoleArn": self.execution_role_arn,
                "securityGroupId": self.security_group_id,
                "lifecycleScriptUri": self.lifecycle_script_uri,
                "fsxId": self.fsx_id,
                "fsxDnsName": self.fsx_dns_name,
                "fsxMountName": self.fsx_mount_name,
                "prerequisites": self.prerequisites,
            }
        )

    def _security_group(self, name: str, args: HyperPodClusterArgs) -> pulumi.Output[str]:
        """Nodes exchange all traffic with each other (EFA requires it, in and out); beyond that
        they reach only HTTPS in the VPC (interface endpoints, EKS API) and S3."""
        child = pulumi.ResourceOptions(parent=self)
        group = security_group(
            f"{name}-nodes", f"Nodes of HyperPod cluster {name}", args.vpc_id, child
        )
        all_traffic: dict[str, Any] = {"ports": None, "protocol": "-1"}
        rule(
            "ingress",
            f"{name}-nodes-from-nodes",
            group.id,
            "All traffic between cluster nodes (EFA, NCCL, Lustre)",
            child,
            peer_group_id=group.id,
            **all_traffic,
        )
        rule(
            "egress",
            f"{name}-nodes-to-nodes",
            group.id,
            "All traffic between cluster nodes (EFA requires egress to itself too)",
            child,
            peer_group_id=group.id,
            **all_traffic,
        )
        rule(
            "egress",
            f"{name}-nodes-https-to-vpc",
            group.id,
            "HTTPS to the interface endpoints and the EKS API",
            child,
            cidr=args.vpc_cidr,
        )
        rule(
            "egress",
            f"{name}-nodes-https-to-s3",
            group.id,
            "HTTPS to S3 through the gateway endpoint",
            child,
            prefix_list_id=args.s3_prefix_list_id,
        )
        if args.eks_security_group_id is not None:
            self._eks_rules(name, group.id, args.eks_security_group_id)
        if args.internet_egress:
            rule(
                "egress",
                f"{name}-nodes-https-to-internet",
                group.id,
                "HTTPS to the internet through the NAT gateways",
                child,
                cidr="0.0.0.0/0",
            )
        return group.id

    def _eks_rules(
        self, name: str, group_id: pulumi.Input[str], eks_group_id: pulumi.Input[str]
    ) -> None:
        """HyperPod nodes are Kubernetes nodes of the EKS cluster: the API server reaches their
        kubelets and webhooks, and pods on them talk to pods on the cluster's other nodes."""
        child = pulumi.ResourceOptions(parent=self)
        all_traffic: dict[str, Any] = {"ports": None, "protocol": "-1"}
        rule(
            "ingress",
            f"{name}-nodes-from-eks",
            group_id,
            "All traffic from the EKS control plane and the cluster's other nodes",
            child,
            peer_group_id=eks_group_id,
            **all_traffic,
        )
        rule(
            "egress",
            f"{name}-nodes-to-eks",
            group_id,
            "All traffic to the EKS control plane and the cluster's other nodes",
            child,
            peer_group_id=eks_group_id,
            **all_traffic,
        )
        rule(
            "ingress",
            f"{name}-eks-from-nodes",
            eks_group_id,
            f"All traffic from the nodes of HyperPod cluster {name}",
            child,
            peer_group_id=group_id,
            **all_traffic,
        )

    def _file_system(
        self,
        name: str,
        fsx: FsxLustreArgs,
        args: HyperPodClusterArgs,
        subnet_id: pulumi.Input[str],
        group_id: pulumi.Input[str],
    ) -> aws.fsx.LustreFileSystem:
        """FSx for Lustre in the cluster's subnet and security group (Lustre ports 988 and
        1018-1023 are covered by the all-traffic rule between members of the group)."""
        return aws.fsx.LustreFileSystem(
            f"{name}-fsx",
            storage_capacity=fsx.storage_capacity_gb,
            deployment_type=str(fsx.deployment_type),
            per_unit_storage_throughput=fsx.throughput,
            subnet_ids=subnet_id,
            security_group_ids=[group_id],
            kms_key_id=args.kms_key_arn if fsx.persistent else None,
            file_system_type_version="2.15",
            data_compression_type="LZ4",
            copy_tags_to_backups=True,
            tags={"Name": f"{name}-fsx"},
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect_data, retain_on_delete=args.protect_data
            ),
        )

    def _upload_lifecycle(
        self,
        name: str,
        args: HyperPodClusterArgs,
        lifecycle_prefix: str,
        fsx_params: pulumi.Output[dict[str, str]] | None,
    ) -> pulumi.Output[str]:
        """Scripts + generated parameters under `<prefix><digest of all of them>/`."""
        scripts = lifecycle_scripts()
        mount_path = {"fsx_mount_path": args.fsx.mount_path} if args.fsx is not None else {}
        params = pulumi.Output.from_input(fsx_params or {}).apply(
            lambda fsx: (
                json.dumps(
                    provisioning_parameters(
                        args.orchestrator, args.instance_groups, {**fsx, **mount_path}
                    ),
                    indent=2,
                    sort_keys=True,
                )
                + "\n"
            )
        )
        folder = params.apply(
            lambda text: f"{lifecycle_prefix}{content_digest({**scripts, PARAMS_FILE: text})}/"
        )
        files: dict[str, pulumi.Input[str]] = {**scripts, PARAMS_FILE: params}
        for file_name, content in files.items():
            aws.s3.BucketObjectv2(
                f"{name}-lifecycle-{file_name.replace('_', '-').replace('.', '-')}",
                bucket=args.models_bucket_name,
                key=pulumi.Output.concat(folder, file_name),
                content=content,
                content_type="application/json" if file_name.endswith(".json") else "text/plain",
                server_side_encryption="aws:kms",
                kms_key_id=args.kms_key_arn,
                bucket_key_enabled=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return pulumi.Output.concat("s3://", args.models_bucket_name, "/", folder)


def _instance_group(
    group: InstanceGroupArgs,
    orchestrator: Orchestrator,
    role_arn: pulumi.Input[str],
    source_uri: pulumi.Input[str],
) -> aws_native.sagemaker.ClusterInstanceGroupArgs:
    sagemaker = aws_native.sagemaker
    kubernetes = None
    # GPU nodes carry the taint GpuEksCluster's GPU groups carry, so only pods that tolerate it
    # (training jobs) land on them.
    taints = list(group.taints)
    if gpus_per_instance(group.instance_type) and not any(t.key == GPU_TAINT_KEY for t in taints):
        taints.append(TaintArgs(key=GPU_TAINT_KEY, value="true", effect=TaintEffect.NO_SCHEDULE))
    if orchestrator == Orchestrator.EKS and (group.labels or taints):
        kubernetes = sagemaker.ClusterKubernetesConfigArgs(
            labels=dict(group.labels) or None,
            taints=[
                sagemaker.ClusterKubernetesTaintArgs(
                    key=t.key,
                    value=t.value,
                    effect=sagemaker.ClusterKubernetesTaintEffect(t.effect),
                )
                for t in taints
            ]
            or None,
        )
    return sagemaker.ClusterInstanceGroupArgs(
        instance_group_name=group.name,
        instance_type=group.instance_type,
        instance_count=group.count,
        min_instance_count=group.min_count,
        threads_per_core=group.threads_per_core,
        execution_role=role_arn,
        life_cycle_config=sagemaker.ClusterLifeCycleConfigArgs(
            source_s3_uri=source_uri, on_create=ON_CREATE
        ),
        instance_storage_configs=[
            sagemaker.ClusterInstanceStorageConfigArgs(
                ebs_volume_config=sagemaker.ClusterEbsVolumeConfigArgs(
                    volume_size_in_gb=group.ebs_volume_size_gb
                )
            )
        ],
        on_start_deep_health_checks=[
            sagemaker.ClusterDeepHealthCheckType(c) for c in group.deep_health_checks
        ]
        or None,
        training_plan_arn=group.training_plan_arn,
        kubernetes_config=kubernetes,
    )
