"""Helm values layering: base <- per-stack <- computed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplatform.components.helm import deep_merge, layered_values


def test_deep_merge_merges_mappings_and_replaces_lists() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    merged = deep_merge(base, {"a": {"c": [3], "e": 2}})
    assert merged == {"a": {"b": 1, "c": [3], "e": 2}, "d": "x"}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}  # inputs untouched


def test_layers_apply_in_order(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    chart.mkdir()
    (chart / "values.yaml").write_text("replicas: 1\nimage: {tag: base}\nlabels: {team: ml}\n")
    (chart / "values-production.yaml").write_text("replicas: 3\nimage: {tag: prod}\n")
    values = layered_values("chart", "production", {"image": {"digest": "sha256:x"}}, root=tmp_path)
    assert values == {
        "replicas": 3,
        "image": {"tag": "prod", "digest": "sha256:x"},
        "labels": {"team": "ml"},
    }
    assert layered_values("chart", "staging", root=tmp_path)["replicas"] == 1


def test_missing_base_values_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"chart/values\.yaml: missing base values file"):
        layered_values("chart", "staging", root=tmp_path)


def test_values_file_must_be_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "chart").mkdir()
    (tmp_path / "chart" / "values.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="values must be a mapping, got list"):
        layered_values("chart", "staging", root=tmp_path)
