"""What an EKS cluster needs so HyperPod nodes can run training jobs on it.

Installable through the EKS API (no kubeconfig needed, so they work for any cluster ARN):

- `cert-manager`: EKS add-on; the training operator's webhooks need it.
- `amazon-sagemaker-hyperpod-training-operator`: EKS add-on (runs `HyperPodPyTorchJob`s), its IAM
  role bound to the operator's service account through EKS Pod Identity (the
  `eks-pod-identity-agent` add-on must be on the cluster: the stack's GpuEksCluster installs it).

Not published anywhere we could install from: the HyperPod dependencies Helm chart (health
monitoring agent, deep health checks, job auto-restart RBAC, the `aws-hyperpod` namespace) lives in
the git repository aws/sagemaker-hyperpod-cli (`helm_chart/HyperPodHelmChart`), in no chart
repository. Its source is a config value (`dependenciesChart`: a chart repository or OCI registry
where the operator publishes it); without one nothing is installed for it and `prerequisites`
(printed by the plan) says so.

HyperPod itself creates the EKS access entries of the cluster's execution role (type
HYPERPOD_LINUX, listed as `EksRoleAccessEntries` by DescribeCluster); creating them here too would
make one of the two creations fail, so we do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from mlplatform.components.iam import managed_policy_arn, pod_identity_trust_policy

TRAINING_OPERATOR_ADDON = "amazon-sagemaker-hyperpod-training-operator"
TRAINING_OPERATOR_POLICY = "AmazonSageMakerHyperPodTrainingOperatorAccess"
TRAINING_OPERATOR_SERVICE_ACCOUNT = "hp-training-operator-controller-manager"
HYPERPOD_NAMESPACE = "aws-hyperpod"  # fixed by HyperPod; its components look for it
CHART_UPSTREAM = "github.com/aws/sagemaker-hyperpod-cli, helm_chart/HyperPodHelmChart"


@dataclass(frozen=True)
class ChartSource:
    """Where the operator publishes the HyperPod dependencies chart.

    `repo` is an HTTP chart repository, or None when `chart` is an `oci://` reference.
    """

    chart: str
    version: str
    repo: str | None = None


@dataclass(frozen=True)
class EksPrerequisites:
    """Which prerequisites the stack installs on the EKS cluster."""

    cert_manager: bool = True
    training_operator: bool = True
    dependencies_chart: ChartSource | None = None
    # Needed for the chart only; the add-ons go through the EKS API.
    k8s_provider: k8s.Provider | None = None

    def report(self) -> dict[str, str]:
        """What is installed and what is left to the operator, for the plan's outputs."""
        chart = self.dependencies_chart
        return {
            "dependencies-chart": (
                f"Helm release hyperpod-dependencies ({chart.chart} {chart.version}) in "
                f"kube-system: health monitoring agent, deep health checks, namespace "
                f"{HYPERPOD_NAMESPACE}"
                if chart
                else f"NOT INSTALLED (health monitoring agent, deep health checks, namespace "
                f"{HYPERPOD_NAMESPACE}): in no chart repository ({CHART_UPSTREAM}); publish it "
                "and set dependenciesChart, or install it by hand before creating the cluster"
            ),
            "cert-manager": (
                "EKS add-on cert-manager"
                if self.cert_manager
                else "not installed by this stack (certManager: false)"
            ),
            "training-operator": (
                f"EKS add-on {TRAINING_OPERATOR_ADDON}, pod identity "
                f"{HYPERPOD_NAMESPACE}/{TRAINING_OPERATOR_SERVICE_ACCOUNT}"
                if self.training_operator
                else "not installed by this stack (trainingOperator: false)"
            ),
        }


def dependencies_chart(
    name: str,
    prerequisites: EksPrerequisites,
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource] = (),
) -> k8s.helm.v3.Release | None:
    """The HyperPod dependencies chart, when its source is configured. AWS installs it into
    kube-system before the HyperPod cluster is created."""
    chart = prerequisites.dependencies_chart
    if chart is None:
        return None
    if prerequisites.k8s_provider is None:
        raise ValueError(f"{name}: the HyperPod dependencies chart needs a Kubernetes provider")
    return k8s.helm.v3.Release(
        f"{name}-dependencies",
        name="hyperpod-dependencies",
        chart=chart.chart,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo) if chart.repo else None,
        namespace="kube-system",
        atomic=True,
        cleanup_on_fail=True,
        timeout=600,
        opts=pulumi.ResourceOptions(
            parent=parent, provider=prerequisites.k8s_provider, depends_on=list(after)
        ),
    )


def eks_addons(
    name: str,
    prerequisites: EksPrerequisites,
    *,
    cluster_name: pulumi.Input[str],
    partition: pulumi.Input[str],
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource],
) -> list[aws.eks.Addon]:
    """cert-manager and the training operator (with its pod identity role), after `after`."""
    child = pulumi.ResourceOptions(parent=parent)

    def addon(
        addon_name: str,
        depends_on: Sequence[pulumi.Resource],
        pod_identity: Sequence[aws.eks.AddonPodIdentityAssociationArgs] = (),
    ) -> aws.eks.Addon:
        return aws.eks.Addon(
            f"{name}-{addon_name}",
            cluster_name=cluster_name,
            addon_name=addon_name,
            pod_identity_associations=list(pod_identity) or None,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
        )

    addons = []
    if prerequisites.cert_manager:
        addons.append(addon("cert-manager", after))
    if prerequisites.training_operator:
        role = aws.iam.Role(
            f"{name}-training-operator-role",
            description=f"{name}: HyperPod training operator (EKS Pod Identity)",
            assume_role_policy=pod_identity_trust_policy(),
            max_session_duration=3600,
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-training-operator-policy",
            role=role.name,
            policy_arn=managed_policy_arn(partition, TRAINING_OPERATOR_POLICY),
            opts=child,
        )
        addons.append(
            addon(
                TRAINING_OPERATOR_ADDON,
                [*after, *addons, attachment],
                [
                    aws.eks.AddonPodIdentityAssociationArgs(
                        role_arn=role.arn, service_account=TRAINING_OPERATOR_SERVICE_ACCOUNT
                    )
                ],
            )
        )
    return addons
