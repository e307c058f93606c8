"""The losses: the pattern cross entropy against revert-then-CE and torch, and the fused heads+loss against unfused."""

from __future__ import annotations

import functools
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

import jax_patterns as jp
from jax_patterns import _baselines
from jax_patterns.bench._report import Row, blocking, temp_bytes, timeit

NAN = float("nan")


def bench_cross_entropy(batch: int, k: int, t: int, card: int, repeats: int) -> list[Row]:
    """Pattern-domain CE forward+backward vs revert-then-CE (both jax) and the torch reference."""
    import torch

    from jax_patterns import lm
    from torch_compat import lm as torch_lm

    pattern = jp.DelayedPatternProvider(k).get_pattern(t)
    steps = pattern.valid_steps
    logits = jax.random.normal(jax.random.key(0), (batch, k, steps, card), jnp.float32)
    codes = jax.random.randint(jax.random.key(1), (batch, k, t), 0, card, jnp.int32)

    def ours(x):
        return lm.pattern_cross_entropy(x, codes, pattern)[0]

    def reverted(x):
        values, _, mask = pattern.revert_pattern_logits(x, NAN, True, card_axis=-1)
        return _baselines.reverted_cross_entropy(values, codes, jnp.broadcast_to(mask, codes.shape))[0]

    ours_grad, reverted_grad = jax.jit(jax.value_and_grad(ours)), jax.jit(jax.value_and_grad(reverted))
    ours_ms = timeit(lambda: jax.block_until_ready(ours_grad(logits)), repeats)
    reverted_ms = timeit(lambda: jax.block_until_ready(reverted_grad(logits)), repeats)
    x = torch.from_numpy(np.array(logits)).requires_grad_(True)
    codes_t = torch.from_numpy(np.array(codes)).long()

    def torch_step():
        x.grad = None
        values, mask = torch_lm.compute_predictions(lambda s: x, codes_t, pattern, card)
        torch_lm.cross_entropy(values, codes_t, mask)[0].backward()

    shape = f"{batch}x{k}x{t}x{card}"
    ours_temp, reverted_temp = temp_bytes(ours_grad, logits), temp_bytes(reverted_grad, logits)
    return [
        Row(
            "pattern CE fwd+bwd (vs revert-then-CE)",
            shape,
            "float32",
            ours_ms,
            None,
            None,
            None,
            0,
            extra={"baseline_ms": reverted_ms, "temp_MB": ours_temp / 2**20, "baseline_temp_MB": reverted_temp / 2**20},
        ),
        Row(
            "pattern CE fwd+bwd (vs torch reference)",
            shape,
            "float32",
            ours_ms,
            timeit(torch_step, repeats),
            None,
            None,
            0,
        ),
    ]


FUSED_KS, FUSED_DIMS, FUSED_DTYPES = (4, 8), (512, 1024), ("float32", "bfloat16")
"""The fused rows' default shapes (with B=8, T=1500, card 2048): one row each, K x D x dtype."""


def bench_fused(
    batch: int = 8,
    ks: tp.Sequence[int] = FUSED_KS,
    t: int = 1500,
    dims: tp.Sequence[int] = FUSED_DIMS,
    card: int = 2048,
    dtypes: tp.Sequence[str] = FUSED_DTYPES,
    repeats: int = 3,
    budget_bytes: int = 2**30,
) -> list[Row]:
    """The loss through the K heads, value and gradients, fused against unfused, for every shape given.

    Fused is `lm.fused_pattern_cross_entropy(hidden, heads, codes, pattern, bias=)`;
    unfused is `pattern_cross_entropy(einsum(hidden, heads) + bias, ...)`. Side
    by side: time, XLA temp memory, and the largest batch whose program fits
    `budget_bytes` of temp memory each way (compiled, not run).
    """
    return [
        _fused_row(batch, k, t, dim, card, dtype, repeats, budget_bytes) for k in ks for dim in dims for dtype in dtypes
    ]


def _fused_row(batch: int, k: int, t: int, dim: int, card: int, dtype: str, repeats: int, budget: int) -> Row:
    from jax_patterns import lm

    pattern = jp.DelayedPatternProvider(k).get_pattern(t)
    steps = pattern.valid_steps

    def args_of(b: int) -> tuple:
        keys = jax.random.split(jax.random.key(0), 3)
        hidden = jax.random.normal(keys[0], (b, steps, dim), dtype)
        heads = (jax.random.normal(keys[1], (k, dim, card), jnp.float32) / np.sqrt(dim)).astype(dtype)
        codes = jax.random.randint(keys[2], (b, k, t), 0, card, jnp.int32)
        return hidden, heads, jnp.zeros((k, card), dtype), codes

    def fused(h, w, b, codes):
        return lm.fused_pattern_cross_entropy(h, w, codes, pattern, bias=b)[0]

    def unfused(h, w, b, codes):
        return lm.pattern_cross_entropy(jnp.einsum("bsd,kdc->bksc", h, w) + b[None, :, None, :], codes, pattern)[0]

    programs = {"fused": fused, "unfused": unfused}
    programs = {n: jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2))) for n, f in programs.items()}
    args = args_of(batch)
    ms = {n: timeit(functools.partial(blocking, p, *args), repeats) for n, p in programs.items()}
    temp = {n: temp_bytes(p, *args) for n, p in programs.items()}

    def fits(name: str, b: int) -> bool:  # compiled for abstract shapes: nothing of that size is allocated
        shapes = [jax.ShapeDtypeStruct((b, *x.shape[1:]) if i in (0, 3) else x.shape, x.dtype) for i, x in
                  enumerate(args)]  # fmt: skip
        return temp_bytes(programs[name], *shapes) <= budget

    def largest(name: str) -> int:
        """The largest batch (doubling, then bisection) whose program's temp memory fits the budget."""
        low, high = 0, 1
        while high <= 1024 and fits(name, high):
            low, high = high, high * 2
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (mid, high) if fits(name, mid) else (low, mid)
        return low

    return Row(
        "fused heads+CE fwd+bwd (vs unfused)",
        f"B={batch} K={k} T={t} D={dim} card={card}",
        dtype,
        ms["fused"],
        None,
        None,
        None,
        0,
        extra={
            "baseline_ms": ms["unfused"],
            "temp_MB": temp["fused"] / 2**20,
            "baseline_temp_MB": temp["unfused"] / 2**20,
            "temp_ratio": temp["unfused"] / max(temp["fused"], 1),
            "largest_batch_in_budget": largest("fused"),
            "baseline_largest_batch_in_budget": largest("unfused"),
            "budget_MB": budget / 2**20,
        },
    )
