"""Team X: our shared layer on their existing VPC, a GPU cluster and GitHub runners on it."""

import pulumi
import pulumi_aws as aws

from mlplatform.components.arc_runners import (
    ArcRunners,
    ArcRunnersArgs,
    GitHubTokenAuth,
    RunnerClassArgs,
)
from mlplatform.components.eks import GpuEksCluster, GpuEksClusterArgs, NodeGroupArgs
from mlplatform.components.network import ExistingNetwork
from mlplatform.components.shared_infra import SharedInfra, SharedInfraArgs

config = pulumi.Config()
# Providers arrive through opts, as for any component; children inherit them.
ireland = pulumi.ResourceOptions(providers={"aws": aws.Provider("eu-west-1", region="eu-west-1")})
shared = SharedInfra(
    "team-x",
    SharedInfraArgs(
        region="eu-west-1",
        network=ExistingNetwork(  # adopt a VPC by ID instead of creating one
            vpc_id=config.require("vpcId"),
            private_subnet_ids=config.require_object("subnetIds"),
            private_route_table_ids=config.require_object("routeTableIds"),
        ),
    ),
    opts=ireland,
)
cluster = GpuEksCluster(
    "team-x-gpu",
    GpuEksClusterArgs(
        vpc_id=shared.vpc_id,
        subnet_ids=shared.private_subnet_ids,
        vpc_cidr=shared.vpc_cidr,
        region="eu-west-1",
        gpu_node_groups=[NodeGroupArgs(name="g6", instance_types=["g6.xlarge"], max_size=2)],
    ),
    opts=ireland,
)
ArcRunners(
    "team-x-arc",
    ArcRunnersArgs(
        provider=cluster.provider,  # the cluster's Kubernetes provider
        github_config_url="https://github.com/team-x",
        auth=GitHubTokenAuth(token=config.require_secret("githubToken")),
        runner_classes=[RunnerClassArgs(name="gpu", gpus=1)],
    ),
)
pulumi.export("clusterName", cluster.cluster_name)
