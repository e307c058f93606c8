"""A two-level decoder: `lm.generate` with `lm.two_level_step` against the eager torch nested loop.

The toy model (`TwoLevelToy`, an NNX module implementing `lm.TwoLevelModel`) is
CSM's shape in small: a causal backbone over frames (the sum of the K
codebooks' embeddings) whose last hidden state predicts codebook 0, and a depth
transformer over one frame (position 0: the projected hidden state; position
`j`: codebook `j - 1`'s code) whose head `j - 1` predicts codebook `j`.
`torch_generate` runs the same weights as transformers runs CSM: an outer
Python loop over frames, an inner one over codebooks, the depth cache made
anew per frame. `tests/test_two_level.py` checks the two agree token for token.
"""

from __future__ import annotations

import math
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jax_patterns.bench._report import Row, synced, timeit, torch_device

Choose = tp.Callable[[tp.Any, int, int], tp.Any]
"""`choose(logits [B, card], frame, level) -> tokens [B]` (torch): how the torch loop picks a level's tokens."""


class Layer(nnx.Module):
    """Pre-norm causal self-attention and a SiLU MLP over a KV cache `[B, L, H, d]` (positions `index + [0, n)`)."""

    def __init__(self, dim: int, heads: int, *, rngs: nnx.Rngs):
        self.heads = heads
        self.norm1 = nnx.LayerNorm(dim, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
        self.qkv = nnx.Linear(dim, 3 * dim, rngs=rngs)
        self.out = nnx.Linear(dim, dim, rngs=rngs)
        self.norm2 = nnx.LayerNorm(dim, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
        self.up = nnx.Linear(dim, 4 * dim, rngs=rngs)
        self.down = nnx.Linear(4 * dim, dim, rngs=rngs)

    def __call__(self, x: jax.Array, keys: jax.Array, values: jax.Array, index: jax.Array) -> tuple:
        """`x [B, n, D]` at positions `index + [0, n)` (`index` a scalar, or `[B]`: one per row)."""
        batch, n, dim = x.shape
        q, k, v = jnp.split(self.qkv(self.norm1(x)).reshape(batch, n, 3 * self.heads, dim // self.heads), 3, axis=2)
        if index.ndim == 0:
            keys = jax.lax.dynamic_update_slice_in_dim(keys, k, index, axis=1)
            values = jax.lax.dynamic_update_slice_in_dim(values, v, index, axis=1)
        else:
            write = jax.vmap(lambda cache, new, at: jax.lax.dynamic_update_slice_in_dim(cache, new, at, axis=0))
            keys, values = write(keys, k, index), write(values, v, index)
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, keys) / math.sqrt(dim // self.heads)
        query = index.reshape(-1, 1, 1) + jnp.arange(n)[None, :, None]  # [1 or B, n, 1]
        visible = (jnp.arange(keys.shape[1])[None, None, :] <= query)[:, None]  # [1 or B, 1, n, L]
        scores = jnp.where(visible, scores, jnp.finfo(scores.dtype).min)
        attended = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), values)
        x = x + self.out(attended.reshape(batch, n, dim))
        return x + self.down(jax.nn.silu(self.up(self.norm2(x)))), keys, values


def _empty(batch: int, length: int, dim: int, heads: int, layers: int) -> dict:
    shape = (batch, length, heads, dim // heads)
    return {"keys": [jnp.zeros(shape) for _ in range(layers)], "values": [jnp.zeros(shape) for _ in range(layers)]}


def _run(blocks: tp.Any, x: jax.Array, cache: dict, index: jax.Array) -> tuple[jax.Array, dict]:
    keys, values = [], []
    for block, k, v in zip(blocks, cache["keys"], cache["values"]):
        x, k, v = block(x, k, v, index)
        keys.append(k)
        values.append(v)
    return x, {"keys": keys, "values": values}


class TwoLevelToy(nnx.Module):
    """A CSM-like two-level decoder (`lm.TwoLevelModel`): a backbone over frames, a depth transformer per frame.

    Codes lie in `[0, card)`; the backbone's inputs may also hold the special
    token `card` (its embedding tables have `card + 1` rows per codebook).

    Args:
      n_q: codebooks K (>= 2).
      card: codes per codebook.
      dim, layers: the backbone's width and depth.
      depth_dim, depth_layers: the depth transformer's.
      heads: attention heads of both (each width a multiple of it).
      max_len: the backbone's longest sequence (steps).
      rngs: NNX random streams.
    """

    def __init__(
        self,
        n_q: int,
        card: int,
        *,
        dim: int,
        layers: int,
        depth_dim: int,
        depth_layers: int,
        heads: int,
        max_len: int,
        rngs: nnx.Rngs,
    ):
        self.n_q, self.card, self.max_len, self.heads = n_q, card, max_len, heads
        self.dim, self.depth_dim = dim, depth_dim
        self.embed = nnx.Embed(n_q * (card + 1), dim, rngs=rngs)
        self.position = nnx.Embed(max_len, dim, rngs=rngs)
        self.blocks = nnx.List([Layer(dim, heads, rngs=rngs) for _ in range(layers)])
        self.norm = nnx.LayerNorm(dim, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
        self.head = nnx.Linear(dim, card, rngs=rngs)
        self.project = nnx.Linear(dim, depth_dim, rngs=rngs)
        self.depth_embed = nnx.Embed((n_q - 1) * card, depth_dim, rngs=rngs)
        self.depth_position = nnx.Embed(n_q, depth_dim, rngs=rngs)
        self.depth_blocks = nnx.List([Layer(depth_dim, heads, rngs=rngs) for _ in range(depth_layers)])
        self.depth_norm = nnx.LayerNorm(depth_dim, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
        heads_shape = (n_q - 1, depth_dim, card)  # head j - 1 predicts codebook j
        self.depth_heads = nnx.Param(jax.random.normal(rngs.params(), heads_shape) / math.sqrt(depth_dim))

    def init_cache(self, batch: int, *, per_row: bool = False) -> dict:
        """The backbone's empty cache; `per_row=True` keeps one position per row (`lm.Engine`)."""
        cache = _empty(batch, self.max_len, self.dim, self.heads, len(self.blocks))
        return cache | {"index": jnp.zeros((batch,) if per_row else (), jnp.int32)}

    def backbone(self, cache: dict, tokens: jax.Array, info: tp.Any = None) -> tuple:
        """Frames `tokens [B, K, n]` at each row's position: codebook 0's logits `[B, card]`, the hidden state."""
        index = cache["index"]
        offsets = (jnp.arange(self.n_q) * (self.card + 1))[None, :, None]
        x = self.embed(tokens + offsets).sum(axis=1)  # [B, n, dim]
        x = x + self.position(index.reshape(-1, 1) + jnp.arange(tokens.shape[-1])[None, :])
        x, new = _run(self.blocks, x, cache, index)
        hidden = self.norm(x[:, -1])
        return self.head(hidden), hidden, new | {"index": index + tokens.shape[-1]}

    def depth_init(self, hidden: jax.Array) -> dict:
        """A new frame's depth cache: position 0, the projected hidden state, written."""
        x = self.project(hidden)[:, None] + self.depth_position.embedding[...][None, :1]
        empty = _empty(hidden.shape[0], self.n_q, self.depth_dim, self.heads, len(self.depth_blocks))
        return _run(self.depth_blocks, x, empty, jnp.int32(0))[1]

    def depth(self, cache: dict, token: jax.Array, level: jax.Array) -> tuple[jax.Array, dict]:
        """Codebook `level - 1`'s code at position `level`: codebook `level`'s logits `[B, card]`."""
        x = self.depth_embed((level - 1) * self.card + token)[:, None]
        x = x + jax.lax.dynamic_index_in_dim(self.depth_position.embedding[...], level, keepdims=True)[None]
        x, cache = _run(self.depth_blocks, x, cache, level)
        head = jax.lax.dynamic_index_in_dim(self.depth_heads[...], level - 1, keepdims=False)
        return self.depth_norm(x[:, 0]) @ head, cache


def toy(n_q: int, card: int, *, dim: int, depth_dim: int, layers: int = 1, depth_layers: int = 1, heads: int = 2,
        max_len: int, seed: int = 0) -> TwoLevelToy:  # fmt: skip
    """A random `TwoLevelToy`."""
    return TwoLevelToy(
        n_q, card, dim=dim, layers=layers, depth_dim=depth_dim, depth_layers=depth_layers, heads=heads,
        max_len=max_len, rngs=nnx.Rngs(seed),
    )  # fmt: skip


def torch_weights(model: TwoLevelToy, device: tp.Any = "cpu") -> dict[str, tp.Any]:
    """The toy's parameters as torch tensors on `device` (a linear's weight `[out, in]`), by the NNX attribute path."""
    import torch

    weights = {}
    for path, value in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        name = ".".join(str(p) for p in path)
        array = np.array(value[...])
        if name.endswith(".kernel"):
            array = array.T
        weights[name] = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    return weights


def torch_generate(
    model: TwoLevelToy, batch: int, frames: int, choose: Choose | None = None, weights: dict | None = None
) -> np.ndarray:
    """The toy decoded as transformers decodes CSM, eagerly in torch: for each frame, the backbone on the frame
    before (first the special frame), codebook 0 chosen, then the depth model from an empty cache, one codebook at a
    time. `choose` picks a level's tokens (default: greedy); `weights` (`torch_weights`, on any device) default to
    the model's on the CPU. Returns int32 codes `[B, K, frames]` (numpy)."""
    import torch
    import torch.nn.functional as F

    w = torch_weights(model) if weights is None else weights
    device = w["head.kernel"].device
    n_q, card, heads = model.n_q, model.card, model.heads
    choose = choose or (lambda logits, t, level: logits.argmax(-1))

    def linear(x, name):
        return F.linear(x, w[f"{name}.kernel"], w[f"{name}.bias"])

    def norm(x, name):
        return F.layer_norm(x, x.shape[-1:], w[f"{name}.scale"], w[f"{name}.bias"], eps=1e-5)

    def layer(x, name, cache, i, index):
        b, n, d = x.shape
        q, k, v = linear(norm(x, f"{name}.norm1"), f"{name}.qkv").reshape(b, n, 3 * heads, d // heads).split(heads, 2)
        cache["keys"][i][:, index : index + n] = k
        cache["values"][i][:, index : index + n] = v
        keys, values = cache["keys"][i][:, : index + n], cache["values"][i][:, : index + n]
        scores = torch.einsum("bqhd,bkhd->bhqk", q, keys) / math.sqrt(d // heads)
        visible = torch.arange(index + n, device=device)[None, :] <= (index + torch.arange(n, device=device))[:, None]
        scores = scores.masked_fill(~visible, -torch.inf)
        x = x + linear(torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), values).reshape(b, n, d), f"{name}.out")
        return x + linear(F.silu(linear(norm(x, f"{name}.norm2"), f"{name}.up")), f"{name}.down")

    def empty(length, dim, layers):
        shape = (batch, length, heads, dim // heads)
        zeros = [torch.zeros(shape, device=device) for _ in range(2 * layers)]
        return {"keys": zeros[:layers], "values": zeros[layers:]}

    layers, depth_layers = len(model.blocks), len(model.depth_blocks)
    cache = empty(model.max_len, model.dim, layers)
    offsets = torch.arange(n_q, device=device)[None, :, None] * (card + 1)
    codes = torch.zeros(batch, n_q, frames, dtype=torch.int64, device=device)
    tokens = torch.full((batch, n_q, 1), card, device=device)  # the pattern's special step
    with torch.inference_mode():
        for t in range(frames):  # the backbone: one frame
            x = F.embedding(tokens + offsets, w["embed.embedding"]).sum(1) + w["position.embedding"][t]
            for i in range(layers):
                x = layer(x, f"blocks.{i}", cache, i, t)
            hidden = norm(x[:, -1], "norm")
            frame = [choose(linear(hidden, "head"), t, 0)]
            x = linear(hidden, "project")[:, None] + w["depth_position.embedding"][0]
            depth = empty(n_q, model.depth_dim, depth_layers)  # the depth model's cache, new for every frame
            for i in range(depth_layers):
                x = layer(x, f"depth_blocks.{i}", depth, i, 0)
            for level in range(1, n_q):  # the depth model: one codebook at a time
                x = F.embedding((level - 1) * card + frame[-1], w["depth_embed.embedding"])[:, None]
                x = x + w["depth_position.embedding"][level]
                for i in range(depth_layers):
                    x = layer(x, f"depth_blocks.{i}", depth, i, level)
                frame.append(choose(norm(x[:, 0], "depth_norm") @ w["depth_heads"][level - 1], t, level))
            tokens = torch.stack(frame, 1)[..., None]
            codes[:, :, t] = tokens[..., 0]
    return codes.cpu().numpy().astype(np.int32)


def bench_two_level(
    repeats: int = 3,
    *,
    frames: int = 32,
    batches: tp.Sequence[int] = (1, 8),
    n_q: int = 16,
    card: int = 2048,
    dim: int = 512,
    layers: int = 4,
    depth_dim: int = 256,
    depth_layers: int = 2,
    heads: int = 8,
) -> list[Row]:
    """Frames per second of `lm.generate` with `lm.two_level_step_of(model)` against the eager torch nested loop.

    The same toy weights on both sides (float32, greedy), `frames` frames from an empty prompt: one backbone call
    and K-1 depth calls per frame. Ours is one compiled program (timed compiled: the median of `repeats` runs);
    torch runs the Python loops transformers runs for CSM, with preallocated caches (one timed run after a warm-up:
    seconds per run on a CPU).

    Args:
      repeats: timed runs of ours.
      frames: frames per run.
      batches: batch sizes (one row each).
      n_q, card: codebooks K and codes per codebook.
      dim, layers, depth_dim, depth_layers, heads: the toy's backbone and depth transformer.

    Returns:
      one row per batch size.
    """
    import torch

    from jax_patterns import ParallelPatternProvider, lm

    rows = []
    model = toy(n_q, card, dim=dim, depth_dim=depth_dim, layers=layers, depth_layers=depth_layers, heads=heads,
                max_len=frames + 1)  # fmt: skip
    weights = torch_weights(model, torch_device())
    step = lm.two_level_step_of(model)
    pattern = ParallelPatternProvider(n_q).get_pattern(frames)
    for batch in batches:
        prompt = jnp.zeros((batch, n_q, 0), jnp.int32)
        cache = model.init_cache(batch)

        def ours(prompt=prompt, cache=cache) -> None:
            lm.generate(step, cache, pattern, prompt, special_token=card, step_info=True, step_returns="tokens")[
                0
            ].block_until_ready()

        def theirs(batch=batch) -> None:
            torch_generate(model, batch, frames, weights=weights)

        jax_ms = timeit(ours, repeats)
        torch_ms = timeit(synced(theirs), 1)
        rows.append(
            Row(
                f"two-level decode {frames} frames, greedy, CSM-like toy (vs torch eager nested loop)",
                f"B={batch} K={n_q} card={card} backbone {dim}x{layers} depth {depth_dim}x{depth_layers}",
                "float32",
                jax_ms,
                torch_ms,
                None,
                None,
                batch * n_q * frames * 4,
                extra={
                    "frames_per_s": batch * frames / jax_ms * 1e3,
                    "torch_frames_per_s": batch * frames / torch_ms * 1e3,
                    "torch_threads": torch.get_num_threads(),  # oversubscribed on a loaded box: see RESULTS.md
                    "baseline_ms": torch_ms,
                },
            )
        )
    return rows
