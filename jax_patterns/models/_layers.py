"""The layers of MusicGen's decoder: embeddings, positions, attention, one decoder layer, the heads.

Named after audiocraft's `LMModel` (the original): `emb`, `transformer.layers[i]`
with `self_attn` / `norm1`, `cross_attention` / `norm_cross`, `linear1` /
`linear2` / `norm2`, then `out_norm` and `linears`. transformers'
`MusicgenForCausalLM` is the same network under other names (its q/k/v
projections are our fused `in_proj`); `_transformers.py` and `_audiocraft.py`
hold the tables between the names.
"""

from __future__ import annotations

import math
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

POSITION_FORMULAS = ("transformers", "audiocraft")


def sinusoid(positions: jax.Array, dim: int, formula: str) -> jax.Array:
    """Sinusoidal positions `[..., dim]` (cosines then sines), in float32, as the reference computes them.

    Both references use `cos(p * w_i), sin(p * w_i)` with `w_i = 10000 ** (-i / (dim / 2 - 1))`;
    they round it differently (a float32 phase of position 2000 differs by ~1e-4 between
    them), so each model computes its own reference's float32 arithmetic:
    transformers `p * exp(i * -log(10000) / (half - 1))`, audiocraft
    `p / 10000 ** (i / (half - 1))`.
    """
    half = dim // 2
    index = np.arange(half, dtype=np.float32)
    position = positions.astype(jnp.float32)[..., None]
    lead = (1,) * positions.ndim
    if formula == "transformers":
        rate = np.exp(index * np.float32(-math.log(10000) / (half - 1)), dtype=np.float32)
        phase = position * jnp.asarray(rate).reshape(*lead, half)
    else:
        period = np.power(np.float32(10000.0), index / np.float32(half - 1), dtype=np.float32)
        phase = position / jnp.asarray(period).reshape(*lead, half)
    return jnp.concatenate([jnp.cos(phase), jnp.sin(phase)], axis=-1)


class LayerNorm(nnx.Module):
    """torch's `nn.LayerNorm(dim)` (eps 1e-5, the two-pass variance), computed in float32 whatever the dtype."""

    def __init__(self, dim: int, dtype: tp.Any, param_dtype: tp.Any):
        self.dtype = dtype
        self.scale = nnx.Param(jnp.ones((dim,), param_dtype))
        self.bias = nnx.Param(jnp.zeros((dim,), param_dtype))

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(jnp.float32)
        centred = x - x.mean(axis=-1, keepdims=True)
        normed = centred / jnp.sqrt(jnp.mean(centred * centred, axis=-1, keepdims=True) + 1e-5)
        lead = (1,) * (x.ndim - 1)
        scale = self.scale[...].astype(jnp.float32).reshape(*lead, -1)
        return (normed * scale + self.bias[...].astype(jnp.float32).reshape(*lead, -1)).astype(self.dtype)


def layer_norm(dim: int, dtype: tp.Any, param_dtype: tp.Any, rngs: nnx.Rngs) -> LayerNorm:
    del rngs
    return LayerNorm(dim, dtype, param_dtype)


def attend(q: jax.Array, k: jax.Array, v: jax.Array, visible: jax.Array | None) -> jax.Array:
    """Softmax attention of `q [B, n, H, Dh]` over `k, v [B, L, H, Dh]`; `visible [B or 1, n, L]` (None: all).

    Scores and softmax in float32. A query that sees no key averages every key
    uniformly, as the references' additive `finfo.min` masks do (the null
    condition: its keys are all equal, so that average is its value).
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) * scale
    if visible is not None:
        scores = jnp.where(visible[:, None], scores, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(scores, axis=-1)
    return jnp.einsum("bhqk,bkhd->bqhd", weights.astype(v.dtype), v)


class SelfAttention(nnx.Module):
    """audiocraft's `StreamingMultiheadAttention` (custom): one fused `in_proj` (q, k, v), then `out_proj`."""

    def __init__(self, dim: int, num_heads: int, bias: bool, dtype: tp.Any, param_dtype: tp.Any, rngs: nnx.Rngs):
        self.num_heads = num_heads
        kw = dict(use_bias=bias, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.in_proj = nnx.Linear(dim, 3 * dim, **kw)
        self.out_proj = nnx.Linear(dim, dim, **kw)

    def qkv(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`x [B, n, D]` -> q, k, v `[B, n, H, Dh]` (the fused projection's rows: q, then k, then v)."""
        batch, n, dim = x.shape
        packed = self.in_proj(x).reshape(batch, n, 3, self.num_heads, dim // self.num_heads)
        return packed[:, :, 0], packed[:, :, 1], packed[:, :, 2]

    def output(self, attended: jax.Array) -> jax.Array:
        batch, n, heads, head_dim = attended.shape
        return self.out_proj(attended.reshape(batch, n, heads * head_dim))


class CrossAttention(nnx.Module):
    """Attention to the condition: `q_proj` on the decoder state, `kv_proj` on the condition, `out_proj`."""

    def __init__(self, dim: int, num_heads: int, bias: bool, dtype: tp.Any, param_dtype: tp.Any, rngs: nnx.Rngs):
        self.num_heads = num_heads
        kw = dict(use_bias=bias, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.q_proj = nnx.Linear(dim, dim, **kw)
        self.kv_proj = nnx.Linear(dim, 2 * dim, **kw)
        self.out_proj = nnx.Linear(dim, dim, **kw)

    def kv(self, condition: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The condition `[B, C, D]` -> keys, values `[B, C, H, Dh]` (computed once per request)."""
        batch, length, dim = condition.shape
        packed = self.kv_proj(condition).reshape(batch, length, 2, self.num_heads, dim // self.num_heads)
        return packed[:, :, 0], packed[:, :, 1]

    def __call__(self, x: jax.Array, keys: jax.Array, values: jax.Array, visible: jax.Array | None) -> jax.Array:
        batch, n, dim = x.shape
        q = self.q_proj(x).reshape(batch, n, self.num_heads, dim // self.num_heads)
        return self.out_proj(attend(q, keys, values, visible).reshape(batch, n, dim))


class DecoderLayer(nnx.Module):
    """One pre-norm layer: self-attention, cross-attention (if any), GELU feed-forward; residual after each."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_dim: int,
        *,
        cross_attention: bool,
        bias_attn: bool,
        bias_ff: bool,
        dtype: tp.Any,
        param_dtype: tp.Any,
        rngs: nnx.Rngs,
    ):
        self.self_attn = SelfAttention(dim, num_heads, bias_attn, dtype, param_dtype, rngs)
        self.norm1 = layer_norm(dim, dtype, param_dtype, rngs)
        self.cross_attention = (
            CrossAttention(dim, num_heads, bias_attn, dtype, param_dtype, rngs) if cross_attention else None
        )
        self.norm_cross = layer_norm(dim, dtype, param_dtype, rngs) if cross_attention else None
        kw = dict(use_bias=bias_ff, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.linear1 = nnx.Linear(dim, ffn_dim, **kw)
        self.linear2 = nnx.Linear(ffn_dim, dim, **kw)
        self.norm2 = layer_norm(dim, dtype, param_dtype, rngs)

    def __call__(
        self,
        x: jax.Array,
        keys: jax.Array | None,
        values: jax.Array | None,
        write_at: jax.Array | None,
        visible: jax.Array | None,
        cross: tuple[jax.Array, jax.Array, jax.Array | None] | None,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`x [B, n, D]` -> `(x, keys, values)`.

        `write_at` None: `keys`/`values` are ignored and the layer attends over
        its own n steps (a whole sequence). Otherwise they are the cache
        `[B, L, H, Dh]`: the new steps' keys and values are written at
        `write_at` (a scalar, or one position per row `[B]`) and the queries
        attend over the cache. `cross` is `(keys, values, visible)` of the
        condition, or None for no cross-attention.
        """
        q, k, v = self.self_attn.qkv(self.norm1(x))
        if write_at is None or keys is None or values is None:
            keys, values = k, v
        elif write_at.ndim == 0:
            keys = jax.lax.dynamic_update_slice_in_dim(keys, k.astype(keys.dtype), write_at, axis=1)
            values = jax.lax.dynamic_update_slice_in_dim(values, v.astype(values.dtype), write_at, axis=1)
        else:  # one position per row (a served batch: each slot at its own step)
            write = jax.vmap(lambda cache, new, at: jax.lax.dynamic_update_slice_in_dim(cache, new, at, axis=0))
            keys, values = write(keys, k.astype(keys.dtype), write_at), write(values, v.astype(values.dtype), write_at)
        x = x + self.self_attn.output(attend(q, keys.astype(q.dtype), values.astype(q.dtype), visible))
        if cross is not None and self.cross_attention is not None and self.norm_cross is not None:
            cross_keys, cross_values, cross_visible = cross
            x = x + self.cross_attention(
                self.norm_cross(x), cross_keys.astype(q.dtype), cross_values.astype(q.dtype), cross_visible
            )
        x = x + self.linear2(jax.nn.gelu(self.linear1(self.norm2(x)), approximate=False))
        return x, keys, values


class Embeddings(nnx.Module):
    """K embedding tables of `card + 1` rows (the codes and the special token), summed: `embedding [K, card + 1, D]`."""

    def __init__(self, n_q: int, card: int, dim: int, dtype: tp.Any, param_dtype: tp.Any, rngs: nnx.Rngs):
        self.dtype = dtype
        self.embedding = nnx.Param(jax.random.normal(rngs.params(), (n_q, card + 1, dim), param_dtype))

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """`tokens [B, K, n]` in `[0, card]` -> `[B, n, D]`, the sum over codebooks."""
        table = self.embedding[...]
        n_q, rows, dim = table.shape
        flat = table.reshape(n_q * rows, dim)
        offsets = (jnp.arange(n_q, dtype=jnp.int32) * rows)[None, :, None]
        return jnp.take(flat, tokens.astype(jnp.int32) + offsets, axis=0).astype(self.dtype).sum(axis=1)


class Heads(nnx.Module):
    """K output projections in one array: `kernel [K, D, card]` (and `bias [K, card]` when the model has one)."""

    def __init__(self, n_q: int, dim: int, card: int, bias: bool, param_dtype: tp.Any, rngs: nnx.Rngs):
        init = nnx.initializers.lecun_normal(in_axis=1, out_axis=2, batch_axis=(0,))
        self.kernel = nnx.Param(init(rngs.params(), (n_q, dim, card), param_dtype))
        self.bias = nnx.Param(jnp.zeros((n_q, card), param_dtype)) if bias else None

    def __call__(self, hidden: jax.Array) -> jax.Array:
        """`hidden [B, n, D]` -> float32 logits `[B, K, n, card]`."""
        kernel = self.kernel[...].astype(hidden.dtype)
        logits = jnp.einsum("bsd,kdc->bksc", hidden, kernel, preferred_element_type=jnp.float32)
        if self.bias is not None:
            logits = logits + self.bias[...].astype(jnp.float32)[None, :, None, :]
        return logits
