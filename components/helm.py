"""Helm charts the platform installs: pinned versions in one table, values layered one way.

Values for a chart come from three layers, later winning: `helm/<dir>/values.yaml` (shared),
`helm/<dir>/values-<stack>.yaml` (per environment, optional), then what the program computes
(cluster name, IRSA role ARNs, image digests). Tests assert on the merged result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pulumi
import yaml

from mlplatform.components.extras import missing_extra

try:
    import pulumi_kubernetes as k8s
except ModuleNotFoundError as missing:
    missing_extra(missing, "Helm releases (GpuEksCluster, ArcRunners)")

# The values files shipped with the package (helm/ in the checkout); components accept another
# directory.
HELM_VALUES_DIR = Path(str(resources.files("mlplatform").joinpath("helm")))


@dataclass(frozen=True)
class Chart:
    """A chart at a pinned version. `repo` is an HTTP chart repository, or None for OCI refs."""

    chart: str
    version: str
    repo: str | None = None


ARC_CHARTS = "oci://ghcr.io/actions/actions-runner-controller-charts"
ARC_VERSION = "0.12.1"

# Every chart the platform installs, pinned. Bump here, nowhere else.
CHARTS: dict[str, Chart] = {
    "nvidia-device-plugin": Chart(
        "nvidia-device-plugin", "0.17.4", "https://nvidia.github.io/k8s-device-plugin"
    ),
    "aws-efa-k8s-device-plugin": Chart(
        "aws-efa-k8s-device-plugin", "v0.5.29", "https://aws.github.io/eks-charts"
    ),
    "cluster-autoscaler": Chart(
        "cluster-autoscaler", "9.46.6", "https://kubernetes.github.io/autoscaler"
    ),
    # ARC: controller and scale sets must be the same version.
    "gha-runner-scale-set-controller": Chart(
        f"{ARC_CHARTS}/gha-runner-scale-set-controller", ARC_VERSION
    ),
    "gha-runner-scale-set": Chart(f"{ARC_CHARTS}/gha-runner-scale-set", ARC_VERSION),
}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge: mappings merge key by key, anything else (lists included) is replaced."""
    merged = _copy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = _copy(value)
    return merged


def _copy(value: Any) -> Any:
    """Copy mappings and lists; leave leaves (scalars, and Outputs, which cannot be copied)."""
    if isinstance(value, Mapping):
        return {key: _copy(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_copy(inner) for inner in value]
    return value


def layered_values(
    values_dir: str,
    stack: str,
    computed: Mapping[str, Any] | None = None,
    root: str | Path = "",
) -> dict[str, Any]:
    """`values.yaml` <- `values-<stack>.yaml` <- `computed`, for `root/values_dir`.

    `root` "" (the components' default) means the values shipped with the package.
    """
    directory = (Path(root) if root else HELM_VALUES_DIR) / values_dir
    base = directory / "values.yaml"
    if not base.is_file():
        raise FileNotFoundError(f"{base}: missing base values file")
    values = _load(base)
    per_stack = directory / f"values-{stack}.yaml"
    if per_stack.is_file():
        values = deep_merge(values, _load(per_stack))
    return deep_merge(values, computed or {})


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: values must be a mapping, got {type(data).__name__}")
    return data


def release(
    name: str,
    chart_key: str,
    namespace: pulumi.Input[str],
    values: pulumi.Input[Mapping[str, Any]],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """A Helm release of a pinned chart. Atomic: a failed upgrade rolls back instead of
    leaving a half-applied release."""
    chart = CHARTS[chart_key]
    return k8s.helm.v3.Release(
        name,
        name=name,
        chart=chart.chart,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo) if chart.repo else None,
        namespace=namespace,
        values=values,
        atomic=True,
        cleanup_on_fail=True,
        timeout=600,
        opts=opts,
    )
