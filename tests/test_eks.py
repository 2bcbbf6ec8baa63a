"""GpuEksCluster under mocks: private API, IRSA, add-ons, node groups, EFA, device plugins."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from pulumi.provider.experimental.analyzer import Analyzer

from mlplatform.components.arc_runners import ArcRunners
from mlplatform.components.catalog import EFA_INTERFACES_PER_INSTANCE
from mlplatform.components.eks import (
    CapacityType,
    GpuEksCluster,
    GpuEksClusterArgs,
    GpuNodeGroup,
    SystemNodeGroup,
)
from mlplatform.components.helm import CHARTS
from mlplatform.components.schema import ArgsError, parse
from mlplatform.config import ConfigError, parse_stack_config
from mlplatform.guardrails import Resource, evaluate
from mlplatform.mocks import SECRET_MASK
from mlplatform.plan import guardrail_view, plan_document
from mlplatform.pricing import estimate
from mlplatform.program import ProgramRun, run_program
from tests.conftest import MINIMAL, build, policy_statements

CLUSTER = "eks:index:Cluster"
NODE_GROUP = "eks:index:ManagedNodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ADDON = "aws:eks/addon:Addon"
RELEASE = "kubernetes:helm.sh/v3:Release"
ROLE = "aws:iam/role:Role"
ADMIN = "arn:aws:iam::123456789012:role/platform-admin"
P = "mlplatform-test"

EKS: dict[str, Any] = {
    "admins": [ADMIN],
    "systemNodeGroup": {"instanceType": "m6i.large", "minSize": 2, "maxSize": 3},
    "gpuNodeGroups": [
        {
            "name": "gpu",
            "instanceTypes": ["g5.xlarge"],
            "capacityType": "spot",
            "maxSize": 3,
            "labels": {"team": "vision"},
        },
        {
            "name": "train",
            "instanceTypes": ["p4d.24xlarge"],
            "efa": True,
            "subnetIndex": 1,
            "maxSize": 2,
            "diskSizeGb": 500,
        },
    ],
}


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return build({"mlplatform:eks": EKS}, stack="test")


def cluster(run: ProgramRun) -> dict[str, Any]:
    (registration,) = run.of_type(CLUSTER)
    return registration.inputs


def node_group(run: ProgramRun, group: str) -> dict[str, Any]:
    return run.named(f"{P}-{group}", NODE_GROUP).inputs


def launch_template(run: ProgramRun, group: str) -> dict[str, Any]:
    return run.named(f"{P}-{group}-lt", LAUNCH_TEMPLATE).inputs


def release_values(run: ProgramRun, name: str) -> dict[str, Any]:
    return run.named(f"{P}-{name}", RELEASE).inputs["values"]


# --- the cluster ------------------------------------------------------------------------------


def test_api_endpoint_is_private_by_default(run: ProgramRun) -> None:
    inputs = cluster(run)
    assert inputs["endpointPrivateAccess"] is True
    assert inputs["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in inputs


def test_public_endpoint_is_restricted_to_the_configured_cidrs() -> None:
    run = build(
        {"mlplatform:eks": {"publicEndpoint": True, "publicAccessCidrs": ["198.51.100.0/24"]}}
    )
    inputs = cluster(run)
    assert inputs["endpointPublicAccess"] is True
    assert inputs["publicAccessCidrs"] == ["198.51.100.0/24"]


def test_cluster_sits_on_the_shared_private_subnets(run: ProgramRun) -> None:
    inputs = cluster(run)
    assert inputs["vpcId"] == run.outputs["vpcId"]
    assert inputs["privateSubnetIds"] == run.outputs["privateSubnetIds"]
    assert inputs["name"] == P == run.outputs["clusterName"]
    assert run.outputs["clusterArn"] == f"arn:aws:eks:us-east-1:123456789012:cluster/{P}"


def test_api_authentication_with_an_admin_access_entry_per_configured_arn(
    run: ProgramRun,
) -> None:
    inputs = cluster(run)
    assert inputs["authenticationMode"] == "API"
    assert inputs["accessEntries"] == {
        "admin-0": {
            "principalArn": ADMIN,
            "accessPolicies": {
                "cluster-admin": {
                    "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                    "accessScope": {"type": "cluster"},
                }
            },
        }
    }


def test_secrets_are_encrypted_with_a_dedicated_rotating_key(run: ProgramRun) -> None:
    key = run.named(f"{P}-secrets-key", "aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert cluster(run)["encryptionConfigKeyArn"] == key.outputs["arn"]
    assert not key.protect  # protected only with protectData


def test_secrets_key_is_protected_with_the_stacks_data(production: ProgramRun) -> None:
    key = production.named("mlplatform-production-secrets-key", "aws:kms/key:Key")
    assert key.protect and key.retain_on_delete
    (registration,) = production.of_type(CLUSTER)
    assert registration.inputs["deletionProtection"] is True


def test_control_plane_logs_go_to_a_log_group_with_retention(run: ProgramRun) -> None:
    log_group = run.named(f"{P}-control-plane-logs", "aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["name"] == f"/aws/eks/{P}/cluster"
    assert log_group.inputs["retentionInDays"] == 90
    (registration,) = run.of_type(CLUSTER)
    assert log_group.urn in registration.depends_on
    assert registration.inputs["enabledClusterLogTypes"] == [
        "api",
        "audit",
        "authenticator",
        "controllerManager",
        "scheduler",
    ]


def test_oidc_provider_for_irsa_and_nothing_installed_behind_the_plans_back(
    run: ProgramRun,
) -> None:
    inputs = cluster(run)
    assert inputs["createOidcProvider"] is True
    assert inputs["skipDefaultNodeGroup"] is True
    assert inputs["bootstrapSelfManagedAddons"] is False
    assert inputs["corednsAddonOptions"]["enabled"] is False
    assert inputs["kubeProxyAddonOptions"]["enabled"] is False
    assert run.outputs["oidcProviderArn"].startswith(
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/"
    )


def test_kubernetes_version_comes_from_config() -> None:
    run = build({"mlplatform:eks": {"kubernetesVersion": "1.33"}})
    assert cluster(run)["version"] == "1.33"


def test_kubeconfig_is_a_secret_output_and_masked_in_the_plan(run: ProgramRun) -> None:
    assert "kubeconfig" in run.secret_outputs
    assert json.loads(run.outputs["kubeconfig"])["kind"] == "Config"
    document = plan_document(run)
    assert document["outputs"]["kubeconfig"] == SECRET_MASK
    (provider,) = [r for r in document["resources"] if r["type"] == "pulumi:providers:kubernetes"]
    assert provider["inputs"]["kubeconfig"] == SECRET_MASK


def test_api_accepts_https_from_the_vpc_only(run: ProgramRun) -> None:
    rule = run.named(
        f"{P}-api-from-vpc", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
    )
    assert rule.inputs["securityGroupId"] == run.outputs["nodeSecurityGroupId"]
    assert rule.inputs["cidrIpv4"] == "10.0.0.0/16"
    assert (rule.inputs["fromPort"], rule.inputs["toPort"]) == (443, 443)


# --- add-ons and IRSA -------------------------------------------------------------------------


def test_managed_addons_are_installed(run: ProgramRun) -> None:
    addons = {r.inputs["addonName"]: r for r in run.of_type(ADDON)}
    assert set(addons) == {
        "vpc-cni",
        "coredns",
        "kube-proxy",
        "eks-pod-identity-agent",
        "aws-ebs-csi-driver",
    }
    assert all(r.inputs["clusterName"] == P for r in addons.values())


@pytest.mark.parametrize(
    ("addon", "role", "service_account"),
    [
        ("vpc-cni", "vpc-cni", "aws-node"),
        ("aws-ebs-csi-driver", "ebs-csi", "ebs-csi-controller-sa"),
    ],
)
def test_addon_roles_trust_exactly_their_service_account(
    run: ProgramRun, addon: str, role: str, service_account: str
) -> None:
    registration = run.named(f"{P}-{role}-irsa", ROLE)
    assert (
        run.named(f"{P}-{addon}", ADDON).inputs["serviceAccountRoleArn"]
        == (registration.outputs["arn"])
    )
    (trust,) = policy_statements(registration.inputs["assumeRolePolicy"])
    assert trust["Principal"] == {"Federated": run.outputs["oidcProviderArn"]}
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    issuer = run.outputs["oidcProviderUrl"].removeprefix("https://")
    assert trust["Condition"]["StringEquals"] == {
        f"{issuer}:sub": f"system:serviceaccount:kube-system:{service_account}",
        f"{issuer}:aud": "sts.amazonaws.com",
    }


def test_networking_addons_precede_nodes_and_coredns_follows_the_system_group(
    run: ProgramRun,
) -> None:
    system = run.named(f"{P}-system", NODE_GROUP)
    for addon in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
        assert run.named(f"{P}-{addon}", ADDON).urn in system.depends_on
    for addon in ("coredns", "aws-ebs-csi-driver"):
        assert system.urn in run.named(f"{P}-{addon}", ADDON).depends_on


def test_node_role_has_no_cni_rights_those_are_the_addons(run: ProgramRun) -> None:
    node_role = run.named(f"{P}-node-role", ROLE)
    attached = {
        r.inputs["policyArn"].rsplit("/", 1)[-1]
        for r in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.inputs["role"] == node_role.outputs["name"]
    }
    assert attached == {"AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly"}


# --- node groups ------------------------------------------------------------------------------


def test_gpu_group_is_tainted_labelled_and_on_the_nvidia_ami(run: ProgramRun) -> None:
    inputs = node_group(run, "gpu")
    assert inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert inputs["labels"] == {
        "mlplatform.io/node-group": "gpu",
        "nvidia.com/gpu.present": "true",
        "team": "vision",
    }
    assert inputs["capacityType"] == "SPOT"
    assert inputs["instanceTypes"] == ["g5.xlarge"]
    assert inputs["nodeRoleArn"] == run.outputs["nodeRoleArn"]


def test_gpu_groups_scale_from_zero_and_the_autoscaler_owns_desired_size(
    run: ProgramRun,
) -> None:
    inputs = node_group(run, "gpu")
    assert inputs["scalingConfig"] == {"minSize": 0, "desiredSize": 0, "maxSize": 3}
    assert inputs["ignoreScalingChanges"] is True


def test_system_group_is_cpu_untainted_and_always_on(run: ProgramRun) -> None:
    inputs = node_group(run, "system")
    assert "taints" not in inputs
    assert inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert inputs["capacityType"] == "ON_DEMAND"
    assert inputs["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 3}
    assert inputs["subnetIds"] == run.outputs["privateSubnetIds"]


@pytest.mark.parametrize("group", ["system", "gpu", "train"])
def test_every_group_uses_a_launch_template_with_imdsv2_and_an_encrypted_disk(
    run: ProgramRun, group: str
) -> None:
    template = run.named(f"{P}-{group}-lt", LAUNCH_TEMPLATE)
    assert node_group(run, group)["launchTemplate"] == {"id": template.id, "version": "1"}
    assert template.inputs["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }
    (disk,) = template.inputs["blockDeviceMappings"]
    assert disk["ebs"]["encrypted"] == "true"
    assert disk["ebs"]["volumeType"] == "gp3"
    assert "diskSize" not in node_group(run, group)  # conflicts with a launch template


def test_imds_hop_limit_can_be_raised_for_pods_that_need_metadata() -> None:
    run = build({"mlplatform:eks": {"imdsHopLimit": 2}})
    metadata = launch_template(run, "system")["metadataOptions"]
    assert metadata["httpPutResponseHopLimit"] == 2
    assert metadata["httpTokens"] == "required"


def test_disk_size_comes_from_config(run: ProgramRun) -> None:
    (disk,) = launch_template(run, "train")["blockDeviceMappings"]
    assert disk["ebs"]["volumeSize"] == 500


def test_efa_group_exposes_every_efa_interface_in_one_placement_group_and_subnet(
    run: ProgramRun,
) -> None:
    template = launch_template(run, "train")
    interfaces = template["networkInterfaces"]
    assert len(interfaces) == EFA_INTERFACES_PER_INSTANCE["p4d.24xlarge"] == 4
    assert [i["networkCardIndex"] for i in interfaces] == [0, 1, 2, 3]
    assert [i["deviceIndex"] for i in interfaces] == [0, 1, 1, 1]
    assert {i["interfaceType"] for i in interfaces} == {"efa"}
    assert all(i["securityGroups"] == [run.outputs["nodeSecurityGroupId"]] for i in interfaces)
    placement = run.named(f"{P}-train-placement", "aws:ec2/placementGroup:PlacementGroup")
    assert placement.inputs["strategy"] == "cluster"
    assert template["placement"] == {"groupName": placement.outputs["name"]}
    inputs = node_group(run, "train")
    assert inputs["subnetIds"] == [run.outputs["privateSubnetIds"][1]]
    assert inputs["labels"]["vpc.amazonaws.com/efa.present"] == "true"


def test_non_efa_groups_keep_the_default_network_interface(run: ProgramRun) -> None:
    assert "networkInterfaces" not in launch_template(run, "gpu")
    assert "placement" not in launch_template(run, "gpu")
    assert node_group(run, "gpu")["subnetIds"] == run.outputs["privateSubnetIds"]


# --- Helm releases ------------------------------------------------------------------------------


def test_nvidia_device_plugin_runs_on_gpu_nodes_only_tolerating_the_taint(
    run: ProgramRun,
) -> None:
    release = run.named(f"{P}-nvidia-device-plugin", RELEASE).inputs
    assert (release["chart"], release["version"]) == (
        CHARTS["nvidia-device-plugin"].chart,
        CHARTS["nvidia-device-plugin"].version,
    )
    assert release["namespace"] == "kube-system"
    values = release["values"]
    assert values["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert values["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    # merged with helm/nvidia-device-plugin/values.yaml
    assert values["priorityClassName"] == "system-node-critical"
    assert values["gfd"] == {"enabled": False}


def test_efa_device_plugin_only_when_a_group_has_efa(run: ProgramRun) -> None:
    values = release_values(run, "efa-device-plugin")
    assert values["nodeSelector"] == {"vpc.amazonaws.com/efa.present": "true"}
    assert values["tolerations"][0]["key"] == "nvidia.com/gpu"
    without = build({"mlplatform:eks": {"gpuNodeGroups": [EKS["gpuNodeGroups"][0]]}})
    releases = {r.name for r in without.of_type(RELEASE)}
    assert releases == {f"{P}-nvidia-device-plugin", f"{P}-cluster-autoscaler"}


def test_releases_install_through_the_clusters_provider_after_the_system_group(
    run: ProgramRun,
) -> None:
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    system = run.named(f"{P}-system", NODE_GROUP)
    for release in run.of_type(RELEASE):
        assert release.provider == f"{provider.urn}::{provider.id}"
        assert system.urn in release.depends_on
        assert release.inputs["atomic"] is True


def test_cluster_autoscaler_values_are_layered_per_stack(staging: ProgramRun) -> None:
    values = staging.named("mlplatform-staging-cluster-autoscaler", RELEASE).inputs["values"]
    role = staging.named("mlplatform-staging-cluster-autoscaler-irsa", ROLE)
    assert values["autoDiscovery"] == {"clusterName": "mlplatform-staging"}
    assert values["image"] == {"tag": "v1.34.0"}
    assert values["rbac"]["serviceAccount"] == {
        "name": "cluster-autoscaler",
        "annotations": {"eks.amazonaws.com/role-arn": role.outputs["arn"]},
    }
    assert values["nodeSelector"] == {"mlplatform.io/node-group": "system"}
    # base values.yaml, with values-staging.yaml overriding one key
    assert values["extraArgs"]["expander"] == "least-waste"
    assert values["extraArgs"]["scale-down-unneeded-time"] == "5m"


def test_cluster_autoscaler_may_resize_only_this_clusters_node_groups(run: ProgramRun) -> None:
    policy = run.named(f"{P}-cluster-autoscaler-policy", "aws:iam/rolePolicy:RolePolicy")
    statements = {s["Sid"]: s for s in policy_statements(policy.inputs["policy"])}
    resize = statements["ResizeOwnNodeGroups"]
    assert resize["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{P}": "owned"}
    }
    assert statements["DescribeOwnNodeGroups"]["Resource"] == [
        f"arn:aws:eks:us-east-1:123456789012:nodegroup/{P}/*/*"
    ]


def test_cluster_autoscaler_can_be_turned_off() -> None:
    run = build({"mlplatform:eks": {"clusterAutoscaler": False}})
    assert {r.name for r in run.of_type(RELEASE)} == {f"{P}-nvidia-device-plugin"}
    assert f"{P}-cluster-autoscaler-irsa" not in {r.name for r in run.of_type(ROLE)}


# --- guardrails and cost ------------------------------------------------------------------------


def test_guardrails_see_the_node_groups_of_the_real_stacks(production: ProgramRun) -> None:
    views = guardrail_view(production)
    groups = [v for v in views if v.type == NODE_GROUP]
    assert len(groups) == 3
    # 4 x g5.12xlarge (4 GPUs) + 4 x p4d.24xlarge (8 GPUs) + HyperPod's 4 x ml.p5.48xlarge (8)
    findings = evaluate(views, {"all": "mandatory", "gpu-capacity-bounded": {"maxGpus": 40}})
    assert [f.message for f in findings] == [
        "stack can scale to 80 GPUs, above its limit of 40 (maxGpus)"
    ]


def test_guardrails_would_catch_an_untainted_gpu_group_or_imdsv1(run: ProgramRun) -> None:
    views = guardrail_view(run)
    gpu = next(v for v in views if v.name == f"{P}-gpu" and v.type == NODE_GROUP)
    untainted = Resource(gpu.type, gpu.name, gpu.urn, {**gpu.props, "taints": []})
    template = next(v for v in views if v.name == f"{P}-gpu-lt")
    # the copy keeps the provider's default tags, so only the changed setting is flagged
    tagged = {"provider_props": template.provider_props}
    imdsv1 = Resource(
        template.type,
        template.name,
        template.urn,
        {**template.props, "metadataOptions": {}},
        **tagged,
    )
    rules = {f.rule for f in evaluate([untainted, imdsv1], {"all": "mandatory"})}
    assert rules == {"gpu-nodes-tainted", "nodes-imdsv2"}
    assert evaluate([gpu, template], {"all": "mandatory"}) == []


def test_plan_prices_control_plane_and_node_groups_at_minimum_size(staging: ProgramRun) -> None:
    items = {i.resource: i for i in estimate(staging).items}
    assert items["mlplatform-staging-cluster"].monthly_usd == pytest.approx(73.0)
    assert items["mlplatform-staging-system"].monthly_usd == pytest.approx(0.0832 * 730, abs=0.01)
    assert items["mlplatform-staging-gpu"].monthly_usd == 0
    assert "spot, priced on-demand" in items["mlplatform-staging-gpu"].basis


# --- config --------------------------------------------------------------------------------------

GROUP = {"name": "g", "instanceTypes": ["g5.xlarge"]}


@pytest.mark.parametrize(
    ("eks", "message"),
    [
        (
            {"gpuNodeGroups": [{**GROUP, "efa": True}]},
            "mlplatform:eks.gpuNodeGroups[0].efa: 'g5.xlarge' does not support EFA (instanceTypes)",
        ),
        (
            {"gpuNodeGroups": [{**GROUP, "instanceTypes": ["m5.large"]}]},
            "mlplatform:eks.gpuNodeGroups[0].instanceTypes: 'm5.large' is not a GPU instance type of the catalog",
        ),
        (
            {"gpuNodeGroups": [{**GROUP, "instanceTypes": ["g5.xlarge", "g5.12xlarge"]}]},
            "mlplatform:eks.gpuNodeGroups[0].instanceTypes: instance types of one group must have the same number of GPUs",
        ),
        (
            {"gpuNodeGroups": [{**GROUP, "minSize": 3, "maxSize": 1}]},
            "mlplatform:eks.gpuNodeGroups[0].maxSize: 1 is below minSize 3",
        ),
        (
            {"gpuNodeGroups": [GROUP, GROUP]},
            "mlplatform:eks.gpuNodeGroups[1].name: 'g' is used twice",
        ),
        (
            {
                "gpuNodeGroups": [
                    {**GROUP, "instanceTypes": ["p4d.24xlarge"], "efa": True, "subnetIndex": 2}
                ]
            },
            "mlplatform:eks.gpuNodeGroups[0].subnetIndex: 2 is out of range: the stack has 2 private subnets",
        ),
        (
            {"publicEndpoint": True},
            "mlplatform:eks.publicAccessCidrs: is required when publicEndpoint is true",
        ),
        (
            {"publicEndpoint": True, "publicAccessCidrs": ["0.0.0.0/0"]},
            "mlplatform:eks.publicAccessCidrs: '0.0.0.0/0' opens the API to the whole internet",
        ),
        (
            {"kubernetesVersion": "1.20"},
            "mlplatform:eks.kubernetesVersion: '1.20' is not a supported EKS version (one of 1.31, 1.32, 1.33, 1.34, 1.35)",
        ),
        (
            {"admins": ["alice"]},
            "mlplatform:eks.admins: 'alice' is not an IAM role or user ARN",
        ),
        (
            {"systemNodeGroup": {"instanceType": "g5.xlarge"}},
            "mlplatform:eks.systemNodeGroup.instanceType: 'g5.xlarge' is not a CPU instance type of the catalog",
        ),
        (
            {"logRetentionDays": 10},
            "mlplatform:eks.logRetentionDays: 10 is not a CloudWatch Logs retention period",
        ),
        (
            {"gpuNodeGroups": [{**GROUP, "labels": {"bad key": "x"}}]},
            "mlplatform:eks.gpuNodeGroups[0].labels: 'bad key' is not a Kubernetes label key",
        ),
        (
            {"gpuNodeGroups": [{**GROUP, "taints": []}]},
            "mlplatform:eks.gpuNodeGroups[0].taints: is not a known key",
        ),
        (
            {"admins": ADMIN},
            f"mlplatform:eks.admins: expected a list, got {ADMIN!r}",
        ),
        (
            {"logTypes": ["api", "api"]},
            "mlplatform:eks.logTypes: lists a log type twice",
        ),
        (
            {"gpuNodeGroups": [{**GROUP, "capacityType": "SPOT"}]},
            "mlplatform:eks.gpuNodeGroups[0].capacityType: 'SPOT' is not one of 'onDemand' or "
            "'spot'",
        ),
        (
            {"systemNodeGroup": {"instanceTypes": ["m6i.large"]}},
            "mlplatform:eks.systemNodeGroup.instanceTypes: is not a known key "
            "(did you mean 'instanceType'?)",
        ),
    ],
)
def test_eks_config_mistakes_name_the_key(eks: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({**MINIMAL, "mlplatform:eks": eks}, "Pulumi.staging.yaml")
    assert str(caught.value) == f"Pulumi.staging.yaml: {message}"


def test_every_cloudwatch_retention_period_is_accepted() -> None:
    for days in (1, 731, 3653):
        config = parse_stack_config({**MINIMAL, "mlplatform:eks": {"logRetentionDays": days}}, "f")
        assert config.eks is not None and config.eks.log_retention_days == days


def test_unquoted_yaml_version_is_read_as_written() -> None:
    config = parse_stack_config({**MINIMAL, "mlplatform:eks": {"kubernetesVersion": 1.31}}, "f")
    assert config.eks is not None and config.eks.kubernetes_version == "1.31"


# --- the component's Args, from Python ------------------------------------------------------------

WIRED: dict[str, Any] = {
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_ids": ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"],
    "region": "us-east-1",
}
G5 = {"name": "g", "instance_types": ["g5.xlarge"]}


def args_error(cls: Any, **kwargs: Any) -> str:
    """The ArgsError message of constructing `cls(**kwargs)`, checked to be one line."""
    with pytest.raises(ArgsError) as caught:
        cls(**kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (
            GpuEksClusterArgs,
            {**WIRED, "admins": ADMIN},  # a string, not a list: once 43 access entries
            f"GpuEksClusterArgs.admins: expected a list, got {ADMIN!r}",
        ),
        (
            GpuEksClusterArgs,
            {**WIRED, "region": "eu-west-9"},
            "GpuEksClusterArgs.region: 'eu-west-9' is not an AWS region",
        ),
        (
            GpuEksClusterArgs,
            {**WIRED, "subnet_ids": "subnet-0aaaaaaaaaaaaaaaa"},
            "GpuEksClusterArgs.subnet_ids: expected a list, got 'subnet-0aaaaaaaaaaaaaaaa'",
        ),
        (
            GpuEksClusterArgs,
            {**WIRED, "log_retention_days": 10},
            "GpuEksClusterArgs.log_retention_days: 10 is not a CloudWatch Logs retention period",
        ),
        (
            GpuEksClusterArgs,
            {**WIRED, "log_types": ["api", "kubelet"]},
            "GpuEksClusterArgs.log_types[1]: 'kubelet' is not one of 'api', 'audit', "
            "'authenticator', 'controllerManager' or 'scheduler'",
        ),
        (
            GpuEksClusterArgs,
            {**WIRED, "kubernetes_version": "1.20"},
            "GpuEksClusterArgs.kubernetes_version: '1.20' is not a supported EKS version "
            "(one of 1.31, 1.32, 1.33, 1.34, 1.35)",
        ),
        (
            GpuEksClusterArgs,
            {**WIRED, "public_endpoint": True},
            "GpuEksClusterArgs.public_access_cidrs: is required when publicEndpoint is true",
        ),
        (
            GpuEksClusterArgs,
            {**WIRED, "imds_hop_limit": 0},
            "GpuEksClusterArgs.imds_hop_limit: 0 is out of range (must be >= 1)",
        ),
        (
            GpuEksClusterArgs,
            {
                **WIRED,
                "gpu_node_groups": [
                    {"name": "p4", "instanceTypes": ["p4d.24xlarge"], "efa": True, "subnetIndex": 2}
                ],
            },
            "GpuEksClusterArgs.gpu_node_groups[0].subnet_index: 2 is out of range: subnet_ids "
            "lists 2 subnets",
        ),
        (
            GpuEksClusterArgs,
            {**WIRED, "gpu_node_groups": [{**G5, "name": "system"}]},
            "GpuEksClusterArgs.gpu_node_groups[0].name: 'system' is used twice",
        ),
        (
            GpuEksClusterArgs,
            {**WIRED, "gpu_node_groups": [{**G5, "instanceTypes": ["m5.large"]}]},
            "GpuEksClusterArgs.gpu_node_groups[0].instance_types: 'm5.large' is not a GPU "
            "instance type of the catalog",
        ),
        (
            GpuEksClusterArgs,
            {k: v for k, v in WIRED.items() if k != "vpc_id"},
            "GpuEksClusterArgs.vpc_id: is required",
        ),
        (
            GpuNodeGroup,
            {**G5, "capacity_type": "SPOTT"},
            "GpuNodeGroup.capacity_type: 'SPOTT' is not one of 'onDemand' or 'spot'",
        ),
        (
            GpuNodeGroup,
            {**G5, "capacity_type": "SPOT"},  # EKS's spelling is the component's business
            "GpuNodeGroup.capacity_type: 'SPOT' is not one of 'onDemand' or 'spot'",
        ),
        (
            GpuNodeGroup,
            {**G5, "min_size": 3, "max_size": 1},
            "GpuNodeGroup.max_size: 1 is below minSize 3",
        ),
        (
            GpuNodeGroup,
            {**G5, "max_size": 2, "desired_size": 3},
            "GpuNodeGroup.desired_size: 3 is outside minSize..maxSize",
        ),
        (
            GpuNodeGroup,
            {**G5, "instance_types": ["m5.large"]},
            "GpuNodeGroup.instance_types: 'm5.large' is not a GPU instance type of the catalog",
        ),
        (
            GpuNodeGroup,
            {**G5, "efa": True},
            "GpuNodeGroup.efa: 'g5.xlarge' does not support EFA (instanceTypes)",
        ),
        (
            GpuNodeGroup,
            {**G5, "instance_types": []},
            "GpuNodeGroup.instance_types: must list at least one instance type",
        ),
        (
            GpuNodeGroup,
            {**G5, "labels": {"team": "a b"}},
            "GpuNodeGroup.labels: 'a b' is not a Kubernetes label value (label team)",
        ),
        (
            GpuNodeGroup,
            {**G5, "name": "GPU"},
            "GpuNodeGroup.name: 'GPU' is not a node group name (lowercase letters, digits and "
            "hyphens, at most 40)",
        ),
        (
            GpuNodeGroup,
            {**G5, "taints": []},
            "GpuNodeGroup.taints: is not a known key",
        ),
        (
            SystemNodeGroup,
            {"instance_type": "g5.xlarge"},
            "SystemNodeGroup.instance_type: 'g5.xlarge' is not a CPU instance type of the catalog",
        ),
        (
            SystemNodeGroup,
            {"min_size": 0},
            "SystemNodeGroup.min_size: 0 is out of range (must be >= 1)",
        ),
    ],
)
def test_bad_args_from_python_are_one_line_naming_the_argument(
    cls: Any, kwargs: dict[str, Any], message: str
) -> None:
    assert args_error(cls, **kwargs) == message


def test_capacity_type_takes_the_stack_files_spelling_and_maps_it_for_eks(run: ProgramRun) -> None:
    assert GpuNodeGroup(**G5, capacity_type="spot").capacity_type is CapacityType.SPOT
    assert GpuNodeGroup(**G5).capacity_type is CapacityType.ON_DEMAND
    assert node_group(run, "gpu")["capacityType"] == "SPOT"  # capacityType: spot in EKS
    assert node_group(run, "train")["capacityType"] == "ON_DEMAND"


def test_gpu_nodes_default_to_a_200_gb_root_volume(run: ProgramRun) -> None:
    assert GpuNodeGroup(**G5).disk_size_gb == 200
    (disk,) = launch_template(run, "gpu")["blockDeviceMappings"]  # no diskSizeGb in EKS
    assert disk["ebs"]["volumeSize"] == 200


def test_a_mapping_is_parsed_like_the_args() -> None:
    camel = parse(GpuEksClusterArgs, {**WIRED, "gpuNodeGroups": [{**G5, "capacityType": "spot"}]})
    snake = parse(
        GpuEksClusterArgs, {**WIRED, "gpu_node_groups": [{**G5, "capacity_type": "spot"}]}
    )
    assert (
        camel
        == snake
        == GpuEksClusterArgs(
            **WIRED, gpu_node_groups=[GpuNodeGroup(**G5, capacity_type=CapacityType.SPOT)]
        )
    )
    with pytest.raises(ArgsError) as caught:
        parse(GpuEksClusterArgs, {**WIRED, "gpuNodeGroups": [{**G5, "maxSize": -1}]})
    assert str(caught.value) == (
        "GpuEksClusterArgs.gpu_node_groups[0].max_size: -1 is out of range (must be >= 0)"
    )


def test_cluster_accepts_a_camel_case_mapping_as_args() -> None:
    """What another Pulumi language hands the component: a mapping with the schema's names."""

    def program() -> dict[str, Any]:
        cluster = GpuEksCluster(
            "direct",
            {  # type: ignore[arg-type]
                "vpcId": "vpc-0123456789abcdef0",
                # not plain in the schema: another language may pass an Output
                "subnetIds": pulumi.Output.from_input(
                    ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"]
                ),
                "region": "eu-west-1",
                "kubernetesVersion": "1.33",
                "clusterAutoscaler": False,
                "systemNodeGroup": {"instanceType": "t3.large", "minSize": 1},
                "gpuNodeGroups": [
                    {
                        "name": "train",
                        "instanceTypes": ["p4d.24xlarge"],
                        "capacityType": "spot",
                        "efa": True,
                        "subnetIndex": 1,
                    }
                ],
            },
        )
        return {"gpuNodeGroupNames": cluster.gpu_node_group_names}

    direct = run_program(
        program, project="consumer", stack="dev", config={"aws:region": "eu-west-1"}
    )
    (registration,) = direct.of_type(CLUSTER)
    assert registration.inputs["version"] == "1.33"
    train = direct.named("direct-train", NODE_GROUP).inputs
    assert train["capacityType"] == "SPOT"
    assert train["subnetIds"] == ["subnet-0bbbbbbbbbbbbbbbb"]  # the EFA group's one subnet
    assert registration.inputs["privateSubnetIds"] == [
        "subnet-0aaaaaaaaaaaaaaaa",
        "subnet-0bbbbbbbbbbbbbbbb",
    ]
    assert train["labels"]["vpc.amazonaws.com/efa.present"] == "true"
    assert direct.named("direct-system", NODE_GROUP).inputs["instanceTypes"] == ["t3.large"]
    assert {r.name for r in direct.of_type(RELEASE)} == {
        "direct-nvidia-device-plugin",
        "direct-efa-device-plugin",
    }
    assert direct.outputs["gpuNodeGroupNames"] == ["train"]


def test_analyzer_infers_a_schema_for_the_cluster_and_the_runners() -> None:
    """Pulumi's component analyzer turns both components into a schema other languages use."""
    schema = Analyzer("mlplatform").analyze([GpuEksCluster, ArcRunners])
    components = schema["component_definitions"]
    cluster = components["GpuEksCluster"]
    assert list(cluster.inputs) == [
        "kubernetesVersion",
        "admins",
        "publicEndpoint",
        "publicAccessCidrs",
        "logTypes",
        "logRetentionDays",
        "deletionProtection",
        "clusterAutoscaler",
        "imdsHopLimit",
        "systemNodeGroup",
        "gpuNodeGroups",
        "vpcId",
        "subnetIds",
        "region",
        "vpcCidr",
        "protect",
        "valuesStack",
        "helmValuesDir",
    ]
    required = {name for name, prop in cluster.inputs.items() if not prop.optional}
    assert required == {"vpcId", "subnetIds", "region"}
    assert list(cluster.outputs) == [
        "clusterName",
        "clusterArn",
        "kubeconfig",
        "oidcProviderArn",
        "oidcProviderUrl",
        "oidcIssuer",
        "nodeSecurityGroupId",
        "nodeRoleArn",
        "systemNodeGroupName",
        "gpuNodeGroupNames",
    ]
    runners = components["ArcRunners"]
    assert list(runners.inputs) == [
        "githubConfigUrl",
        "auth",
        "githubAppId",
        "githubAppInstallationId",
        "runnerGroup",
        "runnerClasses",
        "controllerNamespace",
        "runnersNamespace",
        "githubAppPrivateKey",
        "githubToken",
        "systemNodeGroup",
        "gpuNodeGroups",
        "valuesStack",
        "helmValuesDir",
    ]
    assert list(runners.outputs) == ["scaleSets", "githubConfigUrl", "runnersNamespace"]
    types = schema["type_definitions"]
    assert [v.value for v in types["CapacityType"].enum or []] == ["onDemand", "spot"]
    assert [v.value for v in types["GitHubAuth"].enum or []] == ["app", "token"]
    assert len(types["LogType"].enum or []) == 5
    assert set(types["GpuNodeGroup"].properties) == {
        "name",
        "instanceTypes",
        "minSize",
        "desiredSize",
        "maxSize",
        "capacityType",
        "diskSizeGb",
        "labels",
        "efa",
        "subnetIndex",
    }
    assert set(types["SystemNodeGroup"].properties) == {
        "instanceType",
        "minSize",
        "desiredSize",
        "maxSize",
        "diskSizeGb",
    }
    assert "image" in types["RunnerClass"].properties
    # every field the analyzer reads for the cluster carries its one-line doc
    assert all(prop.description for prop in types["GpuNodeGroup"].properties.values())
