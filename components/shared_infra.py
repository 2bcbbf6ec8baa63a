"""Infrastructure deployed once per stack and shared by every notebook, cluster and job.

Sharing is the point (seed: cost-sharing notebook infrastructure): one set of VPC endpoints, one
KMS key, one datasets bucket, one models bucket and one notebook role serve any number of
notebooks, so adding a notebook costs only the notebook.

`SharedInfraSettings` is what a stack file sets (the flat keys `vpcCidr`, `vpcEndpoints`,
`protectData`...); the stack's config inherits it, so each of these settings is declared here
once. `SharedInfraArgs` adds what the stack derives from other sections (the notebooks' git
secrets).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import field_validator, model_validator

from mlplatform.components.bucket import BucketLifecycle, SecureBucket, SecureBucketArgs
from mlplatform.components.catalog import (
    DEFAULT_INTERFACE_ENDPOINTS,
    INTERFACE_ENDPOINTS,
    endpoint_service_name,
)
from mlplatform.components.iam import SECRET_ARN, notebook_role
from mlplatform.components.network import Network, NetworkArgs
from mlplatform.components.schema import SettingError, parse, schema, settings_of
from mlplatform.components.security_groups import rule, security_group

# The seeds' layout of the models bucket: training data snapshots, packaged code, pipeline outputs
# under model/<pipeline>/<execution>/, and inference repackaging under repackage/<pipeline>/<time>/.
MODELS_BUCKET_PREFIXES = ("data/", "code/", "model/", "repackage/")

# The regions the pinned pulumi-aws knows; its provider refuses any other.
AWS_REGIONS = frozenset(region.value for region in aws.Region)


def aws_region(region: str) -> str:
    """`region` if the AWS provider knows it (one check for every component that takes one)."""
    if region not in AWS_REGIONS:
        raise ValueError(f"{region!r} is not an AWS region")
    return region


_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_ROUTE_TABLE_ID = re.compile(r"^rtb-[0-9a-f]{8,17}$")


def _check_ids(ids: Sequence[Any], pattern: re.Pattern[str], kind: str) -> Sequence[Any]:
    """IDs given as strings match `pattern`, once each; Outputs are checked by AWS."""
    known = [value for value in ids if isinstance(value, str)]
    for value in known:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a {kind} ID")
    if len(set(known)) != len(known):
        raise ValueError(f"lists a {kind} twice")
    return ids


@schema
class SharedInfraSettings(BucketLifecycle, NetworkArgs):
    """Every lever of the shared layer. Defaults are the safe choice, not the cheap one.

    The network is created from `vpc_cidr`, `availability_zones` and `nat_gateways`, or adopted
    with `existing_vpc_id` and its private subnets and route tables.
    """

    region: str
    """AWS region of the stack (its provider's): names the endpoint services and ARNs."""
    existing_vpc_id: pulumi.Input[str] | None = None
    """Adopt this VPC instead of creating one (needs its private subnets and route tables)."""
    existing_private_subnet_ids: Sequence[pulumi.Input[str]] = ()
    """Private subnets of the adopted VPC (workloads and interface endpoints go there)."""
    existing_private_route_table_ids: Sequence[pulumi.Input[str]] = ()
    """Route tables of those subnets (for the S3 gateway endpoint)."""
    vpc_endpoints: Sequence[str] = DEFAULT_INTERFACE_ENDPOINTS
    """Interface endpoints to create, by short name (the S3 gateway endpoint always exists)."""
    protect_data: bool = False
    """Protect the buckets and the KMS key from deletion (protect + retainOnDelete)."""
    force_destroy_buckets: bool = False
    """Let non-empty buckets be deleted (staging only; refused with protect_data)."""

    @field_validator("region")
    @classmethod
    def _region(cls, region: str) -> str:
        return aws_region(region)

    @field_validator("existing_vpc_id", mode="before")
    @classmethod
    def _vpc_id(cls, vpc_id: Any) -> Any:
        if vpc_id == "":  # Pulumi.yaml's default: no VPC to adopt
            return None
        if isinstance(vpc_id, str) and not re.match(r"^vpc-[0-9a-f]{8,17}$", vpc_id):
            raise ValueError(f"{vpc_id!r} is not a VPC ID")
        return vpc_id

    @field_validator("existing_private_subnet_ids")
    @classmethod
    def _subnet_ids(cls, ids: Sequence[Any]) -> Sequence[Any]:
        return _check_ids(ids, _SUBNET_ID, "subnet")

    @field_validator("existing_private_route_table_ids")
    @classmethod
    def _route_table_ids(cls, ids: Sequence[Any]) -> Sequence[Any]:
        return _check_ids(ids, _ROUTE_TABLE_ID, "route table")

    @field_validator("vpc_endpoints")
    @classmethod
    def _endpoints(cls, names: Sequence[str]) -> Sequence[str]:
        for name in names:
            if name not in INTERFACE_ENDPOINTS:
                raise ValueError(f"{name!r} is not a known interface endpoint")
        if len(set(names)) != len(names):
            raise ValueError("lists an endpoint twice")
        return names

    @model_validator(mode="after")
    def _network_and_data(self) -> "SharedInfraSettings":
        if self.existing_vpc_id is not None:
            if not self.existing_private_subnet_ids:
                raise SettingError("existing_private_subnet_ids", "is required with existingVpcId")
            if not self.existing_private_route_table_ids:
                raise SettingError(
                    "existing_private_route_table_ids", "is required with existingVpcId"
                )
        elif self.existing_private_subnet_ids or self.existing_private_route_table_ids:
            raise SettingError("existing_vpc_id", "is required when existing subnets are given")
        if self.protect_data and self.force_destroy_buckets:
            raise SettingError("force_destroy_buckets", "cannot be true while protectData is true")
        return self

    @property
    def private_subnet_count(self) -> int:
        """How many private subnets the stack has (adopted, or one per AZ)."""
        if self.existing_vpc_id is not None:
            return len(self.existing_private_subnet_ids)
        return self.availability_zones


@schema
class SharedInfraArgs(SharedInfraSettings):
    """The shared layer's settings plus what the stack derives from its notebooks."""

    git_secret_arns: Sequence[str] = ()
    """Secrets Manager secrets (git credentials) the shared notebook role may read."""

    @field_validator("git_secret_arns")
    @classmethod
    def _secret_arns(cls, arns: Sequence[str]) -> Sequence[str]:
        for arn in arns:
            if not SECRET_ARN.match(arn):
                raise ValueError(f"{arn!r} is not a Secrets Manager secret ARN")
        return arns


@dataclass(frozen=True)
class _NetworkIds:
    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    private_route_table_ids: list[pulumi.Output[str]]


class SharedInfra(pulumi.ComponentResource):
    """Network, KMS key, datasets/models buckets, notebook role, security groups, VPC endpoints."""

    vpc_id: pulumi.Output[str]
    """The VPC's ID (created or adopted)."""
    vpc_cidr: pulumi.Output[str]
    """The VPC's CIDR block."""
    private_subnet_ids: list[pulumi.Output[str]]
    """The private subnets, one per AZ (or the adopted ones, in the order given)."""
    private_route_table_ids: list[pulumi.Output[str]]
    """The private subnets' route tables."""
    kms_key_arn: pulumi.Output[str]
    """The KMS key encrypting datasets, models and notebook volumes."""
    datasets_bucket_name: pulumi.Output[str]
    """Name of the datasets bucket."""
    datasets_bucket_arn: pulumi.Output[str]
    """ARN of the datasets bucket."""
    models_bucket_name: pulumi.Output[str]
    """Name of the models bucket (prefixes data/, code/, model/, repackage/)."""
    models_bucket_arn: pulumi.Output[str]
    """ARN of the models bucket."""
    notebook_role_arn: pulumi.Output[str]
    """The shared SageMaker execution role of the notebooks."""
    notebook_security_group_id: pulumi.Output[str]
    """Security group of the notebooks: HTTPS to the VPC endpoints and S3 only."""
    endpoint_security_group_id: pulumi.Output[str]
    """Security group of the interface endpoints: HTTPS from the VPC."""
    s3_prefix_list_id: pulumi.Output[str]
    """Prefix list of the S3 gateway endpoint (for egress rules to S3)."""
    interface_endpoint_ids: dict[str, pulumi.Output[str]]
    """The interface endpoints' IDs by short name."""
    account_id: pulumi.Output[str]
    """The AWS account the stack deploys to."""
    partition: pulumi.Output[str]
    """The AWS partition (aws, aws-cn, aws-us-gov)."""

    def __init__(
        self, name: str, args: SharedInfraArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args = parse(SharedInfraArgs, args)  # a mapping when another language calls
        super().__init__("mlplatform:index:SharedInfra", name, None, opts)
        self._region = args.region
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(
            parent=self, protect=args.protect_data, retain_on_delete=args.protect_data
        )
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self.account_id = aws.get_caller_identity_output(opts=invoke).account_id
        self.partition = aws.get_partition_output(opts=invoke).partition

        network = _network(name, args, self)
        self.vpc_id = network.vpc_id
        self.vpc_cidr = network.vpc_cidr
        self.private_subnet_ids = network.private_subnet_ids
        self.private_route_table_ids = network.private_route_table_ids

        key = aws.kms.Key(
            f"{name}-data-key",
            description=f"{name}: encrypts ML datasets, models and notebook volumes",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=keep,
        )
        aws.kms.Alias(
            f"{name}-data-key-alias",
            name=f"alias/{name}-data",
            target_key_id=key.key_id,
            opts=child,
        )
        self.kms_key_arn = key.arn

        def bucket(kind: str, prefixes: Sequence[str] = ()) -> SecureBucket:
            return SecureBucket(
                f"{name}-{kind}",
                SecureBucketArgs(
                    **settings_of(args, BucketLifecycle),
                    kms_key_arn=key.arn,
                    protect=args.protect_data,
                    force_destroy=args.force_destroy_buckets,
                    prefixes=prefixes,
                ),
                opts=child,
            )

        self._datasets_bucket = bucket("datasets")
        self._models_bucket = bucket("models", MODELS_BUCKET_PREFIXES)
        self.datasets_bucket_name = self._datasets_bucket.bucket_name
        self.datasets_bucket_arn = self._datasets_bucket.arn
        self.models_bucket_name = self._models_bucket.bucket_name
        self.models_bucket_arn = self._models_bucket.arn

        role = notebook_role(
            f"{name}-notebook",
            description="Shared execution role of the platform's SageMaker notebooks",
            partition=self.partition,
            region=args.region,
            account_id=self.account_id,
            bucket_arns=self.bucket_arns,
            kms_key_arn=key.arn,
            git_secret_arns=args.git_secret_arns,
            opts=child,
        )
        self.notebook_role_arn = role.arn

        notebooks, endpoints = _security_groups(name, network, child)
        self.notebook_security_group_id = notebooks.id
        self.endpoint_security_group_id = endpoints.id
        self.s3_prefix_list_id, self.interface_endpoint_ids = _endpoints(
            name, args, network, notebooks.id, endpoints.id, child
        )

        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "vpcCidr": self.vpc_cidr,
                "privateSubnetIds": self.private_subnet_ids,
                "privateRouteTableIds": self.private_route_table_ids,
                "kmsKeyArn": self.kms_key_arn,
                "datasetsBucketName": self.datasets_bucket_name,
                "datasetsBucketArn": self.datasets_bucket_arn,
                "modelsBucketName": self.models_bucket_name,
                "modelsBucketArn": self.models_bucket_arn,
                "notebookRoleArn": self.notebook_role_arn,
                "notebookSecurityGroupId": self.notebook_security_group_id,
                "endpointSecurityGroupId": self.endpoint_security_group_id,
                "s3PrefixListId": self.s3_prefix_list_id,
                "interfaceEndpointIds": self.interface_endpoint_ids,
                "accountId": self.account_id,
                "partition": self.partition,
            }
        )

    @property
    def region(self) -> str:
        """The region the shared layer was built for."""
        return self._region

    @property
    def datasets_bucket(self) -> SecureBucket:
        return self._datasets_bucket

    @property
    def models_bucket(self) -> SecureBucket:
        return self._models_bucket

    @property
    def bucket_arns(self) -> list[pulumi.Output[str]]:
        """The managed buckets (datasets, models): what the notebook roles may use."""
        return [self.datasets_bucket_arn, self.models_bucket_arn]


def _network(name: str, args: SharedInfraArgs, parent: pulumi.Resource) -> _NetworkIds:
    """The adopted VPC, or a new one (a Network child)."""
    if args.existing_vpc_id is not None:
        return _NetworkIds(
            vpc_id=pulumi.Output.from_input(args.existing_vpc_id),
            vpc_cidr=aws.ec2.get_vpc_output(
                id=args.existing_vpc_id, opts=pulumi.InvokeOutputOptions(parent=parent)
            ).cidr_block,
            private_subnet_ids=[
                pulumi.Output.from_input(s) for s in args.existing_private_subnet_ids
            ],
            private_route_table_ids=[
                pulumi.Output.from_input(t) for t in args.existing_private_route_table_ids
            ],
        )
    network = Network(name, args, opts=pulumi.ResourceOptions(parent=parent))
    return _NetworkIds(
        vpc_id=network.vpc_id,
        vpc_cidr=network.vpc_cidr,
        private_subnet_ids=network.private_subnet_ids,
        private_route_table_ids=network.private_route_table_ids,
    )


def _security_groups(
    name: str, network: _NetworkIds, child: pulumi.ResourceOptions
) -> tuple[aws.ec2.SecurityGroup, aws.ec2.SecurityGroup]:
    """Notebooks reach only the endpoints (HTTPS) and S3; endpoints take HTTPS from the VPC."""
    notebooks = security_group(
        f"{name}-notebooks", "SageMaker notebooks of the ML platform", network.vpc_id, child
    )
    endpoints = security_group(
        f"{name}-endpoints", "VPC interface endpoints of the ML platform", network.vpc_id, child
    )
    rule(
        "ingress",
        f"{name}-endpoints-https-from-vpc",
        endpoints.id,
        "HTTPS from workloads in the VPC",
        child,
        cidr=network.vpc_cidr,
    )
    rule(
        "egress",
        f"{name}-notebooks-https-to-vpc",
        notebooks.id,
        "HTTPS to the interface endpoints",
        child,
        cidr=network.vpc_cidr,
    )
    rule(
        "ingress",
        f"{name}-notebooks-from-notebooks",
        notebooks.id,
        "Notebooks reach each other (shared kernels, distributed jobs)",
        child,
        ports=(0, 65535),
        peer_group_id=notebooks.id,
    )
    return notebooks, endpoints


def _endpoints(
    name: str,
    args: SharedInfraArgs,
    network: _NetworkIds,
    notebook_group_id: pulumi.Output[str],
    endpoint_group_id: pulumi.Output[str],
    child: pulumi.ResourceOptions,
) -> tuple[pulumi.Output[str], dict[str, pulumi.Output[str]]]:
    """The S3 gateway endpoint (and the notebooks' rule to it), then the interface endpoints.

    Returns the S3 prefix list ID and the interface endpoints' IDs by short name.
    """
    s3 = aws.ec2.VpcEndpoint(
        f"{name}-s3",
        vpc_id=network.vpc_id,
        service_name=f"com.amazonaws.{args.region}.s3",
        vpc_endpoint_type="Gateway",
        route_table_ids=network.private_route_table_ids,
        tags={"Name": f"{name}-s3"},
        opts=child,
    )
    rule(
        "egress",
        f"{name}-notebooks-https-to-s3",
        notebook_group_id,
        "HTTPS to S3 through the gateway endpoint",
        child,
        prefix_list_id=s3.prefix_list_id,
    )
    interface: dict[str, pulumi.Output[str]] = {}
    for short_name in args.vpc_endpoints:
        endpoint = aws.ec2.VpcEndpoint(
            f"{name}-{short_name.replace('.', '-')}",
            vpc_id=network.vpc_id,
            service_name=endpoint_service_name(short_name, args.region),
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=network.private_subnet_ids,
            security_group_ids=[endpoint_group_id],
            tags={"Name": f"{name}-{short_name}"},
            opts=child,
        )
        interface[short_name] = endpoint.id
    return s3.prefix_list_id, interface


__all__ = [
    "MODELS_BUCKET_PREFIXES",
    "SharedInfra",
    "SharedInfraArgs",
    "SharedInfraSettings",
]
