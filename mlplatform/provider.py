"""The component provider: mlplatform's ComponentResources for any Pulumi language.

`provider/` (PulumiPlugin.yaml, `__main__.py`, requirements.txt) is a source-based plugin
package: `pulumi package add <path or git URL>/provider` launches `main()` below, Pulumi's
analyzer infers each component's schema from its Args annotations (inputs) and its class
annotations (outputs), and the CLI generates an SDK in the consumer's language. The type token
of each component is `mlplatform:index:<ClassName>`, so `name` must stay "mlplatform".
"""

from typing import Any

import pulumi
from pulumi.provider.experimental import component as hosted_component
from pulumi.provider.experimental import component_provider_host
from pulumi.provider.experimental.analyzer import Analyzer

import mlplatform
from mlplatform.components.arc_runners import ArcRunners
from mlplatform.components.bucket import SecureBucket
from mlplatform.components.eks import GpuEksCluster
from mlplatform.components.hyperpod import HyperPodCluster
from mlplatform.components.images import ContainerImage
from mlplatform.components.network import Network
from mlplatform.components.notebook import NotebookInstance
from mlplatform.components.shared_infra import SharedInfra
from mlplatform.components.training_job import TrainingJob

# Every public ComponentResource of mlplatform.components (a test keeps this list complete).
COMPONENTS: list[type[pulumi.ComponentResource]] = [
    SharedInfra,
    Network,
    SecureBucket,
    NotebookInstance,
    GpuEksCluster,
    ArcRunners,
    ContainerImage,
    HyperPodCluster,
    TrainingJob,
]


class DocumentedAnalyzer(Analyzer):
    """Pulumi's analyzer, with the descriptions of inherited settings.

    The analyzer reads a field's docstring from the source of the class it analyzes only, so an
    Args class that inherits its settings (`GpuEksClusterArgs(GpuEksClusterSettings)`) would lose
    every inherited description. components.schema keeps each declaration's docstring on the
    field, inherited ones included; this fills the gap from there.
    """

    def get_docstring(self, typ: type, name: str) -> str | None:
        found = super().get_docstring(typ, name)
        if found is None:
            field: Any = getattr(typ, "__pydantic_fields__", {}).get(name)
            found = field.description if field is not None else None
        return found


def main() -> None:
    # The host builds its provider's schema with the Analyzer of its own module: ours instead.
    hosted_component.Analyzer = DocumentedAnalyzer  # type: ignore[misc]
    component_provider_host(
        components=COMPONENTS, name="mlplatform", version=mlplatform.__version__
    )
