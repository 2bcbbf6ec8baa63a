"""A training job deployed by Pulumi onto the platform's Kubernetes cluster.

`TrainingJob` is one job of the stack's `trainingJobs`: its identity (an IRSA role that reads the
datasets bucket and writes only `checkpoints/<job>/` of the models bucket, and the service
account mapped to it), its recipe (a ConfigMap) and the job object itself, a
`HyperPodPyTorchJob` on HyperPod's nodes or a Kubeflow `PyTorchJob` on the EKS GPU node groups.
The manifests come from `components.training_manifests`; this module only wires resolved
Outputs (image digest, bucket names, role ARN) into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from mlplatform.components import training_manifests as tm
from mlplatform.components.iam import (
    irsa_trust_policy,
    policy_document,
    training_job_statements,
)
from mlplatform.components.images import DOCKER_DIR, REPO_ROOT, source_tag
from mlplatform.components.security_groups import rule, security_group
from mlplatform.components.shared_infra import SharedInfra

# What the training image is built from (the mlplatform wheel and docker/training); its build
# context is the repository root, whose content digest would cover every file in the checkout.
TRAINING_IMAGE_SOURCES = (
    *(REPO_ROOT / folder for folder in ("training", "components", "mlplatform", "helm")),
    DOCKER_DIR / "training",
)


def training_image_tag() -> str:
    """The image's tag: the git revisions of the package's folders and of docker/training."""
    return "-".join(source_tag(path) for path in TRAINING_IMAGE_SOURCES)


class KubernetesCluster(Protocol):
    """What a job needs of the cluster it runs on (GpuEksCluster has all of it)."""

    @property
    def provider(self) -> k8s.Provider: ...

    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]


@dataclass(frozen=True)
class TrainingJobArgs:
    """One job. Data and key come from `shared`, the cluster's API and OIDC from `cluster`."""

    shared: SharedInfra
    cluster: KubernetesCluster
    image: pulumi.Input[str]  # <repository>@sha256:<digest>
    job: tm.JobSettings


class TrainingJob(pulumi.ComponentResource):
    """IRSA role + policy, service account, recipe ConfigMap, HyperPodPyTorchJob or PyTorchJob."""

    role_arn: pulumi.Output[str]
    checkpoint_s3_uri: pulumi.Output[str]
    manifests: pulumi.Output[list[dict[str, Any]]]

    def __init__(
        self, name: str, args: TrainingJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:index:TrainingJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        job = args.job
        service_account = job.name
        prefix = tm.checkpoint_prefix(job.name)

        role = aws.iam.Role(
            f"{name}-role",
            description=f"Training job {job.name}: reads datasets, writes {prefix}",
            assume_role_policy=irsa_trust_policy(
                args.cluster.oidc_provider_arn,
                args.cluster.oidc_issuer,
                job.namespace,
                service_account,
            ),
            max_session_duration=3600,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=policy_document(
                training_job_statements(
                    datasets_bucket_arn=args.shared.datasets_bucket.arn,
                    models_bucket_arn=args.shared.models_bucket.arn,
                    kms_key_arn=args.shared.kms_key_arn,
                    checkpoint_prefix=prefix,
                )
            ),
            opts=child,
        )
        self.role_arn = role.arn

        specs = pulumi.Output.all(args.image, args.shared.models_bucket.bucket_name).apply(
            lambda values: tm.TrainingJobSpec.of(
                job, image=values[0], models_bucket=values[1], service_account=service_account
            )
        )
        self.checkpoint_s3_uri = specs.apply(lambda s: s.checkpoint_s3_uri)
        self.manifests = pulumi.Output.all(specs, role.arn).apply(
            lambda values: tm.render(values[0], values[1])
        )
        # render() returns [service account, recipe config map, job], in apply order
        account = self.manifests.apply(lambda m: m[0])
        recipe = self.manifests.apply(lambda m: m[1])
        job_object = self.manifests.apply(lambda m: m[2])

        in_cluster = pulumi.ResourceOptions(parent=self, provider=args.cluster.provider)
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=account.apply(lambda o: o["metadata"]),
            automount_service_account_token=False,
            opts=in_cluster,
        )
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-recipe",
            metadata=recipe.apply(lambda o: o["metadata"]),
            data=recipe.apply(lambda o: o["data"]),
            opts=in_cluster,
        )
        api_version, kind = tm.JOB_KINDS[job.engine]
        k8s.apiextensions.CustomResource(
            f"{name}-job",
            api_version=api_version,
            kind=kind,
            metadata=job_object.apply(lambda o: o["metadata"]),
            spec=job_object.apply(lambda o: o["spec"]),
            opts=pulumi.ResourceOptions.merge(
                in_cluster, pulumi.ResourceOptions(depends_on=[sa, config_map])
            ),
        )
        self.register_outputs({"roleArn": self.role_arn, "checkpointS3Uri": self.checkpoint_s3_uri})


def job_security_group(
    name: str, shared: SharedInfra, opts: pulumi.ResourceOptions
) -> aws.ec2.SecurityGroup:
    """The group of SageMaker training jobs in the VPC (`mlplatform train submit`): the job's
    nodes exchange all traffic (NCCL over TCP and EFA, which needs self-referencing rules in both
    directions) and otherwise reach only HTTPS: the interface endpoints and S3."""
    group = security_group(name, "SageMaker training jobs of the ML platform", shared.vpc_id, opts)
    for direction in ("ingress", "egress"):
        rule(
            direction,
            f"{name}-{direction}-nodes",
            group.id,
            "All traffic between the nodes of a job (NCCL, EFA)",
            opts,
            ports=None,
            protocol="-1",
            peer_group_id=group.id,
        )
    rule(
        "egress",
        f"{name}-https-to-vpc",
        group.id,
        "HTTPS to the interface endpoints",
        opts,
        cidr=shared.vpc_cidr,
    )
    rule(
        "egress",
        f"{name}-https-to-s3",
        group.id,
        "HTTPS to S3 through the gateway endpoint",
        opts,
        prefix_list_id=shared.s3_prefix_list_id,
    )
    return group
