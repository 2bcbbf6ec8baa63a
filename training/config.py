"""Training configuration: one dataclass, loadable from a YAML recipe, overridable by flags.

Every field of `TrainConfig` is a command-line flag of `python -m training.train` (the field name
in kebab-case: `max_steps` -> `--max-steps`; SageMaker's `--max_steps` spelling is accepted too)
and a key of a recipe in `training/configs/*.yaml`. Precedence: defaults < recipe < flags.

Errors name the flag and say what is wrong, e.g. `--checkpoint-interval: -5 must be >= 0`;
`python -m training.train` prints them as `error: ...` and exits with code 2. The offline plan
checks a job's recipe and overrides with `validate_recipe()` before anything runs.

Importable without torch (`pip install mlplatform` has none): the model presets come from
`training.presets`, the checkpoint settings from `training.checkpointing.config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mlplatform.training.checkpointing.config import CheckpointConfig, CheckpointConfigError
from mlplatform.training.presets import PRESETS
from mlplatform.training.recipes import RecipeError, find_recipe, read_recipe

SHARDINGS = ("full", "hybrid")
MIXED_PRECISIONS = ("bf16", "fp32")
LR_SCHEDULES = ("cosine", "linear", "constant")
DEVICES = ("auto", "cpu", "cuda")
CHECKPOINT_MODES = ("async", "sync")
CHECKPOINT_BACKENDS = ("dcp", "mtc")
# CheckpointConfig field -> the TrainConfig field that sets it (for error messages)
_CHECKPOINT_FIELDS = {
    "local_dir": "checkpoint_dir",
    "local_every": "checkpoint_interval",
    "local_keep": "checkpoint_keep",
    "s3_uri": "checkpoint_s3_uri",
    "s3_every": "checkpoint_s3_interval",
    "s3_keep": "checkpoint_s3_keep",
    "mode": "checkpoint_mode",
    "backend": "checkpoint_backend",
    "mtc_namespace": "checkpoint_namespace",
}
_AC_PATTERN = re.compile(r"^(none|full|every-([1-9][0-9]*))$")


class TrainConfigError(ValueError):
    """A training setting is invalid: one line that starts with what it concerns (a flag such as
    `--max-steps`, a recipe file, or an override key) and says what is wrong.

    `key` is the setting concerned (the TrainConfig field, or the override key as its caller
    spelled it in `validate_recipe`), None when no single setting is; `problem` is the message
    without that prefix.
    """

    def __init__(self, message: str, *, key: str | None = None, problem: str | None = None):
        super().__init__(message)
        self.key = key
        self.problem = message if problem is None else problem


def _invalid(field_name: str, problem: str) -> TrainConfigError:
    """The error for one field: `--flag-name: problem`."""
    return TrainConfigError(f"{flag_name(field_name)}: {problem}", key=field_name, problem=problem)


def _f(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """All training settings. `help` metadata becomes the flag's help text."""

    # model and data
    model: str = _f("tiny", "model preset (training.presets.PRESETS): tiny, small, llama3-1b, ...")
    seq_len: int = _f(256, "tokens per training sequence", min=1)
    data: str = _f(
        "synthetic",
        "'synthetic', a local file or directory (.txt, .jsonl, .bin/.u16/.u32 token shards), "
        "or 'hf:<dataset>[:<config>]' for Hugging Face streaming",
    )
    data_field: str = _f("text", "the text field of .jsonl and Hugging Face records")
    data_split: str = _f("train", "Hugging Face dataset split")
    token_dtype: str = _f("uint16", "dtype of pre-tokenised .bin shards: uint16 or uint32")
    tokenizer: str = _f("byte", "'byte' (offline, dependency-free) or a Hugging Face name/path")
    # batch and schedule
    batch_size: int = _f(8, "global batch in sequences per optimizer step", min=1)
    grad_accum_steps: int = _f(1, "micro-steps per optimizer step", min=1)
    max_steps: int = _f(100, "optimizer steps to run", min=1)
    seed: int = _f(0, "seed for initialisation and synthetic data", min=0)
    lr: float = _f(3e-4, "peak learning rate", gt=0.0)
    min_lr_ratio: float = _f(0.1, "final learning rate as a fraction of --lr", min=0.0, max=1.0)
    warmup_steps: int = _f(10, "linear warm-up steps", min=0)
    lr_schedule: str = _f("cosine", "decay after warm-up", choices=LR_SCHEDULES)
    weight_decay: float = _f(0.1, "AdamW weight decay (not applied to norms and biases)", min=0.0)
    beta1: float = _f(0.9, "AdamW beta1", min=0.0, lt=1.0)
    beta2: float = _f(0.95, "AdamW beta2", min=0.0, lt=1.0)
    eps: float = _f(1e-8, "AdamW epsilon", gt=0.0)
    grad_clip: float = _f(1.0, "clip the global gradient norm to this (0 disables)", min=0.0)
    # parallelism and precision
    sharding: str = _f(
        "full", "full: shard over all ranks; hybrid: replicate x shard", choices=SHARDINGS
    )
    replicate_degree: int = _f(0, "hybrid replicas (0: one per node)", min=0)
    mixed_precision: str = _f(
        "bf16", "bf16 params with fp32 reduce, or fp32", choices=MIXED_PRECISIONS
    )
    activation_checkpointing: str = _f("none", "none, full, or every-K (every K-th block)")
    compile: bool = _f(False, "torch.compile each block")
    micro_step_sync: bool = _f(
        False,
        "reduce-scatter gradients on every micro-step (less memory; hybrid still all-reduces "
        "across replicas only on the last micro-step)",
    )
    device: str = _f("auto", "auto (cuda when present), cpu or cuda", choices=DEVICES)
    # checkpoints, metrics, logging
    checkpoint_dir: str = _f("", "where checkpoints go and resume comes from ('' disables)")
    checkpoint_interval: int = _f(0, "save every N steps (0: only at the end)", min=0)
    checkpoint_keep: int = _f(2, "complete checkpoints kept in --checkpoint-dir", min=1)
    checkpoint_s3_uri: str = _f(
        "",
        "tier 2: s3://bucket/prefix the committed checkpoints are uploaded to in the background "
        "('' disables; default: $MLPLATFORM_CHECKPOINT_S3_URI when --checkpoint-dir is set)",
    )
    checkpoint_s3_interval: int = _f(1000, "upload to S3 every N steps", min=1)
    checkpoint_s3_keep: int = _f(3, "complete checkpoints kept in S3", min=1)
    checkpoint_mode: str = _f(
        "async",
        "async: the loop waits only for staging; sync: for the whole write",
        choices=CHECKPOINT_MODES,
    )
    checkpoint_backend: str = _f(
        "dcp",
        "dcp: --checkpoint-dir + S3; mtc: SageMaker managed tiered checkpointing (HyperPod "
        "memory + --checkpoint-s3-uri)",
        choices=CHECKPOINT_BACKENDS,
    )
    checkpoint_namespace: str = _f("", "mtc: the job's checkpoint namespace (unique per job)")
    model_dir: str = _f("", "write the final model weights here (safetensors) ('' skips)")
    metrics_file: str = _f("", "append one JSON line per step here ('' disables)")
    log_interval: int = _f(1, "log every N steps", min=1)
    peak_tflops: float = _f(
        0.0, "peak TFLOP/s per device for MFU (0: from the device table)", min=0.0
    )
    instance_type: str = _f("", "instance type for EFA/NCCL set-up (default: detected)")

    @property
    def ac_every(self) -> int:
        """0: no activation checkpointing; 1: every block; k: every k-th block."""
        match = _AC_PATTERN.match(self.activation_checkpointing)
        assert match, "validated in validate()"
        if match.group(1) == "none":
            return 0
        return 1 if match.group(1) == "full" else int(match.group(2))

    def validate(self) -> TrainConfig:
        """Check every field alone (bounds, choices, formats); raises TrainConfigError."""
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if "choices" in meta and value not in meta["choices"]:
                raise _invalid(f.name, f"{value!r} is not one of {', '.join(meta['choices'])}")
            if "min" in meta and value < meta["min"]:
                raise _invalid(f.name, f"{value} must be >= {meta['min']}")
            if "max" in meta and value > meta["max"]:
                raise _invalid(f.name, f"{value} must be <= {meta['max']}")
            if "gt" in meta and not value > meta["gt"]:
                raise _invalid(f.name, f"{value} must be > {meta['gt']}")
            if "lt" in meta and not value < meta["lt"]:
                raise _invalid(f.name, f"{value} must be < {meta['lt']}")
        if not _AC_PATTERN.match(self.activation_checkpointing):
            raise _invalid(
                "activation_checkpointing",
                f"{self.activation_checkpointing!r} is not none, full or every-K",
            )
        if self.token_dtype not in ("uint16", "uint32"):
            raise _invalid("token_dtype", f"{self.token_dtype!r} is not uint16 or uint32")
        if self.model not in PRESETS:
            raise _invalid("model", f"{self.model!r} is not one of {', '.join(PRESETS)}")
        self._check_paths()
        self.checkpoint_config({})
        return self

    def _check_paths(self) -> None:
        """Refuse outputs that can only fail later, after hours of training."""
        for name, want_dir in (
            ("checkpoint_dir", True),
            ("model_dir", True),
            ("metrics_file", False),
        ):
            value = getattr(self, name)
            if not value:
                continue
            try:
                wrong = Path(value).is_dir() != want_dir and Path(value).exists()
            except OSError as error:  # e.g. a name too long for the file system
                raise _invalid(name, f"{value!r} is not a usable path ({error.strerror})") from None
            if wrong:
                kind = ("a file, not a directory", "a directory, not a file")[not want_dir]
                raise _invalid(name, f"{value!r} is {kind}")

    def checkpoint_config(self, environ: Mapping[str, str]) -> CheckpointConfig:
        """The checkpointing settings (training/checkpointing) these flags describe; errors
        name the flag. `--checkpoint-interval 0` saves only at the end (--max-steps)."""
        s3_uri = self.checkpoint_s3_uri
        if not s3_uri and self.checkpoint_dir:
            s3_uri = environ.get("MLPLATFORM_CHECKPOINT_S3_URI", "")
        try:
            return CheckpointConfig(
                local_dir=self.checkpoint_dir,
                local_every=self.checkpoint_interval or self.max_steps,
                local_keep=self.checkpoint_keep,
                s3_uri=s3_uri,
                s3_every=self.checkpoint_s3_interval,
                s3_keep=self.checkpoint_s3_keep,
                mode=self.checkpoint_mode,  # type: ignore[arg-type]
                backend=self.checkpoint_backend,  # type: ignore[arg-type]
                mtc_namespace=self.checkpoint_namespace,
            )
        except CheckpointConfigError as exc:
            name, _, problem = str(exc).partition(": ")
            raise _invalid(_CHECKPOINT_FIELDS.get(name, name), problem) from None

    def validate_world(self, world_size: int, local_world_size: int) -> None:
        """Checks that need the job's shape: batch divisibility and the hybrid mesh."""
        per_step = world_size * self.grad_accum_steps
        if self.batch_size % per_step:
            raise _invalid(
                "batch_size",
                f"{self.batch_size} is not divisible by world size {world_size} "
                f"x --grad-accum-steps {self.grad_accum_steps}",
            )
        if self.sharding == "hybrid":
            replicas = self.replicas(world_size, local_world_size)
            if world_size % replicas:
                raise _invalid(
                    "replicate_degree", f"{replicas} does not divide world size {world_size}"
                )

    def replicas(self, world_size: int, local_world_size: int) -> int:
        """Replicate degree of the hybrid mesh: configured, or the number of nodes."""
        return self.replicate_degree or max(1, world_size // max(1, local_world_size))

    def micro_batch(self, world_size: int) -> int:
        return self.batch_size // (world_size * self.grad_accum_steps)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def recipe_settings(recipe: str) -> tuple[Path, dict[str, Any]]:
    """A recipe (name in training/configs or YAML path) as TrainConfig field values, and its file.

    Raises RecipeError (cannot be found or read) or TrainConfigError naming the file and the key
    (`<file>: unknown key 'batch_sise'`, `<file>: max_steps: 'many' is not an integer`).
    """
    path = find_recipe(recipe)
    known_fields = {f.name: f for f in fields(TrainConfig)}
    values: dict[str, Any] = {}
    for key, value in read_recipe(path).items():
        name = str(key).replace("-", "_")
        if name not in known_fields:
            raise TrainConfigError(f"{path}: unknown key {key!r}", key=str(key))
        values[name] = _coerce(known_fields[name], value, f"{path}: {key}")
    return path, values


def coerce_setting(key: Any, value: Any) -> tuple[str, Any]:
    """One setting over a recipe (`max_steps` or `max-steps`; YAML's `3e-4` is a string): its
    TrainConfig field name and its value as the trainer holds it. Raises TrainConfigError whose
    `key` is the key as given, e.g. `batch_sise: not a setting of the trainer (did you mean ...)`.
    """
    given = _spelled(key)
    name = str(key).replace("-", "_")
    known_fields = {f.name: f for f in fields(TrainConfig)}
    if name not in known_fields:
        close = difflib.get_close_matches(name, known_fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problem = f"not a setting of the trainer{hint}"
        raise TrainConfigError(f"{given}: {problem}", key=given, problem=problem)
    try:
        return name, _coerce(known_fields[name], value, given)
    except TrainConfigError as error:
        raise TrainConfigError(str(error), key=given, problem=error.problem) from None


def _spelled(key: Any) -> str:
    """A key as its caller wrote it, quoted when unprintable: the message stays one line."""
    return str(key) if str(key).isprintable() else repr(key)


def validate_recipe(recipe: str, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """The TrainConfig a job would run with: recipe `recipe` (a name in training/configs or a YAML
    path) with `overrides` (TrainConfig field names, `max_steps` or `max-steps`) on top, checked
    as the trainer checks its flags at start-up (each field alone: the world-size checks need the
    job's shape). Needs no torch: the offline plan calls it for every training job.

    Raises TrainConfigError, one line. When an override is at fault the message starts with its
    key as given and `error.key` is that key (`max_steps: 0 must be >= 1`); otherwise the message
    names the recipe (or its file and key) and `error.key` is None.
    """
    try:
        path, values = recipe_settings(recipe)
    except (RecipeError, TrainConfigError) as error:
        raise TrainConfigError(str(error)) from None
    spelled: dict[str, str] = {}  # field name -> the override key as the caller wrote it
    for key, value in (overrides or {}).items():
        name, values[name] = coerce_setting(key, value)
        spelled[name] = _spelled(key)
    try:
        return TrainConfig(**values).validate()
    except TrainConfigError as error:
        if error.key in spelled:
            given = spelled[error.key]
            raise TrainConfigError(
                f"{given}: {error.problem}", key=given, problem=error.problem
            ) from None
        where = f"{path}: {error.key}" if error.key else str(path)
        raise TrainConfigError(f"{where}: {error.problem}") from None


def _coerce(f: dataclasses.Field[Any], value: Any, where: str) -> Any:
    kind: type = type(f.default)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise _coerce_error(where, f"{value!r} is not true or false")
    if kind is int and isinstance(value, bool):
        raise _coerce_error(where, f"{value!r} is not an integer")
    try:
        if kind is int and isinstance(value, float):
            if value != int(value):
                raise ValueError
            return int(value)
        return kind(value)
    except (TypeError, ValueError):
        noun = {int: "an integer", float: "a number", str: "a string"}[kind]
        raise _coerce_error(where, f"{value!r} is not {noun}") from None


def _coerce_error(where: str, problem: str) -> TrainConfigError:
    return TrainConfigError(f"{where}: {problem}", problem=problem)


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own errors, same shape as ours
        # argparse quotes the user's words verbatim; a newline in them must not split the line
        raise TrainConfigError(message.replace("\r", "\\r").replace("\n", "\\n"))


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="python -m training.train",
        description="FSDP2 training of Llama-style decoders (torchrun, SageMaker or one process).",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--config", help="recipe name (training/configs) or YAML path")
    for f in fields(TrainConfig):
        names = [flag_name(f.name)]
        if "_" in f.name:
            names.append("--" + f.name)  # SageMaker passes hyperparameters as --key_name
        help_ = f"{f.metadata['help']} (default: {f.default!r})"
        if type(f.default) is bool:
            parser.add_argument(
                *names, dest=f.name, type=_parse_bool, nargs="?", const=True, help=help_
            )
        else:
            parser.add_argument(
                *names, dest=f.name, type=str, metavar=type(f.default).__name__.upper(), help=help_
            )
    return parser


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def parse_args(
    argv: list[str] | None = None, defaults: dict[str, Any] | None = None
) -> TrainConfig:
    """Flags (and the recipe named by --config) -> a validated TrainConfig.

    `defaults` are environment-derived defaults (SageMaker paths) that recipe and flags override.
    """
    parsed = vars(build_parser().parse_args(argv))
    values: dict[str, Any] = dict(defaults or {})
    if "config" in parsed:
        try:
            values.update(recipe_settings(parsed.pop("config"))[1])
        except (RecipeError, TrainConfigError) as error:
            raise TrainConfigError(f"--config: {error}") from None
    by_name = {f.name: f for f in fields(TrainConfig)}
    for name_, raw in parsed.items():
        values[name_] = _coerce(by_name[name_], raw, flag_name(name_))
    return TrainConfig(**values).validate()
