"""The bad-input campaign for component Args built from Python (not only from stack files).

Every @schema class a stack reaches (settings, nested settings, and the Args that add wired
IDs), starting from a valid instance taken from the real stack files, gets one field replaced by
a junk value, deleted, or a misspelt key added. The answer is the object or `ArgsError` with one
line naming the class: never a traceback, never another exception type.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlplatform.components.arc_runners import ArcRunnersArgs
from mlplatform.components.bucket import SecureBucketArgs
from mlplatform.components.eks import GpuEksClusterArgs
from mlplatform.components.hyperpod import HyperPodClusterArgs
from mlplatform.components.images import ContainerImageArgs
from mlplatform.components.notebook import NotebookInstanceArgs
from mlplatform.components.schema import ArgsError, settings_of
from mlplatform.components.shared_infra import SharedInfraArgs, SharedInfraSettings
from mlplatform.components.training_job import TrainingJobArgs
from mlplatform.config import StackConfig, parse_stack_config
from tests.conftest import ROOT
from tests.strategies import junk

ACCOUNT = "123456789012"
KMS = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SUBNETS = [f"subnet-0123456789abcdef{i}" for i in range(3)]
BUCKET = "mlplatform-production-models-abc1234"


def _stack(name: str) -> StackConfig:
    raw = yaml.safe_load((ROOT / f"Pulumi.{name}.yaml").read_text())["config"]
    return parse_stack_config(raw, f"Pulumi.{name}.yaml")


def _schema_objects(value: Any) -> list[Any]:
    """Every @schema object inside `value` (itself included), depth first."""
    found = []
    if hasattr(type(value), "__pydantic_fields__"):
        found.append(value)
        for name in type(value).__pydantic_fields__:
            found += _schema_objects(getattr(value, name))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found += _schema_objects(item)
    return found


def _args_of(config: StackConfig) -> list[Any]:
    """The Args the stack builder would construct, wired with plain IDs instead of Outputs."""
    args: list[Any] = [
        SharedInfraArgs(**settings_of(config, SharedInfraSettings)),
        SecureBucketArgs(kms_key_arn=KMS, prefixes=["data/"]),
        ContainerImageArgs(context=str(ROOT / "docker" / "runner-base"), kms_key_arn=KMS),
    ]
    args += [
        NotebookInstanceArgs(
            **settings_of(nb),
            subnet_ids=SUBNETS,
            security_group_id="sg-0123456789abcdef0",
            kms_key_arn=KMS,
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/notebook",
        )
        for nb in config.notebooks
    ]
    if config.eks is not None:
        args.append(
            GpuEksClusterArgs(
                **settings_of(config.eks),
                vpc_id="vpc-0123456789abcdef0",
                subnet_ids=SUBNETS,
                region=config.region,
            )
        )
    for cluster in config.hyperpod_clusters:
        eks = cluster.orchestrator == "eks"
        args.append(
            HyperPodClusterArgs(
                **{
                    **settings_of(cluster),
                    "eks_cluster_arn": cluster.eks_cluster_arn
                    or (f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/stack" if eks else None),
                },
                vpc_id="vpc-0123456789abcdef0",
                vpc_cidr="10.0.0.0/16",
                subnet_ids=SUBNETS,
                s3_prefix_list_id="pl-63a5400a",
                kms_key_arn=KMS,
                models_bucket_name=BUCKET,
                models_bucket_arn=f"arn:aws:s3:::{BUCKET}",
                eks_security_group_id="sg-0123456789abcdef0" if eks else None,
            )
        )
    for job in config.training_jobs:
        args.append(
            TrainingJobArgs(
                **settings_of(job),
                image="123456789012.dkr.ecr.us-east-1.amazonaws.com/t@sha256:" + "ab" * 32,
                oidc_provider_arn=f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.eks.x/id/AB",
                oidc_provider_url="https://oidc.eks.us-east-1.amazonaws.com/id/AB",
                datasets_bucket_arn="arn:aws:s3:::datasets",
                models_bucket_arn=f"arn:aws:s3:::{BUCKET}",
                models_bucket_name=BUCKET,
                kms_key_arn=KMS,
            )
        )
    if config.arc is not None and config.eks is not None:
        arc = {k: v for k, v in settings_of(config.arc).items() if k != "build_images"}
        args.append(
            ArcRunnersArgs(
                **arc,
                github_app_private_key="-----BEGIN PRIVATE KEY-----",
                github_token=None,
                system_node_group="system",
                gpu_node_groups=[g.name for g in config.eks.gpu_node_groups],
            )
        )
    return args


BASELINES = [
    obj
    for stack in ("staging", "production")
    for obj in _schema_objects(_stack(stack)) + _args_of(_stack(stack))
]
CLASSES = sorted({type(obj).__name__ for obj in BASELINES})


def test_the_campaign_covers_every_component_args() -> None:
    for name in (
        "SharedInfraArgs",
        "NotebookInstanceArgs",
        "GpuEksClusterArgs",
        "ArcRunnersArgs",
        "HyperPodClusterArgs",
        "TrainingJobArgs",
        "ContainerImageArgs",
        "SecureBucketArgs",
        "GpuNodeGroup",
        "InstanceGroupArgs",
        "RunnerClass",
    ):
        assert name in CLASSES, name


@pytest.mark.parametrize("baseline", BASELINES, ids=lambda obj: type(obj).__name__)
def test_every_baseline_rebuilds_from_its_own_fields(baseline: Any) -> None:
    assert type(baseline)(**settings_of(baseline)) == baseline


def _assert_clean(cls: type, kwargs: dict[str, Any]) -> None:
    try:
        result = cls(**kwargs)
    except ArgsError as error:
        message = str(error)
        assert "\n" not in message, message
        assert message.startswith((f"{cls.__name__}.", f"{cls.__name__}:", f"{cls.__name__}[")), (
            message
        )
    else:
        assert isinstance(result, cls)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), value=junk, action=st.sampled_from(["replace", "delete", "typo"]))
def test_a_mutated_argument_is_an_object_or_one_line(data: Any, value: Any, action: str) -> None:
    baseline = data.draw(st.sampled_from(BASELINES))
    cls = type(baseline)
    kwargs = settings_of(baseline)
    field = data.draw(st.sampled_from(sorted(kwargs)))
    if action == "replace":
        kwargs[field] = value
    elif action == "delete":
        del kwargs[field]
    else:
        kwargs[field + "_x"] = value
    _assert_clean(cls, kwargs)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), value=junk)
def test_a_mapping_from_another_language_is_parsed_the_same_way(data: Any, value: Any) -> None:
    """A provider hands the component a mapping (camelCase keys): same one-line outcome."""
    from pydantic.alias_generators import to_camel

    from mlplatform.components.schema import parse

    baseline = data.draw(st.sampled_from(BASELINES))
    cls = type(baseline)
    mapping = {to_camel(k): v for k, v in settings_of(baseline).items()}
    mapping[data.draw(st.sampled_from(sorted(mapping)))] = value
    try:
        result = parse(cls, mapping)
    except ArgsError as error:
        assert "\n" not in str(error)
        assert str(error).startswith(cls.__name__)
    else:
        assert isinstance(result, cls)


def test_positional_arguments_are_named_as_such() -> None:
    with pytest.raises(ArgsError) as raised:
        SecureBucketArgs(KMS)  # type: ignore[misc]
    assert str(raised.value) == "SecureBucketArgs: takes keyword arguments only, got 1"
