"""Guardrails: the platform's security and cost rules, one implementation for two places.

`policy/` wraps these rules in a Pulumi policy pack (`pulumi preview --policy-pack policy`), and
`mlplatform plan STACK --policy` runs the same functions over the offline plan's resources. A
rule sees `Resource` views only (type, name, URN, camelCase props, protect, provider props and
which resources each prop came from), which both the policy analyzer and the mocks provide.

Pure Python on purpose: the policy pack runs in its own virtualenv with pulumi-policy only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mlplatform.components.catalog import gpus_per_instance

REQUIRED_TAGS = ("project", "stack", "owner", "cost-center")

# Taggable types the platform creates; any other resource is checked when it has `tags` set.
TAGGABLE_TYPES = frozenset(
    {
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/eip:Eip",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:s3/bucket:Bucket",
        "aws:kms/key:Key",
        "aws:iam/role:Role",
        "aws:sagemaker/notebookInstance:NotebookInstance",
        "aws:eks/cluster:Cluster",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:ecr/repository:Repository",
        "aws:fsx/lustreFileSystem:LustreFileSystem",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws-native:sagemaker:Cluster",
    }
)
DATA_TYPES = frozenset(
    {"aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:fsx/lustreFileSystem:LustreFileSystem"}
)
NODE_GROUP_TYPES = frozenset({"eks:index:ManagedNodeGroup", "aws:eks/nodeGroup:NodeGroup"})
EKS_CLUSTER_TYPES = frozenset({"eks:index:Cluster", "aws:eks/cluster:Cluster"})
HYPERPOD_TYPE = "aws-native:sagemaker:Cluster"
POLICY_PROPS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
WORLD = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class Resource:
    """What a rule may look at. Props are camelCase, as the engine holds them."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    protect: bool = False
    provider_props: Mapping[str, Any] = field(default_factory=dict)
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)


Violation = tuple[str, str]  # (urn or "" for the stack, message)
Level = Literal["advisory", "mandatory", "disabled"]


ResourceCheck = Callable[[Resource, Mapping[str, Any]], Iterable[str]]
StackCheck = Callable[[Sequence[Resource], Mapping[str, Any]], Iterable[Violation]]


@dataclass(frozen=True)
class Rule:
    """A named rule: a check of each resource, or of the whole stack."""

    name: str
    description: str
    check: ResourceCheck | None = None
    stack_check: StackCheck | None = None
    # Settings a stack may override in its policy config (with these defaults).
    defaults: Mapping[str, Any] = field(default_factory=dict)


# --- resource rules: check(resource, config) -> messages ---------------------------------------


def _notebook_locked_down(r: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if r.type != "aws:sagemaker/notebookInstance:NotebookInstance":
        return
    if r.props.get("directInternetAccess") != "Disabled":
        yield "notebook has direct internet access (set directInternetAccess: Disabled)"
    if r.props.get("rootAccess") != "Disabled":
        yield "notebook allows root access (set rootAccess: Disabled)"
    imds = (r.props.get("instanceMetadataServiceConfiguration") or {}).get(
        "minimumInstanceMetadataServiceVersion"
    )
    if imds != "2":
        yield "notebook allows IMDSv1 (minimumInstanceMetadataServiceVersion must be 2)"


def _imdsv2_on_nodes(r: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if r.type == "aws:ec2/launchTemplate:LaunchTemplate":
        if (r.props.get("metadataOptions") or {}).get("httpTokens") != "required":
            yield "launch template allows IMDSv1 (metadataOptions.httpTokens must be required)"
    elif r.type in NODE_GROUP_TYPES and not r.props.get("launchTemplate"):
        yield "node group has no launch template, so IMDSv2 is not enforced"


def _gpu_groups_tainted(r: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if r.type == HYPERPOD_TYPE and (r.props.get("orchestrator") or {}).get("eks"):
        for group in r.props.get("instanceGroups") or []:
            if not gpus_per_instance(str(group.get("instanceType") or "")):
                continue
            taints = (group.get("kubernetesConfig") or {}).get("taints") or []
            if not any(
                t.get("key") == "nvidia.com/gpu" and t.get("effect") == "NoSchedule" for t in taints
            ):
                name = group.get("instanceGroupName")
                yield f"HyperPod GPU group {name} lacks the taint nvidia.com/gpu:NoSchedule"
        return
    if r.type not in NODE_GROUP_TYPES or not _is_gpu_node_group(r):
        return
    taints = r.props.get("taints") or []
    if not any(
        t.get("key") == "nvidia.com/gpu" and t.get("effect") in ("NO_SCHEDULE", "NoSchedule")
        for t in taints
    ):
        yield "GPU node group lacks the taint nvidia.com/gpu:NoSchedule"


def _no_admin_iam(r: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    for document in _policy_documents(r):
        for statement in _statements(document):
            if statement.get("Effect") != "Allow":
                continue
            actions = _as_list(statement.get("Action"))
            resources = _as_list(statement.get("Resource"))
            label = (
                f"IAM statement {statement['Sid']!r}" if statement.get("Sid") else "IAM statement"
            )
            if any(a in ("*", "*:*") for a in actions) and "*" in resources:
                yield f"{label} allows * on *"
            passes_roles = "iam:PassRole" in actions or "iam:*" in actions
            if passes_roles and any(res == "*" or res.endswith(":role/*") for res in resources):
                yield f"{label} allows iam:PassRole on any role"


def _no_world_ingress(r: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if r.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        cidrs = [r.props.get("cidrIpv4"), r.props.get("cidrIpv6")]
    elif r.type == "aws:ec2/securityGroupRule:SecurityGroupRule" and r.props.get("type") == (
        "ingress"
    ):
        cidrs = list(r.props.get("cidrBlocks") or []) + list(r.props.get("ipv6CidrBlocks") or [])
    elif r.type == "aws:ec2/securityGroup:SecurityGroup":
        cidrs = [
            cidr
            for rule in r.props.get("ingress") or []
            for cidr in list(rule.get("cidrBlocks") or []) + list(rule.get("ipv6CidrBlocks") or [])
        ]
    else:
        return
    if any(c in WORLD for c in cidrs):
        yield "security group allows ingress from the whole internet"


def _private_eks_endpoint(r: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if r.type not in EKS_CLUSTER_TYPES or not config.get("requirePrivateEndpoint"):
        return
    # eks:index:Cluster takes these at the top level, aws:eks/cluster:Cluster in vpcConfig.
    settings = r.props if r.type == "eks:index:Cluster" else (r.props.get("vpcConfig") or {})
    if settings.get("endpointPublicAccess") is not False:
        yield "EKS API endpoint is public (endpointPublicAccess must be false in this stack)"
    elif settings.get("endpointPrivateAccess") is False:
        yield "EKS API endpoint has no private access"


def _required_tags(r: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if not r.type.startswith(("aws:", "aws-native:")) or (
        r.type not in TAGGABLE_TYPES and "tags" not in r.props
    ):
        return
    effective = {**_default_tags(r.provider_props), **_tag_map(r.props.get("tags"))}
    missing = [t for t in config.get("tags", REQUIRED_TAGS) if not effective.get(t)]
    if missing:
        yield f"missing required tags: {', '.join(missing)}"


def _data_protected(r: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if config.get("requireProtection") and r.type in DATA_TYPES and not r.protect:
        yield "data resource is not protected from deletion (protect: true)"


# --- stack rules: check(resources, config) -> (urn, message) -----------------------------------


def _buckets_configured(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterable[Violation]:
    """In pulumi-aws 7 bucket settings are separate resources: match them to their bucket."""
    configured: dict[str, dict[str, Resource]] = {}
    for r in resources:
        for bucket_urn in r.property_dependencies.get("bucket", ()):
            configured.setdefault(bucket_urn, {})[r.type] = r
    for bucket in (r for r in resources if r.type == "aws:s3/bucket:Bucket"):
        settings = configured.get(bucket.urn, {})
        block = settings.get("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        flags = (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
        if block is None or not all(block.props.get(f) is True for f in flags):
            yield bucket.urn, "bucket lacks a full public access block"
        sse = settings.get(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )
        algorithms = [
            (rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm")
            for rule in (sse.props.get("rules") or [] if sse else [])
        ]
        if not algorithms or not all(a in ("aws:kms", "aws:kms:dsse") for a in algorithms):
            yield bucket.urn, "bucket is not encrypted with SSE-KMS"
        versioning = settings.get("aws:s3/bucketVersioning:BucketVersioning")
        status = (
            (versioning.props.get("versioningConfiguration") or {}).get("status")
            if (versioning)
            else None
        )
        if status != "Enabled":
            yield bucket.urn, "bucket versioning is not enabled"


def _gpu_capacity_bounded(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterable[Violation]:
    """Runaway cost: the most GPUs the stack can scale to must stay under the stack's limit."""
    limit = int(config.get("maxGpus", 0))
    total = 0
    for r in resources:
        if r.type in NODE_GROUP_TYPES:
            scaling = r.props.get("scalingConfig") or {}
            types = r.props.get("instanceTypes") or [r.props.get("instanceType")]
            per_node = max((gpus_per_instance(t) for t in types if t), default=0)
            total += per_node * int(scaling.get("maxSize") or 0)
        elif r.type == HYPERPOD_TYPE:
            for group in r.props.get("instanceGroups") or []:
                total += gpus_per_instance(group.get("instanceType", "")) * int(
                    group.get("instanceCount") or 0
                )
    if total > limit:
        yield "", f"stack can scale to {total} GPUs, above its limit of {limit} (maxGpus)"


RULES: tuple[Rule, ...] = (
    Rule(
        "s3-buckets-secure",
        "S3 buckets have a full public access block, SSE-KMS and versioning",
        stack_check=_buckets_configured,
    ),
    Rule(
        "notebook-locked-down",
        "SageMaker notebooks: no direct internet, no root, IMDSv2 only",
        check=_notebook_locked_down,
    ),
    Rule(
        "nodes-imdsv2",
        "EKS node groups enforce IMDSv2 through their launch template",
        check=_imdsv2_on_nodes,
    ),
    Rule(
        "gpu-nodes-tainted",
        "GPU node groups (and HyperPod EKS GPU groups) carry the nvidia.com/gpu NoSchedule taint",
        check=_gpu_groups_tainted,
    ),
    Rule(
        "iam-no-admin",
        "No IAM statement allows * on *, nor iam:PassRole on any role",
        check=_no_admin_iam,
    ),
    Rule(
        "sg-no-world-ingress",
        "Security groups accept no ingress from 0.0.0.0/0 or ::/0",
        check=_no_world_ingress,
    ),
    Rule(
        "eks-private-endpoint",
        "EKS API endpoint is private where the stack requires it",
        check=_private_eks_endpoint,
        defaults={"requirePrivateEndpoint": False},
    ),
    Rule(
        "required-tags",
        "Taggable resources carry project, stack, owner and cost-center",
        check=_required_tags,
        defaults={"tags": list(REQUIRED_TAGS)},
    ),
    Rule(
        "data-protected",
        "Data resources (buckets, KMS keys, file systems) are protected",
        check=_data_protected,
        defaults={"requireProtection": False},
    ),
    Rule(
        "gpu-capacity-bounded",
        "The stack's maximum GPU capacity stays under maxGpus",
        stack_check=_gpu_capacity_bounded,
        defaults={"maxGpus": 64},
    ),
)


@dataclass(frozen=True)
class Finding:
    rule: str
    level: Level
    urn: str
    message: str


def rule_config(rule: Rule, pack_config: Mapping[str, Any]) -> tuple[Level, dict[str, Any]]:
    """Level and settings of `rule` from a Pulumi policy config (`{"all": level, rule: {...}}`)."""
    default_level: Level = pack_config.get("all", "advisory")
    entry = pack_config.get(rule.name, {})
    if isinstance(entry, str):
        return entry, dict(rule.defaults)  # type: ignore[return-value]
    settings = {**rule.defaults, **{k: v for k, v in entry.items() if k != "enforcementLevel"}}
    return entry.get("enforcementLevel", default_level), settings


def evaluate(resources: Sequence[Resource], pack_config: Mapping[str, Any]) -> list[Finding]:
    """Run every rule over `resources` as the policy pack would; disabled rules are skipped."""
    findings = []
    for rule in RULES:
        level, settings = rule_config(rule, pack_config)
        if level == "disabled":
            continue
        if rule.check is not None:
            for r in resources:
                findings += [Finding(rule.name, level, r.urn, m) for m in rule.check(r, settings)]
        if rule.stack_check is not None:
            findings += [
                Finding(rule.name, level, urn, m)
                for urn, m in rule.stack_check(resources, settings)
            ]
    return findings


# --- helpers --------------------------------------------------------------------------------


def _is_gpu_node_group(r: Resource) -> bool:
    ami = str(r.props.get("amiType") or "")
    types = r.props.get("instanceTypes") or [r.props.get("instanceType")]
    return "NVIDIA" in ami or "GPU" in ami or any(gpus_per_instance(t) for t in types if t)


def _policy_documents(r: Resource) -> Iterable[Mapping[str, Any]]:
    raw = []
    if r.type in POLICY_PROPS:
        raw.append(r.props.get(POLICY_PROPS[r.type]))
    if r.type == "aws:iam/role:Role":
        raw += [p.get("policy") for p in r.props.get("inlinePolicies") or []]
    for document in raw:
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except json.JSONDecodeError:
                continue
        if isinstance(document, Mapping):
            yield document


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, Mapping)]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _tag_map(tags: Any) -> dict[str, str]:
    """Tags as pulumi-aws holds them (a mapping) or as aws-native does (a list of key/value)."""
    if isinstance(tags, Mapping):
        return dict(tags)
    if isinstance(tags, (list, tuple)):
        return {t["key"]: t.get("value", "") for t in tags if isinstance(t, Mapping) and "key" in t}
    return {}


def _default_tags(provider_props: Mapping[str, Any]) -> dict[str, str]:
    """The provider's defaultTags.tags; providers receive nested settings as JSON strings."""
    default_tags = provider_props.get("defaultTags") or {}
    if isinstance(default_tags, str):
        try:
            default_tags = json.loads(default_tags)
        except json.JSONDecodeError:
            return {}
    tags = default_tags.get("tags") if isinstance(default_tags, Mapping) else None
    return dict(tags or {})
