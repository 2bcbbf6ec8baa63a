"""One declaration per setting: the Args of every component validate themselves.

A component's Args is a class decorated with `@schema`: each field is declared once, with its
type, default, bounds (`pydantic.Field`) and a one-line docstring under it. The same declaration
serves three callers:

- Python code constructing Args: a bad value raises `ArgsError`, one line naming the argument
  (`GpuNodeGroup.max_size: 1 is below minSize 2`), never a traceback from deep inside.
- The stack file: `mlplatform/config.py` composes the stack's config from these classes and reports
  the same problem as `Pulumi.staging.yaml: mlplatform:eks.gpuNodeGroups[0].maxSize: ...`.
- Other Pulumi languages: the fields are plain types, enums, lists, maps and nested Args, so
  Pulumi's component analyzer infers a schema from them; the provider hands the component a
  mapping, which `parse` validates exactly like a stack file.

Why the annotations are plain: the analyzer reads `__annotations__` without evaluating strings
(no `from __future__ import annotations` in an Args module), refuses unions other than
`X | None`, `Literal`, and component objects as inputs. A field with a default is optional in the
schema: the decorator tells the analyzer so by wrapping its annotation in `Optional` once pydantic
has built the validator from the real one.
"""

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Optional, TypeVar, cast, dataclass_transform

import pulumi
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.dataclasses import rebuild_dataclass
from pydantic_core import PydanticUndefined

T = TypeVar("T")

# Stack files spell keys in camelCase, Python code in snake_case; both are accepted everywhere.
CONFIG = ConfigDict(
    alias_generator=to_camel,
    populate_by_name=True,
    extra="forbid",
    arbitrary_types_allowed=True,  # pulumi.Output inside pulumi.Input[...]
    use_attribute_docstrings=True,
)


# What stands in for a secret value wherever it must not or cannot be shown: in an error message
# about a bad secret, a secret input or output in the offline plan and in rendered manifests,
# and a `secure:` stack value, which only the Pulumi CLI can decrypt. One concept, one constant:
# a test or a reader looking for a hidden value looks for this text.
SECRET_MASK = "[secret]"


class ArgsError(pulumi.RunError):
    """A bad setting. Its message is one line naming the setting; no traceback follows."""


class SettingError(ValueError):
    """Raised by a cross-field check: the problem belongs to field `key` (its Python name)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(Field,))
def schema(cls: type[T]) -> type[T]:
    """Make `cls` a validating, frozen, keyword-only Args dataclass (see the module docstring)."""
    built = pydantic_dataclass(frozen=True, kw_only=True, config=CONFIG)(cls)
    # pulumi.Input[T] refers to Output by a forward reference.
    rebuild_dataclass(built, _types_namespace={"Output": pulumi.Output, "T": Any})
    init = built.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if args:  # pydantic would report them as list items of the first field
            raise ArgsError(f"{built.__name__}: takes keyword arguments only, got {len(args)}")
        try:
            init(self, *args, **kwargs)
        except ValidationError as error:
            message = describe(error, built.__name__, camel=False, schema_root=built)
            raise ArgsError(message) from None

    __init__.__doc__ = init.__doc__
    built.__init__ = __init__  # type: ignore[method-assign]
    # A field inherited from a settings class keeps its docstring (pydantic reads only the
    # class's own source).
    for name, field in built.__pydantic_fields__.items():
        if field.description is None:
            field.description = _inherited_description(built, name)
    # The class's own annotations, edited in place (inspect.get_annotations returns a copy).
    annotations = built.__dict__.get("__annotations__", {})  # noqa: RUF063
    for name, field in built.__pydantic_fields__.items():
        has_default = field.default is not PydanticUndefined or field.default_factory is not None
        if name in annotations and has_default:
            annotations[name] = Optional[annotations[name]]  # noqa: UP045 (the analyzer's form)
    return cast(type[T], built)


def check_unique_names(items: Sequence[Any], key: str, taken: Sequence[str] = ()) -> None:
    """Each item's `name` used once (and none of `taken`): else a SettingError on the second use,
    `<key>[i].name`."""
    seen = set(taken)
    for index, item in enumerate(items):
        if item.name in seen:
            raise SettingError(f"{key}[{index}].name", f"{item.name!r} is used twice")
        seen.add(item.name)


def _inherited_description(cls: type, name: str) -> str | None:
    for base in cls.__mro__[1:]:
        field = getattr(base, "__pydantic_fields__", {}).get(name)
        if field is not None and field.description:
            return str(field.description)
    return None


def parse(cls: type[T], value: T | Mapping[str, Any]) -> T:
    """`value` as a `cls`: already one, or a mapping (from another language's program)."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise ArgsError(f"{cls.__name__}: expected {cls.__name__} or a mapping, got {value!r}")
    try:
        return TypeAdapter(cls).validate_python(dict(value))
    except ValidationError as error:
        raise ArgsError(describe(error, cls.__name__, camel=False, schema_root=cls)) from None


def settings_of(value: Any, declared_by: type | None = None) -> dict[str, Any]:
    """The fields of an Args object (only those `declared_by` declares, if given: a settings
    class `value`'s class inherits), to build a richer Args from it (the stack builder's wiring)."""
    fields = (declared_by or type(value)).__pydantic_fields__  # type: ignore[attr-defined]
    return {name: getattr(value, name) for name in fields}


_TYPE_MESSAGES = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "sequence_str": "expected a list",
    "tuple_type": "expected a list",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "dataclass_type": "expected a mapping",
    "dataclass_args_type": "expected a mapping",
    "dict_type": "expected a mapping",
}
_RELATIONS = {
    "greater_than_equal": ">=",
    "less_than_equal": "<=",
    "greater_than": ">",
    "less_than": "<",
}


def describe(error: ValidationError, root: str, *, camel: bool, schema_root: Any = None) -> str:
    """One line for the first problem: `<root>.<path>: <what is wrong>`.

    `camel` names keys as a stack file does; otherwise as Python does. `schema_root` (the class
    validated) lets an unknown key suggest the closest known one.
    """
    first = error.errors(include_url=False)[0]
    loc = [part for part in first["loc"] if not _is_wrapper(part)]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, SettingError):
        loc = [*loc, *_key_parts(cause.key)]
    path = _path(loc, camel, schema_root)
    joined = not path or path.startswith("[") or root.endswith(":")
    where = f"{root}{path}" if joined else f"{root}.{path}"
    kind = first["type"]
    value = first.get("input")
    if _is_secret(_field_at(loc, schema_root)):
        value = SECRET_MASK  # a bad secret is named, never shown
    if isinstance(cause, SettingError):
        message = str(cause)
    elif kind == "missing" or kind == "missing_keyword_only_argument":
        message = "is required"
    elif kind in ("extra_forbidden", "unexpected_keyword_argument"):
        message = "is not a known key" + _suggestion(loc, schema_root, camel)
    elif kind == "enum" or kind == "literal_error":
        message = f"{value!r} is not one of {first['ctx']['expected']}"
    elif kind in _RELATIONS:
        bound = next(iter(first["ctx"].values()))
        message = f"{value!r} is out of range (must be {_RELATIONS[kind]} {bound})"
    elif kind == "string_too_short":
        message = "must not be empty"
    elif kind == "too_short":
        message = f"must list at least {first['ctx']['min_length']}"
    elif kind == "too_long":
        message = f"must list at most {first['ctx']['max_length']}"
    elif kind == "string_pattern_mismatch":
        message = f"{value!r} does not match {first['ctx']['pattern']}"
    elif kind == "is_instance_of" and first["ctx"].get("class") == "Sequence":
        message = f"expected a list, got {value!r}"  # Sequence[X] given a mapping or a scalar
    elif kind == "is_instance_of":
        message = f"expected a value or an Output, got {value!r}"
    elif kind in _TYPE_MESSAGES:
        message = f"{_TYPE_MESSAGES[kind]}, got {value!r}"
    elif kind == "value_error" and cause is not None:
        message = str(cause)
    else:
        message = first["msg"]
    return f"{where}: {message}"


def _key_parts(key: str) -> list[str | int]:
    """`instance_groups[0].name` -> `["instance_groups", 0, "name"]`."""
    parts: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", key):
        parts.append(int(index) if index else name)
    return parts


def _is_wrapper(part: Any) -> bool:
    """Location parts pydantic adds for validators and union members, not keys."""
    return isinstance(part, str) and (
        part.startswith(("function-", "is-instance[", "json-or-python["))
        or part in ("str", "list[str]")
    )


def _path(loc: list[Any], camel: bool, schema_root: Any = None) -> str:
    """`("notebooks", 1, "instance_type")` -> `notebooks[1].instanceType` (camel).

    Keys inside a mapping-valued setting (`env`, `overrides`, `labels`) are data, not setting
    names: `trainingJobs[0].overrides.max_steps` keeps the trainer's spelling.
    """
    text = ""
    cls, in_data = schema_root, False
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        name = str(part)
        if not re.fullmatch(r"[\w.-]+", name):
            name = repr(name)  # a hostile key (newline, spaces...) is quoted: still one line
        elif not in_data:
            field = _fields(cls).get(_snake(name)) if cls is not None else None
            name = to_camel(name) if camel else _snake(name)
            cls = _settings_class(field.annotation) if field is not None else None
            in_data = field is not None and cls is None
        text += f".{name}" if text else name
    return text


def _field_at(loc: list[Any], schema_root: Any) -> Any:
    """The field a location names (`["arc", "github_token"]`), or None."""
    cls, field = schema_root, None
    for part in loc:
        if isinstance(part, int):
            continue
        if cls is None:
            return None
        field = _fields(cls).get(_snake(str(part)))
        cls = _settings_class(field.annotation) if field else None
    return field


def _is_secret(field: Any) -> bool:
    """Fields kept out of repr (credentials), and SecretStr ones."""
    return field is not None and (field.repr is False or "SecretStr" in str(field.annotation))


def _suggestion(loc: list[Any], schema_root: Any, camel: bool) -> str:
    """Name the closest known key for a typo, which is what the user almost always meant."""
    cls = schema_root
    for part in loc[:-1]:
        if isinstance(part, int) or cls is None:
            continue
        field = _fields(cls).get(_snake(str(part)))
        cls = _settings_class(field.annotation) if field else None
    if cls is None:
        return ""
    known = [to_camel(name) if camel else name for name in _fields(cls)]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fields(cls: Any) -> dict[str, Any]:
    return getattr(cls, "__pydantic_fields__", None) or getattr(cls, "model_fields", {})


def _settings_class(annotation: Any) -> Any:
    """The Args class inside `X`, `X | None` or `list[X]`, if any."""
    if isinstance(annotation, type) and _fields(annotation):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _settings_class(arg)
        if found is not None:
            return found
    return None


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


__all__ = [
    "CONFIG",
    "SECRET_MASK",
    "ArgsError",
    "SettingError",
    "check_unique_names",
    "describe",
    "parse",
    "schema",
    "settings_of",
]
