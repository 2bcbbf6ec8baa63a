"""The training core's recipes (`training/configs/<name>.yaml`): the one place that finds and reads
them. The trainer's `--config`, the stack config's `trainingJobs[].recipe` and `mlplatform train
submit --recipe` all come here, so a recipe that cannot be read is the same one-line error for
each (the caller prefixes the flag or key it came from).

Light on purpose (PyYAML and the standard library only): the plan imports it without torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

RECIPES_DIR = Path(__file__).resolve().parent / "configs"


class RecipeError(ValueError):
    """A recipe that cannot be found or read. One line, naming the recipe or its file."""


def recipe_names(directory: Path = RECIPES_DIR) -> list[str]:
    """The recipes shipped in `directory`, by name."""
    return sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []


def find_recipe(recipe: str, directory: Path = RECIPES_DIR) -> Path:
    """A recipe by path (`my.yaml`) or by name (`llama3-8b`: `<directory>/llama3-8b.yaml`)."""
    for path in (Path(recipe), directory / f"{recipe}.yaml"):
        if _is_file(path):
            return path
    known = recipe_names(directory)
    hint = f" (known: {', '.join(known)})" if known else ""
    raise RecipeError(f"{recipe!r} is neither a YAML file nor a recipe name{hint}")


def read_recipe(path: Path) -> dict[str, Any]:
    """The settings in a recipe file: a mapping of training config keys (an empty file: none).

    Raises RecipeError when the file cannot be read, is not UTF-8, is not valid YAML or is not a
    mapping; the message names the file and, for YAML errors, the line.
    """
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError(f"{path}: cannot read ({_one_line(str(error))})") from None
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML ({_yaml_problem(error)})") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise RecipeError(f"{path}: expected a mapping of settings, not {type(content).__name__}")
    return content


def load_recipe(recipe: str, directory: Path = RECIPES_DIR) -> dict[str, Any]:
    """The settings of recipe `recipe` (a name in `directory` or a path to a YAML file)."""
    return read_recipe(find_recipe(recipe, directory))


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a name too long for the file system: not a recipe either
        return False


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's multi-line report as one line: the problem and where it is."""
    problem = getattr(error, "problem", None) or str(error) or type(error).__name__
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    return _one_line(problem) + where


def _one_line(text: str) -> str:
    return " ".join(text.split())
