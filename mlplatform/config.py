"""The stack's configuration, parsed once into typed, validated objects.

Everything the program reads from `Pulumi.<stack>.yaml` goes through `parse_stack_config`, so a
mistake (unknown key, wrong type, out-of-range value, impossible combination) stops the program
before any resource is registered, with one line naming the stack file and the key:

    Pulumi.staging.yaml: mlplatform:notebooks[1].instanceType: 'ml.t3.huge' is not a SageMaker
    notebook instance type

Components never read `pulumi.Config`; the stack builder hands them Args built from this object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from mlplatform.components.arc_runners import ArcRunnersSettings, check_runner_placement
from mlplatform.components.eks import GpuEksClusterSettings, GpuNodeGroup
from mlplatform.components.hyperpod import HYPERPOD_EKS_ENDPOINTS, HyperPodClusterSettings
from mlplatform.components.notebook import NotebookSettings
from mlplatform.components.schema import SettingError as _KeyError
from mlplatform.components.schema import describe, schema
from mlplatform.components.shared_infra import SharedInfraSettings
from mlplatform.components.training_manifests import TrainingEngine, TrainingJobSettings
from mlplatform.mocks import SECRET_MASK

PROJECT = "mlplatform"


# Longest HyperPod cluster name a stack file may give: the program prefixes it with the project
# and stack names.
HYPERPOD_STACK_NAME_MAX = 40


class ConfigError(pulumi.RunError):
    """A stack configuration mistake. Its message is the whole report; no traceback follows."""


class _Model(BaseModel):
    """Config objects: camelCase keys as in the stack file, unknown keys refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


@schema
class ArcConfig(ArcRunnersSettings):
    """The stack's `arc` section: ArcRunners' settings, and whether the stack builds the images."""

    build_images: bool = True
    """Build the runner images (docker/runner-*) into ECR with Pulumi; false: the official one."""


@schema
class StackConfig(SharedInfraSettings):
    """Every setting of one stack. Field names are the config keys (camelCase in the file).

    The flat keys of the shared layer (region, network, endpoints, data) are SharedInfra's own
    settings, inherited; the notebooks are NotebookInstance's. This class adds the stack's
    identity, its sections, and the checks that span sections.
    """

    owner: str = Field(min_length=1)
    """Team that owns the stack (tag `owner` on every resource)."""
    cost_center: str = Field(min_length=1)
    """Cost center billed for the stack (tag `cost-center` on every resource)."""
    per_user_s3_prefixes: bool = False
    """Give each notebook its own role that writes only under users/<notebook>/."""
    notebooks: Sequence[NotebookSettings] = ()
    """SageMaker notebook instances on the shared network."""
    hyperpod_clusters: Sequence[HyperPodClusterSettings] = ()
    """SageMaker HyperPod clusters."""
    eks: GpuEksClusterSettings | None = None
    """GPU Kubernetes (GpuEksCluster); none when absent."""
    training_jobs: Sequence[TrainingJobSettings] = ()
    """Training jobs deployed onto the stack's EKS cluster."""
    arc: ArcConfig | None = None
    """GitHub Actions runners on that cluster (ArcRunners); none when absent."""
    github_app_private_key: SecretStr | None = None
    """Secret (`pulumi config set --secret`): the GitHub App's private key."""
    github_token: SecretStr | None = None
    """Secret (`pulumi config set --secret`): a GitHub token, the fallback to the App."""

    @field_validator("owner", "cost_center", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _combinations(self) -> StackConfig:
        names = [notebook.name for notebook in self.notebooks]
        for index, notebook in enumerate(self.notebooks):
            if names.index(notebook.name) != index:
                raise _KeyError(f"notebooks[{index}].name", f"{notebook.name!r} is used twice")
            self._check_subnet(notebook.subnet_index, f"notebooks[{index}].subnetIndex")
        clusters = [cluster.name for cluster in self.hyperpod_clusters]
        for index, cluster in enumerate(self.hyperpod_clusters):
            key = f"hyperpodClusters[{index}]"
            if len(cluster.name) > HYPERPOD_STACK_NAME_MAX:
                # The stack names the cluster mlplatform-<stack>-<name>; HyperPod allows 63.
                raise _KeyError(
                    f"{key}.name",
                    f"{cluster.name!r} is not a cluster name (letters, digits, hyphens, at most "
                    f"{HYPERPOD_STACK_NAME_MAX})",
                )
            if clusters.index(cluster.name) != index:
                raise _KeyError(f"{key}.name", f"{cluster.name!r} is used twice")
            self._check_subnet(cluster.subnet_index, f"{key}.subnetIndex")
            if cluster.orchestrator == "eks" and cluster.eks_cluster_arn is None and not self.eks:
                raise _KeyError(
                    f"{key}.eksClusterArn",
                    "is required with orchestrator eks when the stack has no eks cluster "
                    "(mlplatform:eks): the EKS cluster the nodes join",
                )
            no_nat = self.existing_vpc_id is None and self.nat_gateways == "none"
            if cluster.internet_egress and no_nat:
                raise _KeyError(
                    f"{key}.internetEgress", "needs a NAT gateway (natGateways is none)"
                )
            if cluster.orchestrator == "eks" and not cluster.internet_egress:
                missing = [e for e in HYPERPOD_EKS_ENDPOINTS if e not in self.vpc_endpoints]
                if missing:
                    raise _KeyError(
                        "vpcEndpoints",
                        f"lacks {', '.join(missing)}: the nodes of HyperPod cluster "
                        f"{cluster.name!r} (orchestrator eks, no internetEgress) reach SageMaker "
                        "and EKS Pod Identity only through them",
                    )
            if cluster.dependencies_chart is not None and cluster.eks_cluster_arn is not None:
                raise _KeyError(
                    f"{key}.dependenciesChart",
                    "needs the stack's own EKS cluster (no kubeconfig for a cluster given by ARN)",
                )
        if self.arc is not None:
            self._check_arc(self.arc)
        if self.eks is not None:
            for index, group in enumerate(self.eks.gpu_node_groups):
                if group.efa:
                    self._check_subnet(
                        group.subnet_index, f"eks.gpuNodeGroups[{index}].subnetIndex"
                    )
        self._check_training_jobs()
        return self

    def _check_arc(self, arc: ArcConfig) -> None:
        if self.eks is None:
            raise _KeyError("arc", "needs the stack's EKS cluster (mlplatform:eks)")
        jobs = {job.namespace for job in self.training_jobs}
        for key in ("controller_namespace", "runners_namespace"):
            if getattr(arc, key) in jobs:
                # Each component creates (and on destroy deletes) its own namespaces.
                raise _KeyError(f"arc.{key}", f"{getattr(arc, key)!r} is a trainingJobs namespace")
        if arc.auth == "app" and self.github_app_private_key is None:
            raise _KeyError(
                "githubAppPrivateKey",
                "is required with arc.auth app (pulumi config set --secret "
                "mlplatform:githubAppPrivateKey < key.pem)",
            )
        if arc.auth == "token" and self.github_token is None:
            raise _KeyError(
                "githubToken",
                "is required with arc.auth token "
                "(pulumi config set --secret mlplatform:githubToken)",
            )
        groups = [group.name for group in self.eks.gpu_node_groups]
        try:
            check_runner_placement(arc.runner_classes, groups, "eks.gpuNodeGroups")
        except _KeyError as error:
            raise _KeyError(f"arc.{error.key}", str(error)) from None
        for index, runner in enumerate(arc.runner_classes):
            if not runner.gpu:
                continue
            group = self.eks.gpu_node_groups[groups.index(runner.node_group or groups[0])]
            if runner.gpus > group.gpus_per_node:
                raise _KeyError(
                    f"arc.runnerClasses[{index}].gpus",
                    f"{runner.gpus} is more than a node of {group.name!r} has "
                    f"({group.gpus_per_node})",
                )

    def _check_subnet(self, index: int, key: str) -> None:
        """A subnet index (into the stack's private subnets) that exists."""
        if index >= self.private_subnet_count:
            raise _KeyError(
                key,
                f"{index} is out of range: the stack has {self.private_subnet_count} private "
                "subnets",
            )

    def _check_training_jobs(self) -> None:
        names = [job.name for job in self.training_jobs]
        for index, job in enumerate(self.training_jobs):
            key = f"trainingJobs[{index}]"
            if names.index(job.name) != index:
                raise _KeyError(f"{key}.name", f"{job.name!r} is used twice")
            if self.eks is None:
                raise _KeyError(
                    key,
                    "needs the stack's EKS cluster (mlplatform:eks): jobs are deployed through "
                    "its Kubernetes API",
                )
            if job.engine == TrainingEngine.HYPERPOD:
                cluster = self.hyperpod_cluster_of(job, key)
                capacity = sum(
                    g.count for g in cluster.instance_groups if g.instance_type == job.instance_type
                )
                where, has = f"HyperPod cluster {cluster.name!r}", "has"
            else:
                groups = self.node_groups_of(job)
                capacity = sum(g.max_size for g in groups)
                where, has = "the EKS GPU node groups", "have"
            if capacity == 0:
                raise _KeyError(
                    f"{key}.instanceType", f"{where} {has} no {job.instance_type} nodes"
                )
            if job.nodes > capacity or (job.max_nodes or 0) > capacity:
                wanted = max(job.nodes, job.max_nodes or 0)
                raise _KeyError(
                    f"{key}.maxNodes" if wanted > job.nodes else f"{key}.nodes",
                    f"{wanted} is more than the {capacity} {job.instance_type} nodes of {where}",
                )

    def hyperpod_cluster_of(
        self, job: TrainingJobSettings, key: str = ""
    ) -> HyperPodClusterSettings:
        """The HyperPod cluster whose nodes run a `hyperpod` job: one that joins the stack's
        EKS cluster, the cluster the job is deployed through."""
        on_stack = [c for c in self.hyperpod_clusters if c.joins_stack_cluster]
        if job.hyperpod_cluster is None:
            if len(on_stack) != 1:
                raise _KeyError(
                    f"{key}.hyperpodCluster",
                    f"is required: the stack has {len(on_stack)} HyperPod clusters on its "
                    "EKS cluster",
                )
            return on_stack[0]
        for cluster in on_stack:
            if cluster.name == job.hyperpod_cluster:
                return cluster
        raise _KeyError(
            f"{key}.hyperpodCluster",
            f"{job.hyperpod_cluster!r} is not a HyperPod cluster on the stack's EKS cluster "
            "(orchestrator eks, no eksClusterArn)",
        )

    def node_groups_of(self, job: TrainingJobSettings) -> list[GpuNodeGroup]:
        """The EKS GPU node groups that can run an `eks` job (its instance type)."""
        groups = self.eks.gpu_node_groups if self.eks else ()
        return [g for g in groups if job.instance_type in g.instance_types]

    @property
    def git_secret_arns(self) -> tuple[str, ...]:
        """Secrets the notebooks need to clone their repositories."""
        arns = {
            nb.git_repository.secret_arn
            for nb in self.notebooks
            if nb.git_repository and nb.git_repository.secret_arn
        }
        return tuple(sorted(arns))


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
        return TypeAdapter(StackConfig).validate_python(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, stack_file)) from None


def load_stack_config() -> StackConfig:
    """Parse the running Pulumi program's config (engine-provided, or set by mocks)."""
    from pulumi.runtime import config as runtime_config

    raw = dict(runtime_config.get_config_env() or {})
    raw.update(runtime_config.CONFIG.get())
    return parse_stack_config(raw, f"Pulumi.{pulumi.get_stack()}.yaml")


def _decode(value: Any) -> Any:
    """The engine passes structured config as JSON strings; YAML gives native values."""
    if isinstance(value, Mapping) and set(value) == {"secure"}:
        # A stack file read directly: only the Pulumi CLI can decrypt this value.
        return SECRET_MASK
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _describe(error: ValidationError, stack_file: str) -> str:
    """One line for the first problem: `<file>: mlplatform:<key path>: <what is wrong>`."""
    line = describe(error, f"{PROJECT}:", camel=True, schema_root=StackConfig)
    if line.startswith(f"{PROJECT}:region:"):
        line = "aws:region:" + line.removeprefix(f"{PROJECT}:region:")
    return f"{stack_file}: {line}"
