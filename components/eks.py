"""A GPU-ready EKS cluster: private API, KMS-encrypted secrets, IRSA, managed add-ons, a small CPU
system node group and tainted GPU node groups (optionally with EFA), plus the device plugins.

Seed 002 built this with Terraform, kustomize and hand-run Helm; here it is one component. Every
node group gets a launch template of ours, so what the guardrails check (IMDSv2, encrypted root
volume, EFA interfaces) is visible in the plan instead of hidden inside pulumi-eks.

Under the mocks `eks:index:Cluster` is one registration without children (a remote component),
so this component uses only its documented outputs, never `eks_cluster` (a resource reference).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from mlplatform.components.catalog import efa_interfaces
from mlplatform.components.helm import HELM_VALUES_DIR, layered_values, release
from mlplatform.components.iam import (
    assume_role_policy,
    cluster_autoscaler_statements,
    irsa_trust_policy,
    managed_policy_arn,
    policy_document,
)
from mlplatform.components.security_groups import rule

GPU_TAINT_KEY = "nvidia.com/gpu"
# Toleration matching the GPU taint, for anything that must run on GPU nodes.
GPU_TOLERATION = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
# Labels every GPU node carries (the NVIDIA device plugin's default affinity reads the first).
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
EFA_PRESENT_LABEL = "vpc.amazonaws.com/efa.present"
NODE_GROUP_LABEL = "mlplatform.io/node-group"

LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")


@dataclass(frozen=True)
class NodeGroupArgs:
    """One managed node group. GPU groups get the NVIDIA AMI, the GPU taint and labels."""

    name: str
    instance_types: Sequence[str]
    min_size: int = 0
    max_size: int = 1
    desired_size: int | None = None  # defaults to min_size; afterwards the autoscaler's
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    disk_size_gb: int = 100
    labels: Mapping[str, str] = field(default_factory=dict)
    gpu: bool = True
    # EFA: every EFA interface of the instance type, a cluster placement group, one subnet.
    efa: bool = False
    subnet_index: int = 0


@dataclass(frozen=True)
class GpuEksClusterArgs:
    """Every lever of the cluster. Defaults are the safe choice (private API, IMDSv2 hop 1)."""

    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    region: str
    # Where the private API endpoint accepts HTTPS from (deployers and CI inside the VPC).
    vpc_cidr: pulumi.Input[str] | None = None
    kubernetes_version: str = "1.34"
    admin_arns: Sequence[str] = ()
    public_endpoint: bool = False
    public_access_cidrs: Sequence[str] = ()
    log_types: Sequence[str] = LOG_TYPES
    log_retention_days: int = 90
    deletion_protection: bool = False
    # protect + retainOnDelete on the secrets key: losing it makes every secret unreadable.
    protect: bool = False
    system_node_group: NodeGroupArgs = field(
        default_factory=lambda: NodeGroupArgs(
            "system", ["m6i.large"], min_size=2, max_size=3, disk_size_gb=50, gpu=False
        )
    )
    gpu_node_groups: Sequence[NodeGroupArgs] = ()
    # 1 keeps pods (which are a network hop away from the node) off the node role's
    # credentials; they get their own through IRSA or pod identity.
    imds_hop_limit: int = 1
    cluster_autoscaler: bool = True
    # Helm values layering: helm/<chart>/values.yaml <- values-<values_stack>.yaml <- computed.
    values_stack: str = ""
    helm_values_dir: Path = HELM_VALUES_DIR


class GpuEksCluster(pulumi.ComponentResource):
    """EKS cluster, node groups, managed add-ons and device plugins; a provider for more."""

    cluster_name: str
    cluster_arn: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    oidc_provider_arn: pulumi.Output[str]
    oidc_provider_url: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    node_groups: dict[str, eks.ManagedNodeGroup]
    gpu_node_groups: Sequence[NodeGroupArgs]
    system_node_group_name: str

    def __init__(
        self, name: str, args: GpuEksClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:index:GpuEksCluster", name, None, opts)
        for group in args.gpu_node_groups:
            if group.efa and not all(efa_interfaces(t) for t in group.instance_types):
                raise ValueError(f"{name}: node group {group.name}: instance type without EFA")
        self.cluster_name = name
        self.gpu_node_groups = list(args.gpu_node_groups)
        self.system_node_group_name = args.system_node_group.name
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self.partition = aws.get_partition_output(opts=invoke).partition
        self.account_id = aws.get_caller_identity_output(opts=invoke).account_id
        self.cluster_arn = pulumi.Output.format(
            "arn:{0}:eks:{1}:{2}:cluster/{3}", self.partition, args.region, self.account_id, name
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
        self.cluster = eks.Cluster(
            f"{name}-cluster",
            name=name,
            version=args.kubernetes_version,
            vpc_id=args.vpc_id,
            private_subnet_ids=list(args.subnet_ids),
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
                                self.partition,
                                ":eks::aws:cluster-access-policy/",
                                CLUSTER_ADMIN_POLICY,
                            ),
                            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                                type="cluster"
                            ),
                        )
                    },
                )
                for index, arn in enumerate(args.admin_arns)
            },
            create_oidc_provider=True,
            encryption_config_key_arn=secrets_key.arn,
            enabled_cluster_log_types=list(args.log_types),
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
        self.kubeconfig = pulumi.Output.secret(self.cluster.kubeconfig_json)
        self.oidc_provider_arn = self.cluster.oidc_provider_arn
        self.oidc_provider_url = self.cluster.oidc_provider_url
        self.oidc_issuer = self.cluster.oidc_issuer
        # With the default groups skipped, nodes and control plane share EKS's cluster group.
        self.node_security_group_id = self.cluster.cluster_security_group_id
        if args.vpc_cidr is not None:
            rule(
                "ingress",
                f"{name}-api-from-vpc",
                self.node_security_group_id,
                "Kubernetes API from the VPC (deployers and CI runners inside it)",
                child,
                cidr=args.vpc_cidr,
            )
        self.provider = k8s.Provider(
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
                policy_arn=managed_policy_arn(self.partition, policy),
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
        self.node_groups: dict[str, eks.ManagedNodeGroup] = {}
        system = self._node_group(args.system_node_group, node_role, [*attachments, *early])
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
            self._node_group(group, node_role, [*attachments, *early])

        on_cluster = pulumi.ResourceOptions(
            parent=self, providers={"kubernetes": self.provider}, depends_on=[system, *late]
        )
        self.releases: dict[str, k8s.helm.v3.Release] = {}
        self.releases["nvidia-device-plugin"] = release(
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
            self.releases["aws-efa-k8s-device-plugin"] = release(
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
                "nodeSecurityGroupId": self.node_security_group_id,
                "nodeRoleArn": self.node_role_arn,
            }
        )

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
                parent=self, depends_on=[self.cluster, *([role] if role else []), *depends_on]
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
                policy_arn=managed_policy_arn(self.partition, policy),
                opts=child,
            )
        if statements:
            aws.iam.RolePolicy(
                f"{name}-policy", role=role.id, policy=policy_document(statements), opts=child
            )
        return role

    def _node_group(
        self,
        group: NodeGroupArgs,
        node_role: aws.iam.Role,
        depends_on: Sequence[pulumi.Resource],
    ) -> eks.ManagedNodeGroup:
        name = f"{self.cluster_name}-{group.name}"
        child = pulumi.ResourceOptions(parent=self)
        subnets = (
            [self._args.subnet_ids[group.subnet_index]]
            if group.efa
            else list(self._args.subnet_ids)
        )
        network_interfaces = None
        placement = None
        if group.efa:
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
                for card in range(efa_interfaces(group.instance_types[0]))
            ]
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"{name}: IMDSv2, encrypted gp3 root volume"
            + (", EFA" if group.efa else ""),
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
                        volume_size=group.disk_size_gb,
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
                    resource_type=kind, tags={"Name": name, NODE_GROUP_LABEL: group.name}
                )
                for kind in ("instance", "volume")
            ],
            opts=child,
        )
        labels = {NODE_GROUP_LABEL: group.name, **group.labels}
        taints = None
        if group.gpu:
            labels[GPU_PRESENT_LABEL] = "true"
            taints = [
                aws.eks.NodeGroupTaintArgs(key=GPU_TAINT_KEY, value="true", effect="NO_SCHEDULE")
            ]
        if group.efa:
            labels[EFA_PRESENT_LABEL] = "true"
        node_group = eks.ManagedNodeGroup(
            name,
            cluster=self.cluster,
            node_group_name=name,
            node_role_arn=node_role.arn,
            subnet_ids=subnets,
            instance_types=list(group.instance_types),
            capacity_type=group.capacity_type,
            ami_type="AL2023_x86_64_NVIDIA" if group.gpu else "AL2023_x86_64_STANDARD",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=group.min_size,
                desired_size=group.min_size if group.desired_size is None else group.desired_size,
                max_size=group.max_size,
            ),
            # After creation the cluster autoscaler owns the desired size.
            ignore_scaling_changes=True,
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id, version=launch_template.latest_version.apply(str)
            ),
            labels=labels,
            taints=taints,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
        self.node_groups[group.name] = node_group
        return node_group

    def _cluster_autoscaler(self, opts: pulumi.ResourceOptions) -> None:
        """Scales node groups (GPU groups from zero) to fit pending pods, e.g. GPU runners."""
        role = self._irsa_role(
            "cluster-autoscaler",
            "kube-system",
            "cluster-autoscaler",
            statements=cluster_autoscaler_statements(
                partition=self.partition,
                region=self._args.region,
                account_id=self.account_id,
                cluster_name=self.cluster_name,
            ),
        )
        self.releases["cluster-autoscaler"] = release(
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
                    "nodeSelector": {NODE_GROUP_LABEL: self._args.system_node_group.name},
                },
            ),
            opts,
        )
