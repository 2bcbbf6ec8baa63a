"""The component provider: mlplatform's ComponentResources for any Pulumi language.

`provider/` (PulumiPlugin.yaml, `__main__.py`, requirements.txt) is a source-based plugin
package: `pulumi package add <path or git URL>/provider` launches `main()` below, Pulumi's
analyzer infers each component's schema from its Args annotations (inputs) and its class
annotations (outputs), and the CLI generates an SDK in the consumer's language. The type token
of each component is `mlplatform:index:<ClassName>`, so `name` must stay "mlplatform".
"""

import pulumi
from pulumi.provider.experimental import component_provider_host

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


def main() -> None:
    component_provider_host(
        components=COMPONENTS, name="mlplatform", version=mlplatform.__version__
    )
