"""The stack's configuration, parsed once into typed, validated objects.

Everything the program reads from `Pulumi.<stack>.yaml` goes through `parse_stack_config`, so a
mistake (unknown key, wrong type, out-of-range value, impossible combination) stops the program
before any resource is registered, with one line naming the stack file and the key:

    Pulumi.staging.yaml: mlplatform:notebooks[1].instanceType: 'ml.t3.huge' is not a SageMaker
    notebook instance type

Components never read `pulumi.Config`; the stack builder hands them Args built from this object.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.catalog import (
    DEFAULT_INTERFACE_ENDPOINTS,
    INTERFACE_ENDPOINTS,
    NOTEBOOK_INSTANCE_HOURLY_USD,
    NOTEBOOK_PLATFORMS,
)

PROJECT = "mlplatform"


_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_NOTEBOOK_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,39}$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")


class ConfigError(pulumi.RunError):
    """A stack configuration mistake. Its message is the whole report; no traceback follows."""


class _Model(BaseModel):
    """Config objects: camelCase keys as in the stack file, unknown keys refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class GitRepository(_Model):
    """A repository cloned into the notebook; private ones authenticate through Secrets Manager."""

    url: NonEmpty
    branch: NonEmpty = "main"
    secret_arn: str | None = None

    @field_validator("url")
    @classmethod
    def _https_only(cls, url: str) -> str:
        if not url.startswith("https://"):
            raise ValueError(f"{url!r} is not an https:// git URL")
        return url

    @field_validator("secret_arn")
    @classmethod
    def _secret_arn(cls, arn: str | None) -> str | None:
        if arn is not None and not _SECRET_ARN.match(arn):
            raise ValueError(f"{arn!r} is not a Secrets Manager secret ARN")
        return arn


class NotebookConfig(_Model):
    """One SageMaker notebook instance on the shared infrastructure."""

    name: str
    owner: NonEmpty
    instance_type: str = "ml.t3.medium"
    volume_size_gb: int = Field(default=20, ge=5, le=16384)
    platform_identifier: str = "notebook-al2-v3"
    root_access: bool = False
    idle_stop_minutes: int = Field(default=60, ge=0, le=1440)
    subnet_index: int = Field(default=0, ge=0)
    git_repository: GitRepository | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NOTEBOOK_NAME.match(name):
            raise ValueError(
                f"{name!r} is not a notebook name (letters, digits and hyphens, at most 40)"
            )
        return name

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, instance_type: str) -> str:
        if instance_type not in NOTEBOOK_INSTANCE_HOURLY_USD:
            raise ValueError(f"{instance_type!r} is not a SageMaker notebook instance type")
        return instance_type

    @field_validator("platform_identifier")
    @classmethod
    def _platform(cls, platform: str) -> str:
        if platform not in NOTEBOOK_PLATFORMS:
            known = ", ".join(sorted(NOTEBOOK_PLATFORMS))
            raise ValueError(f"{platform!r} is not a notebook platform (one of {known})")
        return platform

    @field_validator("idle_stop_minutes")
    @classmethod
    def _idle(cls, minutes: int) -> int:
        if 0 < minutes < 5:
            raise ValueError(f"{minutes} is too short: 0 disables auto-stop, otherwise at least 5")
        return minutes


class StackConfig(_Model):
    """Every setting of one stack. Field names are the config keys (camelCase in the file)."""

    region: str
    owner: NonEmpty
    cost_center: NonEmpty
    # Network: create a VPC ...
    vpc_cidr: str = "10.0.0.0/16"
    availability_zones: int = Field(default=2, ge=1, le=6)
    nat_gateways: Literal["none", "single", "perAz"] = "single"
    # ... or adopt an existing one.
    existing_vpc_id: str | None = None
    existing_private_subnet_ids: tuple[str, ...] = ()
    existing_private_route_table_ids: tuple[str, ...] = ()
    vpc_endpoints: tuple[str, ...] = DEFAULT_INTERFACE_ENDPOINTS
    # Data.
    protect_data: bool = False
    force_destroy_buckets: bool = False
    noncurrent_version_days: int = Field(default=30, ge=1, le=3650)
    abort_multipart_days: int = Field(default=7, ge=1, le=365)
    per_user_s3_prefixes: bool = False
    # Notebooks.
    notebooks: tuple[NotebookConfig, ...] = ()

    @field_validator("region")
    @classmethod
    def _region(cls, region: str) -> str:
        if not _REGION.match(region):
            raise ValueError(f"{region!r} is not an AWS region")
        return region

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, cidr: str) -> str:
        try:
            network = ipaddress.IPv4Network(cidr)
        except ValueError:
            raise ValueError(f"{cidr!r} is not an IPv4 CIDR block") from None
        if not 16 <= network.prefixlen <= 22:
            raise ValueError(f"{cidr!r} must be between /16 and /22 to hold the subnets")
        return cidr

    @field_validator("existing_vpc_id")
    @classmethod
    def _vpc_id(cls, vpc_id: str | None) -> str | None:
        if vpc_id == "":
            return None
        if vpc_id is not None and not re.match(r"^vpc-[0-9a-f]{8,17}$", vpc_id):
            raise ValueError(f"{vpc_id!r} is not a VPC ID")
        return vpc_id

    @field_validator("existing_private_subnet_ids")
    @classmethod
    def _subnet_ids(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        for subnet_id in ids:
            if not re.match(r"^subnet-[0-9a-f]{8,17}$", subnet_id):
                raise ValueError(f"{subnet_id!r} is not a subnet ID")
        return ids

    @field_validator("existing_private_route_table_ids")
    @classmethod
    def _route_table_ids(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        for table_id in ids:
            if not re.match(r"^rtb-[0-9a-f]{8,17}$", table_id):
                raise ValueError(f"{table_id!r} is not a route table ID")
        return ids

    @field_validator("vpc_endpoints")
    @classmethod
    def _endpoints(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if name not in INTERFACE_ENDPOINTS:
                raise ValueError(f"{name!r} is not a known interface endpoint")
        if len(set(names)) != len(names):
            raise ValueError("lists an endpoint twice")
        return names

    @model_validator(mode="after")
    def _combinations(self) -> StackConfig:
        if self.existing_vpc_id is not None:
            if not self.existing_private_subnet_ids:
                raise _KeyError("existingPrivateSubnetIds", "is required with existingVpcId")
            if not self.existing_private_route_table_ids:
                raise _KeyError("existingPrivateRouteTableIds", "is required with existingVpcId")
        elif self.existing_private_subnet_ids or self.existing_private_route_table_ids:
            raise _KeyError("existingVpcId", "is required when existing subnets are given")
        if self.protect_data and self.force_destroy_buckets:
            raise _KeyError("forceDestroyBuckets", "cannot be true while protectData is true")
        names = [notebook.name for notebook in self.notebooks]
        for index, notebook in enumerate(self.notebooks):
            if names.index(notebook.name) != index:
                raise _KeyError(f"notebooks[{index}].name", f"{notebook.name!r} is used twice")
            if notebook.subnet_index >= self.private_subnet_count:
                raise _KeyError(
                    f"notebooks[{index}].subnetIndex",
                    f"{notebook.subnet_index} is out of range: "
                    f"the stack has {self.private_subnet_count} private subnets",
                )
        return self

    @property
    def private_subnet_count(self) -> int:
        if self.existing_vpc_id is not None:
            return len(self.existing_private_subnet_ids)
        return self.availability_zones

    @property
    def git_secret_arns(self) -> tuple[str, ...]:
        """Secrets the notebooks need to clone their repositories."""
        arns = {
            nb.git_repository.secret_arn
            for nb in self.notebooks
            if nb.git_repository and nb.git_repository.secret_arn
        }
        return tuple(sorted(arns))


class _KeyError(ValueError):
    """A combination error that belongs to a specific key rather than the whole config."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


# Keys outside our namespace that the program reads; everything else outside it is ignored.
_PROVIDER_KEYS = {"aws:region": "region"}


def parse_stack_config(raw: Mapping[str, Any], stack_file: str) -> StackConfig:
    """Validate raw config (`{"mlplatform:key": value, "aws:region": ...}`) into a StackConfig.

    Values may be native (from YAML) or strings as the Pulumi engine passes them (JSON for
    structured values). Raises ConfigError with one line naming `stack_file` and the key.
    """
    data: dict[str, Any] = {}
    for full_key, value in raw.items():
        if full_key in _PROVIDER_KEYS:
            data[_PROVIDER_KEYS[full_key]] = _decode(value)
            continue
        namespace, _, key = full_key.partition(":")
        if namespace != PROJECT:
            continue
        data[key] = _decode(value)
    if "region" not in data:
        raise ConfigError(f"{stack_file}: aws:region: is required")
    try:
        return StackConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, data, stack_file)) from None


def load_stack_config() -> StackConfig:
    """Parse the running Pulumi program's config (engine-provided, or set by mocks)."""
    from pulumi.runtime import config as runtime_config

    raw = dict(runtime_config.get_config_env() or {})
    raw.update(runtime_config.CONFIG.get())
    return parse_stack_config(raw, f"Pulumi.{pulumi.get_stack()}.yaml")


def _decode(value: Any) -> Any:
    """The engine passes structured config as JSON strings; YAML gives native values."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


_TYPE_MESSAGES = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "tuple_type": "expected a list",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "dict_type": "expected a mapping",
}


def _describe(error: ValidationError, data: Mapping[str, Any], stack_file: str) -> str:
    """One line for the first problem: `<file>: mlplatform:<key path>: <what is wrong>`."""
    first = error.errors(include_url=False)[0]
    loc = [part for part in first["loc"] if part != "function-after"]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, _KeyError):
        return f"{stack_file}: {_full_key(cause.key)}: {cause}"
    path = _path(loc)
    kind = first["type"]
    value = first.get("input")
    if kind == "missing":
        message = "is required"
    elif kind == "extra_forbidden":
        message = "is not a known key" + _suggestion(loc, data)
    elif kind == "literal_error":
        message = f"{value!r} is not one of {first['ctx']['expected']}"
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = next(iter(first["ctx"].values()))
        relation = {
            "greater_than_equal": ">=",
            "less_than_equal": "<=",
            "greater_than": ">",
            "less_than": "<",
        }[kind]
        message = f"{value!r} is out of range (must be {relation} {bound})"
    elif kind == "string_too_short":
        message = "must not be empty"
    elif kind in _TYPE_MESSAGES:
        message = f"{_TYPE_MESSAGES[kind]}, got {value!r}"
    elif kind == "value_error" and cause is not None:
        message = str(cause)
    else:
        message = first["msg"]
    return f"{stack_file}: {_full_key(path)}: {message}"


def _full_key(path: str) -> str:
    return "aws:region" if path == "region" else f"{PROJECT}:{path}"


def _path(loc: list[Any]) -> str:
    """`("notebooks", 1, "instanceType")` -> `notebooks[1].instanceType`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _suggestion(loc: list[Any], data: Mapping[str, Any]) -> str:
    """Name the closest known key for a typo, which is what the user almost always meant."""
    import difflib

    model: type[BaseModel] = StackConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(_snake(str(part)))
        inner = _model_of(field.annotation) if field else None
        if inner is None:
            return ""
        model = inner
    known = [to_camel(name) for name in model.model_fields]
    if model is StackConfig:
        known = [k for k in known if k != "region"]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The config model inside `X`, `X | None` or `tuple[X, ...]`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()
