"""Run a Pulumi Python program under mocks, as `pulumi preview` would, without cloud or CLI.

Used by the offline plan (any project directory: ours, or a user's stack that imports our
components) and by the tests (a program given as a function). One implementation for both, so
what the tests prove is what the plan shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import runpy
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import settings
from pulumi.runtime.sync_await import _sync_await

from mlplatform.mocks import SECRET_MASK, PlatformMocks, RecordingMonitor, Registration


class ProjectError(Exception):
    """The project or stack files cannot be read: the one-line message says which and why."""


@dataclass
class ProgramRun:
    """Everything a program registered, and the stack outputs it exported."""

    project: str
    stack: str
    region: str
    resources: list[Registration]
    outputs: dict[str, Any]
    secret_outputs: set[str] = field(default_factory=set)
    unanswered_calls: list[str] = field(default_factory=list)

    def of_type(self, type_token: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str, type_token: str | None = None) -> Registration:
        """The one resource called `name` (of `type_token`, when a component shares the name)."""
        matches = [r for r in self.resources if r.name == name and type_token in (None, r.type)]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]


def run_program(
    program: Callable[[], Mapping[str, Any] | None],
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: tuple[str, ...] = (),
) -> ProgramRun:
    """Run `program` under fresh mocks with `config`; what it returns is exported as outputs.

    Resources are asserted on after the run, never from inside an apply (that races, FINDINGS).
    """
    region = config.get("aws:region", "us-east-1")
    mocks = PlatformMocks(region)
    monitor = RecordingMonitor(mocks)
    settings.ROOT.set(None)  # a fresh root Stack for every run in this process
    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=True, monitor=monitor)
    root = settings.get_root_resource()
    exported: dict[str, pulumi.Output[Any]] = {}

    @pulumi.runtime.test
    def execute() -> pulumi.Output[Any]:
        returned = program()
        for key, value in (returned or {}).items():
            pulumi.export(key, value)
        stack_outputs = getattr(root, "outputs", {})
        exported.update({k: pulumi.Output.from_input(v) for k, v in stack_outputs.items()})
        return pulumi.Output.all(*exported.values())

    execute()
    outputs = {key: _sync_await(out.future()) for key, out in exported.items()}
    secrets = {key for key, out in exported.items() if _sync_await(out.is_secret())}
    return ProgramRun(
        project=project,
        stack=stack,
        region=region,
        resources=sorted(monitor.registrations, key=lambda r: r.urn),  # stable order
        outputs=outputs,
        secret_outputs=secrets,
        unanswered_calls=list(mocks.unanswered_calls),
    )


STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


@dataclass(frozen=True)
class Project:
    """What `pulumi` reads from a project directory: Pulumi.yaml and one stack's config."""

    directory: Path
    name: str
    main: Path
    declared_defaults: dict[str, Any]

    @classmethod
    def load(cls, directory: Path) -> Project:
        manifest = directory / "Pulumi.yaml"
        data = _read_yaml(manifest)
        if not isinstance(data, dict) or "name" not in data:
            raise ProjectError(f"{manifest}: not a Pulumi project file (no 'name')")
        runtime = data.get("runtime")
        runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
        if runtime_name != "python":
            raise ProjectError(f"{manifest}: runtime {runtime_name!r} is not python")
        main = directory / str(data.get("main", "."))
        if main.is_dir():
            main = main / "__main__.py"
        if not main.is_file():
            raise ProjectError(f"{manifest}: program {main} does not exist")
        name = str(data["name"])
        defaults: dict[str, Any] = {}
        for key, declaration in (data.get("config") or {}).items():
            full_key = key if ":" in key else f"{name}:{key}"
            if isinstance(declaration, dict) and "default" in declaration:
                defaults[full_key] = declaration["default"]
            elif isinstance(declaration, dict) and "value" in declaration:
                defaults[full_key] = declaration["value"]
            elif not isinstance(declaration, dict):
                defaults[full_key] = declaration
        return cls(directory=directory, name=name, main=main, declared_defaults=defaults)

    def stack_file(self, stack: str) -> Path:
        # Pulumi's own rule for stack names; it also keeps `../x` from reading outside the project.
        if not STACK_NAME.fullmatch(stack):
            raise ProjectError(
                f"{stack!r} is not a stack name (letters, digits, '-', '_' and '.' only)"
            )
        return self.directory / f"Pulumi.{stack}.yaml"

    def stack_config(self, stack: str) -> tuple[dict[str, str], tuple[str, ...]]:
        """The stack's config as the engine passes it: strings (JSON for structured values).

        Declared defaults from Pulumi.yaml apply first. `secure:` values cannot be decrypted
        without the Pulumi CLI; they become a placeholder marked secret.
        """
        path = self.stack_file(stack)
        if not path.is_file():
            available = sorted(
                p.name[len("Pulumi.") : -len(".yaml")] for p in self.directory.glob("Pulumi.*.yaml")
            )
            raise ProjectError(
                f"{path}: no such stack file (stacks here: {', '.join(available) or 'none'})"
            )
        data = _read_yaml(path) or {}
        if not isinstance(data, dict):
            raise ProjectError(f"{path}: expected a mapping with a 'config' key")
        raw = data.get("config") or {}
        if not isinstance(raw, dict):
            raise ProjectError(f"{path}: 'config' must be a mapping of keys to values")
        values: dict[str, str] = {}
        secrets: list[str] = []
        for key, value in {**self.declared_defaults, **raw}.items():
            full_key = key if ":" in key else f"{self.name}:{key}"
            if isinstance(value, dict) and set(value) == {"secure"}:
                values[full_key] = SECRET_MASK
                secrets.append(full_key)
            elif isinstance(value, str):
                values[full_key] = value
            else:
                values[full_key] = json.dumps(value)
        return values, tuple(secrets)

    def run(self, stack: str) -> ProgramRun:
        """Run the project's program for `stack` under mocks, from the project directory."""
        config, secrets = self.stack_config(stack)
        with _inside(self.directory):
            return run_program(
                lambda: runpy.run_path(str(self.main), run_name="__main__") and None,
                project=self.name,
                stack=stack,
                config=config,
                secret_keys=secrets,
            )


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ProjectError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ProjectError(f"{path}: cannot read ({error})") from None
    except yaml.YAMLError as error:
        raise ProjectError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None


@contextlib.contextmanager
def _inside(directory: Path) -> Iterator[None]:
    """Run as `pulumi` does: from the project directory, with it importable."""
    previous_cwd = Path.cwd()
    previous_path = list(sys.path)
    os.chdir(directory)
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        os.chdir(previous_cwd)
        sys.path[:] = previous_path
