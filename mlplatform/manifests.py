"""Every Kubernetes object the program creates directly, and every runner pod template, as YAML.

    mlplatform manifests STACK DIR     # writes DIR/<kind>-<namespace>-<name>.yaml

The objects come from the offline plan of STACK (the same program `pulumi up` runs), so what the
validators check is what would be applied: tests validate each file with kubernetes-validate
against the cluster's Kubernetes version, and `make lint` scans the directory with checkov.
Secret values are never rendered: a Secret keeps its keys, each value is `[secret]`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pulumi
import yaml

from mlplatform.mocks import SECRET_MASK, Registration, unwrap_secret
from mlplatform.program import ProgramRun, Project, ProjectError

SCALE_SET_CHART = "/gha-runner-scale-set"
# Object fields Pulumi adds to the inputs that are not part of the Kubernetes object.
_PULUMI_ONLY = {"__defaults"}


def render(run: ProgramRun) -> dict[str, dict[str, Any]]:
    """File name -> Kubernetes object, for the objects and runner pod templates of `run`."""
    rendered: dict[str, dict[str, Any]] = {}
    for r in run.resources:
        if _is_object(r):
            obj = _object(r)
        elif r.type == "kubernetes:helm.sh/v3:Release" and str(r.inputs.get("chart", "")).endswith(
            SCALE_SET_CHART
        ):
            obj = _runner_pod(r)
        else:
            continue
        metadata = obj["metadata"]
        parts = [obj["kind"].lower(), metadata.get("namespace"), metadata["name"]]
        rendered["-".join(p for p in parts if p) + ".yaml"] = obj
    return rendered


def kubernetes_version(run: ProgramRun) -> str:
    """The Kubernetes version of the stack's EKS cluster."""
    versions = {str(r.inputs["version"]) for r in run.of_type("eks:index:Cluster")}
    if len(versions) != 1:
        raise ValueError(f"expected one EKS cluster, found versions {sorted(versions)}")
    return versions.pop()


def write(run: ProgramRun, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for file_name, obj in sorted(render(run).items()):
        path = directory / file_name
        path.write_text(yaml.dump(obj, Dumper=_Dumper, sort_keys=False))
        paths.append(path)
    return paths


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the hook scripts) as literal blocks, readable in review."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def _is_object(r: Registration) -> bool:
    """`kubernetes:<group>/<version>:<Kind>` resources; not Helm releases nor the provider."""
    return (
        r.custom
        and r.type.startswith("kubernetes:")
        and not r.type.startswith("kubernetes:helm.sh/")
        and "apiVersion" in r.inputs
    )


def _object(r: Registration) -> dict[str, Any]:
    obj = {k: v for k, v in r.masked_inputs.items() if k not in _PULUMI_ONLY}
    for key in ("data", "stringData"):
        if key in r.inputs and obj.get(key) == SECRET_MASK:
            obj[key] = dict.fromkeys(unwrap_secret(r.inputs[key]), SECRET_MASK)
    ordered = {"apiVersion": obj.pop("apiVersion"), "kind": obj.pop("kind")}
    return _integral(ordered | obj)


def _runner_pod(r: Registration) -> dict[str, Any]:
    """The pod a runner scale set starts for each job: its `template`, as a Pod."""
    values = r.masked_inputs["values"]
    template = values["template"]
    name = f"{values['runnerScaleSetName']}-runner"
    metadata = {
        **(template.get("metadata") or {}),
        "name": name,
        "namespace": r.inputs["namespace"],
    }
    metadata.setdefault("labels", {})["app.kubernetes.io/component"] = "runner"
    return _integral(
        {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}
    )


def _integral(value: Any) -> Any:
    """The engine's numbers are floats; Kubernetes schemas want integers where they are whole."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mlplatform manifests",
        description="Render the stack's Kubernetes objects and runner pod templates to YAML.",
    )
    parser.add_argument("stack")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="Pulumi project directory")
    args = parser.parse_args(argv)
    try:
        run = Project.load(args.cwd).run(args.stack)
    except (ProjectError, pulumi.RunError) as error:  # config mistakes too: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in write(run, args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
