"""Infrastructure deployed once per stack and shared by every notebook, cluster and job.

Sharing is the point (seed: cost-sharing notebook infrastructure): one set of VPC endpoints, one
KMS key, one datasets bucket, one models bucket and one notebook role serve any number of
notebooks, so adding a notebook costs only the notebook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from mlplatform.components.bucket import SecureBucket, SecureBucketArgs
from mlplatform.components.catalog import endpoint_service_name
from mlplatform.components.iam import notebook_role
from mlplatform.components.network import ExistingNetwork, Network, NetworkArgs
from mlplatform.components.security_groups import rule, security_group

# The seeds' layout of the models bucket: training data snapshots, packaged code, pipeline outputs
# under model/<pipeline>/<execution>/, and inference repackaging under repackage/<pipeline>/<time>/.
MODELS_BUCKET_PREFIXES = ("data/", "code/", "model/", "repackage/")


@dataclass(frozen=True)
class SharedInfraArgs:
    """Every lever of the shared layer. Defaults are the safe choice, not the cheap one."""

    region: str
    network: NetworkArgs | ExistingNetwork = field(default_factory=NetworkArgs)
    interface_endpoints: Sequence[str] = ()
    protect_data: bool = False
    force_destroy_buckets: bool = False
    noncurrent_version_days: int = 30
    abort_multipart_days: int = 7
    git_secret_arns: Sequence[str] = ()


class SharedInfra(pulumi.ComponentResource):
    """Network, KMS key, datasets/models buckets, notebook role, security groups, VPC endpoints."""

    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    private_route_table_ids: list[pulumi.Output[str]]
    kms_key_arn: pulumi.Output[str]
    datasets_bucket: SecureBucket
    models_bucket: SecureBucket
    notebook_role_arn: pulumi.Output[str]
    notebook_security_group_id: pulumi.Output[str]
    endpoint_security_group_id: pulumi.Output[str]
    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]
    s3_prefix_list_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: SharedInfraArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:index:SharedInfra", name, None, opts)
        self.region = args.region
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(
            parent=self, protect=args.protect_data, retain_on_delete=args.protect_data
        )
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self.account_id = aws.get_caller_identity_output(opts=invoke).account_id
        self.partition = aws.get_partition_output(opts=invoke).partition

        self._network(name, args)

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
                    kms_key_arn=key.arn,
                    protect=args.protect_data,
                    force_destroy=args.force_destroy_buckets,
                    noncurrent_version_days=args.noncurrent_version_days,
                    abort_multipart_days=args.abort_multipart_days,
                    prefixes=prefixes,
                ),
                opts=child,
            )

        self.datasets_bucket = bucket("datasets")
        self.models_bucket = bucket("models", MODELS_BUCKET_PREFIXES)

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

        self._security_groups(name)
        self._endpoints(name, args)

        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "kmsKeyArn": self.kms_key_arn,
                "datasetsBucket": self.datasets_bucket.bucket_name,
                "modelsBucket": self.models_bucket.bucket_name,
                "notebookRoleArn": self.notebook_role_arn,
                "notebookSecurityGroupId": self.notebook_security_group_id,
                "endpointSecurityGroupId": self.endpoint_security_group_id,
            }
        )

    @property
    def bucket_arns(self) -> list[pulumi.Output[str]]:
        return [self.datasets_bucket.arn, self.models_bucket.arn]

    def _network(self, name: str, args: SharedInfraArgs) -> None:
        if isinstance(args.network, ExistingNetwork):
            existing = args.network
            self.vpc_id = pulumi.Output.from_input(existing.vpc_id)
            self.vpc_cidr = aws.ec2.get_vpc_output(
                id=existing.vpc_id, opts=pulumi.InvokeOutputOptions(parent=self)
            ).cidr_block
            self.private_subnet_ids = [
                pulumi.Output.from_input(s) for s in existing.private_subnet_ids
            ]
            self.private_route_table_ids = [
                pulumi.Output.from_input(t) for t in existing.private_route_table_ids
            ]
            return
        network = Network(name, args.network, opts=pulumi.ResourceOptions(parent=self))
        self.vpc_id = network.vpc_id
        self.vpc_cidr = network.vpc_cidr
        self.private_subnet_ids = network.private_subnet_ids
        self.private_route_table_ids = network.private_route_table_ids

    def _security_groups(self, name: str) -> None:
        """Notebooks reach only the endpoints (HTTPS) and S3; endpoints take HTTPS from the VPC."""
        child = pulumi.ResourceOptions(parent=self)
        notebooks = security_group(
            f"{name}-notebooks", "SageMaker notebooks of the ML platform", self.vpc_id, child
        )
        endpoints = security_group(
            f"{name}-endpoints", "VPC interface endpoints of the ML platform", self.vpc_id, child
        )
        rule(
            "ingress",
            f"{name}-endpoints-https-from-vpc",
            endpoints.id,
            "HTTPS from workloads in the VPC",
            child,
            cidr=self.vpc_cidr,
        )
        rule(
            "egress",
            f"{name}-notebooks-https-to-vpc",
            notebooks.id,
            "HTTPS to the interface endpoints",
            child,
            cidr=self.vpc_cidr,
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
        self._notebook_sg = notebooks
        self.notebook_security_group_id = notebooks.id
        self.endpoint_security_group_id = endpoints.id

    def _endpoints(self, name: str, args: SharedInfraArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        s3 = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc_id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=self.private_route_table_ids,
            tags={"Name": f"{name}-s3"},
            opts=child,
        )
        self.s3_prefix_list_id = s3.prefix_list_id
        rule(
            "egress",
            f"{name}-notebooks-https-to-s3",
            self._notebook_sg.id,
            "HTTPS to S3 through the gateway endpoint",
            child,
            prefix_list_id=s3.prefix_list_id,
        )
        self.interface_endpoint_ids: dict[str, pulumi.Output[str]] = {}
        for short_name in args.interface_endpoints:
            endpoint = aws.ec2.VpcEndpoint(
                f"{name}-{short_name.replace('.', '-')}",
                vpc_id=self.vpc_id,
                service_name=endpoint_service_name(short_name, args.region),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=self.private_subnet_ids,
                security_group_ids=[self.endpoint_security_group_id],
                tags={"Name": f"{name}-{short_name}"},
                opts=child,
            )
            self.interface_endpoint_ids[short_name] = endpoint.id
