"""The Llama-style decoder: shapes, parameter counts of the presets, meta-device build, init."""

from __future__ import annotations

import pytest
import torch

from mlplatform.training.model import (
    PRESETS,
    Transformer,
    count_params,
    fill_normal,
    flops_per_token,
)


def tiny_model(seed: int = 0) -> Transformer:
    model = Transformer(PRESETS["tiny"])
    model.init_weights(seed=seed)
    return model


def test_forward_gives_logits_per_position():
    model = tiny_model()
    tokens = torch.randint(0, 512, (3, 17))
    assert model(tokens).shape == (3, 17, 512)


def test_attention_is_causal():
    model = tiny_model()
    tokens = torch.randint(0, 512, (1, 12))
    changed = tokens.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % 512
    torch.testing.assert_close(model(tokens)[0, :8], model(changed)[0, :8])
    assert not torch.allclose(model(tokens)[0, 8:], model(changed)[0, 8:])


def test_grouped_query_attention_has_fewer_kv_heads():
    model = tiny_model()
    block = model.layers["0"]
    assert (
        block.attention.wk.weight.shape[0] == PRESETS["tiny"].n_kv_heads * PRESETS["tiny"].head_dim
    )
    assert block.attention.wq.weight.shape[0] == PRESETS["tiny"].dim


@pytest.mark.parametrize(
    ("preset", "billions"),
    [("llama3-1b", 1.24), ("llama3-8b", 8.03), ("llama3-70b", 70.55)],
)
def test_preset_sizes_match_the_published_models(preset, billions):
    assert count_params(PRESETS[preset]) / 1e9 == pytest.approx(billions, abs=0.01)


def test_small_preset_is_benchmark_sized():
    assert 20e6 <= count_params(PRESETS["small"]) <= 50e6


@pytest.mark.parametrize("preset", ["tiny", "small", "llama3-1b"])
def test_count_params_agrees_with_the_module(preset):
    with torch.device("meta"):
        model = Transformer(PRESETS[preset])
    assert sum(p.numel() for p in model.parameters()) == count_params(PRESETS[preset])


def test_70b_builds_on_meta_without_memory():
    with torch.device("meta"):
        model = Transformer(PRESETS["llama3-70b"])
    assert all(p.is_meta for p in model.parameters())


def test_flops_per_token_is_6n_plus_attention():
    args = PRESETS["llama3-8b"]
    dense = count_params(args, embeddings=False)
    assert flops_per_token(args, 8192) == 6 * dense + 12 * 32 * 4096 * 8192
    # the 8B model: about 6 * 7.5e9 dense + attention
    assert flops_per_token(args, 8192) / 1e9 == pytest.approx(58.1, abs=0.5)


def test_init_is_deterministic_per_seed():
    a, b, c = tiny_model(1), tiny_model(1), tiny_model(2)
    for (name, pa), pb, pc in zip(
        a.named_parameters(), b.parameters(), c.parameters(), strict=True
    ):
        assert torch.equal(pa, pb), name
        if pa.ndim == 2:
            assert not torch.equal(pa, pc), name


def test_init_after_meta_build_equals_direct_init():
    with torch.device("meta"):
        model = Transformer(PRESETS["tiny"])
    model.to_empty(device="cpu")
    model.init_weights(seed=0)
    reference = tiny_model(0)
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert torch.equal(p, q), name
    torch.testing.assert_close(model.rope_cos, reference.rope_cos)


def test_truncated_init_stays_within_bounds():
    w = torch.empty(2000, 16)
    fill_normal(w, std=0.02, seed=0, key="w", truncate=3.0)
    assert w.abs().max().item() <= 0.06 + 1e-7
