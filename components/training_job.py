"""A training job deployed by Pulumi onto the platform's Kubernetes cluster.

`TrainingJob` is one job of the stack's `trainingJobs`: its identity (an IRSA role that reads the
datasets bucket and writes only `checkpoints/<job>/` of the models bucket, and the service
account mapped to it), its recipe (a ConfigMap) and the job object itself, a
`HyperPodPyTorchJob` on HyperPod's nodes or a Kubeflow `PyTorchJob` on the EKS GPU node groups.
The manifests come from `components.training_manifests`; this module only wires resolved
Outputs (image digest, bucket name, role ARN) into them.

The cluster is not an input: its Kubernetes provider arrives through `opts` (children inherit it)
and its OIDC provider through `oidc_provider_arn` / `oidc_provider_url`, so any Pulumi language
can deploy a job onto any EKS cluster.
"""

import pulumi
import pulumi_aws as aws

from mlplatform.components import training_manifests as tm
from mlplatform.components.extras import missing_extra
from mlplatform.components.iam import (
    irsa_trust_policy,
    policy_document,
    training_job_statements,
)
from mlplatform.components.images import DOCKER_DIR, REPO_ROOT, source_tag
from mlplatform.components.schema import parse, schema
from mlplatform.components.security_groups import rule, security_group
from mlplatform.components.shared_infra import SharedInfra
from mlplatform.components.training_manifests import TrainingEngine, TrainingJobSettings

try:
    import pulumi_kubernetes as k8s
except ModuleNotFoundError as missing:
    missing_extra(missing, "TrainingJob")

# What the training image is built from (the mlplatform wheel and docker/training); its build
# context is the repository root, whose content digest would cover every file in the checkout.
TRAINING_IMAGE_SOURCES = (
    *(REPO_ROOT / folder for folder in ("training", "components", "mlplatform", "helm")),
    DOCKER_DIR / "training",
)


def training_image_tag() -> str:
    """The image's tag: the git revisions of the package's folders and of docker/training."""
    return "-".join(source_tag(path) for path in TRAINING_IMAGE_SOURCES)


@schema
class TrainingJobArgs(TrainingJobSettings):
    """One job: its settings, plus the image, the cluster's OIDC provider and the buckets."""

    image: pulumi.Input[str]
    """The training image by digest, `<repository>@sha256:<digest>` (ContainerImage.image_ref)."""
    oidc_provider_arn: pulumi.Input[str]
    """ARN of the EKS cluster's IAM OIDC provider (IRSA)."""
    oidc_provider_url: pulumi.Input[str]
    """The EKS cluster's OIDC issuer URL, with or without `https://`."""
    datasets_bucket_arn: pulumi.Input[str]
    """The bucket the job reads training data from."""
    models_bucket_arn: pulumi.Input[str]
    """The bucket whose `checkpoints/<job>/` the job writes."""
    models_bucket_name: pulumi.Input[str]
    """The models bucket's name (the job's checkpoint S3 URI)."""
    kms_key_arn: pulumi.Input[str]
    """The KMS key both buckets are encrypted with."""


class TrainingJob(pulumi.ComponentResource):
    """IRSA role + policy, service account, recipe ConfigMap, HyperPodPyTorchJob or PyTorchJob.

    Pass the cluster's Kubernetes provider in `opts` (`provider=` or `providers=`); a hyperpod
    job should depend (`opts.depends_on`) on what installs the HyperPodPyTorchJob CRD.
    """

    role_arn: pulumi.Output[str]
    """The job's IAM role, assumed by its service account through IRSA."""
    checkpoint_s3_uri: pulumi.Output[str]
    """`s3://<models bucket>/checkpoints/<job>/`: the job's durable checkpoints."""

    def __init__(
        self, name: str, args: TrainingJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args = parse(TrainingJobArgs, args)  # a mapping when another language calls
        super().__init__("mlplatform:index:TrainingJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        service_account = args.name
        prefix = tm.checkpoint_prefix(args.name)
        issuer = pulumi.Output.from_input(args.oidc_provider_url).apply(
            lambda url: url.removeprefix("https://")
        )

        role = aws.iam.Role(
            f"{name}-role",
            description=f"Training job {args.name}: reads datasets, writes {prefix}",
            assume_role_policy=irsa_trust_policy(
                args.oidc_provider_arn, issuer, args.namespace, service_account
            ),
            max_session_duration=3600,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=policy_document(
                training_job_statements(
                    datasets_bucket_arn=args.datasets_bucket_arn,
                    models_bucket_arn=args.models_bucket_arn,
                    kms_key_arn=args.kms_key_arn,
                    checkpoint_prefix=prefix,
                )
            ),
            opts=child,
        )

        spec = pulumi.Output.all(args.image, args.models_bucket_name).apply(
            lambda values: tm.TrainingJobSpec.of(
                args, image=values[0], models_bucket=values[1], service_account=service_account
            )
        )
        manifests = pulumi.Output.all(spec, role.arn).apply(
            lambda values: tm.render(values[0], values[1])
        )
        # render() returns [service account, recipe config map, job], in apply order; the
        # Kubernetes objects inherit the provider given to this component.
        account = manifests.apply(lambda m: m[0])
        recipe = manifests.apply(lambda m: m[1])
        job_object = manifests.apply(lambda m: m[2])
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=account.apply(lambda o: o["metadata"]),
            automount_service_account_token=False,
            opts=child,
        )
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-recipe",
            metadata=recipe.apply(lambda o: o["metadata"]),
            data=recipe.apply(lambda o: o["data"]),
            opts=child,
        )
        api_version, kind = tm.JOB_KINDS[args.engine]
        k8s.apiextensions.CustomResource(
            f"{name}-job",
            api_version=api_version,
            kind=kind,
            metadata=job_object.apply(lambda o: o["metadata"]),
            spec=job_object.apply(lambda o: o["spec"]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[sa, config_map]),
        )

        self.role_arn = role.arn
        self.checkpoint_s3_uri = spec.apply(lambda s: s.checkpoint_s3_uri)
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


__all__ = [
    "TrainingEngine",
    "TrainingJob",
    "TrainingJobArgs",
    "TrainingJobSettings",
    "job_security_group",
    "training_image_tag",
]
