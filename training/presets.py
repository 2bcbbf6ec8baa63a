"""Model shapes by name (`--model`): pure data, importable without torch.

The trainer's config validates `--model` against these names where torch is not installed (the
plan checks a job's recipe); `training.model` builds the module from them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ModelArgs:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    ffn_hidden: int
    rope_theta: float = 500_000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = False
    max_seq_len: int = 8192

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


PRESETS: dict[str, ModelArgs] = {
    # tests: a fraction of a million parameters, trains in milliseconds per step on CPU
    "tiny": ModelArgs(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=512, ffn_hidden=192),
    # the benchmark's model: ~30M parameters
    "small": ModelArgs(
        dim=512, n_layers=8, n_heads=8, n_kv_heads=4, vocab_size=8192, ffn_hidden=1408
    ),
    # Llama 3.2 1B, Llama 3.1 8B and 70B shapes
    "llama3-1b": ModelArgs(
        dim=2048,
        n_layers=16,
        n_heads=32,
        n_kv_heads=8,
        vocab_size=128256,
        ffn_hidden=8192,
        tie_embeddings=True,
    ),
    "llama3-8b": ModelArgs(
        dim=4096, n_layers=32, n_heads=32, n_kv_heads=8, vocab_size=128256, ffn_hidden=14336
    ),
    "llama3-70b": ModelArgs(
        dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, vocab_size=128256, ffn_hidden=28672
    ),
}


def model_args(preset: str, *, max_seq_len: int | None = None) -> ModelArgs:
    args = PRESETS[preset]
    return replace(args, max_seq_len=max_seq_len) if max_seq_len else args
