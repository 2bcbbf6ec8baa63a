"""GitHub Actions Runner Controller (ARC) on a GpuEksCluster: the controller and one runner scale
set per runner class, with GitHub App credentials from Pulumi secrets and job hooks.

Seed 002 installed these with hand-run Helm and kustomize; here the releases, their namespaces,
the credentials Secret and the hooks ConfigMap are one component, and the dependencies encode the
order ARC needs on `pulumi destroy`: scale sets go first (the controller removes their GitHub
registration and finalizers), then the controller and the Secret.

GPU runners get the GPU node group's nodeSelector, the `nvidia.com/gpu` toleration and a GPU
limit, and no dind sidecar (it has no NVIDIA runtime): jobs run in the runner container itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from mlplatform.components.eks import GPU_TOLERATION
from mlplatform.components.helm import HELM_VALUES_DIR, layered_values, release

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


@dataclass(frozen=True)
class GitHubAppAuth:
    """A GitHub App installation; `private_key` should be a Pulumi secret (PEM)."""

    app_id: int
    installation_id: int
    private_key: pulumi.Input[str]


@dataclass(frozen=True)
class GitHubTokenAuth:
    """A fine-grained or classic token with runner administration rights (fallback)."""

    token: pulumi.Input[str]


@dataclass(frozen=True)
class RunnerClassArgs:
    """One scale set. `name` is what workflows put in `runs-on`."""

    name: str
    image: pulumi.Input[str] = OFFICIAL_RUNNER_IMAGE
    min_runners: int = 0
    max_runners: int = 4
    cpu: str = "2"
    memory: str = "8Gi"
    node_selector: Mapping[str, str] = field(default_factory=dict)
    # GPUs per runner; 0 for CPU runners. GPU runners tolerate the nvidia.com/gpu taint.
    gpus: int = 0


@dataclass(frozen=True)
class ArcRunnersArgs:
    """Everything ArcRunners needs; the cluster arrives as a Kubernetes provider."""

    provider: k8s.Provider
    github_config_url: str
    auth: GitHubAppAuth | GitHubTokenAuth
    runner_classes: Sequence[RunnerClassArgs]
    runner_group: str = "default"
    controller_namespace: str = "arc-systems"
    runners_namespace: str = "arc-runners"
    controller_node_selector: Mapping[str, str] = field(default_factory=dict)
    # Resources the releases must wait for (e.g. the node group the controller runs on).
    depends_on: Sequence[pulumi.Resource] = ()
    values_stack: str = ""
    helm_values_dir: Path = HELM_VALUES_DIR


def hook_script(file_name: str) -> str:
    return resources.files("mlplatform.components").joinpath(f"scripts/{file_name}").read_text()


def runner_pod_spec(runner: RunnerClassArgs) -> dict[str, Any]:
    """The runner pod's spec: one runner container, the hooks mounted from the ConfigMap."""
    env: list[dict[str, Any]] = [
        {"name": "ACTIONS_RUNNER_HOOK_JOB_STARTED", "value": f"{HOOKS_DIR}/job-started.sh"},
        {"name": "ACTIONS_RUNNER_HOOK_JOB_COMPLETED", "value": f"{HOOKS_DIR}/job-completed.sh"},
    ]
    limits: dict[str, Any] = {"memory": runner.memory}
    if runner.gpus:
        env.append({"name": "EXPECTED_GPUS", "value": str(runner.gpus)})
        limits["nvidia.com/gpu"] = runner.gpus
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "containers": [
            {
                "name": "runner",
                "image": runner.image,
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
    }
    if runner.node_selector:
        spec["nodeSelector"] = dict(runner.node_selector)
    if runner.gpus:
        spec["tolerations"] = [GPU_TOLERATION]
    return spec


class ArcRunners(pulumi.ComponentResource):
    """Namespaces, credentials Secret, hooks ConfigMap, controller, one scale set per class."""

    controller: k8s.helm.v3.Release
    scale_sets: dict[str, k8s.helm.v3.Release]

    def __init__(
        self, name: str, args: ArcRunnersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:index:ArcRunners", name, None, opts)
        self._args = args
        on_cluster = pulumi.ResourceOptions(parent=self, providers={"kubernetes": args.provider})

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
                opts=on_cluster,
            )
            for role, ns in (
                ("controller", args.controller_namespace),
                ("runners", args.runners_namespace),
            )
        }
        in_runners = pulumi.ResourceOptions.merge(
            on_cluster, pulumi.ResourceOptions(depends_on=[namespaces[args.runners_namespace]])
        )
        secret = k8s.core.v1.Secret(
            f"{name}-github-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CREDENTIALS_SECRET, namespace=args.runners_namespace
            ),
            type="Opaque",
            string_data=_credentials(args.auth),
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
        }
        if args.controller_node_selector:
            controller_values["nodeSelector"] = dict(args.controller_node_selector)
        self.controller = release(
            f"{name}-controller",
            "gha-runner-scale-set-controller",
            args.controller_namespace,
            layered_values("arc", args.values_stack, controller_values, args.helm_values_dir),
            pulumi.ResourceOptions.merge(
                on_cluster,
                pulumi.ResourceOptions(
                    depends_on=[namespaces[args.controller_namespace], *args.depends_on]
                ),
            ),
        )

        # Depending on the controller, Secret and ConfigMap makes `pulumi destroy` remove every
        # scale set while the controller can still clean up after it.
        self.scale_sets = {}
        for runner in args.runner_classes:
            self.scale_sets[runner.name] = release(
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
                    on_cluster,
                    pulumi.ResourceOptions(
                        depends_on=[self.controller, secret, hooks, *args.depends_on]
                    ),
                ),
            )
        self.register_outputs(
            {"scaleSets": list(self.scale_sets), "githubConfigUrl": args.github_config_url}
        )

    def _scale_set_values(self, runner: RunnerClassArgs) -> dict[str, Any]:
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
            "template": {"spec": runner_pod_spec(runner)},
        }


def _credentials(auth: GitHubAppAuth | GitHubTokenAuth) -> dict[str, pulumi.Input[str]]:
    """The Secret ARC reads (its documented keys); secret values stay Pulumi secrets."""
    if isinstance(auth, GitHubTokenAuth):
        return {"github_token": pulumi.Output.secret(auth.token)}
    return {
        "github_app_id": str(auth.app_id),
        "github_app_installation_id": str(auth.installation_id),
        "github_app_private_key": pulumi.Output.secret(auth.private_key),
    }
