"""A SageMaker notebook instance on the shared network: private, encrypted, auto-stopping.

`NotebookSettings` is one entry of a stack file's `notebooks` list; `NotebookInstanceArgs` adds
where the notebook sits (subnets, security group, KMS key) and which role it runs as, as IDs and
ARNs, so any program (or another Pulumi language) can place a notebook on its own network.
"""

import base64
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from mlplatform.components.catalog import NOTEBOOK_INSTANCE_HOURLY_USD, NOTEBOOK_PLATFORMS
from mlplatform.components.iam import SECRET_ARN, notebook_role
from mlplatform.components.schema import SettingError, parse, schema

_NOTEBOOK_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,39}$")


def _not_blank(value: Any) -> Any:
    """Surrounding whitespace is a typo: strip it, so a blank value is an empty one."""
    return value.strip() if isinstance(value, str) else value


@schema
class GitRepository:
    """A repository cloned into the notebook; private ones authenticate through Secrets Manager."""

    url: str = Field(min_length=1)
    """https:// URL of the repository."""
    branch: str = Field(default="main", min_length=1)
    """Branch checked out."""
    secret_arn: str | None = None
    """Secrets Manager secret with username/password for a private repository."""

    _strip = field_validator("url", "branch", mode="before")(_not_blank)

    @field_validator("url")
    @classmethod
    def _https_only(cls, url: str) -> str:
        if not url.startswith("https://"):
            raise ValueError(f"{url!r} is not an https:// git URL")
        return url

    @field_validator("secret_arn")
    @classmethod
    def _secret_arn(cls, arn: str | None) -> str | None:
        if arn is not None and not SECRET_ARN.match(arn):
            raise ValueError(f"{arn!r} is not a Secrets Manager secret ARN")
        return arn


@schema
class NotebookSettings:
    """One SageMaker notebook instance: what a stack file's `notebooks` entry sets."""

    name: str
    """The notebook's name in the stack: letters, digits and hyphens, at most 40."""
    owner: str = Field(min_length=1)
    """Who uses the notebook (tag `owner`)."""
    instance_type: str = "ml.t3.medium"
    """SageMaker notebook instance type."""
    volume_size_gb: int = Field(default=20, ge=5, le=16384)
    """Size of the encrypted ML storage volume, in GB."""
    platform_identifier: str = "notebook-al2-v3"
    """Notebook platform (Amazon Linux 2, JupyterLab version)."""
    root_access: bool = False
    """Give notebook users root on the instance."""
    idle_stop_minutes: int = Field(default=60, ge=0, le=1440)
    """Stop the notebook after this many idle minutes (0: never; otherwise at least 5)."""
    subnet_index: int = Field(default=0, ge=0)
    """Which of the private subnets the notebook sits in (its AZ)."""
    git_repository: GitRepository | None = None
    """A repository cloned into the notebook."""

    _strip = field_validator("owner", mode="before")(_not_blank)

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

    @property
    def write_prefix(self) -> str:
        """Where a notebook with its own role may write in the managed buckets."""
        return f"users/{self.name}/"


@schema
class NotebookInstanceArgs(NotebookSettings):
    """One notebook, placed by ID: subnets, security group, KMS key, and its role.

    With `role_arn` the notebook runs as that (shared) role. Without it, the notebook gets a role
    of its own that reads `bucket_arns` and writes only under `users/<name>/` in them.
    """

    subnet_ids: Sequence[pulumi.Input[str]] = Field(min_length=1)
    """The private subnets; the notebook sits in subnet_ids[subnet_index]."""
    security_group_id: pulumi.Input[str]
    """Security group of the notebook's network interface."""
    kms_key_arn: pulumi.Input[str]
    """KMS key encrypting the notebook's storage volume."""
    role_arn: pulumi.Input[str] | None = None
    """Execution role to run as; without it the notebook gets its own role (see bucket_arns)."""
    bucket_arns: Sequence[pulumi.Input[str]] = ()
    """Buckets the notebook's own role reads, and writes only under users/<name>/ of."""

    @model_validator(mode="after")
    def _placement_and_role(self) -> "NotebookInstanceArgs":
        if self.subnet_index >= len(self.subnet_ids):
            raise SettingError(
                "subnet_index",
                f"{self.subnet_index} is out of range: {len(self.subnet_ids)} subnet IDs given",
            )
        if self.role_arn is None and not self.bucket_arns:
            raise SettingError(
                "role_arn", "is required unless bucket_arns is given (the notebook's own role)"
            )
        if self.role_arn is not None and self.bucket_arns:
            raise SettingError("bucket_arns", "is only for a notebook without role_arn")
        return self


def idle_stop_script(minutes: int) -> str:
    """The on-start lifecycle script with the idle limit filled in (0 disables auto-stop)."""
    template = (
        resources.files("mlplatform.components")
        .joinpath("scripts/notebook-on-start.sh")
        .read_text()
    )
    return template.replace("@IDLE_STOP_MINUTES@", str(minutes))


class NotebookInstance(pulumi.ComponentResource):
    """Notebook instance + lifecycle configuration (+ code repository, + own role if isolated)."""

    name: pulumi.Output[str]
    """The SageMaker notebook instance's name."""
    url: pulumi.Output[str]
    """The notebook's URL (https://...)."""
    role_arn: pulumi.Output[str]
    """The execution role the notebook runs as."""

    def __init__(
        self, name: str, args: NotebookInstanceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args = parse(NotebookInstanceArgs, args)  # a mapping when another language calls
        super().__init__("mlplatform:index:NotebookInstance", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        role_arn = args.role_arn if args.role_arn is not None else own_role(name, args, self)

        lifecycle = aws.sagemaker.NotebookInstanceLifecycleConfiguration(
            f"{name}-lifecycle",
            name=f"{name}-on-start",
            on_start=base64.b64encode(idle_stop_script(args.idle_stop_minutes).encode()).decode(),
            opts=child,
        )

        repository_name: pulumi.Output[str] | None = None
        if args.git_repository is not None:
            git = args.git_repository
            repository = aws.sagemaker.CodeRepository(
                f"{name}-repo",
                code_repository_name=f"{name}-repo",
                git_config={
                    "repository_url": git.url,
                    "branch": git.branch,
                    "secret_arn": git.secret_arn,
                },
                opts=child,
            )
            repository_name = repository.code_repository_name

        notebook = aws.sagemaker.NotebookInstance(
            name,
            name=name,
            instance_type=args.instance_type,
            platform_identifier=args.platform_identifier,
            volume_size=args.volume_size_gb,
            kms_key_id=args.kms_key_arn,
            role_arn=role_arn,
            subnet_id=args.subnet_ids[args.subnet_index],
            security_groups=[args.security_group_id],
            direct_internet_access="Disabled",
            root_access="Enabled" if args.root_access else "Disabled",
            instance_metadata_service_configuration={
                "minimum_instance_metadata_service_version": "2"
            },
            lifecycle_config_name=lifecycle.name,
            default_code_repository=repository_name,
            tags={"owner": args.owner, "auto-stop-idle-minutes": str(args.idle_stop_minutes)},
            opts=child,
        )

        self.name = notebook.name
        self.url = notebook.url.apply(lambda host: f"https://{host}")
        self.role_arn = pulumi.Output.from_input(role_arn)
        self.register_outputs({"name": self.name, "url": self.url, "roleArn": self.role_arn})


def own_role(name: str, args: NotebookInstanceArgs, parent: pulumi.Resource) -> pulumi.Output[str]:
    """A role for this notebook alone, writing only under `users/<name>/` of its buckets."""
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    git = args.git_repository
    role = notebook_role(
        name,
        description=f"Execution role of notebook {name} (writes only under {args.write_prefix})",
        partition=aws.get_partition_output(opts=invoke).partition,
        region=aws.get_region_output(opts=invoke).region,
        account_id=aws.get_caller_identity_output(opts=invoke).account_id,
        bucket_arns=args.bucket_arns,
        kms_key_arn=args.kms_key_arn,
        git_secret_arns=[git.secret_arn] if git and git.secret_arn else [],
        write_prefix=args.write_prefix,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return role.arn


__all__ = [
    "GitRepository",
    "NotebookInstance",
    "NotebookInstanceArgs",
    "NotebookSettings",
    "idle_stop_script",
]
