"""GitHub Actions Runner Controller (ARC) on a GpuEksCluster: the controller and one runner scale
set per runner class, with GitHub App credentials from Pulumi secrets and job hooks.

Seed 002 installed these with hand-run Helm and kustomize; here the releases, their namespaces,
the credentials Secret and the hooks ConfigMap are one component, and the dependencies encode the
order ARC needs on `pulumi destroy`: scale sets go first (the controller removes their GitHub
registration and finalizers), then the controller and the Secret.

GPU runners get the GPU node group's nodeSelector, the `nvidia.com/gpu` toleration and a GPU
limit, and no dind sidecar (it has no NVIDIA runtime): jobs run in the runner container itself.

The cluster arrives through `opts`: its Kubernetes provider (`providers={"kubernetes": p}` or
`provider=p`, inherited by every child) and what to wait for (`depends_on`, e.g. the system node
group the controller runs on). `ArcRunnersSettings` is what a stack file's `arc` section holds;
`ArcRunnersArgs` adds the credentials and the cluster's node groups.
"""

import enum
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

import pulumi
from pydantic import Field, field_validator, model_validator

from mlplatform.components.eks import DNS_LABEL, GPU_TOLERATION, NODE_GROUP_LABEL, SYSTEM_NODE_GROUP
from mlplatform.components.extras import missing_extra
from mlplatform.components.helm import layered_values, release
from mlplatform.components.schema import SettingError, check_unique_names, parse, schema

try:
    import pulumi_kubernetes as k8s
except ModuleNotFoundError as missing:
    missing_extra(missing, "ArcRunners")

# The runner release the images build on and the fallback image; one place to bump.
RUNNER_VERSION = "2.329.0"
OFFICIAL_RUNNER_IMAGE = f"ghcr.io/actions/actions-runner:{RUNNER_VERSION}"
RUNNER_UID = 1001  # the `runner` account of the official image

CONTROLLER_SERVICE_ACCOUNT = "arc-controller"
CREDENTIALS_SECRET = "github-config"
HOOKS_CONFIG_MAP = "runner-hooks"
HOOKS_DIR = "/opt/mlplatform/hooks"
HOOK_SCRIPTS = {
    "job-started.sh": "runner-job-started.sh",
    "job-completed.sh": "runner-job-completed.sh",
}

GITHUB_CONFIG_URL = re.compile(
    r"^https://(github\.com|[a-z0-9.-]+)/[A-Za-z0-9][A-Za-z0-9-]{0,38}(/[A-Za-z0-9._-]{1,100})?$"
)
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")


class GitHubAuth(enum.StrEnum):
    """How the runners' scale sets authenticate to GitHub."""

    APP = "app"
    TOKEN = "token"


# Namespaces that exist before the runners and belong to the cluster (or to HyperPod's add-ons).
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "aws-hyperpod")


@schema
class RunnerClass:
    """One runner scale set; its name is the `runs-on` label workflows use."""

    name: str
    """Scale set name and `runs-on` label (lowercase letters, digits, hyphens, at most 40)."""
    gpu: bool = False
    """Run on a GPU node group, tolerating its taint, with `gpus` GPUs; false: no GPU at all."""
    node_group: str | None = None
    """GPU classes: the GPU node group to run on (default the first); CPU classes run on system."""
    gpus: int = Field(default=1, ge=1, le=8)
    """GPUs per runner of a GPU class (ignored unless gpu is true)."""
    min_runners: int = Field(default=0, ge=0, le=100)
    """Idle runners kept warm (0 scales to zero)."""
    max_runners: int = Field(default=4, ge=1, le=100)
    """Most runners at once."""
    cpu: str = "2"
    """CPU request of a runner (a Kubernetes quantity)."""
    memory: str = "8Gi"
    """Memory request and limit of a runner (a Kubernetes quantity)."""
    image: pulumi.Input[str] | None = None
    """Runner image (default: the official runner image at RUNNER_VERSION)."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not DNS_LABEL.match(name):
            raise ValueError(
                f"{name!r} is not a runner class name "
                "(lowercase letters, digits and hyphens, at most 40)"
            )
        return name

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, quantity: str) -> str:
        if not QUANTITY.match(quantity):
            raise ValueError(f"{quantity!r} is not a Kubernetes quantity")
        return quantity

    @model_validator(mode="after")
    def _combinations(self) -> "RunnerClass":
        if self.max_runners < self.min_runners:
            raise SettingError("max_runners", f"{self.max_runners} is below minRunners")
        if not self.gpu and self.node_group is not None:
            raise SettingError("node_group", "is for GPU runner classes (gpu: true)")
        return self


DEFAULT_RUNNER_CLASSES = (
    RunnerClass(name="cpu"),
    RunnerClass(name="gpu", gpu=True, cpu="4", memory="16Gi"),
)


def check_runner_placement(
    classes: Sequence[RunnerClass], gpu_node_groups: Sequence[str], groups_key: str
) -> None:
    """Every GPU runner class has a GPU node group to run on: the one it names, or the first.

    `groups_key` names where the groups come from in the caller's terms.
    """
    for index, runner in enumerate(classes):
        if not runner.gpu:
            continue
        key = f"runner_classes[{index}].node_group"
        if not gpu_node_groups:
            raise SettingError(key, f"a GPU runner class needs a GPU node group ({groups_key})")
        if runner.node_group is not None and runner.node_group not in gpu_node_groups:
            raise SettingError(key, f"{runner.node_group!r} is not a GPU node group")


@schema
class ArcRunnersSettings:
    """GitHub Actions Runner Controller and its scale sets: what a stack file's `arc` sets."""

    github_config_url: str
    """The organization or repository the runners register with (https://github.com/<org>)."""
    auth: GitHubAuth = GitHubAuth.APP
    """A GitHub App (app ID, installation ID, private key), or a token as the fallback."""
    github_app_id: int | None = Field(default=None, ge=1)
    """The GitHub App's ID (auth app)."""
    github_app_installation_id: int | None = Field(default=None, ge=1)
    """The App's installation ID in the organization (auth app)."""
    runner_group: str = Field(default="default", min_length=1)
    """GitHub runner group of the scale sets (one per stack, so names do not collide)."""
    runner_classes: Sequence[RunnerClass] = DEFAULT_RUNNER_CLASSES
    """The scale sets, one per class."""
    controller_namespace: str = "arc-systems"
    """Namespace of the controller."""
    runners_namespace: str = "arc-runners"
    """Namespace of the runners, their credentials Secret and hooks (no ingress)."""

    @field_validator("github_config_url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not GITHUB_CONFIG_URL.match(url):
            raise ValueError(
                f"{url!r} is not a GitHub organization or repository URL "
                "(https://github.com/<org>[/<repo>])"
            )
        return url

    @field_validator("controller_namespace", "runners_namespace")
    @classmethod
    def _namespace(cls, namespace: str) -> str:
        if not DNS_LABEL.match(namespace):
            raise ValueError(
                f"{namespace!r} is not a namespace name "
                "(lowercase letters, digits and hyphens, at most 40)"
            )
        if namespace in RESERVED_NAMESPACES or namespace.startswith("kube-"):
            # The component owns its namespaces: it denies all ingress in them, puts the
            # GitHub credentials there and deletes them on destroy.
            raise ValueError(f"{namespace!r} is a namespace the cluster or HyperPod owns")
        return namespace

    @model_validator(mode="after")
    def _combinations(self) -> "ArcRunnersSettings":
        for key, value in (
            ("github_app_id", self.github_app_id),
            ("github_app_installation_id", self.github_app_installation_id),
        ):
            if self.auth == GitHubAuth.APP and value is None:
                raise SettingError(key, "is required with auth app")
            if self.auth == GitHubAuth.TOKEN and value is not None:
                raise SettingError(key, "is only for auth app")
        if self.runners_namespace == self.controller_namespace:
            raise SettingError("runners_namespace", "must differ from controllerNamespace")
        if not self.runner_classes:
            raise SettingError("runner_classes", "must list at least one runner class")
        check_unique_names(self.runner_classes, "runner_classes")
        return self


@schema
class ArcRunnersArgs(ArcRunnersSettings):
    """The settings plus the credentials and the cluster's node groups."""

    github_app_private_key: pulumi.Input[str] | None = Field(default=None, repr=False)
    """The GitHub App's private key (PEM), auth app; it stays a Pulumi secret."""
    github_token: pulumi.Input[str] | None = Field(default=None, repr=False)
    """A token with runner administration rights, auth token; it stays a Pulumi secret."""
    system_node_group: str = SYSTEM_NODE_GROUP
    """Node group (`mlplatform.io/node-group`) of the controller and the CPU runners."""
    gpu_node_groups: Sequence[str] = ()
    """The cluster's GPU node groups; GPU classes without node_group run on the first."""
    values_stack: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")
    """Helm values layer: helm/arc*/values-<values_stack>.yaml over values.yaml."""
    helm_values_dir: str = ""
    """Directory of the Helm values files ("" = the values shipped with the package)."""

    @model_validator(mode="after")
    def _credentials(self) -> "ArcRunnersArgs":
        for key, value, auth in (
            ("github_app_private_key", self.github_app_private_key, GitHubAuth.APP),
            ("github_token", self.github_token, GitHubAuth.TOKEN),
        ):
            if self.auth == auth and value is None:
                raise SettingError(key, f"is required with auth {auth}")
            if self.auth != auth and value is not None:
                raise SettingError(key, f"is only for auth {auth}")
        check_runner_placement(self.runner_classes, self.gpu_node_groups, "gpu_node_groups")
        return self


def hook_script(file_name: str) -> str:
    return resources.files("mlplatform.components").joinpath(f"scripts/{file_name}").read_text()


def runner_pod_spec(runner: RunnerClass, node_group: str) -> dict[str, Any]:
    """The runner pod's spec: one runner container, the hooks mounted from the ConfigMap."""
    env: list[dict[str, Any]] = [
        {"name": "ACTIONS_RUNNER_HOOK_JOB_STARTED", "value": f"{HOOKS_DIR}/job-started.sh"},
        {"name": "ACTIONS_RUNNER_HOOK_JOB_COMPLETED", "value": f"{HOOKS_DIR}/job-completed.sh"},
    ]
    limits: dict[str, Any] = {"memory": runner.memory}
    if runner.gpu:
        env.append({"name": "EXPECTED_GPUS", "value": str(runner.gpus)})
        limits["nvidia.com/gpu"] = runner.gpus
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "containers": [
            {
                "name": "runner",
                "image": OFFICIAL_RUNNER_IMAGE if runner.image is None else runner.image,
                "command": ["/home/runner/run.sh"],
                "env": env,
                "resources": {
                    "requests": {"cpu": runner.cpu, "memory": runner.memory},
                    "limits": limits,
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": True,
                    "runAsUser": RUNNER_UID,
                },
                "volumeMounts": [
                    {"name": "hooks", "mountPath": HOOKS_DIR, "readOnly": True},
                    {"name": "work", "mountPath": "/home/runner/_work"},
                ],
            }
        ],
        "volumes": [
            {"name": "hooks", "configMap": {"name": HOOKS_CONFIG_MAP, "defaultMode": 0o555}},
            {"name": "work", "emptyDir": {}},
        ],
        "nodeSelector": {NODE_GROUP_LABEL: node_group},
    }
    if runner.gpu:
        spec["tolerations"] = [GPU_TOLERATION]
    return spec


class ArcRunners(pulumi.ComponentResource):
    """Namespaces, credentials Secret, hooks ConfigMap, controller, one scale set per class."""

    scale_sets: list[str]
    """The runner scale sets by name: the `runs-on` labels workflows can use."""
    github_config_url: str
    """The organization or repository the runners register with."""
    runners_namespace: str
    """The namespace the runner pods run in."""

    def __init__(
        self, name: str, args: ArcRunnersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args = parse(ArcRunnersArgs, args)  # a mapping when another language calls
        super().__init__("mlplatform:index:ArcRunners", name, None, opts)
        self._args = args
        # Children inherit the Kubernetes provider from `opts`; the releases also wait for what
        # the component was told to wait for (a component's own depends_on does not order them).
        child = pulumi.ResourceOptions(parent=self)
        after = pulumi.ResourceOptions(depends_on=opts.depends_on if opts else None)

        namespaces = {
            ns: k8s.core.v1.Namespace(
                f"{name}-{role}-namespace",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=ns,
                    labels={
                        "app.kubernetes.io/part-of": "mlplatform-arc",
                        # Warn about anything beyond the restricted profile; refuse privileged.
                        "pod-security.kubernetes.io/enforce": "baseline",
                        "pod-security.kubernetes.io/warn": "restricted",
                        "pod-security.kubernetes.io/audit": "restricted",
                    },
                ),
                opts=child,
            )
            for role, ns in (
                ("controller", args.controller_namespace),
                ("runners", args.runners_namespace),
            )
        }
        in_runners = pulumi.ResourceOptions(
            parent=self, depends_on=[namespaces[args.runners_namespace]]
        )
        secret = k8s.core.v1.Secret(
            f"{name}-github-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CREDENTIALS_SECRET, namespace=args.runners_namespace
            ),
            type="Opaque",
            string_data=_credentials(args),
            opts=in_runners,
        )
        # Runner pods serve nothing: no ingress at all (the VPC CNI enforces network policies).
        k8s.networking.v1.NetworkPolicy(
            f"{name}-runners-deny-ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="deny-ingress", namespace=args.runners_namespace
            ),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress"]
            ),
            opts=in_runners,
        )
        hooks = k8s.core.v1.ConfigMap(
            f"{name}-runner-hooks",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=HOOKS_CONFIG_MAP, namespace=args.runners_namespace
            ),
            data={key: hook_script(file) for key, file in HOOK_SCRIPTS.items()},
            opts=in_runners,
        )

        controller_values: dict[str, Any] = {
            "serviceAccount": {"create": True, "name": CONTROLLER_SERVICE_ACCOUNT},
            # Only the runner namespace: the controller needs no cluster-wide reach.
            "flags": {"watchSingleNamespace": args.runners_namespace},
            "nodeSelector": {NODE_GROUP_LABEL: args.system_node_group},
        }
        controller = release(
            f"{name}-controller",
            "gha-runner-scale-set-controller",
            args.controller_namespace,
            layered_values("arc", args.values_stack, controller_values, args.helm_values_dir),
            pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(
                    parent=self, depends_on=[namespaces[args.controller_namespace]]
                ),
                after,
            ),
        )

        # Depending on the controller, Secret and ConfigMap makes `pulumi destroy` remove every
        # scale set while the controller can still clean up after it.
        for runner in args.runner_classes:
            release(
                f"{name}-{runner.name}",
                "gha-runner-scale-set",
                args.runners_namespace,
                layered_values(
                    "arc-runners",
                    args.values_stack,
                    self._scale_set_values(runner),
                    args.helm_values_dir,
                ),
                pulumi.ResourceOptions.merge(
                    pulumi.ResourceOptions(parent=self, depends_on=[controller, secret, hooks]),
                    after,
                ),
            )
        self.scale_sets = [runner.name for runner in args.runner_classes]
        self.github_config_url = args.github_config_url
        self.runners_namespace = args.runners_namespace
        self.register_outputs(
            {
                "scaleSets": self.scale_sets,
                "githubConfigUrl": self.github_config_url,
                "runnersNamespace": self.runners_namespace,
            }
        )

    def _scale_set_values(self, runner: RunnerClass) -> dict[str, Any]:
        args = self._args
        return {
            "githubConfigUrl": args.github_config_url,
            "githubConfigSecret": CREDENTIALS_SECRET,
            "runnerScaleSetName": runner.name,
            "runnerGroup": args.runner_group,
            "minRunners": runner.min_runners,
            "maxRunners": runner.max_runners,
            "controllerServiceAccount": {
                "namespace": args.controller_namespace,
                "name": CONTROLLER_SERVICE_ACCOUNT,
            },
            "template": {"spec": runner_pod_spec(runner, _node_group_of(runner, args))},
        }


def _node_group_of(runner: RunnerClass, args: ArcRunnersArgs) -> str:
    """CPU runners share the system group; GPU runners take theirs, or the first GPU group."""
    if not runner.gpu:
        return args.system_node_group
    return runner.node_group or args.gpu_node_groups[0]


def _credentials(args: ArcRunnersArgs) -> dict[str, pulumi.Input[str]]:
    """The Secret ARC reads (its documented keys); secret values stay Pulumi secrets."""
    if args.auth == GitHubAuth.TOKEN:
        assert args.github_token is not None  # ArcRunnersArgs requires it
        return {"github_token": pulumi.Output.secret(args.github_token)}
    assert args.github_app_private_key is not None  # ArcRunnersArgs requires it
    return {
        "github_app_id": str(args.github_app_id),
        "github_app_installation_id": str(args.github_app_installation_id),
        "github_app_private_key": pulumi.Output.secret(args.github_app_private_key),
    }
