"""Both stacks built whole from their real stack files, the plan, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlplatform.cli import main
from mlplatform.plan import plan_document, render_text
from mlplatform.pricing import estimate
from mlplatform.program import ProgramRun
from tests.conftest import ROOT

TAGS = {"project", "stack", "owner", "cost-center"}


def test_staging_is_small_cheap_and_deletable(staging: ProgramRun) -> None:
    assert len(staging.of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert not any(r.protect or r.retain_on_delete for r in staging.resources)
    assert all(r.inputs["forceDestroy"] for r in staging.of_type("aws:s3/bucket:Bucket"))


def test_production_is_highly_available(production: ProgramRun) -> None:
    nats = production.of_type("aws:ec2/natGateway:NatGateway")
    subnets = {n.inputs["subnetId"] for n in nats}
    assert len(nats) == 3 and len(subnets) == 3


def test_production_protects_its_data(production: ProgramRun) -> None:
    protected = {r.name for r in production.resources if r.protect and r.retain_on_delete}
    for r in production.of_type("aws:s3/bucket:Bucket") + production.of_type("aws:kms/key:Key"):
        assert r.name in protected
        assert not r.inputs.get("forceDestroy")


def test_every_aws_resource_gets_the_default_tags_through_the_provider(
    production: ProgramRun,
) -> None:
    (provider,) = production.of_type("pulumi:providers:aws")
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags == {
        "project": "mlplatform",
        "stack": "production",
        "owner": "ml-platform",
        "cost-center": "ml-research-1234",
    }
    provider_ref = f"{provider.urn}::{provider.id}"
    aws_resources = [r for r in production.resources if r.custom and r.type.startswith("aws:")]
    assert aws_resources
    assert all(r.provider == provider_ref for r in aws_resources)
    assert provider.inputs["region"] == "us-east-1"


def test_components_use_the_mlplatform_type_tokens(production: ProgramRun) -> None:
    components = {r.type for r in production.resources if not r.custom}
    assert {
        "mlplatform:index:SharedInfra",
        "mlplatform:index:Network",
        "mlplatform:index:SecureBucket",
        "mlplatform:index:NotebookInstance",
    } <= components


def test_children_are_parented_to_their_component(production: ProgramRun) -> None:
    (shared,) = production.of_type("mlplatform:index:SharedInfra")
    (cluster,) = production.of_type("mlplatform:index:GpuEksCluster")
    (hyperpod,) = production.of_type("mlplatform:index:HyperPodCluster")
    (job,) = production.of_type("mlplatform:index:TrainingJob")
    endpoints = production.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert len(endpoints) == 12
    assert all(r.parent == shared.urn for r in endpoints)
    prefix = "mlplatform-production"
    assert {r.name: r.parent for r in production.of_type("aws:iam/role:Role")} == {
        f"{prefix}-notebook-role": shared.urn,
        f"{prefix}-node-role": cluster.urn,
        f"{prefix}-vpc-cni-irsa": cluster.urn,
        f"{prefix}-ebs-csi-irsa": cluster.urn,
        f"{prefix}-cluster-autoscaler-irsa": cluster.urn,
        f"{prefix}-train-execution-role": hyperpod.urn,
        f"{prefix}-train-training-operator-role": hyperpod.urn,
        f"{prefix}-llama3-8b-smoke-role": job.urn,
    }


def test_production_lists_every_notebook(production: ProgramRun) -> None:
    urls = production.outputs["notebookUrls"]
    assert sorted(urls) == ["alice", "bob", "nlp-research"]
    assert all(u.startswith("https://") for u in urls.values())


# --- the plan --------------------------------------------------------------------------------


def test_json_plan_has_the_documented_shape(production: ProgramRun) -> None:
    doc = plan_document(production)
    assert set(doc) == {"stack", "project", "resources", "outputs", "monthly_cost_usd"}
    assert (doc["stack"], doc["project"]) == ("production", "mlplatform")
    for resource in doc["resources"]:
        assert set(resource) == {
            "urn",
            "id",
            "type",
            "name",
            "parent",
            "custom",
            "inputs",
            "outputs",
            "options",
        }
        assert set(resource["options"]) == {"protect", "retainOnDelete", "dependsOn"}
    json.dumps(doc)  # serializable as is
    cost = doc["monthly_cost_usd"]
    assert cost["total"] == pytest.approx(sum(i["monthly_usd"] for i in cost["items"]), abs=0.01)


def test_json_plan_inputs_are_camel_case_as_the_engine_receives_them(
    production: ProgramRun,
) -> None:
    doc = plan_document(production)
    (nb,) = [
        r for r in doc["resources"] if r["name"] == "mlplatform-production-alice" and r["custom"]
    ]
    assert nb["inputs"]["directInternetAccess"] == "Disabled"
    assert nb["type"] == "aws:sagemaker/notebookInstance:NotebookInstance"


def test_cost_counts_nat_endpoints_key_and_notebooks(staging: ProgramRun) -> None:
    cost = estimate(staging)
    by_type: dict[str, float] = {}
    for item in cost.items:
        by_type[item.type] = by_type.get(item.type, 0) + item.monthly_usd
    assert by_type["aws:ec2/natGateway:NatGateway"] == pytest.approx(32.85)
    # five interface endpoints in two AZs at $0.01/h
    assert by_type["aws:ec2/vpcEndpoint:VpcEndpoint"] == pytest.approx(5 * 2 * 7.30)
    # the data key and the cluster's secrets key
    assert by_type["aws:kms/key:Key"] == pytest.approx(2.0)
    # ml.t3.medium with auto-stop: 220 working hours + 20 GB of ML storage
    assert by_type["aws:sagemaker/notebookInstance:NotebookInstance"] == pytest.approx(
        220 * 0.05 + 20 * 0.14
    )


def test_cost_is_attributed_to_top_level_components(staging: ProgramRun) -> None:
    components = estimate(staging).by_component()
    assert set(components) == {
        "SharedInfra mlplatform-staging",
        "NotebookInstance mlplatform-staging-dev",
        "GpuEksCluster mlplatform-staging",
    }


def test_always_on_notebook_costs_a_full_month() -> None:
    from tests.conftest import build

    run = build({"mlplatform:notebooks": [{"name": "a", "owner": "o", "idleStopMinutes": 0}]})
    (item,) = [i for i in estimate(run).items if i.type.endswith("NotebookInstance")]
    assert item.monthly_usd == pytest.approx(730 * 0.05 + 20 * 0.14, abs=0.01)


def test_regional_prices_scale_and_unknown_regions_are_noted() -> None:
    from tests.conftest import build

    base = estimate(build()).total
    assert estimate(build({"aws:region": "eu-central-1"})).total == pytest.approx(
        base * 1.15, abs=0.05
    )
    unknown = estimate(build({"aws:region": "me-south-1"}))
    assert unknown.total == pytest.approx(base)
    assert any("me-south-1" in note for note in unknown.notes)


def test_text_plan_shows_tree_settings_flags_and_total(production: ProgramRun) -> None:
    text = render_text(production)
    assert text.startswith("Stack mlplatform/production (us-east-1): ")
    assert "  mlplatform:index:Network  mlplatform-production" in text
    assert "directInternetAccess=Disabled" in text
    assert "[protected, retained]" in text
    assert f"{estimate(production).total:,.2f}" in text.splitlines()[0]


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_json_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "production", "--json", "--cwd", str(ROOT)]) == 0
    doc = json.loads(capsys.readouterr().out)
    types = {r["type"] for r in doc["resources"]}
    assert {
        "aws:ec2/vpc:Vpc",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:s3/bucket:Bucket",
        "aws:kms/key:Key",
        "aws:iam/role:Role",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:sagemaker/notebookInstance:NotebookInstance",
        "aws:sagemaker/codeRepository:CodeRepository",
    } <= types


def test_cli_missing_stack_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "qa", "--cwd", str(ROOT)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("Pulumi.qa.yaml: no such stack file (stacks here: production, staging)")
    assert "\n" not in err


def write_project(directory: Path, stack_config: str, program: str | None = None) -> None:
    (directory / "Pulumi.yaml").write_text("name: mlplatform\nruntime:\n  name: python\n")
    (directory / "Pulumi.dev.yaml").write_text(stack_config)
    main_py = program or (ROOT / "__main__.py").read_text()
    (directory / "__main__.py").write_text(main_py)


def test_cli_config_mistake_is_one_line_without_traceback(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        "config:\n  aws:region: us-east-1\n  mlplatform:owner: o\n"
        "  mlplatform:costCenter: c\n  mlplatform:notebooks:\n"
        "    - {name: a, owner: o}\n    - {name: b, owner: o, instanceType: ml.t3.huge}\n",
    )
    result = subprocess.run(
        [sys.executable, "-m", "mlplatform.cli", "plan", "dev", "--cwd", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "error: Pulumi.dev.yaml: mlplatform:notebooks[1].instanceType: "
        "'ml.t3.huge' is not a SageMaker notebook instance type\n"
    )
    assert result.stdout == ""


def test_cli_unreadable_yaml_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, "config: [unclosed\n")
    assert main(["plan", "dev", "--cwd", str(tmp_path)]) == 1
    assert "Pulumi.dev.yaml: not valid YAML" in capsys.readouterr().err


def test_cli_plans_a_users_own_program_importing_our_components(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Engineers who import our components plan their own stacks offline the same way."""
    program = (
        "import pulumi\n"
        "from mlplatform.components.shared_infra import SharedInfra, SharedInfraArgs\n"
        "cfg = pulumi.Config()\n"
        "shared = SharedInfra('team-x', SharedInfraArgs(region='eu-west-1',\n"
        "    availability_zones=cfg.require_int('zones'), nat_gateways='none',\n"
        "    vpc_endpoints=['sts']))\n"
        "pulumi.export('bucket', shared.models_bucket_name)\n"
        "pulumi.export('token', pulumi.Output.secret('s3cr3t'))\n"
    )
    (tmp_path / "Pulumi.yaml").write_text("name: teamx\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  aws:region: eu-west-1\n  teamx:zones: 3\n"
    )
    (tmp_path / "__main__.py").write_text(program)
    assert main(["plan", "dev", "--cwd", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["project"] == "teamx"
    assert doc["outputs"]["bucket"].startswith("team-x-models-")
    assert doc["outputs"]["token"] == "[secret]"
    subnets = [r for r in doc["resources"] if r["type"] == "aws:ec2/subnet:Subnet"]
    assert len(subnets) == 3
    assert all(r["inputs"]["availabilityZone"].startswith("eu-west-1") for r in subnets)


def test_console_script_prints_the_staging_plan() -> None:
    script = Path(sys.executable).parent / "mlplatform"
    if not script.exists():
        pytest.skip("package not installed in this interpreter's environment")
    result = subprocess.run(
        [str(script), "plan", "staging"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Stack mlplatform/staging (us-east-1): ")
