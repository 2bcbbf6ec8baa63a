"""The stack config: every mistake is one line naming the stack file and the key."""

from __future__ import annotations

import json

import pytest
import yaml
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from mlplatform.config import ConfigError, StackConfig, parse_stack_config
from tests.conftest import MINIMAL, ROOT

NB = {"name": "alice", "owner": "alice@example.com"}

MALFORMED = [
    (
        {"mlplatform:notebooks": [NB, {"name": "bob", "owner": "b", "instanceType": "ml.t3.huge"}]},
        "mlplatform:notebooks[1].instanceType: 'ml.t3.huge' is not a SageMaker notebook instance type",
    ),
    (
        {"mlplatform:availabilityZones": "three"},
        "mlplatform:availabilityZones: expected an integer, got 'three'",
    ),
    (
        {"mlplatform:availabilityZones": 9},
        "mlplatform:availabilityZones: 9 is out of range (must be <= 6)",
    ),
    (
        {"mlplatform:natGateway": "single"},
        "mlplatform:natGateway: is not a known key (did you mean 'natGateways'?)",
    ),
    (
        {"mlplatform:natGateways": "two"},
        "mlplatform:natGateways: 'two' is not one of 'none', 'single' or 'perAz'",
    ),
    (
        {"mlplatform:protectData": True, "mlplatform:forceDestroyBuckets": True},
        "mlplatform:forceDestroyBuckets: cannot be true while protectData is true",
    ),
    (
        {"mlplatform:notebooks": [{**NB, "instanceTyp": "ml.t3.medium"}]},
        "mlplatform:notebooks[0].instanceTyp: is not a known key (did you mean 'instanceType'?)",
    ),
    ({"mlplatform:notebooks": [NB, NB]}, "mlplatform:notebooks[1].name: 'alice' is used twice"),
    (
        {"mlplatform:existingVpcId": "vpc-0123456789abcdef0"},
        "mlplatform:existingPrivateSubnetIds: is required with existingVpcId",
    ),
    (
        {"mlplatform:existingPrivateSubnetIds": ["subnet-0123456789abcdef0"]},
        "mlplatform:existingVpcId: is required when existing subnets are given",
    ),
    ({"mlplatform:existingVpcId": "vpc-12"}, "mlplatform:existingVpcId: 'vpc-12' is not a VPC ID"),
    (
        {"mlplatform:vpcCidr": "10.0.0.0/8"},
        "mlplatform:vpcCidr: '10.0.0.0/8' must be between /16 and /22 to hold the subnets",
    ),
    (
        {"mlplatform:vpcCidr": "10.0.0.300/16"},
        "mlplatform:vpcCidr: '10.0.0.300/16' is not an IPv4 CIDR block",
    ),
    (
        {"mlplatform:notebooks": [{**NB, "subnetIndex": 2}]},
        "mlplatform:notebooks[0].subnetIndex: 2 is out of range: the stack has 2 private subnets",
    ),
    ({"aws:region": "mars-1"}, "aws:region: 'mars-1' is not an AWS region"),
    # Region-shaped but not a region the AWS provider knows.
    ({"aws:region": "eu-west-9"}, "aws:region: 'eu-west-9' is not an AWS region"),
    (
        {"mlplatform:notebooks": [{**NB, "gitRepository": {"url": "git@github.com:x/y.git"}}]},
        "mlplatform:notebooks[0].gitRepository.url: 'git@github.com:x/y.git' is not an https:// git URL",
    ),
    (
        {
            "mlplatform:notebooks": [
                {**NB, "gitRepository": {"url": "https://x/y", "secretArn": "s"}}
            ]
        },
        "mlplatform:notebooks[0].gitRepository.secretArn: 's' is not a Secrets Manager secret ARN",
    ),
    ({"mlplatform:notebooks": [{"name": "alice"}]}, "mlplatform:notebooks[0].owner: is required"),
    ({"mlplatform:owner": "  "}, "mlplatform:owner: must not be empty"),
    (
        {"mlplatform:protectData": "maybe"},
        "mlplatform:protectData: expected true or false, got 'maybe'",
    ),
    (
        {"mlplatform:notebooks": {"alice": {}}},
        "mlplatform:notebooks: expected a list, got {'alice': {}}",
    ),
    (
        {"mlplatform:vpcEndpoints": ["sts", "s3x"]},
        "mlplatform:vpcEndpoints: 's3x' is not a known interface endpoint",
    ),
    (
        {"mlplatform:vpcEndpoints": ["sts", "sts"]},
        "mlplatform:vpcEndpoints: lists an endpoint twice",
    ),
    (
        {"mlplatform:notebooks": [{**NB, "volumeSizeGb": 2}]},
        "mlplatform:notebooks[0].volumeSizeGb: 2 is out of range (must be >= 5)",
    ),
    (
        {"mlplatform:notebooks": [{**NB, "idleStopMinutes": 3}]},
        "mlplatform:notebooks[0].idleStopMinutes: 3 is too short: 0 disables auto-stop, otherwise at least 5",
    ),
    (
        {"mlplatform:notebooks": [{**NB, "name": "alice_smith"}]},
        "mlplatform:notebooks[0].name: 'alice_smith' is not a notebook name (letters, digits and hyphens, at most 40)",
    ),
    (
        {"mlplatform:notebooks": [{**NB, "platformIdentifier": "notebook-al1-v1"}]},
        "mlplatform:notebooks[0].platformIdentifier: 'notebook-al1-v1' is not a notebook platform "
        "(one of notebook-al2-v1, notebook-al2-v2, notebook-al2-v3)",
    ),
    ({"mlplatform:costCenter": None}, "mlplatform:costCenter: expected a string, got None"),
]


@pytest.mark.parametrize(("overrides", "message"), MALFORMED)
def test_malformed_config_names_file_and_key(overrides: dict, message: str) -> None:
    raw = {k: v for k, v in {**MINIMAL, **overrides}.items()}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, "Pulumi.staging.yaml")
    assert str(caught.value) == f"Pulumi.staging.yaml: {message}"


def test_missing_region_is_reported() -> None:
    raw = {k: v for k, v in MINIMAL.items() if k != "aws:region"}
    with pytest.raises(ConfigError, match=r"^Pulumi.x.yaml: aws:region: is required$"):
        parse_stack_config(raw, "Pulumi.x.yaml")


def test_engine_strings_are_decoded_like_native_values() -> None:
    """The engine passes structured values as JSON strings and scalars as strings."""
    native = parse_stack_config(
        {**MINIMAL, "mlplatform:notebooks": [NB], "mlplatform:availabilityZones": 3}, "f"
    )
    strings = parse_stack_config(
        {**MINIMAL, "mlplatform:notebooks": json.dumps([NB]), "mlplatform:availabilityZones": "3"},
        "f",
    )
    assert native == strings
    assert strings.availability_zones == 3


def test_other_namespaces_are_ignored() -> None:
    config = parse_stack_config({**MINIMAL, "kubernetes:context": "x", "aws:profile": "p"}, "f")
    assert config.region == "us-east-1"


def test_config_error_is_a_clean_pulumi_exit() -> None:
    """A RunError makes the Pulumi language host print the message without a traceback."""
    import pulumi

    assert issubclass(ConfigError, pulumi.RunError)


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_stack_files_are_valid(stack: str) -> None:
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    config = parse_stack_config(raw, f"Pulumi.{stack}.yaml")
    assert config.owner


def test_production_is_highly_available_and_protected() -> None:
    raw = yaml.safe_load((ROOT / "Pulumi.production.yaml").read_text())["config"]
    config = parse_stack_config(raw, "Pulumi.production.yaml")
    assert config.nat_gateways == "perAz"
    assert config.availability_zones >= 3
    assert config.protect_data and not config.force_destroy_buckets


def stack_keys() -> dict[str, FieldInfo]:
    """StackConfig's fields by their stack key (camelCase); region is aws:region, not ours."""
    fields = StackConfig.__pydantic_fields__  # type: ignore[attr-defined]
    return {to_camel(name): field for name, field in fields.items() if name != "region"}


def test_pulumi_yaml_declares_no_setting_again() -> None:
    """Settings are declared once, in the component schemas: a second declaration (with its own
    default) in Pulumi.yaml is how the copies drifted apart before."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert "config" not in project


def test_readme_documents_every_key() -> None:
    readme = (ROOT / "README.md").read_text()
    for key in stack_keys():
        assert f"`{key}`" in readme, key
