"""A component imported without its install extra says which extra to install."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement

from mlplatform.components.extras import EXTRA_OF_MODULE
from tests.conftest import ROOT

# Hide one provider SDK from the interpreter, as a `pip install mlplatform` without the extra.
BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r} or name.startswith({module!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
import {component_module}
"""


@pytest.mark.parametrize(
    ("module", "component_module", "expected"),
    [
        (
            "pulumi_aws_native",
            "mlplatform.components.hyperpod",
            "ModuleNotFoundError: HyperPodCluster: pulumi_aws_native is not installed "
            "(pip install 'mlplatform[hyperpod]')",
        ),
        (
            "pulumi_eks",
            "mlplatform.components.eks",
            "ModuleNotFoundError: GpuEksCluster: pulumi_eks is not installed "
            "(pip install 'mlplatform[eks]')",
        ),
        (
            "pulumi_kubernetes",
            "mlplatform.components.arc_runners",
            "ModuleNotFoundError: Helm releases (GpuEksCluster, ArcRunners): pulumi_kubernetes is "
            "not installed (pip install 'mlplatform[eks]')",
        ),
    ],
)
def test_a_missing_provider_sdk_names_the_extra(
    module: str, component_module: str, expected: str
) -> None:
    code = BLOCK.format(module=module, component_module=component_module)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == expected


def test_each_guarded_sdk_is_in_the_extra_it_names() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]

    def distributions(extra: str) -> set[str]:
        found = set()
        for line in extras[extra]:
            requirement = Requirement(line)
            if requirement.name == "mlplatform":
                for inner in requirement.extras:
                    found |= distributions(inner)
            else:
                found.add(requirement.name.replace("-", "_"))
        return found

    for module, extra in EXTRA_OF_MODULE.items():
        assert module in distributions(extra), (module, extra)
