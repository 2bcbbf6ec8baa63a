"""What an EKS cluster needs so HyperPod nodes can run training jobs on it.

Installable through the EKS API (no kubeconfig needed, so they work for any cluster ARN):

- `cert-manager`: EKS add-on; the training operator's webhooks need it.
- `amazon-sagemaker-hyperpod-training-operator`: EKS add-on (runs `HyperPodPyTorchJob`s), its IAM
  role bound to the operator's service account through EKS Pod Identity (the
  `eks-pod-identity-agent` add-on must be on the cluster: the stack's GpuEksCluster installs it).

Not published anywhere we could install from: the HyperPod dependencies Helm chart (health
monitoring agent, deep health checks, job auto-restart RBAC, the `aws-hyperpod` namespace) lives in
the git repository aws/sagemaker-hyperpod-cli (`helm_chart/HyperPodHelmChart`), in no chart
repository. Its source is a setting (`dependencies_chart`, stack key `dependenciesChart`: a chart
repository or OCI registry where the operator publishes it), installed through the Kubernetes
provider the HyperPodCluster receives in its options; without one nothing is installed for it and
`prerequisites` (printed by the plan) says so.

HyperPod itself creates the EKS access entries of the cluster's execution role (type
HYPERPOD_LINUX, listed as `EksRoleAccessEntries` by DescribeCluster); creating them here too would
make one of the two creations fail, so we do not.
"""

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from mlplatform.components.extras import missing_extra
from mlplatform.components.iam import managed_policy_arn, pod_identity_trust_policy
from mlplatform.components.schema import SettingError, schema

try:
    import pulumi_kubernetes as k8s
except ModuleNotFoundError as missing:
    missing_extra(missing, "HyperPodCluster")

TRAINING_OPERATOR_ADDON = "amazon-sagemaker-hyperpod-training-operator"
TRAINING_OPERATOR_POLICY = "AmazonSageMakerHyperPodTrainingOperatorAccess"
TRAINING_OPERATOR_SERVICE_ACCOUNT = "hp-training-operator-controller-manager"
HYPERPOD_NAMESPACE = "aws-hyperpod"  # fixed by HyperPod; its components look for it
CHART_UPSTREAM = "github.com/aws/sagemaker-hyperpod-cli, helm_chart/HyperPodHelmChart"


@schema
class ChartSource:
    """Where the operator publishes a chart no public repository offers (the HyperPod
    dependencies chart)."""

    chart: str = Field(min_length=1)
    """A chart name in `repo`, or an `oci://` reference."""
    version: str = Field(min_length=1)
    """The chart version to install."""
    repo: str | None = None
    """The https:// chart repository; none when `chart` is an `oci://` reference."""

    @field_validator("chart", "version")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @model_validator(mode="after")
    def _where(self) -> "ChartSource":
        if self.repo is None and not self.chart.startswith("oci://"):
            raise SettingError("repo", "is required unless chart is an oci:// reference")
        if self.repo is not None and not self.repo.startswith("https://"):
            raise SettingError("repo", f"{self.repo!r} is not an https:// chart repository")
        return self


def prerequisites_report(
    *, cert_manager: bool, training_operator: bool, chart: ChartSource | None
) -> dict[str, str]:
    """What is installed and what is left to the operator, for the plan's outputs."""
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
            if cert_manager
            else "not installed by this stack (certManager: false)"
        ),
        "training-operator": (
            f"EKS add-on {TRAINING_OPERATOR_ADDON}, pod identity "
            f"{HYPERPOD_NAMESPACE}/{TRAINING_OPERATOR_SERVICE_ACCOUNT}"
            if training_operator
            else "not installed by this stack (trainingOperator: false)"
        ),
    }


def dependencies_chart(
    name: str, chart: ChartSource, opts: pulumi.ResourceOptions
) -> k8s.helm.v3.Release:
    """The HyperPod dependencies chart. AWS installs it into kube-system before the HyperPod
    cluster is created. Its Kubernetes provider comes with `opts` (from the parent)."""
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
        opts=opts,
    )


def eks_addons(
    name: str,
    *,
    cert_manager: bool,
    training_operator: bool,
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
    if cert_manager:
        addons.append(addon("cert-manager", after))
    if training_operator:
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
