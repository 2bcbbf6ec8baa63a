"""Estimated monthly cost of a planned stack, from a small documented price table.

An estimate to compare stacks and catch runaway sizing in review, not a bill: on-demand list
prices for us-east-1 (approximate, USD), scaled by a per-region factor. Usage-billed items (S3
storage, data processing, requests) are not estimated. Capacity that is idle by design is counted
as idle: a notebook with idle auto-stop is counted for working hours only, and a node group that
scales to zero costs nothing until it scales up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from mlplatform.components.catalog import (
    EC2_INSTANCE_HOURLY_USD,
    EKS_CONTROL_PLANE_HOURLY,
    FSX_LUSTRE_GB_MONTH_USD,
    HOURS_PER_MONTH,
    HYPERPOD_INSTANCE_HOURLY_USD,
    NOTEBOOK_INSTANCE_HOURLY_USD,
)
from mlplatform.mocks import Registration
from mlplatform.program import ProgramRun

NAT_GATEWAY_HOURLY = 0.045
PUBLIC_IPV4_HOURLY = 0.005
INTERFACE_ENDPOINT_HOURLY_PER_AZ = 0.01
KMS_KEY_MONTHLY = 1.00
ML_STORAGE_GB_MONTH = 0.14
# A notebook that stops itself when idle is assumed to run 10 hours on 22 working days.
AUTO_STOPPED_NOTEBOOK_HOURS = 220

# Price level of a region relative to us-east-1 (approximate, from the public price lists).
REGION_FACTORS = {
    "us-east-1": 1.0,
    "us-east-2": 1.0,
    "us-west-2": 1.0,
    "us-west-1": 1.12,
    "ca-central-1": 1.08,
    "eu-west-1": 1.08,
    "eu-west-2": 1.12,
    "eu-central-1": 1.15,
    "eu-north-1": 1.05,
    "ap-south-1": 1.05,
    "ap-northeast-1": 1.25,
    "ap-northeast-2": 1.2,
    "ap-southeast-1": 1.18,
    "ap-southeast-2": 1.2,
}


@dataclass(frozen=True)
class CostItem:
    component: str
    resource: str
    type: str
    monthly_usd: float
    basis: str


@dataclass
class CostEstimate:
    region: str
    total: float
    items: list[CostItem]
    notes: list[str] = field(default_factory=list)

    def by_component(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for item in self.items:
            totals[item.component] = round(totals.get(item.component, 0.0) + item.monthly_usd, 2)
        return totals

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "total": self.total,
            "by_component": self.by_component(),
            "items": [asdict(item) for item in self.items],
            "notes": self.notes,
        }


Price = tuple[float, str]
Pricer = Callable[[Registration], Price | None]


def _hourly(rate: float, hours: float = HOURS_PER_MONTH) -> Price:
    return rate * hours, f"{hours:g} h x ${rate:g}/h"


def _interface_endpoint(r: Registration) -> Price | None:
    if r.inputs.get("vpcEndpointType") != "Interface":
        return None  # gateway endpoints (S3) are free
    zones = len(r.inputs.get("subnetIds") or []) or 1
    monthly, _ = _hourly(INTERFACE_ENDPOINT_HOURLY_PER_AZ * zones)
    return monthly, f"{zones} AZ x {HOURS_PER_MONTH} h x ${INTERFACE_ENDPOINT_HOURLY_PER_AZ}/h"


def _notebook(r: Registration) -> Price:
    instance_type = str(r.inputs.get("instanceType", "ml.t3.medium"))
    rate = NOTEBOOK_INSTANCE_HOURLY_USD.get(instance_type, 0.0)
    idle_minutes = int((r.inputs.get("tags") or {}).get("auto-stop-idle-minutes", "0"))
    hours = AUTO_STOPPED_NOTEBOOK_HOURS if idle_minutes > 0 else HOURS_PER_MONTH
    volume = int(r.inputs.get("volumeSize") or 5)
    compute = rate * hours
    storage = volume * ML_STORAGE_GB_MONTH
    running = "auto-stop: working hours" if idle_minutes > 0 else "always on"
    return (
        compute + storage,
        f"{instance_type} {hours} h x ${rate:g}/h ({running}) + {volume} GB x "
        f"${ML_STORAGE_GB_MONTH}/GB-month",
    )


def _hyperpod_cluster(r: Registration) -> Price:
    """Every instance group at its configured size, always on, plus its EBS volumes."""
    monthly = 0.0
    parts = []
    for group in r.inputs.get("instanceGroups") or []:
        instance_type = str(group.get("instanceType", ""))
        count = int(group.get("instanceCount") or 0)
        rate = HYPERPOD_INSTANCE_HOURLY_USD.get(instance_type, 0.0)
        volume = sum(
            int((storage.get("ebsVolumeConfig") or {}).get("volumeSizeInGb") or 0)
            for storage in group.get("instanceStorageConfigs") or []
        )
        monthly += count * (rate * HOURS_PER_MONTH + volume * ML_STORAGE_GB_MONTH)
        parts.append(f"{count} x {instance_type} (${rate:g}/h, {volume} GB)")
    return monthly, f"{HOURS_PER_MONTH} h: " + " + ".join(parts)


def _lustre(r: Registration) -> Price:
    deployment = str(r.inputs.get("deploymentType") or "SCRATCH_2")
    throughput = r.inputs.get("perUnitStorageThroughput")
    key = (deployment, int(throughput) if throughput else None)
    rate = FSX_LUSTRE_GB_MONTH_USD.get(key, 0.0)
    gb = int(r.inputs.get("storageCapacity") or 0)
    label = f"{deployment}" + (f" {key[1]} MB/s/TiB" if key[1] else "")
    return gb * rate, f"{gb} GB x ${rate:g}/GB-month ({label})"


def _node_group(r: Registration) -> Price:
    """A node group at its minimum size: what it costs when idle (GPU groups: usually 0).

    Priced at the first instance type's on-demand rate (spot is cheaper, not guaranteed); root
    volumes are not counted.
    """
    types = r.inputs.get("instanceTypes") or ["t3.medium"]
    nodes = int((r.inputs.get("scalingConfig") or {}).get("minSize") or 0)
    rate = EC2_INSTANCE_HOURLY_USD.get(str(types[0]), 0.0)
    capacity = "spot, priced on-demand" if r.inputs.get("capacityType") == "SPOT" else "on-demand"
    return (
        nodes * rate * HOURS_PER_MONTH,
        f"{nodes} x {types[0]} (minimum size, {capacity}) x {HOURS_PER_MONTH} h x ${rate:g}/h",
    )


# Resource type token -> how to price one such resource. Later components add their kinds here.
PRICERS: dict[str, Pricer] = {
    "aws:ec2/natGateway:NatGateway": lambda r: _hourly(NAT_GATEWAY_HOURLY),
    "aws:ec2/eip:Eip": lambda r: _hourly(PUBLIC_IPV4_HOURLY),
    "aws:ec2/vpcEndpoint:VpcEndpoint": _interface_endpoint,
    "aws:kms/key:Key": lambda r: (KMS_KEY_MONTHLY, "$1/key-month"),
    "aws:sagemaker/notebookInstance:NotebookInstance": _notebook,
    "aws-native:sagemaker:Cluster": _hyperpod_cluster,
    "aws:fsx/lustreFileSystem:LustreFileSystem": _lustre,
    "eks:index:Cluster": lambda r: _hourly(EKS_CONTROL_PLANE_HOURLY),
    "eks:index:ManagedNodeGroup": _node_group,
}


def estimate(run: ProgramRun) -> CostEstimate:
    """Price every resource the run registered, attributed to its top-level component."""
    notes = ["usage-billed items (S3 storage, data transfer, requests) are not estimated"]
    factor = REGION_FACTORS.get(run.region)
    if factor is None:
        factor = 1.0
        notes.append(f"no price factor for region {run.region}: us-east-1 prices used")
    by_urn = {r.urn: r for r in run.resources}
    items = []
    for resource in run.resources:
        pricer = PRICERS.get(resource.type)
        price = pricer(resource) if pricer else None
        if price is None:
            continue
        monthly, basis = price
        if factor != 1.0:
            basis += f" x {factor} ({run.region})"
        items.append(
            CostItem(
                component=top_level_component(resource, by_urn),
                resource=resource.name,
                type=resource.type,
                monthly_usd=round(monthly * factor, 2),
                basis=basis,
            )
        )
    total = round(sum(item.monthly_usd for item in items), 2)
    return CostEstimate(region=run.region, total=total, items=items, notes=notes)


def top_level_component(resource: Registration, by_urn: dict[str, Registration]) -> str:
    """`Type name` of the outermost component holding `resource` (the stack's direct child)."""
    top = resource
    while top.parent in by_urn:
        top = by_urn[top.parent]
    if top is resource and resource.custom:
        return "(stack)"
    return f"{top.type.split(':')[-1]} {top.name}"
