"""A Llama-style decoder: RMSNorm, rotary embeddings, grouped-query attention, SwiGLU.

A plain `nn.Module` that reads like the paper; parallelism is applied from outside
(`training.parallel`). Build it on the meta device and call `init_weights()` after sharding, so
that no rank ever holds the whole model:

    with torch.device("meta"):
        model = Transformer(PRESETS["llama3-70b"])
    parallelize(model, ...)            # fully_shard: parameters become sharded DTensors (meta)
    model.to_empty(device=device)      # allocate only this rank's shards
    model.init_weights()               # initialise them in place
"""

from __future__ import annotations

import math
import zlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributed.tensor import DTensor
from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

# The shapes by name live in training/presets.py (no torch there); re-exported for callers.
from mlplatform.training.presets import PRESETS as PRESETS
from mlplatform.training.presets import ModelArgs as ModelArgs
from mlplatform.training.presets import model_args as model_args


def rope_tables(head_dim: int, seq_len: int, theta: float, device: torch.device | None = None):
    """cos and sin of shape (seq_len, head_dim // 2), in fp32."""
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim))
    angles = torch.outer(torch.arange(seq_len, device=device).float(), freqs)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[2i], x[2i+1]) of x: (batch, seq, heads, head_dim)."""
    seq = x.shape[1]
    cos, sin = cos[:seq, None, :], sin[:seq, None, :]
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
    return rotated.type_as(x)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)


class Attention(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = args.n_heads, args.n_kv_heads, args.head_dim
        self.wq = nn.Linear(args.dim, args.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, args.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, args.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * self.head_dim, args.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q = apply_rope(self.wq(x).view(b, s, self.n_heads, self.head_dim), cos, sin)
        k = apply_rope(self.wk(x).view(b, s, self.n_kv_heads, self.head_dim), cos, sin)
        v = self.wv(x).view(b, s, self.n_kv_heads, self.head_dim)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            is_causal=True,
            enable_gqa=self.n_kv_heads != self.n_heads,
        )
        return self.wo(out.transpose(1, 2).reshape(b, s, -1))


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(args.dim, args.norm_eps)
        self.attention = Attention(args)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)
        self.feed_forward = FeedForward(args.dim, args.ffn_hidden)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin)
        return x + self.feed_forward(self.ffn_norm(x))


class Transformer(nn.Module):
    rope_cos: torch.Tensor
    rope_sin: torch.Tensor

    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        # a ModuleDict keyed "0".."n-1" keeps parameter names stable whichever blocks get wrapped
        self.layers = nn.ModuleDict({str(i): Block(args) for i in range(args.n_layers)})
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)
        if args.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        # rotary tables are derived, not learned: recomputed by init_weights on the real device
        cos, sin = rope_tables(args.head_dim, args.max_seq_len, args.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.tok_embeddings(tokens)
        for layer in self.layers.values():
            h = layer(h, self.rope_cos, self.rope_sin)
        return self.output(self.norm(h))

    @torch.no_grad()
    def init_weights(self, seed: int = 0) -> None:
        """Initialise every parameter in place, identically for any sharding (see `fill_normal`)."""
        device = self.tok_embeddings.weight.device
        cos, sin = rope_tables(
            self.args.head_dim, self.args.max_seq_len, self.args.rope_theta, device
        )
        self.rope_cos.copy_(cos)
        self.rope_sin.copy_(sin)
        fill_normal(self.tok_embeddings.weight, std=1.0, seed=seed, key="tok_embeddings")
        # residual projections scaled down with depth (GPT-2 / torchtitan style)
        out_std = 0.02 / math.sqrt(2 * self.args.n_layers)
        for i, block in self.layers.items():
            block = _unwrap(block)
            for norm in (block.attention_norm, block.ffn_norm):
                norm.reset_parameters()
            linears: dict[str, tuple[nn.Linear, float]] = {
                "attention.wq": (block.attention.wq, 0.02),
                "attention.wk": (block.attention.wk, 0.02),
                "attention.wv": (block.attention.wv, 0.02),
                "attention.wo": (block.attention.wo, out_std),
                "feed_forward.w1": (block.feed_forward.w1, 0.02),
                "feed_forward.w2": (block.feed_forward.w2, out_std),
                "feed_forward.w3": (block.feed_forward.w3, 0.02),
            }
            for name, (linear, std) in linears.items():
                fill_normal(
                    linear.weight, std=std, seed=seed, key=f"layers.{i}.{name}", truncate=3.0
                )
        self.norm.reset_parameters()
        if not self.args.tie_embeddings:
            std = self.args.dim**-0.5
            fill_normal(self.output.weight, std=std, seed=seed, key="output", truncate=3.0)


def _unwrap(module: nn.Module) -> Block:
    """The block inside an activation-checkpoint wrapper (parallelize may add one)."""
    block = getattr(module, "_checkpoint_wrapped_module", module)
    assert isinstance(block, Block)
    return block


@torch.no_grad()
def fill_normal(
    param: torch.Tensor,
    *,
    std: float,
    seed: int,
    key: str,
    truncate: float | None = None,
    block_elements: int = 1 << 20,
) -> None:
    """Fill `param` with N(0, std^2) values (truncated at `truncate` std) that depend only on
    (seed, key, global row): a sharded DTensor gets exactly the rows a full tensor would, so
    initialisation is identical for any world size and sharding, and no rank materialises more
    than its shard plus one block of rows. (DTensor's own random ops are not shard-consistent on
    CPU meshes.)
    """
    local = param.to_local() if isinstance(param, DTensor) else param
    if isinstance(param, DTensor):
        _, offset = compute_local_shape_and_global_offset(
            param.shape, param.device_mesh, param.placements
        )
        first = offset[0]
    else:
        first = 0
    if local.numel() == 0:
        return
    row_shape, row_elems = local.shape[1:], max(1, math.prod(local.shape[1:]))
    rows_per_block = max(1, block_elements // row_elems)
    base = zlib.crc32(key.encode()) * 1_000_003 + seed
    last = first + local.shape[0]
    for block in range(first // rows_per_block, (last - 1) // rows_per_block + 1):
        lo, hi = block * rows_per_block, min((block + 1) * rows_per_block, param.shape[0])
        gen = torch.Generator(device=local.device).manual_seed(
            (base * 1_000_033 + block) % (1 << 63)
        )
        values = torch.empty((hi - lo, *row_shape), device=local.device, dtype=torch.float32)
        if truncate is None:
            values.normal_(0.0, std, generator=gen)
        else:
            nn.init.trunc_normal_(values, 0.0, std, -truncate * std, truncate * std, generator=gen)
        take_lo, take_hi = max(lo, first), min(hi, last)
        local[take_lo - first : take_hi - first].copy_(values[take_lo - lo : take_hi - lo])


def count_params(args: ModelArgs, *, embeddings: bool = True) -> int:
    """Parameters of the model with these args, computed from the shapes (no allocation)."""
    d, h, kv, hd, f = args.dim, args.n_heads, args.n_kv_heads, args.head_dim, args.ffn_hidden
    per_block = d * h * hd * 2 + d * kv * hd * 2 + 3 * d * f + 2 * d
    body = args.n_layers * per_block + d
    emb = args.vocab_size * d
    out = 0 if args.tie_embeddings else args.vocab_size * d
    return body + out + (emb if embeddings else 0)


def flops_per_token(args: ModelArgs, seq_len: int) -> float:
    """Training FLOPs per token: 6 per non-embedding parameter (output head included) plus
    attention scores and values, 6 * 2 * n_layers * dim * seq_len (PaLM appendix B).
    """
    dense = count_params(args, embeddings=False)
    if args.tie_embeddings:
        dense += args.vocab_size * args.dim  # the tied head still does its matmul
    return 6.0 * dense + 12.0 * args.n_layers * args.dim * seq_len
