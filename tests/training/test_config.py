"""Training config: defaults, recipes, flags, and one-line errors naming the flag."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from mlplatform.training.config import (
    TrainConfig,
    TrainConfigError,
    build_parser,
    parse_args,
    validate_recipe,
)
from mlplatform.training.recipes import RECIPES_DIR

ROOT = Path(__file__).resolve().parents[2]

REQUIRED_FLAGS = [
    "--config", "--model", "--data", "--max-steps", "--seed", "--sharding", "--replicate-degree",
    "--mixed-precision", "--activation-checkpointing", "--grad-accum-steps", "--checkpoint-dir",
    "--checkpoint-interval", "--metrics-file",
]  # fmt: skip


def test_the_issue_flags_exist_with_their_names():
    options = {opt for action in build_parser()._actions for opt in action.option_strings}
    assert set(REQUIRED_FLAGS) <= options


def test_every_field_is_a_flag_with_help():
    for f in fields(TrainConfig):
        assert f.metadata["help"]
        assert parse_args([f"--{f.name.replace('_', '-')}", str(f.default)]) == TrainConfig()


def test_defaults_without_flags():
    assert parse_args([]) == TrainConfig()


def test_recipe_then_flags_override_it():
    cfg = parse_args(["--config", "tiny-cpu", "--max-steps", "7", "--seed", "3"])
    assert (cfg.model, cfg.mixed_precision, cfg.seq_len) == ("tiny", "fp32", 64)
    assert (cfg.max_steps, cfg.seed) == (7, 3)


def test_sagemaker_underscore_spelling_is_accepted():
    assert parse_args(["--max_steps", "90", "--grad_accum_steps", "2"]).max_steps == 90


def test_bool_flag_alone_means_true():
    assert parse_args(["--compile"]).compile is True
    assert parse_args(["--compile", "false"]).compile is False


@pytest.mark.parametrize("recipe", sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
def test_every_recipe_loads_and_validates(recipe):
    cfg = parse_args(["--config", recipe])
    assert cfg.model in recipe or recipe == "tiny-cpu"


def test_recipes_for_every_llama_size_exist():
    assert {"tiny-cpu", "llama3-1b", "llama3-8b", "llama3-70b"} <= {
        p.stem for p in RECIPES_DIR.glob("*.yaml")
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--checkpoint-interval", "-5"], "--checkpoint-interval: -5 must be >= 0"),
        (["--max-steps", "0"], "--max-steps: 0 must be >= 1"),
        (["--max-steps", "ten"], "--max-steps: 'ten' is not an integer"),
        (["--lr", "0"], "--lr: 0.0 must be > 0.0"),
        (["--beta2", "1"], "--beta2: 1.0 must be < 1.0"),
        (["--min-lr-ratio", "1.5"], "--min-lr-ratio: 1.5 must be <= 1.0"),
        (["--sharding", "zero3"], "--sharding: 'zero3' is not one of full, hybrid"),
        (["--mixed-precision", "fp16"], "--mixed-precision: 'fp16' is not one of bf16, fp32"),
        (
            ["--activation-checkpointing", "every-0"],
            "--activation-checkpointing: 'every-0' is not none, full or every-K",
        ),
        (
            ["--model", "llama3-405b"],
            "--model: 'llama3-405b' is not one of tiny, small, llama3-1b, llama3-8b, llama3-70b",
        ),
        (["--compile", "maybe"], "argument --compile: 'maybe' is not true or false"),
        (["--no-such-flag", "1"], "unrecognized arguments: --no-such-flag 1"),
        (
            ["--config", "nope"],
            "--config: 'nope' is neither a YAML file nor a recipe name (known: ",
        ),
    ],
)
def test_invalid_values_name_the_flag(argv, message):
    with pytest.raises(TrainConfigError) as err:
        parse_args(argv)
    assert str(err.value).startswith(message)


def test_recipe_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: tiny\nbatch_sise: 8\n")
    with pytest.raises(TrainConfigError, match=r"^--config: .*bad.yaml: unknown key 'batch_sise'$"):
        parse_args(["--config", str(bad)])
    bad.write_text("max_steps: many\n")
    with pytest.raises(TrainConfigError, match=r"bad.yaml: max_steps: 'many' is not an integer$"):
        parse_args(["--config", str(bad)])


@pytest.mark.parametrize(
    ("overrides", "world", "local", "message"),
    [
        (
            {"batch_size": 10},
            4,
            4,
            "--batch-size: 10 is not divisible by world size 4 x --grad-accum-steps 1",
        ),
        (
            {"batch_size": 8, "grad_accum_steps": 4},
            4,
            4,
            "--batch-size: 8 is not divisible by world size 4 x --grad-accum-steps 4",
        ),
        (
            {"sharding": "hybrid", "replicate_degree": 3},
            4,
            4,
            "--replicate-degree: 3 does not divide world size 4",
        ),
        (
            {"sharding": "hybrid", "batch_size": 18},
            9,
            2,
            "--replicate-degree: 4 does not divide world size 9",
        ),
    ],
)
def test_world_shape_errors(overrides, world, local, message):
    cfg = TrainConfig(**overrides).validate()
    with pytest.raises(TrainConfigError) as err:
        cfg.validate_world(world, local)
    assert str(err.value) == message


def test_hybrid_replicas_default_to_the_number_of_nodes():
    cfg = TrainConfig(sharding="hybrid", batch_size=16)
    assert cfg.replicas(world_size=16, local_world_size=8) == 2
    cfg.validate_world(16, 8)
    assert TrainConfig(sharding="hybrid", replicate_degree=4).replicas(16, 8) == 4


def test_cli_error_is_one_line_exit_2_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "training.train", "--checkpoint-interval", "-5"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == "error: --checkpoint-interval: -5 must be >= 0\n"


def test_config_is_importable_without_torch():
    """The plan validates job recipes with TrainConfig; `pip install mlplatform` has no torch."""
    check = (
        "import sys; import mlplatform.training.config as c; "
        "c.validate_recipe('llama3-8b', {'max_steps': 10}); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def test_a_recipe_that_is_not_a_mapping_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- model\n- tiny\n")
    with pytest.raises(TrainConfigError) as err:
        parse_args(["--config", str(path)])
    assert str(err.value) == f"--config: {path}: expected a mapping of settings, not list"


def test_validate_recipe_applies_overrides_on_the_recipe():
    cfg = validate_recipe("llama3-8b", {"max_steps": 10, "checkpoint-interval": "5"})
    assert (cfg.model, cfg.max_steps, cfg.checkpoint_interval) == ("llama3-8b", 10, 5)
    assert validate_recipe("tiny-cpu") == parse_args(["--config", "tiny-cpu"])


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ({"max_steps": 0}, "max_steps", "max_steps: 0 must be >= 1"),
        ({"max-steps": "ten"}, "max-steps", "max-steps: 'ten' is not an integer"),
        ({"sharding": "zero3"}, "sharding", "sharding: 'zero3' is not one of full, hybrid"),
        (
            {"checkpoint_s3_uri": "bucket/x"},
            "checkpoint_s3_uri",
            "checkpoint_s3_uri: 'bucket/x' is not s3://bucket[/prefix]",
        ),
        (
            {"batch_sise": 8},
            "batch_sise",
            "batch_sise: not a setting of the trainer (did you mean 'batch_size'?)",
        ),
        ({"model": "llama3-405b"}, "model", "model: 'llama3-405b' is not one of tiny, small"),
    ],
)
def test_validate_recipe_names_the_override_key(overrides, key, message):
    with pytest.raises(TrainConfigError) as err:
        validate_recipe("llama3-8b", overrides)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert err.value.key == key
    assert str(err.value) == f"{key}: {err.value.problem}"


def test_validate_recipe_names_the_recipe_when_the_recipe_is_at_fault(tmp_path):
    with pytest.raises(TrainConfigError) as err:
        validate_recipe("llama3-9b")
    assert str(err.value).startswith("'llama3-9b' is neither a YAML file nor a recipe name")
    assert err.value.key is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_steps: 0\n")
    with pytest.raises(TrainConfigError) as err:
        validate_recipe(str(bad), {"seed": 1})
    assert str(err.value) == f"{bad}: max_steps: 0 must be >= 1" and err.value.key is None


def test_validate_recipe_keeps_a_strange_override_key_on_one_line():
    with pytest.raises(TrainConfigError) as err:
        validate_recipe("tiny-cpu", {"max\nsteps": 1})
    assert str(err.value).startswith("'max\\nsteps': not a setting of the trainer")
    assert "\n" not in str(err.value)
