"""HyperPodCluster under mocks: instance groups, EKS vs Slurm wiring, lifecycle scripts, network,
role, FSx, cost, and the config errors that stop a bad cluster before anything is registered."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from pulumi.provider.experimental.analyzer import Analyzer

from mlplatform.components import hyperpod
from mlplatform.components.hyperpod import (
    FsxLustreArgs,
    HyperPodCluster,
    HyperPodClusterArgs,
    InstanceGroupArgs,
    NodeRecovery,
    TaintArgs,
    TieredStorageArgs,
)
from mlplatform.components.hyperpod_eks import ChartSource
from mlplatform.components.schema import ArgsError, parse
from mlplatform.config import ConfigError, parse_stack_config
from mlplatform.guardrails import evaluate
from mlplatform.plan import guardrail_view, render_text
from mlplatform.pricing import HOURS_PER_MONTH, ML_STORAGE_GB_MONTH, estimate
from mlplatform.program import ProgramRun, Project, run_program
from tests.conftest import MINIMAL, ROOT, build, policy_statements
from tests.test_rendered_policies import parliament_findings

CLUSTER = "aws-native:sagemaker:Cluster"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
LUSTRE = "aws:fsx/lustreFileSystem:LustreFileSystem"
EKS_ARN = "arn:aws:eks:us-east-1:123456789012:cluster/gpu"
PLAN_ARN = "arn:aws:sagemaker:us-east-1:123456789012:training-plan/p5-december"

GPU_GROUP = {
    "name": "p5",
    "instanceType": "ml.p5.48xlarge",
    "count": 4,
    "minCount": 2,
    "threadsPerCore": 2,
    "ebsVolumeSizeGb": 1000,
    "deepHealthChecks": ["InstanceStress", "InstanceConnectivity"],
    "labels": {"workload": "training"},
    "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
    "trainingPlanArn": PLAN_ARN,
}
EKS_CLUSTER = {
    "name": "train",
    "eksClusterArn": EKS_ARN,
    "instanceGroups": [GPU_GROUP, {"name": "cpu", "instanceType": "ml.m5.2xlarge", "count": 2}],
    "fsx": {"storageCapacityGb": 2400, "throughputPerTib": 500},
    "tieredStorage": {"memoryPercent": 30},
}
SLURM_CLUSTER = {
    "name": "hpc",
    "orchestrator": "slurm",
    "instanceGroups": [
        {"name": "head", "instanceType": "ml.m5.xlarge", "count": 1, "slurmRole": "controller"},
        {"name": "entry", "instanceType": "ml.t3.large", "count": 1, "slurmRole": "login"},
        {"name": "p5", "instanceType": "ml.p5.48xlarge", "count": 2, "partition": "gpu"},
        {"name": "g5", "instanceType": "ml.g5.12xlarge", "count": 3},
    ],
    "fsx": {"deploymentType": "SCRATCH_2", "mountPath": "/scratch"},
}


# EKS-orchestrated nodes without internet egress reach SageMaker and Pod Identity through these.
ENDPOINTS = ["sagemaker.api", "sts", "ec2", "logs", "ecr.api", "ecr.dkr", "eks-auth"]


def build_cluster(cluster: dict[str, Any], **overrides: Any) -> ProgramRun:
    return build(
        {
            "mlplatform:vpcEndpoints": ENDPOINTS,
            "mlplatform:hyperpodClusters": [cluster],
            **overrides,
        }
    )


@pytest.fixture(scope="module")
def eks() -> ProgramRun:
    return build_cluster(EKS_CLUSTER)


@pytest.fixture(scope="module")
def slurm() -> ProgramRun:
    return build_cluster(SLURM_CLUSTER)


def cluster_inputs(run: ProgramRun) -> dict[str, Any]:
    (cluster,) = run.of_type(CLUSTER)
    return cluster.inputs


def groups(run: ProgramRun) -> dict[str, dict[str, Any]]:
    return {g["instanceGroupName"]: g for g in cluster_inputs(run)["instanceGroups"]}


def uploaded(run: ProgramRun) -> dict[str, str]:
    """Lifecycle objects (children of the cluster component): key -> content."""
    (component,) = run.of_type("mlplatform:index:HyperPodCluster")
    return {
        o.inputs["key"]: o.inputs["content"]
        for o in run.of_type(OBJECT)
        if o.parent == component.urn
    }


def provisioning_parameters(run: ProgramRun) -> dict[str, Any]:
    (content,) = [
        c for k, c in uploaded(run).items() if k.endswith("/provisioning_parameters.json")
    ]
    return json.loads(content)


def source_uri(run: ProgramRun) -> str:
    uris = {g["lifeCycleConfig"]["sourceS3Uri"] for g in groups(run).values()}
    assert len(uris) == 1
    return uris.pop()


# --- instance groups -----------------------------------------------------------------------------


def test_instance_groups_reach_the_engine_as_configured(eks: ProgramRun) -> None:
    role = eks.named("mlplatform-test-train-execution-role", "aws:iam/role:Role")
    assert groups(eks)["p5"] == {
        "instanceGroupName": "p5",
        "instanceType": "ml.p5.48xlarge",
        "instanceCount": 4,
        "minInstanceCount": 2,
        "threadsPerCore": 2,
        "executionRole": role.outputs["arn"],
        "lifeCycleConfig": {"sourceS3Uri": source_uri(eks), "onCreate": "on_create.sh"},
        "instanceStorageConfigs": [{"ebsVolumeConfig": {"volumeSizeInGb": 1000}}],
        "onStartDeepHealthChecks": ["InstanceStress", "InstanceConnectivity"],
        "trainingPlanArn": PLAN_ARN,
        "kubernetesConfig": {
            "labels": {"workload": "training"},
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        },
    }


def test_eks_gpu_groups_are_tainted_for_gpu_pods_only(eks: ProgramRun) -> None:
    run = build_cluster(
        {
            **EKS_CLUSTER,
            "instanceGroups": [{"name": "g5", "instanceType": "ml.g5.12xlarge", "count": 1}],
        }
    )
    assert groups(run)["g5"]["kubernetesConfig"] == {
        "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    }
    # A group's own nvidia.com/gpu taint is kept, not doubled.
    assert groups(eks)["p5"]["kubernetesConfig"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]


def test_untainted_hyperpod_gpu_group_is_flagged(eks: ProgramRun) -> None:
    (view,) = [v for v in guardrail_view(eks) if v.type == CLUSTER]
    stripped = [
        {k: v for k, v in g.items() if k != "kubernetesConfig"}
        for g in view.props["instanceGroups"]
    ]
    untainted = replace(view, props={**view.props, "instanceGroups": stripped})
    findings = evaluate([untainted], {"all": "mandatory"})
    assert [f.message for f in findings if f.rule == "gpu-nodes-tainted"] == [
        "HyperPod GPU group p5 lacks the taint nvidia.com/gpu:NoSchedule"
    ]


def test_group_defaults_disable_smt_and_skip_optional_settings(eks: ProgramRun) -> None:
    cpu = groups(eks)["cpu"]
    assert cpu["threadsPerCore"] == 1
    assert cpu["instanceStorageConfigs"] == [{"ebsVolumeConfig": {"volumeSizeInGb": 500}}]
    for absent in ("minInstanceCount", "onStartDeepHealthChecks", "trainingPlanArn"):
        assert absent not in cpu
    assert "kubernetesConfig" not in cpu


def test_nodes_recover_automatically(eks: ProgramRun, slurm: ProgramRun) -> None:
    assert cluster_inputs(eks)["nodeRecovery"] == "Automatic"
    assert cluster_inputs(slurm)["nodeRecovery"] == "Automatic"


# --- EKS vs Slurm ----------------------------------------------------------------------------------


def test_eks_cluster_attaches_to_the_given_eks_cluster(eks: ProgramRun) -> None:
    inputs = cluster_inputs(eks)
    assert inputs["orchestrator"] == {"eks": {"clusterArn": EKS_ARN}}
    assert inputs["nodeProvisioningMode"] == "Continuous"
    assert inputs["clusterName"] == "mlplatform-test-train"


def test_eks_cluster_gets_managed_tiered_checkpointing(eks: ProgramRun) -> None:
    assert cluster_inputs(eks)["tieredStorageConfig"] == {
        "mode": "Enable",
        "instanceMemoryAllocationPercentage": 30,
    }


def test_slurm_cluster_has_no_eks_settings(slurm: ProgramRun) -> None:
    inputs = cluster_inputs(slurm)
    for absent in ("orchestrator", "nodeProvisioningMode", "tieredStorageConfig"):
        assert absent not in inputs
    assert not any("kubernetesConfig" in g for g in groups(slurm).values())


def test_continuous_provisioning_can_be_turned_off() -> None:
    run = build_cluster({**EKS_CLUSTER, "continuousProvisioning": False, "tieredStorage": None})
    assert "nodeProvisioningMode" not in cluster_inputs(run)
    assert "tieredStorageConfig" not in cluster_inputs(run)


def test_provisioning_parameters_name_the_clusters_own_groups(slurm: ProgramRun) -> None:
    params = provisioning_parameters(slurm)
    names = groups(slurm)
    assert params["workload_manager"] == "slurm"
    assert params["controller_group"] == "head" and "head" in names
    assert params["login_group"] == "entry" and "entry" in names
    assert params["worker_groups"] == [
        {"instance_group_name": "p5", "partition_name": "gpu"},
        {"instance_group_name": "g5", "partition_name": "g5"},
    ]
    every_group = {
        params["controller_group"],
        params["login_group"],
        *(w["instance_group_name"] for w in params["worker_groups"]),
    }
    assert every_group == set(names)


def test_provisioning_parameters_carry_the_file_systems_names(slurm: ProgramRun) -> None:
    params = provisioning_parameters(slurm)
    (fsx,) = slurm.of_type(LUSTRE)
    assert params["fsx_dns_name"] == fsx.outputs["dnsName"]
    assert params["fsx_mountname"] == fsx.outputs["mountName"]
    assert params["fsx_mount_path"] == "/scratch"


def test_eks_parameters_have_no_slurm_groups(eks: ProgramRun) -> None:
    params = provisioning_parameters(eks)
    assert params["workload_manager"] == "eks"
    assert not {"controller_group", "login_group", "worker_groups"} & set(params)


# --- lifecycle scripts -----------------------------------------------------------------------------


def test_every_packaged_script_is_uploaded_under_the_source_uri(eks: ProgramRun) -> None:
    uri = source_uri(eks)
    (bucket,) = [
        b.outputs["bucket"] for b in eks.of_type("aws:s3/bucket:Bucket") if "models" in b.name
    ]
    assert uri.startswith(f"s3://{bucket}/code/hyperpod/mlplatform-test-train/")
    folder = uri.removeprefix(f"s3://{bucket}/")
    objects = uploaded(eks)
    assert set(objects) == {
        folder + name for name in [*hyperpod.lifecycle_scripts(), "provisioning_parameters.json"]
    }
    assert {"on_create.sh", "mount_fsx.sh", "start_slurm.sh"} <= set(hyperpod.lifecycle_scripts())
    for name, content in hyperpod.lifecycle_scripts().items():
        assert objects[folder + name] == content


def test_lifecycle_objects_are_kms_encrypted(eks: ProgramRun) -> None:
    (component,) = eks.of_type("mlplatform:index:HyperPodCluster")
    objects = [o for o in eks.of_type(OBJECT) if o.parent == component.urn]
    assert len(objects) == len(hyperpod.lifecycle_scripts()) + 1
    for obj in objects:
        assert obj.inputs["serverSideEncryption"] == "aws:kms"
        assert obj.inputs["kmsKeyId"] == eks.outputs["kmsKeyArn"]


def test_a_changed_script_rolls_out_a_new_uri(
    eks: ProgramRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = hyperpod.lifecycle_scripts()
    assert source_uri(build_cluster(EKS_CLUSTER)) == source_uri(eks)  # deterministic
    changed = {**scripts, "mount_fsx.sh": scripts["mount_fsx.sh"] + "\n# changed\n"}
    monkeypatch.setattr(hyperpod, "lifecycle_scripts", lambda: changed)
    assert source_uri(build_cluster(EKS_CLUSTER)) != source_uri(eks)


def test_changed_groups_roll_out_a_new_uri(slurm: ProgramRun) -> None:
    renamed = json.loads(json.dumps(SLURM_CLUSTER))
    renamed["instanceGroups"][2]["partition"] = "h100"
    assert source_uri(build_cluster(renamed)) != source_uri(slurm)


def test_content_digest_depends_on_names_and_contents() -> None:
    base = hyperpod.content_digest({"a.sh": "x", "b.sh": "y"})
    assert base == hyperpod.content_digest({"b.sh": "y", "a.sh": "x"})
    assert base != hyperpod.content_digest({"a.sh": "y", "b.sh": "x"})
    assert base != hyperpod.content_digest({"a.sh": "x", "c.sh": "y"})


# --- network ---------------------------------------------------------------------------------------


def rules_of(run: ProgramRun, group_id: str) -> list[Any]:
    kinds = (
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    )
    return [
        r for kind in kinds for r in run.of_type(kind) if r.inputs["securityGroupId"] == group_id
    ]


def test_nodes_exchange_all_traffic_in_both_directions(eks: ProgramRun) -> None:
    (group_id,) = cluster_inputs(eks)["vpcConfig"]["securityGroupIds"]
    self_rules = {
        r.type.split(":")[-1]: r
        for r in rules_of(eks, group_id)
        if r.inputs.get("referencedSecurityGroupId") == group_id
    }
    assert set(self_rules) == {"SecurityGroupIngressRule", "SecurityGroupEgressRule"}
    for r in self_rules.values():
        assert r.inputs["ipProtocol"] == "-1"
        assert "fromPort" not in r.inputs and "toPort" not in r.inputs


def test_nodes_have_no_other_ingress_and_only_https_egress(eks: ProgramRun) -> None:
    (group_id,) = cluster_inputs(eks)["vpcConfig"]["securityGroupIds"]
    others = [r for r in rules_of(eks, group_id) if "referencedSecurityGroupId" not in r.inputs]
    assert {r.type.split(":")[-1] for r in others} == {"SecurityGroupEgressRule"}
    assert {(r.inputs["fromPort"], r.inputs["toPort"]) for r in others} == {(443, 443)}
    assert sorted(r.inputs.get("cidrIpv4", "prefix-list") for r in others) == [
        "10.0.0.0/16",
        "prefix-list",
    ]


def test_internet_egress_is_opt_in() -> None:
    run = build_cluster({**EKS_CLUSTER, "internetEgress": True})
    (group_id,) = cluster_inputs(run)["vpcConfig"]["securityGroupIds"]
    world = [r for r in rules_of(run, group_id) if r.inputs.get("cidrIpv4") == "0.0.0.0/0"]
    assert [(r.type.split(":")[-1], r.inputs["fromPort"]) for r in world] == [
        ("SecurityGroupEgressRule", 443)
    ]


def test_cluster_sits_in_one_private_subnet(slurm: ProgramRun) -> None:
    run = build_cluster({**SLURM_CLUSTER, "subnetIndex": 1})
    assert cluster_inputs(run)["vpcConfig"]["subnets"] == [run.outputs["privateSubnetIds"][1]]
    assert cluster_inputs(slurm)["vpcConfig"]["subnets"] == [slurm.outputs["privateSubnetIds"][0]]


# --- execution role --------------------------------------------------------------------------------


def execution_policy(run: ProgramRun, name: str) -> dict[str, dict[str, Any]]:
    policy = run.named(f"mlplatform-test-{name}-execution-policy", "aws:iam/rolePolicy:RolePolicy")
    return {s["Sid"]: s for s in policy_statements(policy.inputs["policy"])}


def test_execution_role_is_for_sagemaker_with_the_managed_instance_policy(eks: ProgramRun) -> None:
    role = eks.named("mlplatform-test-train-execution-role", "aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "sagemaker.amazonaws.com"}]
    attachment = eks.named("mlplatform-test-train-instance-policy")
    assert attachment.inputs["policyArn"] == (
        "arn:aws:iam::aws:policy/AmazonSageMakerClusterInstanceRolePolicy"
    )
    assert attachment.inputs["role"] == role.outputs["name"]


def test_execution_role_reads_only_its_own_lifecycle_prefix(eks: ProgramRun) -> None:
    statements = execution_policy(eks, "train")
    bucket_arn, _, prefix = source_uri(eks).removeprefix("s3://").partition("/")
    cluster_prefix = prefix.rsplit("/", 2)[0] + "/"  # every version of this cluster's scripts
    assert statements["ReadLifecycleScripts"]["Action"] == ["s3:GetObject"]
    assert statements["ReadLifecycleScripts"]["Resource"] == [
        f"arn:aws:s3:::{bucket_arn}/{cluster_prefix}*"
    ]
    assert statements["ListLifecycleScripts"]["Condition"] == {
        "StringLike": {"s3:prefix": [f"{cluster_prefix}*"]}
    }
    s3_actions = {a for s in statements.values() for a in s["Action"] if a.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:ListBucket"}


def test_execution_role_pulls_images_and_manages_network_interfaces(eks: ProgramRun) -> None:
    statements = execution_policy(eks, "train")
    assert "ecr:BatchGetImage" in statements["EcrPull"]["Action"]
    assert statements["EcrPull"]["Resource"] == ["arn:aws:ecr:us-east-1:123456789012:repository/*"]
    assert "ec2:CreateNetworkInterface" in statements["ManageClusterNetworkInterfaces"]["Action"]
    assert statements["TagNewNetworkInterfaces"]["Condition"] == {
        "StringEquals": {"ec2:CreateAction": "CreateNetworkInterface"}
    }
    assert statements["DecryptLifecycleScripts"]["Resource"] == [eks.outputs["kmsKeyArn"]]


@pytest.mark.parametrize("cluster", ["eks", "slurm"])
def test_execution_policy_is_parliament_clean(cluster: str, request: pytest.FixtureRequest) -> None:
    run: ProgramRun = request.getfixturevalue(cluster)
    name = "train" if cluster == "eks" else "hpc"
    policy = run.named(f"mlplatform-test-{name}-execution-policy", "aws:iam/rolePolicy:RolePolicy")
    assert parliament_findings(policy.inputs["policy"]) == []


# --- FSx for Lustre --------------------------------------------------------------------------------


def test_fsx_settings_come_from_config(eks: ProgramRun) -> None:
    (fsx,) = eks.of_type(LUSTRE)
    inputs = cluster_inputs(eks)
    assert fsx.inputs["deploymentType"] == "PERSISTENT_2"
    assert fsx.inputs["perUnitStorageThroughput"] == 500
    assert fsx.inputs["storageCapacity"] == 2400
    assert fsx.inputs["subnetIds"] == inputs["vpcConfig"]["subnets"][0]
    assert fsx.inputs["securityGroupIds"] == inputs["vpcConfig"]["securityGroupIds"]
    assert fsx.inputs["kmsKeyId"] == eks.outputs["kmsKeyArn"]


def test_scratch_fsx_has_no_throughput_or_key(slurm: ProgramRun) -> None:
    (fsx,) = slurm.of_type(LUSTRE)
    assert fsx.inputs["deploymentType"] == "SCRATCH_2"
    assert "perUnitStorageThroughput" not in fsx.inputs
    assert "kmsKeyId" not in fsx.inputs


def test_fsx_is_protected_with_the_stacks_data() -> None:
    run = build_cluster(EKS_CLUSTER, **{"mlplatform:protectData": True})
    (fsx,) = run.of_type(LUSTRE)
    assert fsx.protect and fsx.retain_on_delete


def test_without_fsx_there_is_no_file_system_and_no_fsx_parameters() -> None:
    run = build_cluster({**EKS_CLUSTER, "fsx": None})
    assert run.of_type(LUSTRE) == []
    assert "fsx_dns_name" not in provisioning_parameters(run)
    assert run.outputs["hyperpodClusters"]["train"]["fsxId"] is None


# --- EKS prerequisites -----------------------------------------------------------------------------

ADDON = "aws:eks/addon:Addon"


def addons(run: ProgramRun) -> dict[str, Any]:
    return {a.inputs["addonName"]: a for a in run.of_type(ADDON)}


def test_eks_cluster_gets_cert_manager_and_the_training_operator(eks: ProgramRun) -> None:
    installed = addons(eks)
    assert set(installed) == {"cert-manager", "amazon-sagemaker-hyperpod-training-operator"}
    assert {a.inputs["clusterName"] for a in installed.values()} == {"gpu"}  # from the ARN


def test_training_operator_runs_with_its_own_pod_identity_role(eks: ProgramRun) -> None:
    operator = addons(eks)["amazon-sagemaker-hyperpod-training-operator"]
    role = eks.named("mlplatform-test-train-training-operator-role", "aws:iam/role:Role")
    assert operator.inputs["podIdentityAssociations"] == [
        {
            "roleArn": role.outputs["arn"],
            "serviceAccount": "hp-training-operator-controller-manager",
        }
    ]
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    attachment = eks.named("mlplatform-test-train-training-operator-policy")
    assert attachment.inputs["policyArn"] == (
        "arn:aws:iam::aws:policy/AmazonSageMakerHyperPodTrainingOperatorAccess"
    )


def test_operator_is_installed_after_the_cluster_and_cert_manager(eks: ProgramRun) -> None:
    (cluster,) = eks.of_type(CLUSTER)
    installed = addons(eks)
    operator = installed["amazon-sagemaker-hyperpod-training-operator"]
    assert cluster.urn in operator.depends_on
    assert installed["cert-manager"].urn in operator.depends_on
    assert cluster.urn in installed["cert-manager"].depends_on


def test_prerequisites_can_be_left_to_the_operator() -> None:
    run = build_cluster({**EKS_CLUSTER, "certManager": False, "trainingOperator": False})
    assert addons(run) == {}
    report = run.outputs["hyperpodClusters"]["train"]["prerequisites"]
    assert report["cert-manager"] == "not installed by this stack (certManager: false)"
    assert report["training-operator"] == "not installed by this stack (trainingOperator: false)"


def test_unpublished_dependencies_chart_is_reported_not_faked(eks: ProgramRun) -> None:
    report = eks.outputs["hyperpodClusters"]["train"]["prerequisites"]
    assert report["dependencies-chart"].startswith("NOT INSTALLED (health monitoring agent")
    assert "aws/sagemaker-hyperpod-cli" in report["dependencies-chart"]
    assert eks.of_type("kubernetes:helm.sh/v3:Release") == []


def test_text_plan_prints_what_is_left_to_the_operator_in_full(eks: ProgramRun) -> None:
    report = eks.outputs["hyperpodClusters"]["train"]["prerequisites"]
    text = render_text(eks)
    assert f"        dependencies-chart: {report['dependencies-chart']}" in text.splitlines()
    assert "      prerequisites:" in text.splitlines()


def test_slurm_cluster_installs_nothing_on_eks(slurm: ProgramRun) -> None:
    assert addons(slurm) == {}
    assert slurm.outputs["hyperpodClusters"]["hpc"]["prerequisites"] == {}


# --- on the stack's own GpuEksCluster ---------------------------------------------------------------

CHART = {
    "chart": "oci://123456789012.dkr.ecr.us-east-1.amazonaws.com/charts/hyperpod",
    "version": "0.1.0",
}
ON_STACK_CLUSTER = {
    **{k: v for k, v in EKS_CLUSTER.items() if k != "eksClusterArn"},
    "dependenciesChart": CHART,
}


@pytest.fixture(scope="module")
def on_stack_eks() -> ProgramRun:
    return build_cluster(ON_STACK_CLUSTER, **{"mlplatform:eks": {}})


def test_hyperpod_joins_the_stacks_eks_cluster(on_stack_eks: ProgramRun) -> None:
    inputs = cluster_inputs(on_stack_eks)
    assert inputs["orchestrator"] == {"eks": {"clusterArn": on_stack_eks.outputs["clusterArn"]}}
    names = {a.inputs["clusterName"] for a in addons(on_stack_eks).values()}
    assert names == {on_stack_eks.outputs["clusterName"]}


def test_hyperpod_waits_for_the_eks_cluster(on_stack_eks: ProgramRun) -> None:
    (cluster,) = on_stack_eks.of_type(CLUSTER)
    (eks_cluster,) = on_stack_eks.of_type("eks:index:Cluster")
    assert eks_cluster.urn in cluster.depends_on


def test_nodes_and_the_eks_cluster_reach_each_other(on_stack_eks: ProgramRun) -> None:
    (group_id,) = cluster_inputs(on_stack_eks)["vpcConfig"]["securityGroupIds"]
    eks_group = on_stack_eks.outputs["nodeSecurityGroupId"]
    pairs = {
        (r.type.split(":")[-1], r.inputs["securityGroupId"], r.inputs["referencedSecurityGroupId"])
        for r in rules_of(on_stack_eks, group_id) + rules_of(on_stack_eks, eks_group)
        if r.inputs.get("referencedSecurityGroupId") in (group_id, eks_group)
        and r.inputs["ipProtocol"] == "-1"
    }
    assert {
        ("SecurityGroupIngressRule", group_id, eks_group),
        ("SecurityGroupEgressRule", group_id, eks_group),
        ("SecurityGroupIngressRule", eks_group, group_id),
    } <= pairs


def test_configured_dependencies_chart_is_installed_before_the_cluster(
    on_stack_eks: ProgramRun,
) -> None:
    (release,) = [
        r
        for r in on_stack_eks.of_type("kubernetes:helm.sh/v3:Release")
        if r.name.endswith("-dependencies")
    ]
    assert release.inputs["chart"] == CHART["chart"]
    assert release.inputs["version"] == "0.1.0"
    assert release.inputs["namespace"] == "kube-system"
    (k8s_provider,) = on_stack_eks.of_type("pulumi:providers:kubernetes")
    assert release.provider.startswith(k8s_provider.urn)
    (cluster,) = on_stack_eks.of_type(CLUSTER)
    assert release.urn in cluster.depends_on
    report = on_stack_eks.outputs["hyperpodClusters"]["train"]["prerequisites"]
    assert report["dependencies-chart"].startswith("Helm release hyperpod-dependencies")


def test_cluster_by_arn_gets_no_eks_security_group_rules(eks: ProgramRun) -> None:
    (group_id,) = cluster_inputs(eks)["vpcConfig"]["securityGroupIds"]
    peers = {r.inputs.get("referencedSecurityGroupId") for r in rules_of(eks, group_id)}
    assert peers == {None, group_id}


# --- outputs, cost, guardrails ---------------------------------------------------------------------


def test_outputs_name_cluster_role_scripts_and_file_system(eks: ProgramRun) -> None:
    (cluster,) = eks.of_type(CLUSTER)
    (fsx,) = eks.of_type(LUSTRE)
    role = eks.named("mlplatform-test-train-execution-role", "aws:iam/role:Role")
    assert eks.outputs["hyperpodClusters"] == {
        "train": {
            "arn": cluster.outputs["clusterArn"],
            "name": "mlplatform-test-train",
            "executionRoleArn": role.outputs["arn"],
            "lifecycleScriptUri": source_uri(eks),
            "fsxId": fsx.id,
            "prerequisites": eks.outputs["hyperpodClusters"]["train"]["prerequisites"],
        }
    }
    assert set(eks.outputs["hyperpodClusters"]["train"]["prerequisites"]) == {
        "dependencies-chart",
        "cert-manager",
        "training-operator",
    }


def test_cost_counts_each_group_at_its_configured_size(slurm: ProgramRun) -> None:
    (item,) = [i for i in estimate(slurm).items if i.type == CLUSTER]
    expected = (
        1 * (0.23 * HOURS_PER_MONTH + 500 * ML_STORAGE_GB_MONTH)
        + 1 * (0.10 * HOURS_PER_MONTH + 500 * ML_STORAGE_GB_MONTH)
        + 2 * (98.32 * HOURS_PER_MONTH + 500 * ML_STORAGE_GB_MONTH)
        + 3 * (7.09 * HOURS_PER_MONTH + 500 * ML_STORAGE_GB_MONTH)
    )
    assert item.monthly_usd == pytest.approx(expected, abs=0.01)
    assert item.component == "HyperPodCluster mlplatform-test-hpc"
    assert "2 x ml.p5.48xlarge" in item.basis


def test_cost_counts_the_file_system(eks: ProgramRun) -> None:
    (item,) = [i for i in estimate(eks).items if i.type == LUSTRE]
    assert item.monthly_usd == pytest.approx(2400 * 0.34)


def test_cluster_passes_the_production_guardrails(eks: ProgramRun) -> None:
    run = build_cluster(EKS_CLUSTER, **{"mlplatform:protectData": True})
    findings = evaluate(
        guardrail_view(run), {"all": "mandatory", "data-protected": {"requireProtection": True}}
    )
    assert findings == []


def test_cluster_without_default_tags_is_flagged(eks: ProgramRun) -> None:
    views = [v for v in guardrail_view(eks) if v.type == CLUSTER]
    untagged = [replace(v, provider_props={}) for v in views]
    messages = [f.message for f in evaluate(untagged, {"all": "mandatory"})]
    assert messages == ["missing required tags: project, stack, owner, cost-center"]


def test_gpu_capacity_counts_hyperpod_groups(eks: ProgramRun) -> None:
    findings = evaluate(guardrail_view(eks), {"gpu-capacity-bounded": {"maxGpus": 31}})
    assert [f.message for f in findings if f.rule == "gpu-capacity-bounded"] == [
        "stack can scale to 32 GPUs, above its limit of 31 (maxGpus)"
    ]


def test_slurm_example_stack_plans(project: Project) -> None:
    stacks = Project.load(ROOT / "tests" / "stacks")
    run = stacks.run("slurm")
    assert len(run.of_type(CLUSTER)) == 1
    params = provisioning_parameters(run)
    assert params["controller_group"] == "controller"
    assert {w["partition_name"] for w in params["worker_groups"]} == {"gpu", "dev"}
    findings = evaluate(guardrail_view(run), {"all": "mandatory"})
    assert findings == []


# --- validation ------------------------------------------------------------------------------------


def group(**fields: Any) -> dict[str, Any]:
    return {"name": "gpu", "instanceType": "ml.p5.48xlarge", "count": 2, **fields}


def eks_config(**fields: Any) -> dict[str, Any]:
    """A valid EKS cluster by ARN with one GPU group, plus `fields`."""
    return {"name": "a", "eksClusterArn": EKS_ARN, "instanceGroups": [group()], **fields}


CONTROLLER = group(name="head", instanceType="ml.m5.xlarge", count=1, slurmRole="controller")
KEY = "mlplatform:hyperpodClusters[0]"

INVALID = [
    (
        {
            "name": "a",
            "eksClusterArn": EKS_ARN,
            "instanceGroups": [group(instanceType="ml.x9.large")],
        },
        f"{KEY}.instanceGroups[0].instanceType: 'ml.x9.large' is not a HyperPod instance type: "
        "unknown instance family 'x9' (known: c5, g5, g6e, m5, p4d, p4de, p5, p5e, p5en, t3, trn1, trn1n)",
    ),
    (
        {
            "name": "a",
            "eksClusterArn": EKS_ARN,
            "instanceGroups": [group(instanceType="ml.p5.2xlarge")],
        },
        f"{KEY}.instanceGroups[0].instanceType: 'ml.p5.2xlarge' is not a HyperPod instance type "
        "(ml.p5: ml.p5.48xlarge)",
    ),
    (
        {"name": "a", "eksClusterArn": EKS_ARN, "instanceGroups": [group(), group()]},
        f"{KEY}.instanceGroups[1].name: 'gpu' is used twice",
    ),
    (
        {"name": "a", "orchestrator": "slurm", "instanceGroups": [group()]},
        f"{KEY}.instanceGroups: a Slurm cluster needs exactly one group with slurmRole "
        "controller, found 0",
    ),
    (
        {"name": "a", "orchestrator": "slurm", "instanceGroups": [CONTROLLER]},
        f"{KEY}.instanceGroups: a Slurm cluster needs at least one compute group",
    ),
    (
        {"name": "a", "instanceGroups": [group()]},
        f"{KEY}.eksClusterArn: is required with orchestrator eks when the stack has no eks cluster "
        "(mlplatform:eks): the EKS cluster the nodes join",
    ),
    (
        {
            "name": "a",
            "orchestrator": "slurm",
            "instanceGroups": [CONTROLLER, group()],
            "tieredStorage": {"memoryPercent": 20},
        },
        f"{KEY}.tieredStorage: managed tiered checkpointing needs orchestrator eks (HyperPod "
        "offers it only on EKS-orchestrated clusters)",
    ),
    (
        {
            "name": "a",
            "orchestrator": "slurm",
            "instanceGroups": [CONTROLLER, group(labels={"a": "b"})],
        },
        f"{KEY}.instanceGroups[1].labels: are for orchestrator eks only",
    ),
    (
        {"name": "a", "eksClusterArn": EKS_ARN, "instanceGroups": [group(slurmRole="login")]},
        f"{KEY}.instanceGroups[0].slurmRole: is for orchestrator slurm only",
    ),
    (
        {
            "name": "a",
            "eksClusterArn": "arn:aws:eks:us-east-1:1:cluster/x",
            "instanceGroups": [group()],
        },
        f"{KEY}.eksClusterArn: 'arn:aws:eks:us-east-1:1:cluster/x' is not an EKS cluster ARN",
    ),
    (
        {"name": "a", "eksClusterArn": EKS_ARN, "instanceGroups": [group(minCount=3)]},
        f"{KEY}.instanceGroups[0].minCount: 3 is above count (2)",
    ),
    (
        eks_config(fsx={"throughputPerTib": 100}),
        f"{KEY}.fsx.throughputPerTib: 100 is not offered for PERSISTENT_2 (one of 125, 250, 500, 1000)",
    ),
    (
        eks_config(fsx={"storageCapacityGb": 1000}),
        f"{KEY}.fsx.storageCapacityGb: 1000 is out of range (must be >= 1200)",
    ),
    (
        eks_config(tieredStorage={"memoryPercent": 10}),
        f"{KEY}.tieredStorage.memoryPercent: 10 is out of range (must be >= 20)",
    ),
    (
        eks_config(subnetIndex=2),
        f"{KEY}.subnetIndex: 2 is out of range: the stack has 2 private subnets",
    ),
    (
        {
            "name": "a",
            "eksClusterArn": EKS_ARN,
            "instanceGroups": [group(instanceTyp="ml.p5.48xlarge")],
        },
        f"{KEY}.instanceGroups[0].instanceTyp: is not a known key (did you mean 'instanceType'?)",
    ),
    (
        eks_config(name="a" * 41),
        f"{KEY}.name: '{'a' * 41}' is not a cluster name (letters, digits, hyphens, at most 40)",
    ),
    (
        eks_config(name="train_1"),
        f"{KEY}.name: 'train_1' is not a HyperPod name (letters, digits, hyphens, at most 63)",
    ),
    (
        eks_config(instanceGroups=[group(taints=[{"key": "a", "effect": "Never"}])]),
        f"{KEY}.instanceGroups[0].taints[0].effect: 'Never' is not one of 'NoSchedule', "
        "'PreferNoSchedule' or 'NoExecute'",
    ),
    (
        eks_config(instanceGroups=[group(threadsPerCore=3)]),
        f"{KEY}.instanceGroups[0].threadsPerCore: 3 is out of range (must be <= 2)",
    ),
    (
        eks_config(nodeRecovery="Manual"),
        f"{KEY}.nodeRecovery: 'Manual' is not one of 'Automatic' or 'None'",
    ),
    (
        eks_config(fsx={"deploymentType": "SCRATCH_2", "throughputPerTib": 200}),
        f"{KEY}.fsx.throughputPerTib: is not set for SCRATCH_2 file systems",
    ),
    (
        eks_config(fsx={"deploymentType": "PERSISTENT_1", "throughputPerTib": 250}),
        f"{KEY}.fsx.throughputPerTib: 250 is not offered for PERSISTENT_1 (one of 50, 100, 200)",
    ),
    (
        {
            "name": "a",
            "instanceGroups": [group()],
            "dependenciesChart": {"chart": "x", "version": "1"},
        },
        f"{KEY}.dependenciesChart.repo: is required unless chart is an oci:// reference",
    ),
]


INVALID_IN_STACK = [
    (
        {"mlplatform:vpcEndpoints": ["sagemaker.api", "sts"]},
        "mlplatform:vpcEndpoints: lacks eks-auth: the nodes of HyperPod cluster 'train' "
        "(orchestrator eks, no internetEgress) reach SageMaker and EKS Pod Identity only through them",
    ),
    (
        {
            "mlplatform:natGateways": "none",
            "mlplatform:hyperpodClusters": [{**EKS_CLUSTER, "internetEgress": True}],
        },
        f"{KEY}.internetEgress: needs a NAT gateway (natGateways is none)",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), INVALID_IN_STACK)
def test_cluster_must_fit_the_stacks_network(overrides: dict[str, Any], message: str) -> None:
    raw = {
        **MINIMAL,
        "mlplatform:vpcEndpoints": ENDPOINTS,
        "mlplatform:hyperpodClusters": [EKS_CLUSTER],
        **overrides,
    }
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(
            {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()},
            "Pulumi.prod.yaml",
        )
    assert str(caught.value) == f"Pulumi.prod.yaml: {message}"


def test_eks_nodes_with_internet_egress_need_no_extra_endpoints() -> None:
    cluster = {**EKS_CLUSTER, "internetEgress": True}
    config = parse_stack_config(
        {**MINIMAL, "mlplatform:hyperpodClusters": json.dumps([cluster])}, "f"
    )
    assert config.hyperpod_clusters[0].internet_egress


@pytest.mark.parametrize(("cluster", "message"), INVALID)
def test_invalid_cluster_config_is_one_line_naming_the_key(
    cluster: dict[str, Any], message: str
) -> None:
    raw = {
        **MINIMAL,
        "mlplatform:vpcEndpoints": json.dumps(ENDPOINTS),
        "mlplatform:hyperpodClusters": json.dumps([cluster]),
    }
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, "Pulumi.prod.yaml")
    assert str(caught.value) == f"Pulumi.prod.yaml: {message}"


# --- the component from Python and from other languages ---------------------------------------------

KMS_ARN = "arn:aws:kms:us-east-1:123456789012:key/0123"
# What a program wires in from its network, bucket and key (SharedInfra's, or anyone's).
WIRED = {
    "vpc_id": "vpc-0123456789abcdef0",
    "vpc_cidr": "10.0.0.0/16",
    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    "s3_prefix_list_id": "pl-63a5400a",
    "kms_key_arn": KMS_ARN,
    "models_bucket_name": "models",
    "models_bucket_arn": "arn:aws:s3:::models",
}


def gpu_group(**fields: Any) -> InstanceGroupArgs:
    return InstanceGroupArgs(
        **{"name": "gpu", "instance_type": "ml.p5.48xlarge", "count": 2, **fields}
    )


def slurm_groups() -> list[InstanceGroupArgs]:
    return [
        gpu_group(name="head", instance_type="ml.m5.xlarge", count=1, slurm_role="controller"),
        gpu_group(),
    ]


def cluster_args(**fields: Any) -> HyperPodClusterArgs:
    """Valid Args of an EKS cluster by ARN with one GPU group, plus `fields`."""
    settings: dict[str, Any] = {
        "name": "c",
        "eks_cluster_arn": EKS_ARN,
        "instance_groups": [gpu_group()],
        **WIRED,
    }
    return HyperPodClusterArgs(**{**settings, **fields})


def args_error(build_args: Callable[[], object]) -> str:
    with pytest.raises(ArgsError) as caught:
        build_args()
    message = str(caught.value)
    assert "\n" not in message
    return message


FAMILIES = "c5, g5, g6e, m5, p4d, p4de, p5, p5e, p5en, t3, trn1, trn1n"
INVALID_ARGS: list[tuple[Callable[[], object], str]] = [
    (
        lambda: cluster_args(
            orchestrator="slurm",
            eks_cluster_arn=None,
            instance_groups=[
                *slurm_groups(),
                gpu_group(name="head2", count=1, slurm_role="controller"),
            ],
        ),
        "HyperPodClusterArgs.instance_groups: a Slurm cluster needs exactly one group with "
        "slurmRole controller, found 2",
    ),
    (lambda: gpu_group(min_count=3), "InstanceGroupArgs.min_count: 3 is above count (2)"),
    (
        lambda: cluster_args(
            instance_groups=[
                {"name": "g", "instanceType": "ml.p5.48xlarge", "count": 2, "minCount": 3}
            ]
        ),
        "HyperPodClusterArgs.instance_groups[0].min_count: 3 is above count (2)",
    ),
    (
        lambda: gpu_group(instance_type="ml.x9.large"),
        "InstanceGroupArgs.instance_type: 'ml.x9.large' is not a HyperPod instance type: "
        f"unknown instance family 'x9' (known: {FAMILIES})",
    ),
    (
        lambda: gpu_group(instance_type="p5.48xlarge"),
        "InstanceGroupArgs.instance_type: 'p5.48xlarge' is not a HyperPod instance type: "
        f"unknown instance family 'p5.48xlarge' (known: {FAMILIES})",
    ),
    (
        lambda: TaintArgs(key="dedicated", effect="NoSchedul"),
        "TaintArgs.effect: 'NoSchedul' is not one of 'NoSchedule', 'PreferNoSchedule' or "
        "'NoExecute'",
    ),
    (
        lambda: gpu_group(taints=[{"key": "dedicated", "effect": "Never"}]),
        "InstanceGroupArgs.taints[0].effect: 'Never' is not one of 'NoSchedule', "
        "'PreferNoSchedule' or 'NoExecute'",
    ),
    (
        lambda: cluster_args(
            orchestrator="slurm",
            eks_cluster_arn=None,
            instance_groups=slurm_groups(),
            tiered_storage=TieredStorageArgs(memory_percent=20),
        ),
        "HyperPodClusterArgs.tiered_storage: managed tiered checkpointing needs orchestrator eks "
        "(HyperPod offers it only on EKS-orchestrated clusters)",
    ),
    (
        lambda: cluster_args(eks_cluster_arn=None),
        "HyperPodClusterArgs.eks_cluster_arn: is required with orchestrator eks: the EKS cluster "
        "the nodes join",
    ),
    (
        lambda: cluster_args(eks_cluster_arn="arn:aws:eks:us-east-1:1:cluster/x"),
        "HyperPodClusterArgs.eks_cluster_arn: 'arn:aws:eks:us-east-1:1:cluster/x' is not an EKS "
        "cluster ARN",
    ),
    (
        lambda: cluster_args(subnet_index=2),
        "HyperPodClusterArgs.subnet_index: 2 is out of range: subnet_ids lists 2",
    ),
    (
        lambda: gpu_group(threads_per_core=4),
        "InstanceGroupArgs.threads_per_core: 4 is out of range (must be <= 2)",
    ),
    (
        lambda: gpu_group(deep_health_checks=["InstanceStress", "InstanceStress"]),
        "InstanceGroupArgs.deep_health_checks: lists a health check twice",
    ),
    (
        lambda: FsxLustreArgs(deployment_type="PERSISTENT_1", throughput_per_tib=250),
        "FsxLustreArgs.throughput_per_tib: 250 is not offered for PERSISTENT_1 (one of 50, 100, 200)",
    ),
    (
        lambda: cluster_args(node_recovery="none"),
        "HyperPodClusterArgs.node_recovery: 'none' is not one of 'Automatic' or 'None'",
    ),
    (
        lambda: cluster_args(instance_groups=[]),
        "HyperPodClusterArgs.instance_groups: must list at least 1",
    ),
    (
        lambda: ChartSource(chart="hyperpod", version="0.1.0"),
        "ChartSource.repo: is required unless chart is an oci:// reference",
    ),
    (
        lambda: cluster_args(vpcid="vpc-1"),
        "HyperPodClusterArgs.vpcid: is not a known key (did you mean 'vpc_id'?)",
    ),
]


@pytest.mark.parametrize(("build_args", "message"), INVALID_ARGS)
def test_bad_args_from_python_are_one_line_naming_the_argument(
    build_args: Callable[[], object], message: str
) -> None:
    assert args_error(build_args) == message


def test_the_none_node_recovery_is_the_string_none() -> None:
    assert cluster_args(node_recovery="None").node_recovery == NodeRecovery.NONE
    assert str(NodeRecovery.NONE) == "None"


@pytest.mark.parametrize(
    ("deployment_type", "throughput"),
    [("PERSISTENT_2", 250), ("PERSISTENT_1", 200), ("SCRATCH_2", None)],
)
def test_fsx_throughput_defaults_to_its_deployment_types(
    deployment_type: str, throughput: int | None
) -> None:
    fsx = FsxLustreArgs(deployment_type=deployment_type)
    assert fsx.throughput_per_tib is None
    assert fsx.throughput == throughput


def test_persistent_1_file_system_gets_its_own_default_throughput() -> None:
    run = build_cluster({**EKS_CLUSTER, "fsx": {"deploymentType": "PERSISTENT_1"}})
    (fsx,) = run.of_type(LUSTRE)
    assert fsx.inputs["perUnitStorageThroughput"] == 200


def mapping_program(args: Any) -> ProgramRun:
    def program() -> dict[str, Any]:
        cluster = HyperPodCluster("c", args)
        return {"uri": cluster.lifecycle_script_uri, "prerequisites": cluster.prerequisites}

    return run_program(program, project="p", stack="s", config={"aws:region": "us-east-1"})


CAMEL_ARGS = {
    "name": "c",
    "eksClusterArn": EKS_ARN,
    "instanceGroups": [
        {
            "name": "p5",
            "instanceType": "ml.p5.48xlarge",
            "count": 2,
            "taints": [{"key": "dedicated", "value": "ml", "effect": "NoExecute"}],
        }
    ],
    "fsx": {"deploymentType": "SCRATCH_2"},
    "vpcId": WIRED["vpc_id"],
    "vpcCidr": WIRED["vpc_cidr"],
    "subnetIds": WIRED["subnet_ids"],
    "s3PrefixListId": WIRED["s3_prefix_list_id"],
    "kmsKeyArn": KMS_ARN,
    "modelsBucketName": "models",
    "modelsBucketArn": "arn:aws:s3:::models",
}


def test_component_accepts_a_camel_case_mapping() -> None:
    """Another language's program hands the component a mapping with the schema's keys."""
    run = mapping_program(CAMEL_ARGS)
    inputs = cluster_inputs(run)
    assert inputs["clusterName"] == "c"
    assert inputs["orchestrator"] == {"eks": {"clusterArn": EKS_ARN}}
    assert inputs["vpcConfig"]["subnets"] == ["subnet-0123456789abcdef0"]
    (group,) = inputs["instanceGroups"]
    assert (group["instanceType"], group["instanceCount"]) == ("ml.p5.48xlarge", 2)
    assert group["kubernetesConfig"]["taints"] == [
        {"key": "dedicated", "value": "ml", "effect": "NoExecute"},
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"},
    ]
    (fsx,) = run.of_type(LUSTRE)
    assert fsx.inputs["deploymentType"] == "SCRATCH_2"
    assert {o.inputs["bucket"] for o in run.of_type(OBJECT)} == {"models"}
    assert run.outputs["uri"].startswith("s3://models/code/hyperpod/c/")
    assert set(run.outputs["prerequisites"]) == {
        "dependencies-chart",
        "cert-manager",
        "training-operator",
    }


def test_a_bad_mapping_is_one_line_naming_the_key() -> None:
    bad = {**CAMEL_ARGS, "instanceGroups": [{**CAMEL_ARGS["instanceGroups"][0], "count": -1}]}
    assert args_error(lambda: parse(HyperPodClusterArgs, bad)) == (
        "HyperPodClusterArgs.instance_groups[0].count: -1 is out of range (must be >= 0)"
    )


def test_dependencies_chart_needs_a_kubernetes_provider_in_the_options() -> None:
    chart = {"chart": "oci://example.com/charts/hyperpod", "version": "0.1.0"}
    with pytest.raises(ArgsError) as caught:
        mapping_program({**CAMEL_ARGS, "dependenciesChart": chart})
    assert str(caught.value) == (
        "HyperPodClusterArgs.dependencies_chart: needs a Kubernetes provider for the EKS cluster "
        '(opts=ResourceOptions(providers={"kubernetes": ...}))'
    )


def test_slurm_settings_reject_eks_only_wiring() -> None:
    assert (
        args_error(
            lambda: cluster_args(
                orchestrator="slurm",
                eks_cluster_arn=None,
                instance_groups=slurm_groups(),
                eks_security_group_id="sg-0123",
            )
        )
        == "HyperPodClusterArgs.eks_security_group_id: is only for orchestrator eks"
    )


def test_the_analyzer_infers_the_components_schema() -> None:
    """Other Pulumi languages get the component through this schema: its inputs are the stack
    file's keys plus the wired IDs, its outputs the attributes the stack exports."""
    result = Analyzer("mlplatform").analyze([HyperPodCluster])
    component = result["component_definitions"]["HyperPodCluster"]
    assert list(component.inputs) == [
        "name",
        "orchestrator",
        "eksClusterArn",
        "instanceGroups",
        "nodeRecovery",
        "continuousProvisioning",
        "subnetIndex",
        "fsx",
        "tieredStorage",
        "internetEgress",
        "certManager",
        "trainingOperator",
        "dependenciesChart",
        "vpcId",
        "vpcCidr",
        "subnetIds",
        "s3PrefixListId",
        "kmsKeyArn",
        "modelsBucketName",
        "modelsBucketArn",
        "eksSecurityGroupId",
        "protectData",
    ]
    required = {k for k, v in component.inputs.items() if not v.optional}
    assert required == {
        "name",
        "instanceGroups",
        "vpcId",
        "vpcCidr",
        "subnetIds",
        "s3PrefixListId",
        "kmsKeyArn",
        "modelsBucketName",
        "modelsBucketArn",
    }
    # Values other components compute arrive as Outputs; settings are plain.
    assert component.inputs["eksClusterArn"].plain is None
    assert component.inputs["vpcId"].plain is None
    assert component.inputs["name"].plain is True
    assert set(component.outputs) == {
        "clusterArn",
        "clusterName",
        "executionRoleArn",
        "securityGroupId",
        "lifecycleScriptUri",
        "fsxId",
        "fsxDnsName",
        "fsxMountName",
        "prerequisites",
    }
    assert all(output.description for output in component.outputs.values())
    types = result["type_definitions"]
    enums = {name: [e.value for e in t.enum or []] for name, t in types.items() if t.enum}
    assert enums == {
        "Orchestrator": ["eks", "slurm"],
        "NodeRecovery": ["Automatic", "None"],
        "SlurmRole": ["controller", "login", "compute"],
        "DeepHealthCheck": ["InstanceStress", "InstanceConnectivity"],
        "TaintEffect": ["NoSchedule", "PreferNoSchedule", "NoExecute"],
        "FsxDeploymentType": ["PERSISTENT_2", "PERSISTENT_1", "SCRATCH_2"],
    }
    assert set(types["InstanceGroupArgs"].properties) == {
        "name",
        "instanceType",
        "count",
        "minCount",
        "threadsPerCore",
        "ebsVolumeSizeGb",
        "deepHealthChecks",
        "slurmRole",
        "partition",
        "labels",
        "taints",
        "trainingPlanArn",
    }
    assert types["InstanceGroupArgs"].properties["instanceType"].description
    assert set(types["ChartSource"].properties) == {"chart", "version", "repo"}


# --- the real production stack -------------------------------------------------------------------


def test_production_runs_hyperpod_on_its_gpu_eks_cluster(production: ProgramRun) -> None:
    inputs = cluster_inputs(production)
    assert inputs["orchestrator"] == {"eks": {"clusterArn": production.outputs["clusterArn"]}}
    assert inputs["nodeRecovery"] == "Automatic"
    assert inputs["nodeProvisioningMode"] == "Continuous"
    assert inputs["tieredStorageConfig"]["mode"] == "Enable"
    (p5,) = inputs["instanceGroups"]
    assert (p5["instanceType"], p5["instanceCount"]) == ("ml.p5.48xlarge", 4)
    (fsx,) = production.of_type(LUSTRE)
    assert fsx.protect and fsx.retain_on_delete


def test_production_cost_counts_the_hyperpod_groups_at_size(production: ProgramRun) -> None:
    cost = estimate(production)
    (item,) = [i for i in cost.items if i.type == CLUSTER]
    assert item.monthly_usd == pytest.approx(
        4 * (98.32 * HOURS_PER_MONTH + 1000 * ML_STORAGE_GB_MONTH)
    )
    assert cost.by_component()["HyperPodCluster mlplatform-production-train"] == pytest.approx(
        item.monthly_usd + 4800 * 0.21
    )


def test_production_hyperpod_passes_its_mandatory_guardrails(production: ProgramRun) -> None:
    config = json.loads((ROOT / "policy" / "config-production.json").read_text())
    (component,) = production.of_type("mlplatform:index:HyperPodCluster")
    hyperpod_urns = {r.urn for r in production.resources if r.parent == component.urn}
    findings = [f for f in evaluate(guardrail_view(production), config) if f.urn in hyperpod_urns]
    assert hyperpod_urns and findings == []
