"""IAM policy documents, built once here so every component writes them the same way.

Documents are plain dicts turned into JSON with `Output.json_dumps`, so ARNs that are still
Outputs can sit inside them; tests parse the JSON the engine receives and assert on actions and
resources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

Statement = dict[str, Any]

# A Secrets Manager secret (git credentials of notebooks, readable by their roles).
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")


def statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]] | pulumi.Input[str],
    *,
    effect: str = "Allow",
    condition: dict[str, Any] | None = None,
) -> Statement:
    """One policy statement. `resources` may hold Outputs."""
    body: Statement = {
        "Sid": sid,
        "Effect": effect,
        "Action": sorted(actions),
        "Resource": list(resources) if isinstance(resources, (list, tuple)) else resources,
    }
    if condition:
        body["Condition"] = condition
    return body


def policy_document(statements: Sequence[Statement]) -> pulumi.Output[str]:
    """A complete policy document as JSON, resolved once every ARN inside it is known."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume_role_policy(service: str) -> str:
    """Trust policy letting one AWS service assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def pod_identity_trust_policy() -> str:
    """Trust policy of a role that EKS Pod Identity hands to a service account."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                }
            ],
        }
    )


def managed_policy_arn(partition: pulumi.Input[str], name: str) -> pulumi.Output[str]:
    """The ARN of an AWS managed policy, e.g. `AmazonEKSWorkerNodePolicy`."""
    return pulumi.Output.concat("arn:", partition, ":iam::aws:policy/", name)


def deny_insecure_transport(bucket_arn: pulumi.Input[str]) -> Statement:
    """Bucket-policy statement refusing any request not made over TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


ArnBuilder = Callable[[str, str], pulumi.Output[str]]


def arn_builder(
    partition: pulumi.Input[str], region: pulumi.Input[str], account_id: pulumi.Input[str]
) -> ArnBuilder:
    """`arn(service, resource)` -> `arn:<partition>:<service>:<region>:<account>:<resource>`."""
    scope = pulumi.Output.format("arn:{0}:{{service}}:{1}:{2}", partition, region, account_id)

    def arn(service: str, resource: str) -> pulumi.Output[str]:
        return scope.apply(lambda s: s.format(service=service) + ":" + resource)

    return arn


def ecr_pull_statements(arn: ArnBuilder) -> list[Statement]:
    """Pull images from the account's ECR repositories."""
    return [
        # GetAuthorizationToken has no resource-level permissions; pulls are scoped to the account.
        statement("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
        statement(
            "EcrPull",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [arn("ecr", "repository/*")],
        ),
    ]


def describe_network_statement() -> Statement:
    """The VPC lookups of anything attaching network interfaces (Describe* cannot be scoped)."""
    return statement(
        "DescribeNetwork",
        [
            "ec2:DescribeVpcs",
            "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeDhcpOptions",
        ],
        ["*"],
    )


def notebook_execution_statements(
    *,
    partition: pulumi.Input[str],
    region: pulumi.Input[str],
    account_id: pulumi.Input[str],
    role_arn: pulumi.Input[str],
    bucket_arns: Sequence[pulumi.Input[str]],
    kms_key_arn: pulumi.Input[str],
    git_secret_arns: Sequence[str] = (),
    write_prefix: str | None = None,
) -> list[Statement]:
    """What a notebook (and the SageMaker jobs it launches) may do: least privilege.

    Data: list and read the managed buckets; write everywhere in them, or only under
    `write_prefix` (per-user isolation, e.g. `users/alice/`). Nothing outside those buckets.
    """
    arn = arn_builder(partition, region, account_id)
    object_arns = [pulumi.Output.concat(b, "/*") for b in bucket_arns]
    writable = (
        [pulumi.Output.concat(b, "/", write_prefix, "*") for b in bucket_arns]
        if write_prefix
        else object_arns
    )
    statements = [
        statement("ListManagedBuckets", ["s3:ListBucket", "s3:GetBucketLocation"], bucket_arns),
        statement("ReadManagedObjects", ["s3:GetObject", "s3:GetObjectVersion"], object_arns),
        statement(
            "WriteManagedObjects",
            [
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            writable,
        ),
        statement(
            "UseBucketKey",
            ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            [kms_key_arn],
        ),
        statement(
            "RunSageMakerJobs",
            [
                "sagemaker:CreateTrainingJob",
                "sagemaker:CreateProcessingJob",
                "sagemaker:CreateTransformJob",
                "sagemaker:CreateModel",
                "sagemaker:CreateEndpointConfig",
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DeleteEndpoint",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:DeleteModel",
                "sagemaker:InvokeEndpoint",
                "sagemaker:StopTrainingJob",
                "sagemaker:StopProcessingJob",
                "sagemaker:StopTransformJob",
                "sagemaker:AddTags",
                "sagemaker:ListTags",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:DescribeProcessingJob",
                "sagemaker:DescribeTransformJob",
                "sagemaker:DescribeModel",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DescribeNotebookInstance",
                "sagemaker:DescribeCodeRepository",
                "sagemaker:DescribePipeline",
                "sagemaker:DescribePipelineExecution",
                "sagemaker:ListPipelineExecutions",
                "sagemaker:ListPipelineExecutionSteps",
                "sagemaker:CreatePipeline",
                "sagemaker:UpdatePipeline",
                "sagemaker:StartPipelineExecution",
            ],
            [arn("sagemaker", "*")],
        ),
        # These List calls and Search have no resource-level permissions in SageMaker.
        statement(
            "ListSageMaker",
            [
                "sagemaker:ListTrainingJobs",
                "sagemaker:ListProcessingJobs",
                "sagemaker:ListTransformJobs",
                "sagemaker:ListModels",
                "sagemaker:ListEndpoints",
                "sagemaker:ListEndpointConfigs",
                "sagemaker:ListNotebookInstances",
                "sagemaker:ListCodeRepositories",
                "sagemaker:ListPipelines",
                "sagemaker:Search",
            ],
            ["*"],
        ),
        statement(
            "PassOwnRoleToSageMaker",
            ["iam:PassRole"],
            [role_arn],
            condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        *ecr_pull_statements(arn),
        statement(
            "WriteSageMakerLogs",
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
            ],
            [arn("logs", "log-group:/aws/sagemaker/*")],
        ),
        # SageMaker jobs in the VPC attach network interfaces.
        describe_network_statement(),
        statement(
            "ManageJobNetworkInterfaces",
            [
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            [
                arn("ec2", "network-interface/*"),
                arn("ec2", "subnet/*"),
                arn("ec2", "security-group/*"),
            ],
        ),
    ]
    if git_secret_arns:
        statements.append(
            statement(
                "ReadGitCredentials", ["secretsmanager:GetSecretValue"], list(git_secret_arns)
            )
        )
    return statements


def notebook_role(
    name: str,
    *,
    description: str,
    partition: pulumi.Input[str],
    region: pulumi.Input[str],
    account_id: pulumi.Input[str],
    bucket_arns: Sequence[pulumi.Input[str]],
    kms_key_arn: pulumi.Input[str],
    git_secret_arns: Sequence[str] = (),
    write_prefix: str | None = None,
    opts: pulumi.ResourceOptions,
) -> aws.iam.Role:
    """A SageMaker execution role with `notebook_execution_statements` as its inline policy."""
    role = aws.iam.Role(
        f"{name}-role",
        description=description,
        assume_role_policy=assume_role_policy("sagemaker.amazonaws.com"),
        max_session_duration=3600,
        opts=opts,
    )
    aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.id,
        policy=policy_document(
            notebook_execution_statements(
                partition=partition,
                region=region,
                account_id=account_id,
                role_arn=role.arn,
                bucket_arns=bucket_arns,
                kms_key_arn=kms_key_arn,
                git_secret_arns=git_secret_arns,
                write_prefix=write_prefix,
            )
        ),
        opts=opts,
    )
    return role


# The AWS managed policy every HyperPod cluster instance role carries (CloudWatch logs and metrics
# of the cluster agent, SSM for node access, health monitoring).
HYPERPOD_INSTANCE_MANAGED_POLICY = "AmazonSageMakerClusterInstanceRolePolicy"


def hyperpod_execution_statements(
    *,
    partition: pulumi.Input[str],
    region: pulumi.Input[str],
    account_id: pulumi.Input[str],
    bucket_arn: pulumi.Input[str],
    lifecycle_prefix: str,
    kms_key_arn: pulumi.Input[str],
) -> list[Statement]:
    """What HyperPod cluster nodes may do beyond the managed instance policy: least privilege.

    Read the cluster's lifecycle scripts (one prefix of one bucket, through its KMS key), pull
    images from the account's ECR, and manage the network interfaces HyperPod attaches to the
    VPC (AWS's documented VPC permissions for HyperPod).
    """
    arn = arn_builder(partition, region, account_id)
    return [
        statement(
            "ListLifecycleScripts",
            ["s3:ListBucket"],
            [bucket_arn],
            condition={"StringLike": {"s3:prefix": [f"{lifecycle_prefix}*"]}},
        ),
        statement(
            "ReadLifecycleScripts",
            ["s3:GetObject"],
            [pulumi.Output.concat(bucket_arn, "/", lifecycle_prefix, "*")],
        ),
        statement("DecryptLifecycleScripts", ["kms:Decrypt"], [kms_key_arn]),
        *ecr_pull_statements(arn),
        describe_network_statement(),
        statement(
            "ManageClusterNetworkInterfaces",
            [
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
                "ec2:DetachNetworkInterface",
                "ec2:ModifyNetworkInterfaceAttribute",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            [
                arn("ec2", "network-interface/*"),
                arn("ec2", "subnet/*"),
                arn("ec2", "security-group/*"),
                arn("ec2", "instance/*"),
            ],
        ),
        statement(
            "TagNewNetworkInterfaces",
            ["ec2:CreateTags"],
            [arn("ec2", "network-interface/*")],
            condition={"StringEquals": {"ec2:CreateAction": "CreateNetworkInterface"}},
        ),
    ]


def training_job_statements(
    *,
    datasets_bucket_arn: pulumi.Input[str],
    models_bucket_arn: pulumi.Input[str],
    kms_key_arn: pulumi.Input[str],
    checkpoint_prefix: str,
) -> list[Statement]:
    """What one training job may do: read the datasets bucket; read, write and prune its own
    checkpoints under `checkpoint_prefix` (e.g. `checkpoints/<job>/`) of the models bucket, and
    nothing else there (not even list other jobs' checkpoints)."""
    checkpoints = pulumi.Output.concat(models_bucket_arn, "/", checkpoint_prefix, "*")
    return [
        statement("ListDatasets", ["s3:ListBucket"], [datasets_bucket_arn]),
        statement(
            "ReadDatasets",
            ["s3:GetObject", "s3:GetObjectVersion"],
            [pulumi.Output.concat(datasets_bucket_arn, "/*")],
        ),
        statement(
            "ListOwnCheckpoints",
            ["s3:ListBucket"],
            [models_bucket_arn],
            condition={"StringLike": {"s3:prefix": [checkpoint_prefix, f"{checkpoint_prefix}*"]}},
        ),
        statement(
            "ReadWriteOwnCheckpoints",
            [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            [checkpoints],
        ),
        statement(
            "UseBucketKey",
            ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            [kms_key_arn],
        ),
    ]


def irsa_trust_policy(
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    namespace: str,
    service_account: str,
) -> pulumi.Output[str]:
    """Trust policy for IAM roles for service accounts: exactly one Kubernetes service account.

    `oidc_issuer` is the cluster's issuer without `https://` (pulumi-eks `oidc_issuer`).
    """
    return pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(
        lambda parts: json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": parts[0]},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {
                                f"{parts[1]}:sub": (
                                    f"system:serviceaccount:{namespace}:{service_account}"
                                ),
                                f"{parts[1]}:aud": "sts.amazonaws.com",
                            }
                        },
                    }
                ],
            }
        )
    )


def cluster_autoscaler_statements(
    *,
    partition: pulumi.Input[str],
    region: str,
    account_id: pulumi.Input[str],
    cluster_name: str,
) -> list[Statement]:
    """Cluster Autoscaler: describe what it must see, resize only this cluster's node groups.

    Managed node groups tag their Auto Scaling groups (named `eks-<nodegroup>-<uuid>`)
    `k8s.io/cluster-autoscaler/<cluster>: owned`; the write actions require that tag.
    """
    arn = arn_builder(partition, region, account_id)
    return [
        # Describe and List calls have no resource-level permissions.
        statement(
            "DescribeScalingInputs",
            [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
            ],
            ["*"],
        ),
        statement(
            "DescribeOwnNodeGroups",
            ["eks:DescribeNodegroup"],
            [arn("eks", f"nodegroup/{cluster_name}/*/*")],
        ),
        statement(
            "ResizeOwnNodeGroups",
            [
                "autoscaling:SetDesiredCapacity",
                "autoscaling:TerminateInstanceInAutoScalingGroup",
            ],
            [arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/eks-*")],
            condition={
                "StringEquals": {
                    f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"
                }
            },
        ),
    ]
