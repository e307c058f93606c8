"""The deterministic toy MAGNeT model of the goldens, one definition for torch and JAX.

Its logits are a fixed function of the input tokens (each position, its two
neighbours, every codebook), the position, the stage and a per-row condition
value, computed in int32 arithmetic that neither framework can round
differently, then scaled by a power of two: both sides get bit-identical
logits. `tools/make_magnet_goldens.py` runs it in torch under audiocraft's
code; the tests run it in JAX under `lm.magnet_generate`.
"""

from __future__ import annotations

import typing as tp

PRIME = 65521


def toy_logits(tokens: tp.Any, stage: tp.Any, cond: tp.Any, card: int, xp: tp.Any) -> tp.Any:
    """`tokens [B, K, T]` (ints, the mask token included), `stage` (int scalar), `cond [B]` (ints) ->
    float32 logits `[B, K, T, card]` in `[0, 8)`. `xp` is `torch` or `jax.numpy`."""
    torch_like = hasattr(xp, "from_numpy")
    batch, n_q, timesteps = tokens.shape
    weights = (xp.arange(n_q) + 1) * 7
    h = (tokens * weights[None, :, None]).sum(1) % PRIME  # [B, T]
    pad_one = xp.ones_like(h[:, :1])
    left = xp.concatenate([pad_one, h[:, :-1]], 1) if not torch_like else xp.cat([pad_one, h[:, :-1]], 1)
    right = xp.concatenate([h[:, 1:], pad_one * 2], 1) if not torch_like else xp.cat([h[:, 1:], pad_one * 2], 1)
    position = xp.arange(timesteps)[None, :]
    h = (h * 3 + left * 5 + right * 11 + position * 13 + stage * 17 + cond[:, None] * 19) % PRIME
    level = xp.arange(n_q)[None, :, None, None]
    code = xp.arange(card)[None, None, None, :]
    v = (h[:, None, :, None] * 31 + (level * card + code + 1) * 1009) % PRIME
    v = (v * ((v % 113) + 1)) % PRIME
    v = (v * 211 + h[:, None, :, None] + 7) % PRIME
    v = (v * ((v % 97) + 3)) % PRIME
    floats = v.float() if torch_like else v.astype(xp.float32)
    return floats / 8192.0
