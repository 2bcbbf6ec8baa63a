"""Team X: our shared layer on their existing VPC, a GPU cluster and GitHub runners on it."""

import pulumi
import pulumi_aws as aws

from mlplatform.components.arc_runners import ArcRunners, ArcRunnersArgs, RunnerClass
from mlplatform.components.eks import GpuEksCluster, GpuEksClusterArgs, GpuNodeGroup
from mlplatform.components.shared_infra import SharedInfra, SharedInfraArgs

config = pulumi.Config()
# Providers arrive through opts, as for any component; children inherit them.
ireland = pulumi.ResourceOptions(providers={"aws": aws.Provider("eu-west-1", region="eu-west-1")})
shared = SharedInfra(
    "team-x",
    SharedInfraArgs(
        region="eu-west-1",
        # Adopt a VPC by ID instead of creating one.
        existing_vpc_id=config.require("vpcId"),
        existing_private_subnet_ids=config.require_object("subnetIds"),
        existing_private_route_table_ids=config.require_object("routeTableIds"),
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
        gpu_node_groups=[GpuNodeGroup(name="g6", instance_types=["g6.xlarge"], max_size=2)],
    ),
    opts=ireland,
)
ArcRunners(
    "team-x-arc",
    ArcRunnersArgs(
        github_config_url="https://github.com/team-x",
        auth="token",
        github_token=config.require_secret("githubToken"),
        runner_classes=[RunnerClass(name="gpu", gpu=True)],
        system_node_group=cluster.system_node_group_name,
        gpu_node_groups=cluster.gpu_node_group_names,
    ),
    # The cluster's Kubernetes provider; the controller waits for the cluster's nodes.
    opts=pulumi.ResourceOptions.merge(
        ireland,
        pulumi.ResourceOptions(providers={"kubernetes": cluster.provider}, depends_on=[cluster]),
    ),
)
pulumi.export("clusterName", cluster.cluster_name)
