"""The offline plan: a stack's resource tree and estimated cost, as text or as one JSON object.

The JSON shape is an interface (CI scripts read it); extend it, never rename its keys:
{"stack", "project", "resources": [{"urn", "id", "type", "name", "parent", "custom", "inputs",
"outputs", "options": {"protect", "retainOnDelete", "dependsOn"}}], "outputs",
"monthly_cost_usd": {"total", "items", ...}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplatform.guardrails import Finding, Resource, evaluate
from mlplatform.mocks import SECRET_MASK, Registration
from mlplatform.pricing import CostEstimate, estimate
from mlplatform.program import ProgramRun

# Inputs worth a glance in the text tree (the JSON has all of them).
KEY_SETTINGS = (
    "cidrBlock",
    "availabilityZone",
    "serviceName",
    "vpcEndpointType",
    "privateDnsEnabled",
    "instanceType",
    "volumeSize",
    "directInternetAccess",
    "rootAccess",
    "platformIdentifier",
    "enableKeyRotation",
    "forceDestroy",
    "restrictPublicBuckets",
    "version",
    "chart",
    "scalingConfig",
    "amiType",
    "capacityType",
    "instanceTypes",
    "region",
    "clusterName",
    "nodeRecovery",
    "nodeProvisioningMode",
    "deploymentType",
    "storageCapacity",
    "perUnitStorageThroughput",
)


def plan_document(run: ProgramRun, cost: CostEstimate | None = None) -> dict[str, Any]:
    """The `--json` plan."""
    cost = cost or estimate(run)
    return {
        "stack": run.stack,
        "project": run.project,
        "resources": [_resource(r) for r in run.resources],
        "outputs": {
            key: SECRET_MASK if key in run.secret_outputs else value
            for key, value in run.outputs.items()
        },
        "monthly_cost_usd": cost.to_json(),
    }


def _resource(r: Registration) -> dict[str, Any]:
    return {
        "urn": r.urn,
        "id": r.id,
        "type": r.type,
        "name": r.name,
        "parent": r.parent,
        "custom": r.custom,
        "inputs": r.masked_inputs,
        "outputs": {k: SECRET_MASK if k in _secret_keys(r) else v for k, v in r.outputs.items()},
        "options": {
            "protect": r.protect,
            "retainOnDelete": r.retain_on_delete,
            "dependsOn": r.depends_on,
        },
    }


def _secret_keys(r: Registration) -> set[str]:
    """Outputs echo inputs under mocks: hide those whose input was secret."""
    return {k for k, v in r.masked_inputs.items() if v == SECRET_MASK}


def render_text(run: ProgramRun, cost: CostEstimate | None = None) -> str:
    """The human plan: resource tree with key settings, then the cost per component."""
    cost = cost or estimate(run)
    lines = [
        f"Stack {run.project}/{run.stack} ({run.region}): {len(run.resources)} resources, "
        f"estimated ${cost.total:,.2f}/month",
        "",
    ]
    children: dict[str, list[Registration]] = {}
    known = {r.urn for r in run.resources}
    for r in run.resources:
        children.setdefault(r.parent if r.parent in known else "", []).append(r)

    def walk(parent: str, depth: int) -> None:
        for r in sorted(children.get(parent, []), key=lambda r: (r.custom, r.name, r.type)):
            flags = [
                flag
                for flag, on in (("protected", r.protect), ("retained", r.retain_on_delete))
                if on
            ]
            settings = [
                f"{key}={_short(r.masked_inputs[key])}"
                for key in KEY_SETTINGS
                if key in r.masked_inputs and r.masked_inputs[key] not in (None, "", [], {})
            ]
            text = f"{'  ' * depth}{r.type}  {r.name}"
            if settings:
                text += "  " + " ".join(settings)
            if flags:
                text += "  [" + ", ".join(flags) + "]"
            lines.append(text)
            walk(r.urn, depth + 1)

    walk("", 0)
    lines += ["", f"Estimated monthly cost ({cost.region}, USD, on-demand list prices)"]
    for component, total in sorted(cost.by_component().items(), key=lambda kv: -kv[1]):
        lines.append(f"  {component:<56} {total:>10,.2f}")
        for item in (i for i in cost.items if i.component == component):
            label = f"{item.type.split(':')[-1]} {item.resource}"
            lines.append(f"      {label:<52} {item.monthly_usd:>10,.2f}  {item.basis}")
    lines.append(f"  {'total':<56} {cost.total:>10,.2f}")
    lines += [f"  note: {note}" for note in cost.notes]
    if run.unanswered_calls:
        lines.append(
            "  warning: the mocks had no answer for " + ", ".join(sorted(set(run.unanswered_calls)))
        )
    if run.outputs:
        lines += ["", "Outputs"]
        for key, value in run.outputs.items():
            shown = SECRET_MASK if key in run.secret_outputs else value
            lines += _output_lines(key, shown, 1)
    return "\n".join(lines)


def _output_lines(key: str, value: Any, depth: int) -> list[str]:
    """An output; mappings one entry per line, so nested notes are read, not truncated."""
    indent = "  " * depth
    if isinstance(value, Mapping) and value:
        lines = [f"{indent}{key}:"]
        for inner_key, inner in value.items():
            lines += _output_lines(str(inner_key), inner, depth + 1)
        return lines
    return [f"{indent}{key}: {_short(value, 400)}"]


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # the engine's numbers are floats
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def guardrail_view(run: ProgramRun) -> list[Resource]:
    """The offline plan's resources as the guardrails see them (as in `pulumi preview`)."""
    by_ref = {f"{r.urn}::{r.id}": r for r in run.resources}
    views = []
    for r in run.resources:
        provider = by_ref.get(r.provider)
        views.append(
            Resource(
                type=r.type,
                name=r.name,
                urn=r.urn,
                props=r.inputs,
                protect=r.protect,
                provider_props=provider.inputs if provider else {},
                property_dependencies=r.property_dependencies,
            )
        )
    return views


def check_policy(run: ProgramRun, pack_config: Mapping[str, Any]) -> list[Finding]:
    """The policy pack's verdict on this plan, without the Pulumi CLI."""
    return evaluate(guardrail_view(run), pack_config)


def render_findings(findings: list[Finding]) -> str:
    if not findings:
        return "Policy: no violations"
    lines = [f"Policy: {len(findings)} violation(s)"]
    for f in sorted(findings, key=lambda f: (f.level != "mandatory", f.rule, f.urn)):
        where = f.urn.rsplit("::", 1)[-1] if f.urn else "(stack)"
        lines.append(f"  [{f.level}] {f.rule}: {where}: {f.message}")
    return "\n".join(lines)
