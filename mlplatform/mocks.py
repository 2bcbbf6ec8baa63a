"""Pulumi mocks with realistic AWS answers, shared by the offline plan and the tests.

`PlatformMocks` answers resource registrations (IDs and ARNs shaped like AWS's) and provider
functions (caller identity, AZs, ...). `RecordingMonitor` records every registration with its
options, and replaces resource references by their ID/URN before the stock monitor deserializes
them: deserializing a reference rebuilds a Resource on the monitor's own event loop, which made
one in a few runs fail with "attached to a different loop" (FINDINGS).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.sync_await import _ensure_event_loop

from mlplatform.components.schema import SECRET_MASK

ACCOUNT_ID = "123456789012"
PARTITION = "aws"

_SIG_KEY = "4dabf18193072939515e22adb298388d"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


@dataclass
class Registration:
    """One resource as the engine would have received it, and what the mocks answered."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    protect: bool = False
    retain_on_delete: bool = False
    depends_on: list[str] = field(default_factory=list)
    # Which resources each input came from (input name -> URNs), as the engine tracks it.
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    provider: str = ""
    # The inputs with every secret replaced by SECRET_MASK: what a plan may print.
    masked_inputs: dict[str, Any] = field(default_factory=dict)


def _digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


# Resource types whose AWS IDs have a well-known prefix.
_ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
    "aws:ec2/route:Route": "r-rtb",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt",
    "aws:ec2/placementGroup:PlacementGroup": "pg",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
    "aws:ec2/securityGroupRule:SecurityGroupRule": "sgrule",
}

# Resource types identified by their name, with the ARN resource part that goes with it.
_NAMED_ARNS = {
    "aws:iam/role:Role": ("iam", "role/{name}"),
    "aws:iam/policy:Policy": ("iam", "policy/{name}"),
    "aws:iam/instanceProfile:InstanceProfile": ("iam", "instance-profile/{name}"),
    "aws:sagemaker/notebookInstance:NotebookInstance": ("sagemaker", "notebook-instance/{name}"),
    "aws:sagemaker/notebookInstanceLifecycleConfiguration:NotebookInstanceLifecycleConfiguration": (
        "sagemaker",
        "notebook-instance-lifecycle-config/{name}",
    ),
    "aws:sagemaker/codeRepository:CodeRepository": ("sagemaker", "code-repository/{name}"),
    "aws:ecr/repository:Repository": ("ecr", "repository/{name}"),
    "aws:cloudwatch/logGroup:LogGroup": ("logs", "log-group:{name}"),
    "aws:secretsmanager/secret:Secret": ("secretsmanager", "secret:{name}-AbCdEf"),
}

# Inputs that carry the physical name of a resource, when the program sets one.
_NAME_INPUTS = ("name", "codeRepositoryName", "bucket", "clusterName", "roleName")


class PlatformMocks(Mocks):
    """Deterministic, AWS-shaped answers: the same program always gets the same IDs."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.unanswered_calls: list[str] = []

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        account = "" if service == "s3" else ACCOUNT_ID
        return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        typ, name = args.typ, args.name
        if typ == "eks:index:Cluster":
            return self._eks_cluster(name, inputs)
        if not args.custom or typ.startswith("pulumi:providers:"):
            return f"{name}-id", inputs
        physical = next((inputs[k] for k in _NAME_INPUTS if isinstance(inputs.get(k), str)), None)
        outputs = dict(inputs)

        if typ == "aws:s3/bucket:Bucket":
            bucket = physical or f"{name}-{_digest(typ, name, length=7)}"
            outputs.update(
                bucket=bucket,
                arn=f"arn:{PARTITION}:s3:::{bucket}",
                bucketDomainName=f"{bucket}.s3.amazonaws.com",
                bucketRegionalDomainName=f"{bucket}.s3.{self.region}.amazonaws.com",
                region=self.region,
            )
            return bucket, outputs
        if typ == "aws:kms/key:Key":
            key_id = str(uuid.UUID(hex=_digest(typ, name, length=32)))
            outputs.update(keyId=key_id, arn=self.arn("kms", f"key/{key_id}"))
            return key_id, outputs
        if typ == "aws:kms/alias:Alias":
            outputs["arn"] = self.arn("kms", str(inputs.get("name", name)))
            return str(inputs.get("name", name)), outputs
        if typ == "aws:fsx/lustreFileSystem:LustreFileSystem":
            fs_id = f"fs-{_digest(typ, name)}"
            outputs.update(
                arn=self.arn("fsx", f"file-system/{fs_id}"),
                dnsName=f"{fs_id}.fsx.{self.region}.amazonaws.com",
                mountName=_digest("mount", name, length=8),
            )
            return fs_id, outputs
        if typ == "aws-native:sagemaker:Cluster":
            # HyperPod cluster ARNs end in a 12-character lowercase ID, not the name.
            arn = self.arn("sagemaker", f"cluster/{_digest(typ, name, length=12)}")
            outputs.update(
                clusterArn=arn,
                clusterName=inputs.get("clusterName") or name,
                clusterStatus="InService",
            )
            return arn, outputs
        if typ in _NAMED_ARNS:
            service, pattern = _NAMED_ARNS[typ]
            resource_name = physical or f"{name}-{_digest(typ, name, length=7)}"
            regional = service != "iam"
            outputs.update(
                name=resource_name,
                arn=self.arn(service, pattern.format(name=resource_name), regional=regional),
            )
            if typ == "aws:iam/role:Role":
                outputs["uniqueId"] = "AROA" + _digest(typ, name, length=17).upper()
            if typ == "aws:sagemaker/notebookInstance:NotebookInstance":
                outputs["url"] = f"{resource_name}.notebook.{self.region}.sagemaker.aws"
                outputs["networkInterfaceId"] = f"eni-{_digest(typ, name)}"
            if typ == "aws:sagemaker/codeRepository:CodeRepository":
                outputs["codeRepositoryName"] = resource_name
            if typ == "aws:ecr/repository:Repository":
                outputs["repositoryUrl"] = (
                    f"{ACCOUNT_ID}.dkr.ecr.{self.region}.amazonaws.com/{resource_name}"
                )
                outputs["registryId"] = ACCOUNT_ID
            return resource_name, outputs
        if typ in _ID_PREFIXES:
            resource_id = f"{_ID_PREFIXES[typ]}-{_digest(typ, name)}"
            outputs["arn"] = self.arn("ec2", f"{typ.split(':')[-1].lower()}/{resource_id}")
            if typ == "aws:ec2/vpc:Vpc":
                outputs["defaultSecurityGroupId"] = f"sg-{_digest('default', name)}"
            if typ == "aws:ec2/eip:Eip":
                outputs["allocationId"] = resource_id
                outputs["publicIp"] = f"203.0.113.{int(_digest(name, length=2), 16) % 254 + 1}"
            if typ == "aws:ec2/vpcEndpoint:VpcEndpoint" and inputs.get("vpcEndpointType") == (
                "Gateway"
            ):
                outputs["prefixListId"] = f"pl-{_digest('pl', name, length=8)}"
            if typ == "aws:ec2/securityGroup:SecurityGroup":
                outputs["name"] = physical or f"{name}-{_digest(typ, name, length=7)}"
            if typ == "aws:ec2/launchTemplate:LaunchTemplate":
                outputs["latestVersion"] = 1
                outputs["defaultVersion"] = 1
            if typ == "aws:ec2/placementGroup:PlacementGroup":
                outputs["name"] = physical or f"{name}-{_digest(typ, name, length=7)}"
            return resource_id, outputs
        if typ == "docker-build:index:Image":
            # What a build would report: the pushed manifest's digest, and the first tag by it.
            digest = (
                "sha256:"
                + hashlib.sha256(
                    json.dumps(inputs, sort_keys=True, default=str).encode()
                ).hexdigest()
            )
            outputs["digest"] = digest
            tags = inputs.get("tags") or []
            if tags:
                outputs["ref"] = f"{str(tags[0]).rsplit(':', 1)[0]}@{digest}"
            return f"{name}-{_digest(typ, name, length=8)}", outputs
        if typ == "aws:eks/addon:Addon":
            cluster, addon = inputs.get("clusterName"), inputs.get("addonName")
            outputs["arn"] = self.arn(
                "eks", f"addon/{cluster}/{addon}/{_digest(typ, name, length=36)}"
            )
            outputs["addonVersion"] = inputs.get("addonVersion") or "v1.0.0-eksbuild.1"
            return f"{cluster}:{addon}", outputs
        return f"{name}-{_digest(typ, name, length=8)}", outputs

    def _eks_cluster(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """pulumi-eks's Cluster is a remote component: answer the outputs it would have.

        `eksCluster` and `core` (resource references) are not answered; components use the
        scalar outputs only.
        """
        cluster_name = str(inputs.get("name") or f"{name}-eksCluster-{_digest(name, length=7)}")
        oidc_id = _digest("oidc", cluster_name, length=32).upper()
        issuer = f"oidc.eks.{self.region}.amazonaws.com/id/{oidc_id}"
        endpoint = f"https://{oidc_id}.gr7.{self.region}.eks.amazonaws.com"
        kubeconfig = mock_kubeconfig(cluster_name, endpoint, self.region)
        outputs = dict(inputs)
        outputs.update(
            kubeconfig=kubeconfig,
            kubeconfigJson=json.dumps(kubeconfig),
            clusterSecurityGroupId=f"sg-{_digest('eks-cluster-sg', cluster_name)}",
            oidcProviderArn=self.arn("iam", f"oidc-provider/{issuer}", regional=False),
            oidcProviderUrl=f"https://{issuer}",
            oidcIssuer=issuer,
        )
        if not inputs.get("skipDefaultSecurityGroups"):
            outputs["nodeSecurityGroupId"] = f"sg-{_digest('eks-node-sg', cluster_name)}"
        return f"{cluster_name}-id", outputs

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        token, call_args = args.token, args.args
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/pulumi-deployer",
                "userId": "AROAEXAMPLE:pulumi",
                "id": ACCOUNT_ID,
            }, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": PARTITION, "dnsSuffix": "amazonaws.com", "id": PARTITION}, []
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            letters = "abcdef"
            return {
                "names": [f"{self.region}{c}" for c in letters],
                "zoneIds": [f"use1-az{i + 1}" for i in range(len(letters))],
                "id": self.region,
            }, []
        if token == "aws:ec2/getVpc:getVpc":
            return {"id": call_args.get("id"), "cidrBlock": "10.0.0.0/16"}, []
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {
                "authorizationToken": "QVdTOm1vY2s=",
                "userName": "AWS",
                "password": "mock-password",
                "proxyEndpoint": f"https://{ACCOUNT_ID}.dkr.ecr.{self.region}.amazonaws.com",
                "id": self.region,
            }, []
        self.unanswered_calls.append(token)
        return {}, []


def mock_kubeconfig(cluster_name: str, endpoint: str, region: str) -> dict[str, Any]:
    """A kubeconfig shaped like pulumi-eks's: the user runs `aws eks get-token`."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": endpoint, "certificate-authority-data": "LS0tLS1CRUdJTg=="},
            }
        ],
        "contexts": [{"name": "aws", "context": {"cluster": cluster_name, "user": "aws"}}],
        "current-context": "aws",
        "users": [
            {
                "name": "aws",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": ["eks", "get-token", "--cluster-name", cluster_name],
                        "env": [{"name": "AWS_REGION", "value": region}],
                    }
                },
            }
        ],
    }


def unwrap_secret(value: Any) -> Any:
    """A recorded input that was a secret as a whole arrives in its envelope; return the value."""
    if isinstance(value, dict) and value.get(_SIG_KEY) == _SECRET_SIG:
        return value.get("value")
    return value


def _mask_secrets(value: struct_pb2.Value) -> None:
    """Replace serialized secrets (in place) by SECRET_MASK."""
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        fields = value.struct_value.fields
        if _SIG_KEY in fields and fields[_SIG_KEY].string_value == _SECRET_SIG:
            value.string_value = SECRET_MASK
            return
        for inner in fields.values():
            _mask_secrets(inner)
    elif kind == "list_value":
        for inner in value.list_value.values:
            _mask_secrets(inner)


def _strip_references(value: struct_pb2.Value) -> None:
    """Replace serialized resource references (in place) by the referenced ID, else its URN."""
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        fields = value.struct_value.fields
        if _SIG_KEY in fields and fields[_SIG_KEY].string_value == _RESOURCE_SIG:
            resource_id = fields["id"].string_value if "id" in fields else ""
            value.string_value = resource_id or fields["urn"].string_value
            return
        for inner in fields.values():
            _strip_references(inner)
    elif kind == "list_value":
        for inner in value.list_value.values:
            _strip_references(inner)


class RecordingMonitor(MockMonitor):
    """The stock mock monitor, plus a record of every registration and reference stripping."""

    def __init__(self, mocks: PlatformMocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        patched = type(request)()
        patched.CopyFrom(request)
        for value in patched.object.fields.values():
            _strip_references(value)
        response = super().RegisterResource(patched)
        _ensure_event_loop()
        masked = struct_pb2.Struct()
        masked.CopyFrom(patched.object)
        for value in masked.fields.values():
            _mask_secrets(value)
        self.registrations.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=bool(request.custom),
                inputs=rpc.deserialize_properties(patched.object),
                id=response.id,
                outputs=rpc.deserialize_properties(response.object),
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                depends_on=list(request.dependencies),
                property_dependencies={
                    key: list(deps.urns) for key, deps in request.propertyDependencies.items()
                },
                provider=request.provider,
                masked_inputs=rpc.deserialize_properties(masked),
            )
        )
        return response
