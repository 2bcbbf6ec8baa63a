"""The stack builder: validated config in, components wired together, stack outputs out.

`__main__.py`, the tests and the offline plan all call `build_platform`, so there is exactly one
description of what a stack contains.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.config import PROJECT, StackConfig
from components.network import ExistingNetwork, NetworkArgs
from components.notebook import GitRepositoryArgs, NotebookInstance, NotebookInstanceArgs
from components.shared_infra import SharedInfra, SharedInfraArgs


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
    provider = aws.Provider(
        "aws",
        region=config.region,
        default_tags={"tags": default_tags(config, stack)},
    )
    opts = pulumi.ResourceOptions(providers={"aws": provider})
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

    return {
        "region": config.region,
        "vpcId": shared.vpc_id,
        "privateSubnetIds": shared.private_subnet_ids,
        "kmsKeyArn": shared.kms_key_arn,
        "datasetsBucket": shared.datasets_bucket.bucket_name,
        "modelsBucket": shared.models_bucket.bucket_name,
        "notebookRoleArn": shared.notebook_role_arn,
        "notebookSecurityGroupId": shared.notebook_security_group_id,
        "endpointSecurityGroupId": shared.endpoint_security_group_id,
        "notebookUrls": {name: nb.url for name, nb in notebooks.items()},
    }
