"""A SageMaker notebook instance placed on the SharedInfra: private, encrypted, auto-stopping."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from importlib import resources

import pulumi
import pulumi_aws as aws

from mlplatform.components.iam import notebook_role
from mlplatform.components.shared_infra import SharedInfra


@dataclass(frozen=True)
class GitRepositoryArgs:
    url: str
    branch: str = "main"
    secret_arn: str | None = None  # Secrets Manager secret with username/password for the repo


@dataclass(frozen=True)
class NotebookInstanceArgs:
    """One notebook. Network, role, key and security group come from `shared`.

    `write_prefix` (e.g. `users/alice/`) gives the notebook its own role that may write only
    under that prefix of the managed buckets (reads stay shared), instead of the shared role.
    """

    shared: SharedInfra
    owner: str
    instance_type: str = "ml.t3.medium"
    volume_size_gb: int = 20
    platform_identifier: str = "notebook-al2-v3"
    root_access: bool = False
    idle_stop_minutes: int = 60
    subnet_index: int = 0
    git_repository: GitRepositoryArgs | None = None
    write_prefix: str | None = None


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
    url: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: NotebookInstanceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:index:NotebookInstance", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        shared = args.shared

        role_arn = shared.notebook_role_arn
        if args.write_prefix:
            role_arn = self._isolated_role(name, args, args.write_prefix)

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
            kms_key_id=shared.kms_key_arn,
            role_arn=role_arn,
            subnet_id=shared.private_subnet_ids[args.subnet_index],
            security_groups=[shared.notebook_security_group_id],
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

    def _isolated_role(
        self, name: str, args: NotebookInstanceArgs, write_prefix: str
    ) -> pulumi.Output[str]:
        """A role for this notebook alone, writing only under `write_prefix`."""
        shared = args.shared
        git_secrets = (
            [args.git_repository.secret_arn]
            if args.git_repository and args.git_repository.secret_arn
            else []
        )
        role = notebook_role(
            name,
            description=f"Execution role of notebook {name} (writes only under {write_prefix})",
            partition=shared.partition,
            region=shared.region,
            account_id=shared.account_id,
            bucket_arns=shared.bucket_arns,
            kms_key_arn=shared.kms_key_arn,
            git_secret_arns=git_secrets,
            write_prefix=write_prefix,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role.arn
