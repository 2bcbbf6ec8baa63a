"""A SageMaker HyperPod cluster on the SharedInfra, orchestrated by EKS or Slurm.

HyperPod exists only in pulumi-aws-native (`aws_native.sagemaker.Cluster`). The component adds
what a cluster needs around it: an execution role, a security group letting the nodes talk to each
other (EFA needs all traffic, both directions), an optional FSx for Lustre file system, and the
lifecycle scripts (`components/hyperpod_lifecycle/`) uploaded to the models bucket under a prefix
named after their content, so that changing a script rolls out a new URI.

For Slurm, `provisioning_parameters.json` is generated from the same instance groups the cluster
gets, so group and partition names cannot drift between the two.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from mlplatform.components.catalog import gpus_per_instance
from mlplatform.components.eks import GPU_TAINT_KEY
from mlplatform.components.hyperpod_eks import EksPrerequisites, dependencies_chart, eks_addons
from mlplatform.components.iam import (
    HYPERPOD_INSTANCE_MANAGED_POLICY,
    assume_role_policy,
    hyperpod_execution_statements,
    managed_policy_arn,
    policy_document,
)
from mlplatform.components.security_groups import rule, security_group
from mlplatform.components.shared_infra import SharedInfra

LIFECYCLE_PACKAGE_DIR = "hyperpod_lifecycle"
ON_CREATE = "on_create.sh"
PARAMS_FILE = "provisioning_parameters.json"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


@dataclass(frozen=True)
class InstanceGroupArgs:
    """One instance group. Slurm fields apply to Slurm clusters, labels/taints to EKS ones."""

    name: str
    instance_type: str
    count: int
    min_count: int | None = None
    threads_per_core: int = 1
    ebs_volume_size_gb: int = 500
    deep_health_checks: Sequence[str] = ()
    slurm_role: Literal["controller", "login", "compute"] = "compute"
    partition: str | None = None  # Slurm partition of a compute group (default: the group name)
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Taint] = ()
    training_plan_arn: str | None = None


@dataclass(frozen=True)
class FsxLustreArgs:
    storage_capacity_gb: int = 1200
    deployment_type: str = "PERSISTENT_2"
    throughput_per_tib: int | None = 250  # None for SCRATCH_2
    mount_path: str = "/fsx"


@dataclass(frozen=True)
class HyperPodClusterArgs:
    """Every lever of one cluster. Network, bucket and key come from `shared`.

    `eks_cluster_arn` is required for orchestrator `eks` (the cluster the nodes join);
    `eks_prerequisites` says what to install on that cluster (`components/hyperpod_eks.py`).
    `tiered_storage_memory_percent` turns on managed tiered checkpointing (EKS only).
    """

    shared: SharedInfra
    instance_groups: Sequence[InstanceGroupArgs]
    orchestrator: Literal["eks", "slurm"] = "eks"
    eks_cluster_arn: pulumi.Input[str] | None = None
    # The EKS cluster's security group (control plane and its other nodes): all traffic both
    # ways, as pods, kubelet and webhooks need. None for a cluster given only by ARN.
    eks_security_group_id: pulumi.Input[str] | None = None
    # What the cluster waits for, e.g. the EKS cluster it joins when its ARN is only computed.
    depends_on: Sequence[pulumi.Resource] = ()
    subnet_index: int = 0
    node_recovery: Literal["Automatic", "None"] = "Automatic"
    continuous_provisioning: bool = True
    fsx: FsxLustreArgs | None = None
    tiered_storage_memory_percent: int | None = None
    internet_egress: bool = False
    protect_data: bool = False
    eks_prerequisites: EksPrerequisites = field(default_factory=EksPrerequisites)


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
    params: dict[str, Any] = {"version": "1.0.0", "workload_manager": orchestrator}
    if orchestrator == "slurm":
        for group in groups:
            if group.slurm_role == "controller":
                params["controller_group"] = group.name
            elif group.slurm_role == "login":
                params["login_group"] = group.name
        params["worker_groups"] = [
            {"instance_group_name": g.name, "partition_name": g.partition or g.name}
            for g in groups
            if g.slurm_role == "compute"
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
    """HyperPod cluster + execution role + node security group + lifecycle scripts (+ FSx)."""

    cluster_arn: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    lifecycle_script_uri: pulumi.Output[str]
    fsx_id: pulumi.Output[str] | None
    fsx_dns_name: pulumi.Output[str] | None
    fsx_mount_name: pulumi.Output[str] | None
    # EKS: each prerequisite on the EKS cluster and whether this stack installs it.
    prerequisites: dict[str, str]

    def __init__(
        self, name: str, args: HyperPodClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:index:HyperPodCluster", name, None, opts)
        if args.orchestrator == "eks" and args.eks_cluster_arn is None:
            raise ValueError(f"{name}: orchestrator eks needs eks_cluster_arn")
        if args.orchestrator == "slurm" and args.tiered_storage_memory_percent is not None:
            raise ValueError(f"{name}: managed tiered checkpointing needs orchestrator eks")
        child = pulumi.ResourceOptions(parent=self)
        shared = args.shared
        subnet_id = shared.private_subnet_ids[args.subnet_index]
        lifecycle_prefix = f"code/hyperpod/{name}/"

        self.security_group_id = self._security_group(name, args)

        self.fsx_id = self.fsx_dns_name = self.fsx_mount_name = None
        fsx_params: pulumi.Output[dict[str, str]] | None = None
        if args.fsx is not None:
            fsx_params = self._file_system(name, args.fsx, args, subnet_id)

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
            policy_arn=managed_policy_arn(shared.partition, HYPERPOD_INSTANCE_MANAGED_POLICY),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=role.id,
            policy=policy_document(
                hyperpod_execution_statements(
                    partition=shared.partition,
                    region=shared.region,
                    account_id=shared.account_id,
                    bucket_arn=shared.models_bucket.arn,
                    lifecycle_prefix=lifecycle_prefix,
                    kms_key_arn=shared.kms_key_arn,
                )
            ),
            opts=child,
        )
        self.execution_role_arn = role.arn

        self.lifecycle_script_uri = self._upload_lifecycle(name, args, lifecycle_prefix, fsx_params)

        eks = args.eks_prerequisites if args.orchestrator == "eks" else None
        # AWS installs the dependencies chart before the cluster, the add-ons after it.
        chart = dependencies_chart(name, eks, self, after=args.depends_on) if eks else None
        sagemaker = aws_native.sagemaker
        cluster = sagemaker.Cluster(
            name,
            cluster_name=name,
            instance_groups=[
                self._instance_group(g, args, role.arn, self.lifecycle_script_uri)
                for g in args.instance_groups
            ],
            orchestrator=(
                sagemaker.ClusterOrchestratorArgs(
                    eks=sagemaker.ClusterOrchestratorEksConfigArgs(cluster_arn=args.eks_cluster_arn)
                )
                if args.eks_cluster_arn is not None
                else None
            ),
            vpc_config=sagemaker.ClusterVpcConfigArgs(
                security_group_ids=[self.security_group_id], subnets=[subnet_id]
            ),
            node_recovery=sagemaker.ClusterNodeRecovery(args.node_recovery),
            # Continuous provisioning is offered for EKS-orchestrated clusters.
            node_provisioning_mode=(
                sagemaker.ClusterNodeProvisioningMode.CONTINUOUS
                if args.orchestrator == "eks" and args.continuous_provisioning
                else None
            ),
            tiered_storage_config=(
                sagemaker.ClusterTieredStorageConfigArgs(
                    mode=sagemaker.ClusterTieredStorageConfigMode.ENABLE,
                    instance_memory_allocation_percentage=args.tiered_storage_memory_percent,
                )
                if args.tiered_storage_memory_percent is not None
                else None
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*args.depends_on, *([chart] if chart else [])]
            ),
        )
        self.cluster_arn = cluster.cluster_arn
        self.cluster_name = cluster.cluster_name.apply(lambda n: n or name)
        self.prerequisites = {}
        if eks is not None and args.eks_cluster_arn is not None:
            eks_addons(
                name,
                eks,
                cluster_name=pulumi.Output.from_input(args.eks_cluster_arn).apply(
                    lambda arn: arn.rsplit("/", 1)[-1]
                ),
                partition=shared.partition,
                parent=self,
                after=[cluster],
            )
            self.prerequisites = eks.report()

        self.register_outputs(
            {
                "clusterArn": self.cluster_arn,
                "clusterName": self.cluster_name,
                "executionRoleArn": self.execution_role_arn,
                "securityGroupId": self.security_group_id,
                "lifecycleScriptUri": self.lifecycle_script_uri,
                "fsxId": self.fsx_id,
                "prerequisites": self.prerequisites,
            }
        )

    def _security_group(self, name: str, args: HyperPodClusterArgs) -> pulumi.Output[str]:
        """Nodes exchange all traffic with each other (EFA requires it, in and out); beyond that
        they reach only HTTPS in the VPC (interface endpoints, EKS API) and S3."""
        child = pulumi.ResourceOptions(parent=self)
        shared = args.shared
        group = security_group(
            f"{name}-nodes", f"Nodes of HyperPod cluster {name}", shared.vpc_id, child
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
            cidr=shared.vpc_cidr,
        )
        rule(
            "egress",
            f"{name}-nodes-https-to-s3",
            group.id,
            "HTTPS to S3 through the gateway endpoint",
            child,
            prefix_list_id=shared.s3_prefix_list_id,
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
        self, name: str, fsx: FsxLustreArgs, args: HyperPodClusterArgs, subnet_id: pulumi.Input[str]
    ) -> pulumi.Output[dict[str, str]]:
        """FSx for Lustre in the cluster's subnet and security group (Lustre ports 988 and
        1018-1023 are covered by the all-traffic rule between members of the group)."""
        persistent = fsx.deployment_type.startswith("PERSISTENT")
        file_system = aws.fsx.LustreFileSystem(
            f"{name}-fsx",
            storage_capacity=fsx.storage_capacity_gb,
            deployment_type=fsx.deployment_type,
            per_unit_storage_throughput=fsx.throughput_per_tib if persistent else None,
            subnet_ids=subnet_id,
            security_group_ids=[self.security_group_id],
            kms_key_id=args.shared.kms_key_arn if persistent else None,
            file_system_type_version="2.15",
            data_compression_type="LZ4",
            copy_tags_to_backups=True,
            tags={"Name": f"{name}-fsx"},
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect_data, retain_on_delete=args.protect_data
            ),
        )
        self.fsx_id = file_system.id
        self.fsx_dns_name = file_system.dns_name
        self.fsx_mount_name = file_system.mount_name
        return pulumi.Output.all(file_system.dns_name, file_system.mount_name).apply(
            lambda v: {
                "fsx_dns_name": v[0],
                "fsx_mountname": v[1],
                "fsx_mount_path": fsx.mount_path,
            }
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
        params = pulumi.Output.from_input(fsx_params or {}).apply(
            lambda fsx: (
                json.dumps(
                    provisioning_parameters(args.orchestrator, args.instance_groups, fsx),
                    indent=2,
                    sort_keys=True,
                )
                + "\n"
            )
        )
        folder = params.apply(
            lambda text: f"{lifecycle_prefix}{content_digest({**scripts, PARAMS_FILE: text})}/"
        )
        bucket = args.shared.models_bucket
        files: dict[str, pulumi.Input[str]] = {**scripts, PARAMS_FILE: params}
        for file_name, content in files.items():
            aws.s3.BucketObjectv2(
                f"{name}-lifecycle-{file_name.replace('_', '-').replace('.', '-')}",
                bucket=bucket.bucket_name,
                key=pulumi.Output.concat(folder, file_name),
                content=content,
                content_type="application/json" if file_name.endswith(".json") else "text/plain",
                server_side_encryption="aws:kms",
                kms_key_id=args.shared.kms_key_arn,
                bucket_key_enabled=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return pulumi.Output.concat("s3://", bucket.bucket_name, "/", folder)

    @staticmethod
    def _instance_group(
        group: InstanceGroupArgs,
        args: HyperPodClusterArgs,
        role_arn: pulumi.Input[str],
        source_uri: pulumi.Input[str],
    ) -> aws_native.sagemaker.ClusterInstanceGroupArgs:
        sagemaker = aws_native.sagemaker
        kubernetes = None
        # GPU nodes carry the taint GpuEksCluster's GPU groups carry, so only pods that tolerate
        # it (training jobs) land on them.
        taints = list(group.taints)
        if gpus_per_instance(group.instance_type) and not any(
            t.key == GPU_TAINT_KEY for t in taints
        ):
            taints.append(Taint(GPU_TAINT_KEY, "true", "NoSchedule"))
        if args.orchestrator == "eks" and (group.labels or taints):
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
