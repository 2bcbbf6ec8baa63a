"""Guardrails: each rule fails on a bad build and passes on the platform's own; the policy pack
(served over gRPC as `pulumi preview` would) and the offline check give the same verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pulumi
import pulumi_aws as aws
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from mlplatform.cli import main
from mlplatform.components.bucket import SecureBucket, SecureBucketArgs
from mlplatform.components.notebook import NotebookInstance, NotebookInstanceArgs
from mlplatform.components.security_groups import rule, security_group
from mlplatform.components.shared_infra import SharedInfra, SharedInfraArgs
from mlplatform.guardrails import RULES, Finding
from mlplatform.plan import check_policy
from mlplatform.program import ProgramRun, run_program
from tests.conftest import ROOT, build

PRODUCTION = json.loads((ROOT / "policy" / "config-production.json").read_text())
TAGGED = {"tags": {"project": "p", "stack": "s", "owner": "o", "cost-center": "c"}}


def run(program: Callable[[], Any]) -> ProgramRun:
    return run_program(
        program, project="mlplatform", stack="test", config={"aws:region": "us-east-1"}
    )


def tagged_provider() -> pulumi.ResourceOptions:
    provider = aws.Provider("aws", region="us-east-1", default_tags=TAGGED)
    return pulumi.ResourceOptions(providers={"aws": provider})


def rules_hit(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


def test_both_stacks_pass_every_mandatory_rule(staging: ProgramRun, production: ProgramRun) -> None:
    assert check_policy(production, PRODUCTION) == []
    staging_config = json.loads((ROOT / "policy" / "config-staging.json").read_text())
    assert check_policy(staging, staging_config) == []
    # and production's stricter settings would flag staging's deletable data and public API
    assert rules_hit(check_policy(staging, PRODUCTION)) == {
        "data-protected",
        "eks-private-endpoint",
    }


# --- one failing and one passing case per rule -------------------------------------------------


def test_s3_rule_flags_a_bare_bucket_and_passes_a_secure_one() -> None:
    def program() -> None:
        opts = tagged_provider()
        aws.s3.Bucket("bare", opts=opts)
        key = aws.kms.Key("key", opts=opts)
        SecureBucket("good", SecureBucketArgs(kms_key_arn=key.arn), opts=opts)

    findings = [f for f in check_policy(run(program), {}) if f.rule == "s3-buckets-secure"]
    assert {f.message for f in findings} == {
        "bucket lacks a full public access block",
        "bucket is not encrypted with SSE-KMS",
        "bucket versioning is not enabled",
    }
    assert all(f.urn.endswith("::bare") for f in findings)


def notebook_with(**args: Any) -> Callable[[], None]:
    def program() -> None:
        opts = tagged_provider()
        shared = SharedInfra("s", SharedInfraArgs(region="us-east-1", vpc_endpoints=[]), opts=opts)
        NotebookInstance(
            "nb",
            NotebookInstanceArgs(
                name="nb",
                owner="o",
                subnet_ids=shared.private_subnet_ids,
                security_group_id=shared.notebook_security_group_id,
                kms_key_arn=shared.kms_key_arn,
                role_arn=shared.notebook_role_arn,
                **args,
            ),
            opts=opts,
        )

    return program


def test_notebook_rule_flags_root_access_and_passes_the_default() -> None:
    bad = check_policy(run(notebook_with(root_access=True)), {})
    assert [f.message for f in bad if f.rule == "notebook-locked-down"] == [
        "notebook allows root access (set rootAccess: Disabled)"
    ]
    assert "notebook-locked-down" not in rules_hit(check_policy(run(notebook_with()), {}))


def test_notebook_rule_flags_internet_access_and_imdsv1() -> None:
    def program() -> None:
        aws.sagemaker.NotebookInstance(
            "open",
            instance_type="ml.t3.medium",
            role_arn="arn:aws:iam::1:role/r",
            direct_internet_access="Enabled",
            root_access="Disabled",
            opts=tagged_provider(),
        )

    messages = {
        f.message for f in check_policy(run(program), {}) if f.rule == "notebook-locked-down"
    }
    assert messages == {
        "notebook has direct internet access (set directInternetAccess: Disabled)",
        "notebook allows IMDSv1 (minimumInstanceMetadataServiceVersion must be 2)",
    }


def node_group(
    name: str, *, taint: bool, imds: str, max_size: int, opts: pulumi.ResourceOptions
) -> None:
    template = aws.ec2.LaunchTemplate(
        f"{name}-lt", metadata_options={"http_tokens": imds}, opts=opts
    )
    aws.eks.NodeGroup(
        name,
        cluster_name="c",
        node_role_arn="arn:aws:iam::1:role/n",
        subnet_ids=["subnet-1"],
        instance_types=["p5.48xlarge"],
        ami_type="AL2023_x86_64_NVIDIA",
        scaling_config={"min_size": 0, "desired_size": 0, "max_size": max_size},
        taints=[{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
        if taint
        else [],
        launch_template={"id": template.id, "version": "$Latest"},
        opts=opts,
    )


def test_node_rules_flag_untainted_gpu_groups_and_imdsv1() -> None:
    def program() -> None:
        opts = tagged_provider()
        node_group("bad", taint=False, imds="optional", max_size=1, opts=opts)
        node_group("good", taint=True, imds="required", max_size=1, opts=opts)

    findings = check_policy(run(program), {})
    flagged = {(f.rule, f.urn.rsplit("::", 1)[-1]) for f in findings}
    assert ("gpu-nodes-tainted", "bad") in flagged and ("nodes-imdsv2", "bad-lt") in flagged
    assert not {name for _, name in flagged} & {"good", "good-lt"}


def test_gpu_capacity_rule_counts_max_size_times_gpus() -> None:
    def program() -> None:
        node_group("p5", taint=True, imds="required", max_size=3, opts=tagged_provider())

    findings = check_policy(run(program), {"gpu-capacity-bounded": {"maxGpus": 16}})
    assert [f.message for f in findings if f.rule == "gpu-capacity-bounded"] == [
        "stack can scale to 24 GPUs, above its limit of 16 (maxGpus)"
    ]
    assert "gpu-capacity-bounded" not in rules_hit(
        check_policy(run(program), {"gpu-capacity-bounded": {"maxGpus": 24}})
    )


def test_iam_rule_flags_admin_and_any_passrole_but_not_the_platform_roles(
    default_run: ProgramRun,
) -> None:
    def program() -> None:
        opts = tagged_provider()
        role = aws.iam.Role("r", assume_role_policy="{}", opts=opts)
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Admin", "Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Effect": "Allow", "Action": ["iam:PassRole"], "Resource": "*"},
                {"Effect": "Deny", "Action": "*", "Resource": "*"},
            ],
        }
        aws.iam.RolePolicy("p", role=role.id, policy=json.dumps(document), opts=opts)

    messages = [f.message for f in check_policy(run(program), {}) if f.rule == "iam-no-admin"]
    assert messages == [
        "IAM statement 'Admin' allows * on *",
        "IAM statement allows iam:PassRole on any role",
    ]
    assert "iam-no-admin" not in rules_hit(check_policy(default_run, {}))


def test_world_ingress_is_flagged_through_our_own_rule_helper() -> None:
    def program() -> None:
        opts = tagged_provider()
        group = security_group("sg", "test", "vpc-1", opts)
        rule(
            "ingress", "open", group.id, "ssh from anywhere", opts, ports=(22, 22), cidr="0.0.0.0/0"
        )
        rule("ingress", "vpc-only", group.id, "https from the VPC", opts, cidr="10.0.0.0/16")

    findings = [f for f in check_policy(run(program), {}) if f.rule == "sg-no-world-ingress"]
    assert [f.urn.rsplit("::", 1)[-1] for f in findings] == ["open"]


def test_private_endpoint_rule_applies_only_where_required() -> None:
    def program() -> None:
        aws.eks.Cluster(
            "c",
            role_arn="arn:aws:iam::1:role/c",
            vpc_config={"subnet_ids": ["subnet-1"], "endpoint_public_access": True},
            opts=tagged_provider(),
        )

    assert "eks-private-endpoint" not in rules_hit(check_policy(run(program), {}))
    findings = check_policy(run(program), PRODUCTION)
    assert [f.message for f in findings if f.rule == "eks-private-endpoint"] == [
        "EKS API endpoint is public (endpointPublicAccess must be false in this stack)"
    ]


def test_required_tags_come_from_the_provider_or_the_resource() -> None:
    def program() -> None:
        aws.ec2.Vpc("untagged", cidr_block="10.0.0.0/16")  # default provider, no tags
        aws.ec2.Vpc("own-tags", cidr_block="10.1.0.0/16", tags=TAGGED["tags"])
        aws.ec2.Vpc("provider-tags", cidr_block="10.2.0.0/16", opts=tagged_provider())

    findings = [f for f in check_policy(run(program), {}) if f.rule == "required-tags"]
    assert [(f.urn.rsplit("::", 1)[-1], f.message) for f in findings] == [
        ("untagged", "missing required tags: project, stack, owner, cost-center")
    ]


def test_data_protection_rule_follows_the_shared_infra_args() -> None:
    def program(protect: bool) -> Callable[[], None]:
        return lambda: (
            SharedInfra(
                "s",
                SharedInfraArgs(region="us-east-1", vpc_endpoints=[], protect_data=protect),
                opts=tagged_provider(),
            )
            and None
        )

    unprotected = [
        f for f in check_policy(run(program(False)), PRODUCTION) if f.rule == "data-protected"
    ]
    assert len(unprotected) == 3  # two buckets and the key
    assert not [
        f for f in check_policy(run(program(True)), PRODUCTION) if f.rule == "data-protected"
    ]


def test_disabled_rules_are_skipped() -> None:
    run_ = build({"mlplatform:protectData": False})
    config = {**PRODUCTION, "data-protected": {"enforcementLevel": "disabled"}}
    assert check_policy(run_, config) == []


# --- the CLI --------------------------------------------------------------------------------


def test_plan_policy_exits_nonzero_on_a_mandatory_violation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "strict.json"
    config_path.write_text(
        json.dumps({"all": "mandatory", "data-protected": {"requireProtection": True}})
    )
    code = main(
        ["plan", "staging", "--cwd", str(ROOT), "--policy", "--policy-config", str(config_path)]
    )
    out = capsys.readouterr().out
    assert code == 3
    assert (
        "[mandatory] data-protected: mlplatform-staging-datasets: data resource is not protected"
        in out
    )
    assert main(["plan", "production", "--cwd", str(ROOT), "--policy"]) == 0


def test_plan_policy_json_lists_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "c.json"
    config_path.write_text(json.dumps({"data-protected": {"requireProtection": True}}))
    assert (
        main(
            [
                "plan",
                "staging",
                "--cwd",
                str(ROOT),
                "--json",
                "--policy",
                "--policy-config",
                str(config_path),
            ]
        )
        == 0
    )
    findings = json.loads(capsys.readouterr().out)["policy"]["findings"]
    assert {f["rule"] for f in findings} == {"data-protected"}
    assert all(f["level"] == "advisory" for f in findings)


def test_bad_policy_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json")
    assert (
        main(["plan", "staging", "--cwd", str(ROOT), "--policy", "--policy-config", str(path)]) == 1
    )
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: {path}: not a readable JSON policy config") and err.count("\n") == 1
    )


# --- the real policy pack, served as the Pulumi CLI would run it --------------------------------


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "policy" / "__main__.py")],
        stdout=subprocess.PIPE,
        cwd=ROOT / "policy",
    )
    assert process.stdout is not None
    port = int(process.stdout.readline())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        channel.close()
        process.kill()
        process.wait()


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(json.loads(json.dumps(value, default=str)))
    return struct


def _configure(stub: analyzer_pb2_grpc.AnalyzerStub, config: dict[str, Any]) -> None:
    levels = {"advisory": 0, "mandatory": 1, "disabled": 2}
    policy_config = {}
    for r in RULES:
        entry = config.get(r.name, {})
        level = levels[entry.get("enforcementLevel", config.get("all", "advisory"))]
        props = {**r.defaults, **{k: v for k, v in entry.items() if k != "enforcementLevel"}}
        policy_config[r.name] = analyzer_pb2.PolicyConfig(
            enforcementLevel=level, properties=_struct(props)
        )
    stub.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=policy_config))


def _pack_findings(
    stub: analyzer_pb2_grpc.AnalyzerStub, program_run: ProgramRun
) -> set[tuple[str, str, str]]:
    by_ref = {f"{r.urn}::{r.id}": r for r in program_run.resources}
    seen = set()
    resources = []
    for r in program_run.resources:
        provider = by_ref.get(r.provider)
        provider_msg = (
            analyzer_pb2.AnalyzerProviderResource(
                type=provider.type,
                properties=_struct(provider.inputs),
                urn=provider.urn,
                name=provider.name,
            )
            if provider
            else None
        )
        options = analyzer_pb2.AnalyzerResourceOptions(protect=r.protect)
        response = stub.Analyze(
            analyzer_pb2.AnalyzeRequest(
                type=r.type,
                properties=_struct(r.inputs),
                urn=r.urn,
                name=r.name,
                options=options,
                provider=provider_msg,
            )
        )
        seen |= {(d.policyName, r.urn, _message(d)) for d in response.diagnostics}
        resources.append(
            analyzer_pb2.AnalyzerResource(
                type=r.type,
                properties=_struct(r.inputs),
                urn=r.urn,
                name=r.name,
                options=options,
                provider=provider_msg,
                propertyDependencies={
                    k: analyzer_pb2.AnalyzerPropertyDependencies(urns=v)
                    for k, v in r.property_dependencies.items()
                },
            )
        )
    stack = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))
    seen |= {(d.policyName, d.urn, _message(d)) for d in stack.diagnostics}
    return seen


def _message(diagnostic: analyzer_pb2.AnalyzeDiagnostic) -> str:
    """The pack prefixes each violation with the policy's description line."""
    description, _, message = diagnostic.message.partition("\n")
    assert description == diagnostic.description
    return message


def test_policy_pack_serves_every_rule(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "mlplatform-guardrails"
    assert sorted(p.name for p in info.policies) == sorted(r.name for r in RULES)


def test_policy_pack_and_offline_check_agree(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    def program() -> None:
        opts = tagged_provider()
        aws.s3.Bucket("bare", opts=opts)
        node_group("bad", taint=False, imds="optional", max_size=20, opts=opts)
        group = security_group("sg", "test", "vpc-1", opts)
        rule("ingress", "open", group.id, "ssh", opts, ports=(22, 22), cidr="0.0.0.0/0")
        aws.ec2.Vpc("untagged", cidr_block="10.0.0.0/16")
        notebook_with(root_access=True)()

    bad = run(program)
    _configure(analyzer, PRODUCTION)
    offline = {(f.rule, f.urn, f.message) for f in check_policy(bad, PRODUCTION)}
    assert len(offline) >= 8
    assert _pack_findings(analyzer, bad) == offline
