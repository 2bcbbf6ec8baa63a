"""The stack builder: validated config in, components wired together, stack outputs out.

`__main__.py`, the tests and the offline plan all call `build_platform`, so there is exactly one
description of what a stack contains.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native
import pulumi_kubernetes as k8s

from mlplatform.components.arc_runners import (
    OFFICIAL_RUNNER_IMAGE,
    RUNNER_VERSION,
    ArcRunners,
    ArcRunnersArgs,
    GitHubAppAuth,
    GitHubTokenAuth,
    RunnerClassArgs,
)
from mlplatform.components.eks import (
    NODE_GROUP_LABEL,
    GpuEksCluster,
    GpuEksClusterArgs,
    NodeGroupArgs,
)
from mlplatform.components.hyperpod import (
    FsxLustreArgs,
    HyperPodCluster,
    HyperPodClusterArgs,
    InstanceGroupArgs,
    Taint,
)
from mlplatform.components.hyperpod_eks import ChartSource, EksPrerequisites
from mlplatform.components.images import DOCKER_DIR, REPO_ROOT, ContainerImage, ContainerImageArgs
from mlplatform.components.network import ExistingNetwork, NetworkArgs
from mlplatform.components.notebook import GitRepositoryArgs, NotebookInstance, NotebookInstanceArgs
from mlplatform.components.schema import settings_of
from mlplatform.components.shared_infra import SharedInfra, SharedInfraArgs
from mlplatform.components.training_job import (
    TrainingJob,
    TrainingJobArgs,
    job_security_group,
    training_image_tag,
)
from mlplatform.components.training_manifests import TrainingEngine
from mlplatform.config import PROJECT, ArcConfig, EksConfig, HyperPodClusterConfig, StackConfig


def default_tags(config: StackConfig, stack: str) -> dict[str, str]:
    """Tags every taggable resource gets through the provider (cost allocation, ownership)."""
    return {
        "project": PROJECT,
        "stack": stack,
        "owner": config.owner,
        "cost-center": config.cost_center,
    }


def build_platform(config: StackConfig, stack: str) -> dict[str, Any]:
    """Create the stack's resources; return the outputs to export."""
    tags = default_tags(config, stack)
    provider = aws.Provider("aws", region=config.region, default_tags={"tags": tags})
    # HyperPod exists only in aws-native; it gets the same region and default tags.
    native = aws_native.Provider("aws-native", region=config.region, default_tags={"tags": tags})
    opts = pulumi.ResourceOptions(providers={"aws": provider, "aws-native": native})
    prefix = f"{PROJECT}-{stack}"

    network: NetworkArgs | ExistingNetwork
    if config.existing_vpc_id is not None:
        network = ExistingNetwork(
            vpc_id=config.existing_vpc_id,
            private_subnet_ids=list(config.existing_private_subnet_ids),
            private_route_table_ids=list(config.existing_private_route_table_ids),
        )
    else:
        network = NetworkArgs(
            cidr=config.vpc_cidr,
            availability_zones=config.availability_zones,
            nat_gateways=config.nat_gateways,
        )
    shared = SharedInfra(
        prefix,
        SharedInfraArgs(
            region=config.region,
            network=network,
            interface_endpoints=config.vpc_endpoints,
            protect_data=config.protect_data,
            force_destroy_buckets=config.force_destroy_buckets,
            noncurrent_version_days=config.noncurrent_version_days,
            abort_multipart_days=config.abort_multipart_days,
            git_secret_arns=config.git_secret_arns,
        ),
        opts=opts,
    )

    notebooks = {
        nb.name: NotebookInstance(
            f"{prefix}-{nb.name}",
            NotebookInstanceArgs(
                shared=shared,
                owner=nb.owner,
                instance_type=nb.instance_type,
                volume_size_gb=nb.volume_size_gb,
                platform_identifier=nb.platform_identifier,
                root_access=nb.root_access,
                idle_stop_minutes=nb.idle_stop_minutes,
                subnet_index=nb.subnet_index,
                git_repository=(
                    GitRepositoryArgs(**nb.git_repository.model_dump())
                    if nb.git_repository
                    else None
                ),
                write_prefix=f"users/{nb.name}/" if config.per_user_s3_prefixes else None,
            ),
            opts=opts,
        )
        for nb in config.notebooks
    }

    cluster = (
        GpuEksCluster(
            prefix,
            eks_args(config.eks, shared, config.region, stack, protect=config.protect_data),
            opts=opts,
        )
        if config.eks is not None
        else None
    )

    # EKS-orchestrated HyperPod clusters join the stack's GpuEksCluster unless given another
    # cluster's ARN.
    hyperpods = {
        hp.name: HyperPodCluster(
            f"{prefix}-{hp.name}",
            hyperpod_args(hp, shared, protect_data=config.protect_data, eks_cluster=cluster),
            opts=opts,
        )
        for hp in config.hyperpod_clusters
    }
    # SageMaker training jobs (`mlplatform train submit`) run in the VPC with this group.
    sagemaker_jobs_group = job_security_group(f"{prefix}-training-jobs", shared, opts)
    training_image, training_jobs = (
        training_workloads(config, prefix, shared, cluster, hyperpods, opts)
        if cluster is not None and config.training_jobs
        else (None, {})
    )

    outputs: dict[str, Any] = {
        "region": config.region,
        "vpcId": shared.vpc_id,
        "privateSubnetIds": shared.private_subnet_ids,
        "kmsKeyArn": shared.kms_key_arn,
        "datasetsBucket": shared.datasets_bucket.bucket_name,
        "modelsBucket": shared.models_bucket.bucket_name,
        "notebookRoleArn": shared.notebook_role_arn,
        "notebookSecurityGroupId": shared.notebook_security_group_id,
        "endpointSecurityGroupId": shared.endpoint_security_group_id,
        "trainingSecurityGroupId": sagemaker_jobs_group.id,
        "notebookUrls": {name: nb.url for name, nb in notebooks.items()},
        "hyperpodClusters": {
            name: {
                "arn": hp.cluster_arn,
                "name": hp.cluster_name,
                "executionRoleArn": hp.execution_role_arn,
                "lifecycleScriptUri": hp.lifecycle_script_uri,
                "fsxId": hp.fsx_id,
                "prerequisites": hp.prerequisites,
            }
            for name, hp in hyperpods.items()
        },
    }
    if cluster is not None:
        outputs.update(
            clusterName=cluster.cluster_name,
            clusterArn=cluster.cluster_arn,
            kubeconfig=cluster.kubeconfig,
            oidcProviderArn=cluster.oidc_provider_arn,
            oidcProviderUrl=cluster.oidc_provider_url,
            nodeSecurityGroupId=cluster.node_security_group_id,
            nodeRoleArn=cluster.node_role_arn,
        )
    if training_image is not None:
        outputs["trainingImage"] = training_image.image_ref
        outputs["trainingJobs"] = {
            name: {"roleArn": job.role_arn, "checkpoints": job.checkpoint_s3_uri}
            for name, job in training_jobs.items()
        }
    if config.arc is not None and cluster is not None:
        runners = ArcRunners(
            f"{prefix}-arc",
            arc_args(config, config.arc, cluster, shared, prefix, stack, opts),
            opts=opts,
        )
        outputs["runnerScaleSets"] = list(runners.scale_sets)
    return outputs


def training_workloads(
    config: StackConfig,
    prefix: str,
    shared: SharedInfra,
    cluster: GpuEksCluster,
    hyperpods: dict[str, HyperPodCluster],
    opts: pulumi.ResourceOptions,
) -> tuple[ContainerImage, dict[str, TrainingJob]]:
    """The training image (docker/training, its own ECR repository) and the stack's jobs."""
    image = ContainerImage(
        f"{prefix}-training",
        ContainerImageArgs(
            context=str(REPO_ROOT),
            dockerfile=str(DOCKER_DIR / "training" / "Dockerfile"),
            kms_key_arn=shared.kms_key_arn,
            force_delete=not config.protect_data,
            tag=training_image_tag(),
        ),
        opts=opts,
    )
    in_cluster = pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(provider=cluster.provider)
    )
    namespaces = {
        name: k8s.core.v1.Namespace(
            f"{prefix}-ns-{name}",
            metadata={"name": name, "labels": {"app.kubernetes.io/part-of": "mlplatform"}},
            opts=in_cluster,
        )
        for name in sorted({job.namespace for job in config.training_jobs})
    }
    jobs = {}
    for job in config.training_jobs:
        # A HyperPodPyTorchJob needs the HyperPod cluster's training operator (its CRD) first.
        runs_on: list[pulumi.Resource] = [namespaces[job.namespace]]
        settings = settings_of(job)
        if job.engine == TrainingEngine.HYPERPOD:
            runs_on.append(hyperpods[config.hyperpod_cluster_of(job).name])
        else:
            # A pod asking for EFA interfaces the nodes do not attach would never be scheduled.
            settings["efa"] = job.efa and all(g.efa for g in config.node_groups_of(job))
        jobs[job.name] = TrainingJob(
            f"{prefix}-{job.name}",
            TrainingJobArgs(
                **settings,
                image=image.image_ref,
                oidc_provider_arn=cluster.oidc_provider_arn,
                oidc_provider_url=cluster.oidc_provider_url,
                datasets_bucket_arn=shared.datasets_bucket.arn,
                models_bucket_arn=shared.models_bucket.arn,
                models_bucket_name=shared.models_bucket.bucket_name,
                kms_key_arn=shared.kms_key_arn,
            ),
            opts=pulumi.ResourceOptions.merge(
                in_cluster, pulumi.ResourceOptions(depends_on=runs_on)
            ),
        )
    return image, jobs


def runner_images(
    prefix: str, shared: SharedInfra, *, force_delete: bool, opts: pulumi.ResourceOptions
) -> dict[str, ContainerImage]:
    """runner-base (the official runner + tools) and runner-gpu (CUDA on top of it)."""
    base = ContainerImage(
        f"{prefix}-runner-base",
        ContainerImageArgs(
            context=str(DOCKER_DIR / "runner-base"),
            build_args={"RUNNER_VERSION": RUNNER_VERSION},
            kms_key_arn=shared.kms_key_arn,
            force_delete=force_delete,
        ),
        opts=opts,
    )
    gpu = ContainerImage(
        f"{prefix}-runner-gpu",
        ContainerImageArgs(
            context=str(DOCKER_DIR / "runner-gpu"),
            build_args={"BASE_IMAGE": base.image_ref},
            kms_key_arn=shared.kms_key_arn,
            force_delete=force_delete,
        ),
        opts=opts,
    )
    return {"cpu": base, "gpu": gpu}


def arc_args(
    config: StackConfig,
    arc: ArcConfig,
    cluster: GpuEksCluster,
    shared: SharedInfra,
    prefix: str,
    stack: str,
    opts: pulumi.ResourceOptions,
) -> ArcRunnersArgs:
    """The runners' Args: scale sets from the runner classes, credentials from secrets."""
    auth: GitHubAppAuth | GitHubTokenAuth
    if arc.auth == "app":
        assert arc.github_app_id and arc.github_app_installation_id  # validated in config
        assert config.github_app_private_key is not None
        auth = GitHubAppAuth(
            app_id=arc.github_app_id,
            installation_id=arc.github_app_installation_id,
            private_key=pulumi.Output.secret(config.github_app_private_key.get_secret_value()),
        )
    else:
        assert config.github_token is not None
        auth = GitHubTokenAuth(pulumi.Output.secret(config.github_token.get_secret_value()))
    images = (
        runner_images(prefix, shared, force_delete=not config.protect_data, opts=opts)
        if arc.build_images
        else {}
    )
    system = cluster.system_node_group_name
    gpu_groups = [group.name for group in cluster.gpu_node_groups]
    classes = []
    for runner in arc.runner_classes:
        group = (runner.node_group or gpu_groups[0]) if runner.gpu else system
        image = images.get("gpu" if runner.gpu else "cpu")
        classes.append(
            RunnerClassArgs(
                name=runner.name,
                image=image.image_ref if image else OFFICIAL_RUNNER_IMAGE,
                min_runners=runner.min_runners,
                max_runners=runner.max_runners,
                cpu=runner.cpu,
                memory=runner.memory,
                node_selector={NODE_GROUP_LABEL: group},
                gpus=runner.gpus if runner.gpu else 0,
            )
        )
    return ArcRunnersArgs(
        provider=cluster.provider,
        github_config_url=arc.github_config_url,
        auth=auth,
        runner_classes=classes,
        runner_group=arc.runner_group,
        controller_node_selector={NODE_GROUP_LABEL: system},
        depends_on=[cluster.node_groups[system]],
        values_stack=stack,
    )


def hyperpod_args(
    config: HyperPodClusterConfig,
    shared: SharedInfra,
    *,
    protect_data: bool,
    eks_cluster: GpuEksCluster | None = None,
) -> HyperPodClusterArgs:
    """Validated HyperPod config -> the component's Args."""
    fsx = config.fsx
    tiered = config.tiered_storage
    # The stack's cluster ARN is computed, not read from the cluster: wait for it explicitly.
    stack_cluster = eks_cluster if config.joins_stack_cluster else None
    return HyperPodClusterArgs(
        shared=shared,
        orchestrator=config.orchestrator,
        eks_cluster_arn=stack_cluster.cluster_arn if stack_cluster else config.eks_cluster_arn,
        eks_security_group_id=stack_cluster.node_security_group_id if stack_cluster else None,
        depends_on=[stack_cluster] if stack_cluster else [],
        instance_groups=[
            InstanceGroupArgs(
                name=g.name,
                instance_type=g.instance_type,
                count=g.count,
                min_count=g.min_count,
                threads_per_core=g.threads_per_core,
                ebs_volume_size_gb=g.ebs_volume_size_gb,
                deep_health_checks=g.deep_health_checks,
                slurm_role=g.slurm_role,
                partition=g.partition,
                labels=g.labels,
                taints=[Taint(t.key, t.value, t.effect) for t in g.taints],
                training_plan_arn=g.training_plan_arn,
            )
            for g in config.instance_groups
        ],
        subnet_index=config.subnet_index,
        node_recovery=config.node_recovery,
        continuous_provisioning=config.continuous_provisioning,
        fsx=(
            FsxLustreArgs(
                storage_capacity_gb=fsx.storage_capacity_gb,
                deployment_type=fsx.deployment_type,
                throughput_per_tib=fsx.throughput,
                mount_path=fsx.mount_path,
            )
            if fsx
            else None
        ),
        tiered_storage_memory_percent=tiered.memory_percent if tiered and tiered.enabled else None,
        internet_egress=config.internet_egress,
        protect_data=protect_data,
        eks_prerequisites=EksPrerequisites(
            cert_manager=config.cert_manager,
            training_operator=config.training_operator,
            dependencies_chart=(
                ChartSource(**chart.model_dump()) if (chart := config.dependencies_chart) else None
            ),
            k8s_provider=stack_cluster.provider if stack_cluster else None,
        ),
    )


def eks_args(
    eks: EksConfig, shared: SharedInfra, region: str, stack: str, *, protect: bool
) -> GpuEksClusterArgs:
    """The cluster's Args from its config block, on the stack's shared network."""
    system = eks.system_node_group
    return GpuEksClusterArgs(
        vpc_id=shared.vpc_id,
        subnet_ids=shared.private_subnet_ids,
        region=region,
        vpc_cidr=shared.vpc_cidr,
        kubernetes_version=eks.kubernetes_version,
        admin_arns=eks.admins,
        public_endpoint=eks.public_endpoint,
        public_access_cidrs=eks.public_access_cidrs,
        log_types=eks.log_types,
        log_retention_days=eks.log_retention_days,
        deletion_protection=eks.deletion_protection,
        protect=protect,
        system_node_group=NodeGroupArgs(
            name="system",
            instance_types=[system.instance_type],
            min_size=system.min_size,
            desired_size=system.desired_size,
            max_size=system.max_size,
            disk_size_gb=system.disk_size_gb,
            gpu=False,
        ),
        gpu_node_groups=[
            NodeGroupArgs(
                name=group.name,
                instance_types=group.instance_types,
                min_size=group.min_size,
                desired_size=group.desired_size,
                max_size=group.max_size,
                capacity_type="SPOT" if group.capacity_type == "spot" else "ON_DEMAND",
                disk_size_gb=group.disk_size_gb,
                labels=group.labels,
                efa=group.efa,
                subnet_index=group.subnet_index,
            )
            for group in eks.gpu_node_groups
        ],
        cluster_autoscaler=eks.cluster_autoscaler,
        imds_hop_limit=eks.imds_hop_limit,
        values_stack=stack,
    )
