"""README's config reference is generated from the component schemas and must stay current."""

from __future__ import annotations

from mlplatform.components.eks import GpuNodeGroup
from mlplatform.reference import BEGIN, END, reference
from tests.conftest import ROOT


def test_readme_holds_the_generated_reference() -> None:
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    assert readme[start:end] == reference(), "stale: run python -m mlplatform.reference"


def test_the_reference_shows_each_default_as_declared() -> None:
    """The GPU node group disk default (once 200 here and 100 there) comes from its schema."""
    declared = GpuNodeGroup.__pydantic_fields__["disk_size_gb"].default  # type: ignore[attr-defined]
    section = reference().split("**eks.gpuNodeGroups[]**")[1].split("**")[0]
    (row,) = [line for line in section.splitlines() if line.startswith("| `diskSizeGb` |")]
    assert f"| `{declared}` |" in row


def test_every_stack_key_and_nested_field_is_in_the_reference() -> None:
    text = reference()
    for key in ("aws:region", "vpcEndpoints", "gpuNodeGroups", "instanceGroups", "runnerClasses"):
        assert f"`{key}`" in text, key
    for section in ("notebooks[]", "eks.systemNodeGroup", "hyperpodClusters[].fsx", "arc"):
        assert f"**{section}**" in text, section
