"""What AWS offers that our config may name: one table per kind, used by validation and pricing.

Prices are approximate on-demand list prices in us-east-1 (USD per hour), taken from the public
AWS pricing pages; they feed the offline plan's estimate, not a bill. A type is valid for config
exactly when it is listed here, so the plan can always price what the config accepts.
"""

from __future__ import annotations

HOURS_PER_MONTH = 730

# SageMaker notebook instance types (ml.*) -> USD per hour.
NOTEBOOK_INSTANCE_HOURLY_USD: dict[str, float] = {
    "ml.t2.medium": 0.0464,
    "ml.t2.large": 0.0928,
    "ml.t2.xlarge": 0.1856,
    "ml.t2.2xlarge": 0.3712,
    "ml.t3.medium": 0.05,
    "ml.t3.large": 0.10,
    "ml.t3.xlarge": 0.20,
    "ml.t3.2xlarge": 0.399,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.m5.4xlarge": 0.922,
    "ml.m5.12xlarge": 2.765,
    "ml.m5.24xlarge": 5.53,
    "ml.m5d.xlarge": 0.271,
    "ml.m5d.2xlarge": 0.542,
    "ml.m5d.4xlarge": 1.085,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.c5.4xlarge": 0.816,
    "ml.c5.9xlarge": 1.836,
    "ml.c5.18xlarge": 3.672,
    "ml.r5.large": 0.151,
    "ml.r5.xlarge": 0.302,
    "ml.r5.2xlarge": 0.605,
    "ml.r5.4xlarge": 1.21,
    "ml.g4dn.xlarge": 0.7364,
    "ml.g4dn.2xlarge": 1.0528,
    "ml.g4dn.4xlarge": 1.6856,
    "ml.g4dn.8xlarge": 3.0464,
    "ml.g4dn.12xlarge": 5.4768,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.g5.4xlarge": 2.03,
    "ml.g5.8xlarge": 3.06,
    "ml.g5.12xlarge": 7.09,
    "ml.p3.2xlarge": 3.825,
    "ml.p3.8xlarge": 14.688,
    "ml.p3.16xlarge": 28.152,
}

# SageMaker HyperPod cluster instance types (ml.*) -> USD per hour, on-demand, us-east-1. The
# accelerated types run training; the small CPU types serve as Slurm controller and login nodes.
HYPERPOD_INSTANCE_HOURLY_USD: dict[str, float] = {
    "ml.p5.48xlarge": 98.32,
    "ml.p5e.48xlarge": 108.0,
    "ml.p5en.48xlarge": 110.0,
    "ml.p4d.24xlarge": 37.69,
    "ml.p4de.24xlarge": 47.11,
    "ml.trn1.32xlarge": 24.78,
    "ml.trn1n.32xlarge": 28.50,
    "ml.g5.xlarge": 1.41,
    "ml.g5.2xlarge": 1.52,
    "ml.g5.4xlarge": 2.03,
    "ml.g5.8xlarge": 3.06,
    "ml.g5.12xlarge": 7.09,
    "ml.g5.24xlarge": 10.18,
    "ml.g5.48xlarge": 20.36,
    "ml.g6e.12xlarge": 10.49,
    "ml.g6e.48xlarge": 37.66,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.c5.4xlarge": 0.816,
    "ml.c5.9xlarge": 1.836,
    "ml.c5.18xlarge": 3.672,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.m5.4xlarge": 0.922,
    "ml.m5.8xlarge": 1.843,
    "ml.m5.12xlarge": 2.765,
    "ml.m5.24xlarge": 5.53,
    "ml.t3.medium": 0.05,
    "ml.t3.large": 0.10,
    "ml.t3.xlarge": 0.20,
    "ml.t3.2xlarge": 0.399,
}


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


# GPUs per instance for the GPU families the platform schedules (EC2 names; SageMaker's ml.*
# names map to the same hardware). Used to bound a stack's GPU capacity.
GPUS_PER_INSTANCE: dict[str, int] = {
    "p5.48xlarge": 8,
    "p5e.48xlarge": 8,
    "p5en.48xlarge": 8,
    "p4d.24xlarge": 8,
    "p4de.24xlarge": 8,
    "p3.2xlarge": 1,
    "p3.8xlarge": 4,
    "p3.16xlarge": 8,
    "p3dn.24xlarge": 8,
    "g4dn.xlarge": 1,
    "g4dn.2xlarge": 1,
    "g4dn.4xlarge": 1,
    "g4dn.8xlarge": 1,
    "g4dn.12xlarge": 4,
    "g4dn.metal": 8,
    "g5.xlarge": 1,
    "g5.2xlarge": 1,
    "g5.4xlarge": 1,
    "g5.8xlarge": 1,
    "g5.12xlarge": 4,
    "g5.16xlarge": 1,
    "g5.24xlarge": 4,
    "g5.48xlarge": 8,
    "g6.xlarge": 1,
    "g6.2xlarge": 1,
    "g6.12xlarge": 4,
    "g6.48xlarge": 8,
    "g6e.xlarge": 1,
    "g6e.12xlarge": 4,
    "g6e.48xlarge": 8,
}


def gpus_per_instance(instance_type: str) -> int:
    """GPUs in one instance of `instance_type` (`p5.48xlarge` or `ml.p5.48xlarge`); 0 for CPU."""
    return GPUS_PER_INSTANCE.get(instance_type.removeprefix("ml."), 0)


# EFA network interfaces per instance (the `vpc.amazonaws.com/efa` resource a node advertises);
# types not listed have none. A training pod asks for all of its node's interfaces.
EFA_INTERFACES_PER_INSTANCE: dict[str, int] = {
    "p5.48xlarge": 32,
    "p5e.48xlarge": 32,
    "p5en.48xlarge": 16,
    "p4d.24xlarge": 4,
    "p4de.24xlarge": 4,
    "p3dn.24xlarge": 1,
    "g4dn.8xlarge": 1,
    "g4dn.12xlarge": 1,
    "g4dn.metal": 1,
    "g5.8xlarge": 1,
    "g5.12xlarge": 1,
    "g5.16xlarge": 1,
    "g5.24xlarge": 1,
    "g5.48xlarge": 1,
    "g6.12xlarge": 1,
    "g6.48xlarge": 1,
    "g6e.12xlarge": 1,
    "g6e.48xlarge": 4,
}


def efa_interfaces(instance_type: str) -> int:
    """EFA interfaces of one instance of `instance_type` (EC2 or ml.* name); 0 without EFA."""
    return EFA_INTERFACES_PER_INSTANCE.get(instance_type.removeprefix("ml."), 0)


# EC2 instance types EKS node groups may use -> USD per hour (on-demand, us-east-1, approximate;
# P5 after the June 2025 price reduction). A node group type is valid exactly when listed here.
EC2_INSTANCE_HOURLY_USD: dict[str, float] = {
    # CPU: system node groups and CPU runners.
    "t3.medium": 0.0416,
    "t3.large": 0.0832,
    "t3.xlarge": 0.1664,
    "m5.large": 0.096,
    "m5.xlarge": 0.192,
    "m5.2xlarge": 0.384,
    "m6i.large": 0.096,
    "m6i.xlarge": 0.192,
    "m6i.2xlarge": 0.384,
    "m7i.large": 0.1008,
    "m7i.xlarge": 0.2016,
    "m7i.2xlarge": 0.4032,
    "c6i.xlarge": 0.17,
    "c6i.2xlarge": 0.34,
    # GPU.
    "g4dn.xlarge": 0.526,
    "g4dn.2xlarge": 0.752,
    "g4dn.4xlarge": 1.204,
    "g4dn.8xlarge": 2.176,
    "g4dn.12xlarge": 3.912,
    "g5.xlarge": 1.006,
    "g5.2xlarge": 1.212,
    "g5.4xlarge": 1.624,
    "g5.8xlarge": 2.448,
    "g5.12xlarge": 5.672,
    "g5.16xlarge": 4.096,
    "g5.24xlarge": 8.144,
    "g5.48xlarge": 16.288,
    "g6.xlarge": 0.805,
    "g6.2xlarge": 0.978,
    "g6.12xlarge": 4.602,
    "g6.48xlarge": 13.35,
    "g6e.xlarge": 1.861,
    "g6e.12xlarge": 10.493,
    "g6e.48xlarge": 30.131,
    "p3.2xlarge": 3.06,
    "p3.8xlarge": 12.24,
    "p3.16xlarge": 24.48,
    "p3dn.24xlarge": 31.212,
    "p4d.24xlarge": 32.7726,
    "p4de.24xlarge": 40.9657,
    "p5.48xlarge": 55.04,
}

# EKS control plane per cluster-hour (standard support; versions in extended support cost $0.60).
EKS_CONTROL_PLANE_HOURLY = 0.10
# Kubernetes versions a cluster may run (EKS standard or extended support, and schemas that
# kubernetes-validate ships, so rendered manifests are checked against the same version).
EKS_KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34", "1.35")
