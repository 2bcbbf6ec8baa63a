"""A GPU-ready EKS cluster: private API, KMS-encrypted secrets, IRSA, managed add-ons, a small CPU
system node group and tainted GPU node groups (optionally with EFA), plus the device plugins.

Seed 002 built this with Terraform, kustomize and hand-run Helm; here it is one component. Every
node group gets a launch template of ours, so what the guardrails check (IMDSv2, encrypted root
volume, EFA interfaces) is visible in the plan instead of hidden inside pulumi-eks.

Every setting is declared once, below: `GpuEksClusterSettings` is what a stack file's `eks`
section holds (and what the stack config validates it with), `GpuEksClusterArgs` adds what the
cluster is wired to (network, region, Helm values).

Under the mocks `eks:index:Cluster` is one registration without children (a remote component),
so this component uses only its documented outputs, never `eks_cluster` (a resource reference).
"""

import enum
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from mlplatform.components.catalog import (
    EC2_INSTANCE_HOURLY_USD,
    EKS_KUBERNETES_VERSIONS,
    efa_interfaces,
    gpus_per_instance,
)
from mlplatform.components.extras import missing_extra
from mlplatform.components.helm import layered_values, release
from mlplatform.components.iam import (
    assume_role_policy,
    cluster_autoscaler_statements,
    irsa_trust_policy,
    managed_policy_arn,
    policy_document,
)
from mlplatform.components.schema import SettingError, check_unique_names, parse, schema
from mlplatform.components.security_groups import rule
from mlplatform.components.shared_infra import aws_region

try:
    import pulumi_eks as eks
    import pulumi_kubernetes as k8s
except ModuleNotFoundError as missing:
    missing_extra(missing, "GpuEksCluster")

GPU_TAINT_KEY = "nvidia.com/gpu"
# Toleration matching the GPU taint, for anything that must run on GPU nodes.
GPU_TOLERATION = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
# Labels every GPU node carries (the NVIDIA device plugin's default affinity reads the first).
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
EFA_PRESENT_LABEL = "vpc.amazonaws.com/efa.present"
NODE_GROUP_LABEL = "mlplatform.io/node-group"
# The CPU node group every cluster has; GPU groups may not take its name.
SYSTEM_NODE_GROUP = "system"

CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")

# Names we give Kubernetes-visible things (node groups, runner classes): DNS-label-like, <= 40.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
IAM_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")
# The retention periods CloudWatch Logs accepts (PutRetentionPolicy, botocore's `Days`).
LOG_RETENTION_DAYS = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827),
    *(2192, 2557, 2922, 3288, 3653),
)


def check_labels(labels: Mapping[str, str]) -> Mapping[str, str]:
    """Kubernetes label keys and values, or a ValueError naming the first bad one."""
    for key, value in labels.items():
        if not LABEL_KEY.match(key):
            raise ValueError(f"{key!r} is not a Kubernetes label key")
        if not LABEL_VALUE.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes label value (label {key})")
    return labels


def check_sizes(min_size: int, desired_size: int | None, max_size: int) -> None:
    """min_size <= desired_size <= max_size, or a SettingError naming the field out of line."""
    if max_size < min_size:
        raise SettingError("max_size", f"{max_size} is below minSize {min_size}")
    if desired_size is not None and not min_size <= desired_size <= max_size:
        raise SettingError("desired_size", f"{desired_size} is outside minSize..maxSize")


class LogType(enum.StrEnum):
    """A control-plane log EKS sends to CloudWatch Logs."""

    API = "api"
    AUDIT = "audit"
    AUTHENTICATOR = "authenticator"
    CONTROLLER_MANAGER = "controllerManager"
    SCHEDULER = "scheduler"


class CapacityType(enum.StrEnum):
    """How a node group buys its instances."""

    ON_DEMAND = "onDemand"
    SPOT = "spot"


# EKS's spelling of each capacity type.
EKS_CAPACITY_TYPES = {CapacityType.ON_DEMAND: "ON_DEMAND", CapacityType.SPOT: "SPOT"}


@schema
class SystemNodeGroup:
    """The small CPU node group that runs cluster add-ons, controllers and CPU workloads."""

    instance_type: str = "m6i.large"
    """A CPU instance type of the catalog."""
    min_size: int = Field(default=2, ge=1, le=100)
    """Nodes always running (coredns and the controllers live here)."""
    desired_size: int | None = None
    """Nodes at creation (default min_size); afterwards the cluster autoscaler's to set."""
    max_size: int = Field(default=3, ge=1, le=100)
    """Most nodes the cluster autoscaler may run."""
    disk_size_gb: int = Field(default=50, ge=20, le=16384)
    """Encrypted gp3 root volume of each node, GB."""

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, instance_type: str) -> str:
        if instance_type not in EC2_INSTANCE_HOURLY_USD or gpus_per_instance(instance_type):
            raise ValueError(f"{instance_type!r} is not a CPU instance type of the catalog")
        return instance_type

    @model_validator(mode="after")
    def _sizes(self) -> "SystemNodeGroup":
        check_sizes(self.min_size, self.desired_size, self.max_size)
        return self


@schema
class GpuNodeGroup:
    """One GPU node group: NVIDIA AMI, tainted nvidia.com/gpu NoSchedule, optionally EFA."""

    name: str
    """Node group name, also its `mlplatform.io/node-group` label (lowercase, at most 40)."""
    instance_types: Sequence[str]
    """GPU instance types of the catalog, all with the same number of GPUs."""
    min_size: int = Field(default=0, ge=0, le=1000)
    """Nodes always running; 0 lets the cluster autoscaler scale the group from zero."""
    desired_size: int | None = None
    """Nodes at creation (default min_size); afterwards the cluster autoscaler's to set."""
    max_size: int = Field(default=1, ge=0, le=1000)
    """Most nodes the cluster autoscaler may run."""
    capacity_type: CapacityType = CapacityType.ON_DEMAND
    """onDemand, or spot (cheaper, may be reclaimed)."""
    disk_size_gb: int = Field(default=200, ge=20, le=16384)
    """Encrypted gp3 root volume of each node, GB (CUDA and framework images are large)."""
    labels: Mapping[str, str] = Field(default_factory=dict)
    """Extra Kubernetes labels of the group's nodes."""
    efa: bool = False
    """Every EFA interface of the instance type, a cluster placement group, one subnet."""
    subnet_index: int = Field(default=0, ge=0)
    """EFA groups: the one subnet (one AZ, one placement group) of subnet_ids they live in."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not DNS_LABEL.match(name):
            raise ValueError(
                f"{name!r} is not a node group name "
                "(lowercase letters, digits and hyphens, at most 40)"
            )
        return name

    @field_validator("instance_types")
    @classmethod
    def _instance_types(cls, types: Sequence[str]) -> Sequence[str]:
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
    def _labels(cls, labels: Mapping[str, str]) -> Mapping[str, str]:
        return check_labels(labels)

    @model_validator(mode="after")
    def _combinations(self) -> "GpuNodeGroup":
        check_sizes(self.min_size, self.desired_size, self.max_size)
        if self.efa:
            for instance_type in self.instance_types:
                if not efa_interfaces(instance_type):
                    raise SettingError(
                        "efa", f"{instance_type!r} does not support EFA (instanceTypes)"
                    )
            if len({efa_interfaces(t) for t in self.instance_types}) != 1:
                raise SettingError("efa", "instance types of an EFA group need the same EFA count")
        return self

    @property
    def gpus_per_node(self) -> int:
        return gpus_per_instance(self.instance_types[0])


@schema
class GpuEksClusterSettings:
    """A GPU EKS cluster: every lever a stack file sets. Defaults are the safe choice."""

    kubernetes_version: str = "1.34"
    """Kubernetes version of the control plane (quote it in YAML: 1.30 is not "1.3")."""
    admins: Sequence[str] = ()
    """IAM role or user ARNs granted cluster admin through EKS access entries."""
    public_endpoint: bool = False
    """Also expose the API endpoint publicly (it is always reachable from the VPC)."""
    public_access_cidrs: Sequence[str] = ()
    """Where a public endpoint accepts requests from; required with it, never 0.0.0.0/0."""
    log_types: Sequence[LogType] = tuple(LogType)
    """Control-plane logs sent to CloudWatch Logs."""
    log_retention_days: int = 90
    """Retention of the control-plane log group (a period CloudWatch Logs accepts)."""
    deletion_protection: bool = False
    """Refuse to delete the cluster until this is turned off."""
    cluster_autoscaler: bool = True
    """Install the Cluster Autoscaler (scales GPU groups from zero for pending pods)."""
    imds_hop_limit: int = Field(default=1, ge=1, le=3)
    """IMDSv2 hop limit of the nodes: 1 keeps pods off the node role's credentials."""
    system_node_group: SystemNodeGroup = Field(default_factory=SystemNodeGroup)
    """The CPU node group named `system` (untainted)."""
    gpu_node_groups: Sequence[GpuNodeGroup] = ()
    """The GPU node groups."""

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

    @field_validator("admins")
    @classmethod
    def _admins(cls, arns: Sequence[str]) -> Sequence[str]:
        for arn in arns:
            if not IAM_PRINCIPAL_ARN.match(arn):
                raise ValueError(f"{arn!r} is not an IAM role or user ARN")
        if len(set(arns)) != len(arns):
            raise ValueError("lists an admin twice")
        return arns

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, cidrs: Sequence[str]) -> Sequence[str]:
        for cidr in cidrs:
            try:
                network = ipaddress.ip_network(cidr)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR block") from None
            if network.prefixlen == 0:
                raise ValueError(f"{cidr!r} opens the API to the whole internet")
        return cidrs

    @field_validator("log_types")
    @classmethod
    def _log_types(cls, types: Sequence[LogType]) -> Sequence[LogType]:
        if len(set(types)) != len(types):
            raise ValueError("lists a log type twice")
        return types

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            raise ValueError(f"{days} is not a CloudWatch Logs retention period")
        return days

    @model_validator(mode="after")
    def _combinations(self) -> "GpuEksClusterSettings":
        if self.public_endpoint and not self.public_access_cidrs:
            raise SettingError("public_access_cidrs", "is required when publicEndpoint is true")
        if self.public_access_cidrs and not self.public_endpoint:
            raise SettingError("public_access_cidrs", "is set but publicEndpoint is false")
        check_unique_names(self.gpu_node_groups, "gpu_node_groups", taken=[SYSTEM_NODE_GROUP])
        return self


@schema
class GpuEksClusterArgs(GpuEksClusterSettings):
    """The cluster's settings plus what it is wired to: network, region, Helm values."""

    vpc_id: pulumi.Input[str]
    """The VPC the cluster and its nodes live in."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets for the API endpoint's interfaces and the nodes (two AZs or more)."""
    region: str
    """The AWS region of the cluster (its ARN, the cluster autoscaler's API calls)."""
    vpc_cidr: pulumi.Input[str] | None = None
    """Where the private API endpoint accepts HTTPS from (deployers and CI inside the VPC)."""
    protect: bool = False
    """Protect the secrets key (and retain it on delete): losing it loses every secret."""
    values_stack: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")
    """Helm values layer: helm/<chart>/values-<values_stack>.yaml over values.yaml."""
    helm_values_dir: str = ""
    """Directory of the Helm values files ("" = the values shipped with the package)."""

    @field_validator("region")
    @classmethod
    def _region(cls, region: str) -> str:
        return aws_region(region)

    @model_validator(mode="after")
    def _subnets(self) -> "GpuEksClusterArgs":
        if not isinstance(self.subnet_ids, Sequence):
            return self  # an Output: counted by whoever made it
        if not self.subnet_ids:
            raise SettingError("subnet_ids", "must list at least one subnet")
        for index, group in enumerate(self.gpu_node_groups):
            if group.efa and group.subnet_index >= len(self.subnet_ids):
                raise SettingError(
                    f"gpu_node_groups[{index}].subnet_index",
                    f"{group.subnet_index} is out of range: subnet_ids lists "
                    f"{len(self.subnet_ids)} subnets",
                )
        return self


@dataclass(frozen=True)
class _Nodes:
    """What one managed node group is built from: the system group or a GPU group."""

    name: str
    instance_types: list[str]
    min_size: int
    desired_size: int
    max_size: int
    capacity_type: str  # EKS's spelling
    disk_size_gb: int
    labels: dict[str, str]
    gpu: bool
    efa: bool = False
    subnet_index: int = 0


def _system_nodes(group: SystemNodeGroup) -> _Nodes:
    return _Nodes(
        name=SYSTEM_NODE_GROUP,
        instance_types=[group.instance_type],
        min_size=group.min_size,
        desired_size=group.min_size if group.desired_size is None else group.desired_size,
        max_size=group.max_size,
        capacity_type=EKS_CAPACITY_TYPES[CapacityType.ON_DEMAND],
        disk_size_gb=group.disk_size_gb,
        labels={NODE_GROUP_LABEL: SYSTEM_NODE_GROUP},
        gpu=False,
    )


def _gpu_nodes(group: GpuNodeGroup) -> _Nodes:
    labels = {NODE_GROUP_LABEL: group.name, **group.labels, GPU_PRESENT_LABEL: "true"}
    if group.efa:
        labels[EFA_PRESENT_LABEL] = "true"
    return _Nodes(
        name=group.name,
        instance_types=list(group.instance_types),
        min_size=group.min_size,
        desired_size=group.min_size if group.desired_size is None else group.desired_size,
        max_size=group.max_size,
        capacity_type=EKS_CAPACITY_TYPES[group.capacity_type],
        disk_size_gb=group.disk_size_gb,
        labels=labels,
        gpu=True,
        efa=group.efa,
        subnet_index=group.subnet_index,
    )


def _pick(
    ids: pulumi.Input[Sequence[pulumi.Input[str]]], index: int
) -> pulumi.Input[Sequence[pulumi.Input[str]]]:
    """`[ids[index]]`, also when the list itself is an Output."""
    if isinstance(ids, Sequence):
        return [ids[index]]
    return pulumi.Output.from_input(cast(Any, ids)).apply(lambda known: [known[index]])


class GpuEksCluster(pulumi.ComponentResource):
    """EKS cluster, node groups, managed add-ons and device plugins; a provider for more."""

    cluster_name: str
    """The EKS cluster's name."""
    cluster_arn: pulumi.Output[str]
    """The EKS cluster's ARN."""
    kubeconfig: pulumi.Output[str]
    """Kubeconfig (JSON) that authenticates with `aws eks get-token`; a secret."""
    oidc_provider_arn: pulumi.Output[str]
    """The IAM OIDC provider of the cluster (IRSA trust policies name it)."""
    oidc_provider_url: pulumi.Output[str]
    """The cluster's OIDC issuer URL."""
    oidc_issuer: pulumi.Output[str]
    """The OIDC issuer without `https://` (the prefix of IRSA condition keys)."""
    node_security_group_id: pulumi.Output[str]
    """The security group of the nodes and the control plane."""
    node_role_arn: pulumi.Output[str]
    """The IAM role of the nodes."""
    system_node_group_name: str
    """The CPU node group's `mlplatform.io/node-group` label value."""
    gpu_node_group_names: list[str]
    """The GPU node groups' `mlplatform.io/node-group` label values, in order."""

    def __init__(
        self, name: str, args: GpuEksClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args = parse(GpuEksClusterArgs, args)  # a mapping when another language calls
        super().__init__("mlplatform:index:GpuEksCluster", name, None, opts)
        self._args = args
        self.cluster_name = name
        self.system_node_group_name = SYSTEM_NODE_GROUP
        self.gpu_node_group_names = [group.name for group in args.gpu_node_groups]
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self._partition = aws.get_partition_output(opts=invoke).partition
        self._account_id = aws.get_caller_identity_output(opts=invoke).account_id
        self.cluster_arn = pulumi.Output.format(
            "arn:{0}:eks:{1}:{2}:cluster/{3}", self._partition, args.region, self._account_id, name
        )

        # EKS writes control-plane logs here; created first so retention is ours, not "never".
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{name}/cluster",
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        secrets_key = aws.kms.Key(
            f"{name}-secrets-key",
            description=f"{name}: envelope encryption of Kubernetes secrets",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect
            ),
        )
        self._cluster = eks.Cluster(
            f"{name}-cluster",
            name=name,
            version=args.kubernetes_version,
            vpc_id=args.vpc_id,
            private_subnet_ids=args.subnet_ids,
            endpoint_private_access=True,
            endpoint_public_access=args.public_endpoint,
            public_access_cidrs=list(args.public_access_cidrs) if args.public_endpoint else None,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries={
                f"admin-{index}": eks.AccessEntryArgs(
                    principal_arn=arn,
                    access_policies={
                        "cluster-admin": eks.AccessPolicyAssociationArgs(
                            policy_arn=pulumi.Output.concat(
                                "arn:",
                                self._partition,
                                ":eks::aws:cluster-access-policy/",
                                CLUSTER_ADMIN_POLICY,
                            ),
                            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                                type="cluster"
                            ),
                        )
                    },
                )
                for index, arn in enumerate(args.admins)
            },
            create_oidc_provider=True,
            encryption_config_key_arn=secrets_key.arn,
            enabled_cluster_log_types=[str(log_type) for log_type in args.log_types],
            deletion_protection=args.deletion_protection,
            # Nodes are our managed node groups; add-ons are EKS managed add-ons (below), so
            # nothing is installed behind the plan's back.
            skip_default_node_group=True,
            skip_default_security_groups=True,
            bootstrap_self_managed_addons=False,
            use_default_vpc_cni=True,
            coredns_addon_options=eks.CoreDnsAddonOptionsArgs(enabled=False),
            kube_proxy_addon_options=eks.KubeProxyAddonOptionsArgs(enabled=False),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )
        self.kubeconfig = pulumi.Output.secret(self._cluster.kubeconfig_json)
        self.oidc_provider_arn = self._cluster.oidc_provider_arn
        self.oidc_provider_url = self._cluster.oidc_provider_url
        self.oidc_issuer = self._cluster.oidc_issuer
        # With the default groups skipped, nodes and control plane share EKS's cluster group.
        self.node_security_group_id = self._cluster.cluster_security_group_id
        if args.vpc_cidr is not None:
            rule(
                "ingress",
                f"{name}-api-from-vpc",
                self.node_security_group_id,
                "Kubernetes API from the VPC (deployers and CI runners inside it)",
                child,
                cidr=args.vpc_cidr,
            )
        self._kubernetes = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=child,
        )

        node_role = aws.iam.Role(
            f"{name}-node-role",
            description=f"{name}: EKS worker nodes (pods get their own roles through IRSA)",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=node_role.name,
                policy_arn=managed_policy_arn(self._partition, policy),
                opts=child,
            )
            for policy in NODE_POLICIES
        ]
        self.node_role_arn = node_role.arn

        # Networking and identity add-ons come before any node can join; coredns and the
        # storage driver need nodes to run on, so they follow the system group.
        early = [
            self._addon(
                "vpc-cni",
                role=self._irsa_role(
                    "vpc-cni", "kube-system", "aws-node", ["AmazonEKS_CNI_Policy"]
                ),
                # Enforce Kubernetes NetworkPolicies (ArcRunners isolates its runner pods).
                configuration={"enableNetworkPolicy": "true"},
            ),
            self._addon("kube-proxy"),
            self._addon("eks-pod-identity-agent"),
        ]
        before_nodes = [*attachments, *early]
        self._node_groups: dict[str, eks.ManagedNodeGroup] = {}
        system = self._node_group(_system_nodes(args.system_node_group), node_role, before_nodes)
        late = [
            self._addon("coredns", depends_on=[system]),
            self._addon(
                "aws-ebs-csi-driver",
                role=self._irsa_role(
                    "ebs-csi",
                    "kube-system",
                    "ebs-csi-controller-sa",
                    ["service-role/AmazonEBSCSIDriverPolicy"],
                ),
                depends_on=[system],
            ),
        ]
        for group in args.gpu_node_groups:
            self._node_group(_gpu_nodes(group), node_role, before_nodes)

        on_cluster = pulumi.ResourceOptions(
            parent=self, providers={"kubernetes": self._kubernetes}, depends_on=[system, *late]
        )
        release(
            f"{name}-nvidia-device-plugin",
            "nvidia-device-plugin",
            "kube-system",
            self._values(
                "nvidia-device-plugin",
                {
                    "nodeSelector": {GPU_PRESENT_LABEL: "true"},
                    "tolerations": [GPU_TOLERATION],
                },
            ),
            on_cluster,
        )
        if any(group.efa for group in args.gpu_node_groups):
            release(
                f"{name}-efa-device-plugin",
                "aws-efa-k8s-device-plugin",
                "kube-system",
                self._values(
                    "aws-efa-k8s-device-plugin",
                    {"nodeSelector": {EFA_PRESENT_LABEL: "true"}, "tolerations": [GPU_TOLERATION]},
                ),
                on_cluster,
            )
        if args.cluster_autoscaler:
            self._cluster_autoscaler(on_cluster)

        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "clusterArn": self.cluster_arn,
                "kubeconfig": self.kubeconfig,
                "oidcProviderArn": self.oidc_provider_arn,
                "oidcProviderUrl": self.oidc_provider_url,
                "oidcIssuer": self.oidc_issuer,
                "nodeSecurityGroupId": self.node_security_group_id,
                "nodeRoleArn": self.node_role_arn,
                "systemNodeGroupName": self.system_node_group_name,
                "gpuNodeGroupNames": self.gpu_node_group_names,
            }
        )

    @property
    def provider(self) -> k8s.Provider:
        """A Kubernetes provider for the cluster, for components that install onto it."""
        return self._kubernetes

    @property
    def node_groups(self) -> dict[str, eks.ManagedNodeGroup]:
        """Every managed node group by name (`system` and the GPU groups), to wait for."""
        return dict(self._node_groups)

    def _values(self, chart_dir: str, computed: Mapping[str, Any]) -> dict[str, Any]:
        return layered_values(
            chart_dir, self._args.values_stack, computed, root=self._args.helm_values_dir
        )

    def _addon(
        self,
        addon: str,
        *,
        role: aws.iam.Role | None = None,
        configuration: Mapping[str, Any] | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> aws.eks.Addon:
        """An EKS managed add-on at the default version for the cluster's Kubernetes version."""
        return aws.eks.Addon(
            f"{self.cluster_name}-{addon}",
            cluster_name=self.cluster_name,
            addon_name=addon,
            service_account_role_arn=role.arn if role else None,
            configuration_values=json.dumps(configuration) if configuration else None,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self._cluster, *([role] if role else []), *depends_on]
            ),
        )

    def _irsa_role(
        self,
        short_name: str,
        namespace: str,
        service_account: str,
        managed_policies: Sequence[str] = (),
        statements: Sequence[dict[str, Any]] = (),
    ) -> aws.iam.Role:
        """A role only `namespace/service_account` of this cluster can assume (IRSA)."""
        name = f"{self.cluster_name}-{short_name}"
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-irsa",
            description=f"{self.cluster_name}: {namespace}/{service_account} (IRSA)",
            assume_role_policy=irsa_trust_policy(
                self.oidc_provider_arn, self.oidc_issuer, namespace, service_account
            ),
            opts=child,
        )
        for policy in managed_policies:
            aws.iam.RolePolicyAttachment(
                f"{name}-{policy.rsplit('/', 1)[-1]}",
                role=role.name,
                policy_arn=managed_policy_arn(self._partition, policy),
                opts=child,
            )
        if statements:
            aws.iam.RolePolicy(
                f"{name}-policy", role=role.id, policy=policy_document(statements), opts=child
            )
        return role

    def _node_group(
        self,
        nodes: _Nodes,
        node_role: aws.iam.Role,
        depends_on: Sequence[pulumi.Resource],
    ) -> eks.ManagedNodeGroup:
        name = f"{self.cluster_name}-{nodes.name}"
        child = pulumi.ResourceOptions(parent=self)
        subnets: pulumi.Input[Sequence[pulumi.Input[str]]] = self._args.subnet_ids
        network_interfaces = None
        placement = None
        if nodes.efa:
            # One AZ: the placement group keeps the nodes close, EFA does not cross AZs.
            subnets = _pick(self._args.subnet_ids, nodes.subnet_index)
            placement_group = aws.ec2.PlacementGroup(
                f"{name}-placement", strategy="cluster", opts=child
            )
            placement = aws.ec2.LaunchTemplatePlacementArgs(group_name=placement_group.name)
            # One EFA interface per network card; the first is also the primary (IP) interface.
            network_interfaces = [
                aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                    device_index=0 if card == 0 else 1,
                    network_card_index=card,
                    interface_type="efa",
                    delete_on_termination="true",
                    security_groups=[self.node_security_group_id],
                )
                for card in range(efa_interfaces(nodes.instance_types[0]))
            ]
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"{name}: IMDSv2, encrypted gp3 root volume"
            + (", EFA" if nodes.efa else ""),
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=self._args.imds_hop_limit,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=nodes.disk_size_gb,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            network_interfaces=network_interfaces,
            placement=placement,
            # Instances and volumes launched by the node group carry the node group's name;
            # cost tags come from the provider's default tags on the group itself.
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind, tags={"Name": name, NODE_GROUP_LABEL: nodes.name}
                )
                for kind in ("instance", "volume")
            ],
            opts=child,
        )
        node_group = eks.ManagedNodeGroup(
            name,
            cluster=self._cluster,
            node_group_name=name,
            node_role_arn=node_role.arn,
            subnet_ids=subnets,
            instance_types=nodes.instance_types,
            capacity_type=nodes.capacity_type,
            ami_type="AL2023_x86_64_NVIDIA" if nodes.gpu else "AL2023_x86_64_STANDARD",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=nodes.min_size, desired_size=nodes.desired_size, max_size=nodes.max_size
            ),
            # After creation the cluster autoscaler owns the desired size.
            ignore_scaling_changes=True,
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id, version=launch_template.latest_version.apply(str)
            ),
            labels=nodes.labels,
            # Only pods that tolerate the taint (GPU workloads, device plugins) land on GPU nodes.
            taints=(
                [aws.eks.NodeGroupTaintArgs(key=GPU_TAINT_KEY, value="true", effect="NO_SCHEDULE")]
                if nodes.gpu
                else None
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
        self._node_groups[nodes.name] = node_group
        return node_group

    def _cluster_autoscaler(self, opts: pulumi.ResourceOptions) -> None:
        """Scales node groups (GPU groups from zero) to fit pending pods, e.g. GPU runners."""
        role = self._irsa_role(
            "cluster-autoscaler",
            "kube-system",
            "cluster-autoscaler",
            statements=cluster_autoscaler_statements(
                partition=self._partition,
                region=self._args.region,
                account_id=self._account_id,
                cluster_name=self.cluster_name,
            ),
        )
        release(
            f"{self.cluster_name}-cluster-autoscaler",
            "cluster-autoscaler",
            "kube-system",
            self._values(
                "cluster-autoscaler",
                {
                    "autoDiscovery": {"clusterName": self.cluster_name},
                    "awsRegion": self._args.region,
                    # The autoscaler's minor version must match the cluster's.
                    "image": {"tag": f"v{self._args.kubernetes_version}.0"},
                    "rbac": {
                        "serviceAccount": {
                            "name": "cluster-autoscaler",
                            "annotations": {"eks.amazonaws.com/role-arn": role.arn},
                        }
                    },
                    "nodeSelector": {NODE_GROUP_LABEL: SYSTEM_NODE_GROUP},
                },
            ),
            opts,
        )
