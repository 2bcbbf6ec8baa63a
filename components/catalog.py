"""What AWS offers that our config may name, and what the platform needs to know about it.

One table of instance types (`INSTANCE_TYPES`): per type its GPUs, EFA interfaces, GPUDirect RDMA
support and hourly prices, on EC2 (EKS node groups) and as `ml.*` (HyperPod clusters, notebook
instances) where offered. Config validation, pricing, the training manifests and the trainer's
EFA set-up (`training/efa.py`) all read it; the per-use mappings below are views of it, not
copies. This module imports nothing but the standard library: the training image imports it.

Prices are approximate on-demand list prices in us-east-1 (USD per hour), taken from the public
AWS pricing pages; they feed the offline plan's estimate, not a bill. A type is valid for config
exactly when it has a price for that use, so the plan can always price what the config accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

HOURS_PER_MONTH = 730


@dataclass(frozen=True, kw_only=True)
class InstanceType:
    """One instance type, by its EC2 name (`p5.48xlarge`; SageMaker calls it `ml.p5.48xlarge`)."""

    name: str
    gpus: int = 0
    """NVIDIA GPUs per instance (0: a CPU or Trainium type)."""
    efa: int = 0
    """EFA interfaces per instance: the `vpc.amazonaws.com/efa` resource a node advertises, one
    per network card that takes one; 0 without EFA. A training pod asks for all of them."""
    gpudirect_rdma: bool = False
    """NCCL may move GPU memory over EFA directly (FI_EFA_USE_DEVICE_RDMA=1)."""
    ec2: float | None = None
    """On-demand USD per hour on EC2: what EKS node groups run; None: not offered to them here."""
    hyperpod: float | None = None
    """USD per hour as `ml.<name>` in a SageMaker HyperPod cluster; None: not offered there."""
    notebook: float | None = None
    """USD per hour as `ml.<name>` SageMaker notebook instance; None: not offered there."""


# Sources of the EFA values (each also matches the others where they overlap):
# [efa-ug]   Amazon EC2 User Guide, "Elastic Fabric Adapter", Supported instance types and EFA
#            limitations (docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa.html; awsdocs/
#            amazon-ec2-user-guide doc_source/efa.md): g4dn.8xlarge/12xlarge/metal, g5.48xlarge,
#            p3dn.24xlarge, p4d support EFA; "p4d.24xlarge ... support up to four EFAs. All other
#            supported instance types support only one EFA per instance"; all p4d types support
#            GPUDirect RDMA.
# [efa-bw]   Amazon EC2 User Guide, "Maximize network bandwidth on accelerated computing instances
#            with EFA" (p5-efa.html / efa-acc-inst-types.html): "P5 and P5e instances support up
#            to 32 network cards"; "G6e instances support up to four network cards".
# [hyperpod] AWS's SageMaker HyperPod SDK, INSTANCE_RESOURCES "efa" per ml.* type
#            (aws/sagemaker-hyperpod-cli, src/sagemaker/hyperpod/training/constants.py): g5 and
#            g6 8xlarge..48xlarge 1, g6e.12xlarge 1, g6e.48xlarge 4, p4d/p4de 4, p5/p5e 32,
#            p5en 16, p6-b200 8, trn1 8, trn1n 16.
# [ofi-nccl] AWS's NCCL plugin (aws/aws-ofi-nccl, src/platform-aws): gdr_required true for p4d,
#            p4de and the p5 family, false for p3dn.
# The ten types the two tables of the past disagreed on are marked "was:".
_TYPES = (
    # CPU: system node groups, CPU runners, Slurm controllers, notebooks.
    InstanceType(name="t2.medium", notebook=0.0464),
    InstanceType(name="t2.large", notebook=0.0928),
    InstanceType(name="t2.xlarge", notebook=0.1856),
    InstanceType(name="t2.2xlarge", notebook=0.3712),
    InstanceType(name="t3.medium", ec2=0.0416, hyperpod=0.05, notebook=0.05),
    InstanceType(name="t3.large", ec2=0.0832, hyperpod=0.10, notebook=0.10),
    InstanceType(name="t3.xlarge", ec2=0.1664, hyperpod=0.20, notebook=0.20),
    InstanceType(name="t3.2xlarge", hyperpod=0.399, notebook=0.399),
    InstanceType(name="m5.large", ec2=0.096),
    InstanceType(name="m5.xlarge", ec2=0.192, hyperpod=0.23, notebook=0.23),
    InstanceType(name="m5.2xlarge", ec2=0.384, hyperpod=0.461, notebook=0.461),
    InstanceType(name="m5.4xlarge", hyperpod=0.922, notebook=0.922),
    InstanceType(name="m5.8xlarge", hyperpod=1.843),
    InstanceType(name="m5.12xlarge", hyperpod=2.765, notebook=2.765),
    InstanceType(name="m5.24xlarge", hyperpod=5.53, notebook=5.53),
    InstanceType(name="m5d.xlarge", notebook=0.271),
    InstanceType(name="m5d.2xlarge", notebook=0.542),
    InstanceType(name="m5d.4xlarge", notebook=1.085),
    InstanceType(name="m6i.large", ec2=0.096),
    InstanceType(name="m6i.xlarge", ec2=0.192),
    InstanceType(name="m6i.2xlarge", ec2=0.384),
    InstanceType(name="m7i.large", ec2=0.1008),
    InstanceType(name="m7i.xlarge", ec2=0.2016),
    InstanceType(name="m7i.2xlarge", ec2=0.4032),
    InstanceType(name="c5.xlarge", hyperpod=0.204, notebook=0.204),
    InstanceType(name="c5.2xlarge", hyperpod=0.408, notebook=0.408),
    InstanceType(name="c5.4xlarge", hyperpod=0.816, notebook=0.816),
    InstanceType(name="c5.9xlarge", hyperpod=1.836, notebook=1.836),
    InstanceType(name="c5.18xlarge", hyperpod=3.672, notebook=3.672),
    InstanceType(name="c6i.xlarge", ec2=0.17),
    InstanceType(name="c6i.2xlarge", ec2=0.34),
    InstanceType(name="r5.large", notebook=0.151),
    InstanceType(name="r5.xlarge", notebook=0.302),
    InstanceType(name="r5.2xlarge", notebook=0.605),
    InstanceType(name="r5.4xlarge", notebook=1.21),
    # GPU, g: one EFA interface where supported, no GPUDirect RDMA.
    InstanceType(name="g4dn.xlarge", gpus=1, ec2=0.526, notebook=0.7364),
    InstanceType(name="g4dn.2xlarge", gpus=1, ec2=0.752, notebook=1.0528),
    InstanceType(name="g4dn.4xlarge", gpus=1, ec2=1.204, notebook=1.6856),
    # was: 1 (catalog) vs none (training/efa); [efa-ug]
    InstanceType(name="g4dn.8xlarge", gpus=1, efa=1, ec2=2.176, notebook=3.0464),
    # was: 1 vs none; [efa-ug]
    InstanceType(name="g4dn.12xlarge", gpus=4, efa=1, ec2=3.912, notebook=5.4768),
    # was: 1 vs none; [efa-ug]
    InstanceType(name="g4dn.metal", gpus=8, efa=1),
    InstanceType(name="g5.xlarge", gpus=1, ec2=1.006, hyperpod=1.41, notebook=1.408),
    InstanceType(name="g5.2xlarge", gpus=1, ec2=1.212, hyperpod=1.52, notebook=1.515),
    InstanceType(name="g5.4xlarge", gpus=1, ec2=1.624, hyperpod=2.03, notebook=2.03),
    InstanceType(name="g5.8xlarge", gpus=1, efa=1, ec2=2.448, hyperpod=3.06, notebook=3.06),
    InstanceType(name="g5.12xlarge", gpus=4, efa=1, ec2=5.672, hyperpod=7.09, notebook=7.09),
    InstanceType(name="g5.16xlarge", gpus=1, efa=1, ec2=4.096),
    InstanceType(name="g5.24xlarge", gpus=4, efa=1, ec2=8.144, hyperpod=10.18),
    InstanceType(name="g5.48xlarge", gpus=8, efa=1, ec2=16.288, hyperpod=20.36),
    InstanceType(name="g6.xlarge", gpus=1, ec2=0.805),
    InstanceType(name="g6.2xlarge", gpus=1, ec2=0.978),
    # was: none (catalog) vs EFA (training/efa); [hyperpod]
    InstanceType(name="g6.8xlarge", gpus=1, efa=1, ec2=2.014),
    InstanceType(name="g6.12xlarge", gpus=4, efa=1, ec2=4.602),
    # was: none vs EFA; [hyperpod]
    InstanceType(name="g6.16xlarge", gpus=1, efa=1, ec2=3.397),
    # was: none vs EFA; [hyperpod]
    InstanceType(name="g6.24xlarge", gpus=4, efa=1, ec2=6.675),
    InstanceType(name="g6.48xlarge", gpus=8, efa=1, ec2=13.35),
    InstanceType(name="g6e.xlarge", gpus=1, ec2=1.861),
    # was: 1 vs none; [hyperpod]
    InstanceType(name="g6e.12xlarge", gpus=4, efa=1, ec2=10.493, hyperpod=10.49),
    # was: 4 vs none (a pod asked for 4 interfaces and got no FI_PROVIDER=efa); [efa-bw], [hyperpod]
    InstanceType(name="g6e.48xlarge", gpus=8, efa=4, ec2=30.131, hyperpod=37.66),
    # GPU, p: GPUDirect RDMA over EFA from p4d on.
    InstanceType(name="p3.2xlarge", gpus=1, ec2=3.06, notebook=3.825),
    InstanceType(name="p3.8xlarge", gpus=4, ec2=12.24, notebook=14.688),
    InstanceType(name="p3.16xlarge", gpus=8, ec2=24.48, notebook=28.152),
    # was: 1 vs none; [efa-ug]; no GPUDirect RDMA [ofi-nccl]
    InstanceType(name="p3dn.24xlarge", gpus=8, efa=1, ec2=31.212),
    InstanceType(
        name="p4d.24xlarge", gpus=8, efa=4, gpudirect_rdma=True, ec2=32.7726, hyperpod=37.69
    ),
    InstanceType(
        name="p4de.24xlarge", gpus=8, efa=4, gpudirect_rdma=True, ec2=40.9657, hyperpod=47.11
    ),
    # P5 after the June 2025 EC2 price reduction.
    InstanceType(
        name="p5.48xlarge", gpus=8, efa=32, gpudirect_rdma=True, ec2=55.04, hyperpod=98.32
    ),
    InstanceType(name="p5e.48xlarge", gpus=8, efa=32, gpudirect_rdma=True, hyperpod=108.0),
    InstanceType(name="p5en.48xlarge", gpus=8, efa=16, gpudirect_rdma=True, hyperpod=110.0),
    # was: EFA (training/efa) vs none (catalog); [hyperpod]. Not priced here, so no config may
    # place it yet; the trainer still sets up EFA on it.
    InstanceType(name="p6-b200.48xlarge", gpus=8, efa=8, gpudirect_rdma=True),
    # Trainium: no GPUs; [hyperpod] for EFA.
    InstanceType(name="trn1.32xlarge", efa=8, hyperpod=24.78),
    InstanceType(name="trn1n.32xlarge", efa=16, hyperpod=28.50),
)
INSTANCE_TYPES: dict[str, InstanceType] = {t.name: t for t in _TYPES}


def instance_type(name: str) -> InstanceType | None:
    """The catalog entry of `name` (EC2 `p5.48xlarge` or SageMaker `ml.p5.48xlarge`)."""
    return INSTANCE_TYPES.get(name.removeprefix("ml."))


def gpus_per_instance(name: str) -> int:
    """GPUs in one instance of `name` (`p5.48xlarge` or `ml.p5.48xlarge`); 0 for CPU."""
    entry = instance_type(name)
    return entry.gpus if entry else 0


def efa_interfaces(name: str) -> int:
    """EFA interfaces of one instance of `name` (EC2 or ml.* name); 0 without EFA."""
    entry = instance_type(name)
    return entry.efa if entry else 0


# Views by use. A type is valid for a use exactly when it has a price for it.
# EC2 types EKS node groups may use -> USD per hour.
EC2_INSTANCE_HOURLY_USD: dict[str, float] = {t.name: t.ec2 for t in _TYPES if t.ec2 is not None}
# SageMaker HyperPod cluster instance types (ml.*) -> USD per hour. The accelerated types run
# training; the small CPU types serve as Slurm controller and login nodes.
HYPERPOD_INSTANCE_HOURLY_USD: dict[str, float] = {
    f"ml.{t.name}": t.hyperpod for t in _TYPES if t.hyperpod is not None
}
# SageMaker notebook instance types (ml.*) -> USD per hour.
NOTEBOOK_INSTANCE_HOURLY_USD: dict[str, float] = {
    f"ml.{t.name}": t.notebook for t in _TYPES if t.notebook is not None
}
GPUS_PER_INSTANCE: dict[str, int] = {t.name: t.gpus for t in _TYPES if t.gpus}
EFA_INTERFACES_PER_INSTANCE: dict[str, int] = {t.name: t.efa for t in _TYPES if t.efa}


def instance_family(instance_type: str) -> str:
    """`ml.p5.48xlarge` -> `p5` (empty when the name has no family part)."""
    parts = instance_type.split(".")
    return parts[1] if len(parts) == 3 else ""


# FSx for Lustre, USD per GB-month of storage by deployment type and throughput (MB/s per TiB).
FSX_LUSTRE_GB_MONTH_USD: dict[tuple[str, int | None], float] = {
    ("SCRATCH_2", None): 0.14,
    ("PERSISTENT_1", 50): 0.14,
    ("PERSISTENT_1", 100): 0.194,
    ("PERSISTENT_1", 200): 0.29,
    ("PERSISTENT_2", 125): 0.145,
    ("PERSISTENT_2", 250): 0.21,
    ("PERSISTENT_2", 500): 0.34,
    ("PERSISTENT_2", 1000): 0.60,
}

# Notebook platforms still accepted by SageMaker (Amazon Linux 2 based).
NOTEBOOK_PLATFORMS: frozenset[str] = frozenset(
    {"notebook-al2-v1", "notebook-al2-v2", "notebook-al2-v3"}
)

# VPC interface endpoints, by the short name used in config. The notebook endpoint is the one
# service whose name does not follow com.amazonaws.<region>.<svc>. The defaults are what private
# notebooks and SageMaker jobs need: the API, runtime and notebook UI, STS, ENIs, logs, ECR.
DEFAULT_INTERFACE_ENDPOINTS = (
    "sagemaker.api",
    "sagemaker.runtime",
    "notebook",
    "sts",
    "ec2",
    "logs",
    "ecr.api",
    "ecr.dkr",
)
INTERFACE_ENDPOINTS: frozenset[str] = frozenset(
    {
        *DEFAULT_INTERFACE_ENDPOINTS,
        "kms",
        "secretsmanager",
        "monitoring",
        "ssm",
        "elasticloadbalancing",
        "autoscaling",
        "eks",
        "eks-auth",
    }
)


def endpoint_service_name(short_name: str, region: str) -> str:
    """The AWS service name of an endpoint given by its config short name."""
    if short_name == "notebook":
        return f"aws.sagemaker.{region}.notebook"
    return f"com.amazonaws.{region}.{short_name}"


# EKS control plane per cluster-hour (standard support; versions in extended support cost $0.60).
EKS_CONTROL_PLANE_HOURLY = 0.10
# Kubernetes versions a cluster may run (EKS standard or extended support, and schemas that
# kubernetes-validate ships, so rendered manifests are checked against the same version).
EKS_KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34", "1.35")
