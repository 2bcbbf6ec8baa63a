"""The training core's recipes (`training/configs/<name>.yaml`), as config and the CLI name them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

RECIPES_DIR = Path(__file__).resolve().parent / "configs"


def recipe_names(directory: Path = RECIPES_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []


def recipe_file(recipe: str, directory: Path = RECIPES_DIR) -> Path | None:
    """A recipe by path (`my.yaml`) or by name (`llama3-8b`); None when it is neither."""
    path = Path(recipe)
    if not path.is_file():
        path = directory / f"{recipe}.yaml"
    return path if path.is_file() else None


def read_recipe(path: Path) -> dict[str, Any]:
    """The settings in a recipe file: a mapping of training config keys."""
    content = yaml.safe_load(path.read_text())
    if not isinstance(content, dict):
        raise ValueError(f"{path}: a recipe is a mapping of settings")
    return content


def load_recipe(name: str, directory: Path = RECIPES_DIR) -> dict[str, Any]:
    """The settings of recipe `name`."""
    return read_recipe(directory / f"{name}.yaml")
