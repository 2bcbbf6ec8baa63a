"""The bad-input campaign for the trainer: random flags, mutated recipes and hostile paths.

Whatever the input, the answer is a validated TrainConfig or one line naming the flag (or the
recipe file and key), exit 2: never a traceback, never a file written or deleted.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplatform.training.config import (
    TrainConfig,
    TrainConfigError,
    build_parser,
    parse_args,
)
from mlplatform.training.recipes import RECIPES_DIR
from tests.strategies import junk

ROOT = Path(__file__).resolve().parents[2]
FLAGS = sorted(
    option
    for action in build_parser()._actions
    for option in action.option_strings
    if option not in ("-h", "--help")
)
RECIPE = yaml.safe_load((RECIPES_DIR / "tiny-cpu.yaml").read_text())
FIELDS = [f for f in TrainConfig.__dataclass_fields__]

values = (
    st.integers(-(10**6), 10**6).map(str)
    | st.floats(allow_nan=True, allow_infinity=True).map(str)
    | st.sampled_from(["true", "false", "full", "hybrid", "bf16", "every-2", "tiny", "", "s3://"])
    | st.text(max_size=12).filter(lambda t: not t.startswith("-"))
)


def assert_config_or_one_line_error(argv: list[str]) -> None:
    try:
        cfg = parse_args(argv)
    except TrainConfigError as error:
        message = str(error)
        assert message and "\n" not in message, repr(message)
        assert "Traceback" not in message
    else:
        assert isinstance(cfg, TrainConfig)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FLAGS), values), max_size=6))
def test_random_flags_give_a_config_or_one_line(pairs: list[tuple[str, str]]) -> None:
    assert_config_or_one_line_error([token for pair in pairs for token in pair])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=15), max_size=6))
def test_random_words_give_a_config_or_one_line(argv: list[str]) -> None:
    argv = [word for word in argv if word not in ("-h", "--help") and not "--help".startswith(word)]
    assert_config_or_one_line_error(argv)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([*FIELDS, "typo_key", "max-steps"]), junk)
def test_mutated_recipes_name_the_file_and_key(key: str, value: Any) -> None:
    recipe = {**RECIPE, key: value}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe))
        try:
            parse_args(["--config", str(path)])
        except TrainConfigError as error:
            message = str(error)
            assert "\n" not in message, repr(message)
            assert message.startswith(("--config: ", "--")), message
            if message.startswith("--config: "):
                assert str(path) in message


def _train(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training.train", "--config", "tiny-cpu", "--max-steps", "1", *argv],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize(
    ("make_argv", "message"),
    [
        (lambda d: ["--checkpoint-dir", str(d / "a-file")], "is a file, not a directory"),
        (lambda d: ["--model-dir", str(d / "a-file")], "is a file, not a directory"),
        (lambda d: ["--metrics-file", str(d / "a-dir")], "is a directory, not a file"),
        (
            lambda d: ["--config", str(d / "missing.yaml")],
            "is neither a YAML file nor a recipe name",
        ),
        (lambda d: ["--config", str(d / "binary.yaml")], "cannot read"),
        (lambda d: ["--config", str(d / "broken.yaml")], "not valid YAML"),
        (lambda d: ["--config", str(d / "a-dir")], "is neither a YAML file nor a recipe name"),
        (lambda d: ["--checkpoint-dir", str(d / ("x" * 300))], "is not a usable path"),
    ],
    ids=[
        "ckpt-dir-file",
        "model-dir-file",
        "metrics-dir",
        "missing",
        "binary",
        "broken",
        "dir",
        "name-too-long",
    ],
)
def test_hostile_paths_fail_in_one_line_and_touch_nothing(tmp_path, make_argv, message):
    (tmp_path / "a-file").write_text("precious\n")
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "a-dir" / "keep.txt").write_text("keep\n")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00model: tiny")
    (tmp_path / "broken.yaml").write_text("model: [tiny\n")
    before = _tree(tmp_path)

    proc = _train(make_argv(tmp_path), cwd=tmp_path)

    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert message in proc.stderr
    assert _tree(tmp_path) == before
