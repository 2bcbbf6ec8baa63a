"""The stack builder: validated config in, components wired together, stack outputs out.

`__main__.py`, the tests and the offline plan all call `build_platform`, so there is exactly one
description of what a stack contains.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from mlplatform.components.arc_runners import (
    RUNNER_VERSION,
    ArcRunners,
    ArcRunnersArgs,
    GitHubAuth,
)
from mlplatform.components.eks import GpuEksCluster, GpuEksClusterArgs, GpuEksClusterSettings
from mlplatform.components.hyperpod import (
    HyperPodCluster,
    HyperPodClusterArgs,
    HyperPodClusterSettings,
)
from mlplatform.components.images import DOCKER_DIR, REPO_ROOT, ContainerImage, ContainerImageArgs
from mlplatform.components.notebook import (
    NotebookInstance,
    NotebookInstanceArgs,
    NotebookSettings,
)
from mlplatform.components.schema import settings_of
from mlplatform.components.shared_infra import SharedInfra, SharedInfraArgs, SharedInfraSettings
from mlplatform.components.training_job import (
    TrainingJob,
    TrainingJobArgs,
    job_security_group,
    training_image_tag,
)
from mlplatform.components.training_manifests import TrainingEngine
from mlplatform.config import PROJECT, ArcConfig, StackConfig


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

    shared = SharedInfra(
        prefix,
        SharedInfraArgs(
            **settings_of(config, SharedInfraSettings), git_secret_arns=config.git_secret_arns
        ),
        opts=opts,
    )
    notebooks = {
        nb.name: NotebookInstance(
            f"{prefix}-{nb.name}",
            notebook_args(nb, shared, own_role=config.per_user_s3_prefixes),
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

    hyperpods = {
        hp.name: hyperpod_cluster(
            f"{prefix}-{hp.name}", hp, shared, config.protect_data, cluster, opts
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
        "datasetsBucket": shared.datasets_bucket_name,
        "modelsBucket": shared.models_bucket_name,
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
        # The runners install through the cluster's provider, once its system group is up.
        on_cluster = pulumi.ResourceOptions(
            providers={"kubernetes": cluster.provider},
            depends_on=[cluster.node_groups[cluster.system_node_group_name]],
        )
        runners = ArcRunners(
            f"{prefix}-arc",
            arc_args(config, config.arc, cluster, shared, prefix, stack, opts),
            opts=pulumi.ResourceOptions.merge(opts, on_cluster),
        )
        outputs["runnerScaleSets"] = list(runners.scale_sets)
    return outputs


def notebook_args(
    notebook: NotebookSettings, shared: SharedInfra, *, own_role: bool
) -> NotebookInstanceArgs:
    """A notebook on the shared network: the shared role, or (per-user prefixes) its own."""
    role: dict[str, Any] = (
        {"bucket_arns": shared.bucket_arns} if own_role else {"role_arn": shared.notebook_role_arn}
    )
    return NotebookInstanceArgs(
        **settings_of(notebook),
        subnet_ids=shared.private_subnet_ids,
        security_group_id=shared.notebook_security_group_id,
        kms_key_arn=shared.kms_key_arn,
        **role,
    )


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
    """The runners' Args: the arc section, credentials from secrets, the cluster's node groups."""
    settings = settings_of(arc)
    del settings["build_images"]  # the stack's business (runner_images), not the component's
    if arc.build_images:
        # Classes without an image of their own run the images this stack builds.
        images = runner_images(prefix, shared, force_delete=not config.protect_data, opts=opts)
        settings["runner_classes"] = [
            runner
            if runner.image is not None
            else replace(runner, image=images["gpu" if runner.gpu else "cpu"].image_ref)
            for runner in arc.runner_classes
        ]
    app = arc.auth == GitHubAuth.APP
    return ArcRunnersArgs(
        **settings,
        github_app_private_key=_secret(config.github_app_private_key) if app else None,
        github_token=None if app else _secret(config.github_token),
        system_node_group=cluster.system_node_group_name,
        gpu_node_groups=cluster.gpu_node_group_names,
        values_stack=stack,
    )


def _secret(value: SecretStr | None) -> pulumi.Output[str] | None:
    """A secret config value as a Pulumi secret, never a plain string."""
    return None if value is None else pulumi.Output.secret(value.get_secret_value())


def hyperpod_cluster(
    name: str,
    settings: HyperPodClusterSettings,
    shared: SharedInfra,
    protect_data: bool,
    eks_cluster: GpuEksCluster | None,
    opts: pulumi.ResourceOptions,
) -> HyperPodCluster:
    """One HyperPod cluster named `name` on the shared network. EKS-orchestrated clusters join
    the stack's GpuEksCluster unless their settings give another cluster's ARN."""
    on_stack = eks_cluster if settings.joins_stack_cluster else None
    if on_stack is not None:
        # The stack's cluster ARN is computed, not read from the cluster: wait for it explicitly.
        # Its provider installs the dependencies chart.
        opts = pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                providers={"kubernetes": on_stack.provider}, depends_on=[on_stack]
            ),
        )
    return HyperPodCluster(
        name, hyperpod_args(name, settings, shared, protect_data, on_stack), opts=opts
    )


def hyperpod_args(
    name: str,
    settings: HyperPodClusterSettings,
    shared: SharedInfra,
    protect_data: bool,
    on_stack: GpuEksCluster | None = None,
) -> HyperPodClusterArgs:
    """A cluster's settings plus the shared network, bucket and key (and the stack's EKS cluster
    when the nodes join it)."""
    wired = {**settings_of(settings), "name": name}
    if on_stack is not None:
        wired["eks_cluster_arn"] = on_stack.cluster_arn
    return HyperPodClusterArgs(
        **wired,
        vpc_id=shared.vpc_id,
        vpc_cidr=shared.vpc_cidr,
        subnet_ids=shared.private_subnet_ids,
        s3_prefix_list_id=shared.s3_prefix_list_id,
        kms_key_arn=shared.kms_key_arn,
        models_bucket_name=shared.models_bucket.bucket_name,
        models_bucket_arn=shared.models_bucket.arn,
        eks_security_group_id=on_stack.node_security_group_id if on_stack else None,
        protect_data=protect_data,
    )


def eks_args(
    eks: GpuEksClusterSettings, shared: SharedInfra, region: str, stack: str, *, protect: bool
) -> GpuEksClusterArgs:
    """The cluster's Args: its config section, on the stack's shared network."""
    return GpuEksClusterArgs(
        **settings_of(eks),
        vpc_id=shared.vpc_id,
        subnet_ids=shared.private_subnet_ids,
        vpc_cidr=shared.vpc_cidr,
        region=region,
        protect=protect,
        values_stack=stack,
    )
