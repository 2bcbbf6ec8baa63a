"""Any Pulumi language: the plugin package (provider/) hosts every public component, and Pulumi's
analyzer infers each one's schema the way `pulumi package add` will: inputs from the Args class of
the constructor's `args`, outputs from the component class's annotations.

No Pulumi CLI runs here; the analyzer and the schema generator are the SDK's own, offline.
"""

import dataclasses
import importlib
import inspect
import pkgutil
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.provider.experimental.analyzer import ComponentDefinition
from pulumi.provider.experimental.schema import generate_schema

import mlplatform
import mlplatform.components
from mlplatform import provider

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "provider"

# Components the analyzer cannot read yet, and why (issue 13 reshapes their Args). Strict: a
# component that starts passing fails here until it is taken off this list.
NOT_YET_ANALYZABLE: dict[str, str] = {}

# Annotations on the component class that are schema outputs start with a letter; everything
# Pulumi's own base classes declare is not ours.
PULUMI_BASES = (pulumi.ComponentResource, pulumi.Resource, object)


def hosted(component: type) -> Any:
    marks = []
    if component.__name__ in NOT_YET_ANALYZABLE:
        marks.append(pytest.mark.xfail(strict=True, reason=NOT_YET_ANALYZABLE[component.__name__]))
    return pytest.param(component, id=component.__name__, marks=marks)


def public_components() -> set[type]:
    """Every ComponentResource defined in a module of mlplatform.components."""
    found = set()
    for module_info in pkgutil.iter_modules(mlplatform.components.__path__):
        module = importlib.import_module(f"mlplatform.components.{module_info.name}")
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, pulumi.ComponentResource)
                and value.__module__ == module.__name__
                and not value.__name__.startswith("_")
            ):
                found.add(value)
    return found


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def args_class(component: type) -> type:
    args = inspect.get_annotations(component.__init__, eval_str=True)["args"]
    assert dataclasses.is_dataclass(args), f"{component.__name__}: args is not an Args class"
    return args


def required_fields(args: type) -> dict[str, bool]:
    """Python field name -> has no default (pydantic's view for @schema Args)."""
    pydantic_fields = getattr(args, "__pydantic_fields__", None)
    if pydantic_fields is not None:
        return {name: field.is_required() for name, field in pydantic_fields.items()}
    return {
        field.name: field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
        for field in dataclasses.fields(args)
    }


def declared_outputs(component: type) -> set[str]:
    names: set[str] = set()
    for cls in component.__mro__:
        if cls not in PULUMI_BASES:
            names |= {n for n in inspect.get_annotations(cls) if not n.startswith("_")}
    return names


def analyze(component: type) -> ComponentDefinition:
    result = provider.DocumentedAnalyzer("mlplatform").analyze([component])
    return result["component_definitions"][component.__name__]


def test_the_provider_hosts_every_public_component() -> None:
    assert set(provider.COMPONENTS) == public_components()
    assert len(provider.COMPONENTS) == len(set(provider.COMPONENTS)) == 9


def test_main_hosts_the_components_as_package_mlplatform_at_the_package_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hosted_with: dict[str, Any] = {}
    monkeypatch.setattr(provider, "component_provider_host", lambda **kw: hosted_with.update(kw))
    # main() swaps the analyzer the host builds its schema with: restored after the test.
    monkeypatch.setattr(provider.hosted_component, "Analyzer", provider.hosted_component.Analyzer)
    provider.main()
    assert provider.hosted_component.Analyzer is provider.DocumentedAnalyzer
    assert hosted_with == {
        "components": provider.COMPONENTS,
        "name": "mlplatform",
        "version": mlplatform.__version__,
    }


def test_plugin_package_is_python_and_installs_this_package_with_every_provider() -> None:
    assert yaml.safe_load((PLUGIN / "PulumiPlugin.yaml").read_text()) == {"runtime": "python"}
    assert "from mlplatform.provider import main" in (PLUGIN / "__main__.py").read_text()
    requirements = [
        line.strip()
        for line in (PLUGIN / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Pulumi runs `pip install -r requirements.txt` in the plugin directory: `..` is this checkout.
    assert requirements == ["..[all]"]
    assert (PLUGIN / ".." / "pyproject.toml").resolve() == ROOT / "pyproject.toml"


@pytest.mark.parametrize("component", provider.COMPONENTS, ids=lambda c: c.__name__)
def test_type_token_is_the_package_and_class_name(component: type) -> None:
    """The provider constructs a component by the class name in the token it was asked for."""
    assert f'"mlplatform:index:{component.__name__}"' in inspect.getsource(component)


@pytest.mark.parametrize("component", [hosted(c) for c in provider.COMPONENTS])
def test_analyzer_infers_the_schema_from_the_args_and_the_class(component: type) -> None:
    definition = analyze(component)
    fields = required_fields(args_class(component))

    # Inputs: every Args field, camelCased; required exactly when it has no default.
    assert {name: not prop.optional for name, prop in definition.inputs.items()} == {
        camel(name): required for name, required in fields.items()
    }
    # Outputs: the class's own annotations, nothing else.
    assert set(definition.outputs) == {camel(name) for name in declared_outputs(component)}
    # Every input and output has its one-line docstring; the component has its description.
    undocumented = [
        name
        for name, prop in {**definition.inputs, **definition.outputs}.items()
        if not prop.description
    ]
    assert undocumented == []
    assert definition.description


def test_schema_of_the_analyzable_components_names_them_under_the_package() -> None:
    analyzable = [c for c in provider.COMPONENTS if c.__name__ not in NOT_YET_ANALYZABLE]
    result = provider.DocumentedAnalyzer("mlplatform").analyze(analyzable)
    schema = generate_schema(
        "mlplatform",
        mlplatform.__version__,
        None,
        result["component_definitions"],
        result["type_definitions"],
        list(result["dependencies"]),
    ).to_json()
    assert set(schema["resources"]) == {f"mlplatform:index:{c.__name__}" for c in analyzable}
    bucket = schema["resources"]["mlplatform:index:SecureBucket"]
    assert bucket["isComponent"] is True
    assert bucket["requiredInputs"] == ["kmsKeyArn"]
    assert bucket["inputProperties"]["noncurrentVersionDays"]["type"] == "integer"
    assert sorted(bucket["properties"]) == ["arn", "bucketName"]


def test_the_readme_yaml_example_is_what_the_component_accepts() -> None:
    """The provider hands a component its YAML properties as a mapping: the example's must parse."""
    from mlplatform.components.eks import GpuEksClusterArgs
    from mlplatform.components.schema import parse

    readme = (ROOT / "README.md").read_text()
    block = readme.split("YAML:\n\n```yaml\n", 1)[1].split("```", 1)[0]
    resource = yaml.safe_load(block)["resources"]["gpu"]
    assert resource["type"] == "mlplatform:index:GpuEksCluster"
    args = parse(GpuEksClusterArgs, resource["properties"])
    assert [group.instance_types for group in args.gpu_node_groups] == [["g6.xlarge"]]
