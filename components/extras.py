"""Which install extra brings each provider SDK that only some components need.

`pip install mlplatform` has pulumi-aws; GpuEksCluster, ArcRunners and TrainingJob also need
`mlplatform[eks]`, HyperPodCluster `mlplatform[hyperpod]` (pyproject.toml's extras; a test keeps
the two in step). A component imported without its extra says which one to install.
"""

from typing import NoReturn

EXTRA_OF_MODULE = {
    "pulumi_eks": "eks",
    "pulumi_kubernetes": "eks",
    "pulumi_aws_native": "hyperpod",
}


def missing_extra(error: ModuleNotFoundError, component: str) -> NoReturn:
    """Re-raise a provider SDK's ModuleNotFoundError as one line naming the extra to install."""
    extra = EXTRA_OF_MODULE.get(error.name or "")
    if extra is None:
        raise error
    raise ModuleNotFoundError(
        f"{component}: {error.name} is not installed (pip install 'mlplatform[{extra}]')",
        name=error.name,
    ) from None
