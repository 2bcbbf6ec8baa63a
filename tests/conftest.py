"""Fixtures for running the platform under the shared mocks (components/mocks.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlplatform.config import parse_stack_config
from mlplatform.program import ProgramRun, Project, run_program
from mlplatform.stack import build_platform
from tests.checkpoint_harness import Bucket, MotoS3

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = {"aws:region": "us-east-1", "mlplatform:owner": "tests", "mlplatform:costCenter": "cc-1"}


def build(overrides: dict[str, Any] | None = None, stack: str = "test") -> ProgramRun:
    """Build the platform from MINIMAL config plus `overrides` (native values) under mocks."""
    raw = {**MINIMAL, **(overrides or {})}
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    parsed = parse_stack_config(config, f"Pulumi.{stack}.yaml")
    return run_program(
        lambda: build_platform(parsed, stack), project="mlplatform", stack=stack, config=config
    )


@pytest.fixture(scope="session")
def project() -> Project:
    return Project.load(ROOT)


@pytest.fixture(scope="session")
def staging(project: Project) -> ProgramRun:
    return project.run("staging")


@pytest.fixture(scope="session")
def production(project: Project) -> ProgramRun:
    return project.run("production")


@pytest.fixture(scope="session")
def default_run() -> ProgramRun:
    return build({"mlplatform:notebooks": [{"name": "alice", "owner": "alice@example.com"}]})


@pytest.fixture
def builder() -> Callable[..., ProgramRun]:
    return build


def policy_statements(policy_json: str) -> list[dict[str, Any]]:
    statements = json.loads(policy_json)["Statement"]
    return statements if isinstance(statements, list) else [statements]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoS3]:
    server = MotoS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3(moto_server: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A fresh bucket on the (running) moto server, and the AWS environment pointing at it."""
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    if moto_server._server is None:  # a previous test stopped it
        moto_server.start()
    bucket = Bucket(moto_server, f"ckpt-{uuid.uuid4().hex[:12]}")
    moto_server.client().create_bucket(Bucket=bucket.name)
    return bucket
