"""The operations (build, revert, revert_logits on both card axes) and pattern construction, against torch."""

from __future__ import annotations

import functools
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

import jax_patterns as jp
from jax_patterns.bench._report import Row, copy_baselines, synced, timeit, torch_device

NAN = float("nan")


def _torch_dtype(dtype: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "int32": torch.int64}[dtype]


def bench_ops(
    k: int,
    t: int,
    batch: int,
    card: int,
    dtype: str,
    repeats: int,
    with_lengths: bool,
    ops: tp.Sequence[str],
    padding_side: str = "right",
) -> list[Row]:
    """Build, revert and revert_logits (both card axes) for `DelayedPatternProvider(k)` at `t`.

    `with_lengths`: per-example lengths over `[t/2, t]`, padded on `padding_side`.
    """
    import torch

    from torch_compat import reference

    provider = jp.DelayedPatternProvider(k)
    pattern = provider.get_pattern(t)
    steps = pattern.valid_steps
    rng = np.random.default_rng(0)
    lengths = jnp.asarray(rng.integers(t // 2, t + 1, batch)) if with_lengths else None
    tag = (" +lengths" + (" left" if padding_side == "left" else "")) if with_lengths else ""
    side = padding_side
    rows = []

    def row(op: str, shape: tuple, dt: str, run_jax, run_torch, out_bytes: int) -> Row:
        jax_ms = timeit(lambda: jax.block_until_ready(run_jax()), repeats)
        torch_ms = timeit(synced(run_torch), repeats) if run_torch is not None else None
        np_ms, xla_ms = copy_baselines(out_bytes, repeats)
        return Row(op + tag, "x".join(map(str, shape)), dt, jax_ms, torch_ms, np_ms, xla_ms, out_bytes)

    if "build" in ops:
        z = jnp.asarray(rng.integers(0, card, (batch, k, t)), dtype=jnp.int32)
        z_t = torch.from_numpy(np.array(z)).long().to(torch_device())
        build = jax.jit(lambda z, n: pattern.build_pattern_sequence(z, card, True, lengths=n, padding_side=side)[0])
        rows.append(
            row(
                "build",
                (batch, k, t),
                "int32",
                lambda: build(z, lengths),
                None if with_lengths else lambda: reference.build_pattern_sequence(pattern, z_t, card, True),
                batch * k * steps * 4,
            )
        )
    if "revert" in ops:
        s = jnp.asarray(rng.integers(0, card, (batch, k, steps)), dtype=jnp.int32)
        s_t = torch.from_numpy(np.array(s)).long().to(torch_device())
        revert = jax.jit(lambda s, n: pattern.revert_pattern_sequence(s, card, True, lengths=n, padding_side=side)[0])
        rows.append(
            row(
                "revert",
                (batch, k, steps),
                "int32",
                lambda: revert(s, lengths),
                None if with_lengths else lambda: reference.revert_pattern_sequence(pattern, s_t, card, True),
                batch * k * t * 4,
            )
        )
    for card_axis in (-1, 1):
        if f"logits{card_axis}" not in ops:
            continue
        shape = (batch, k, steps, card) if card_axis == -1 else (batch, card, k, steps)
        logits = jax.random.normal(jax.random.key(0), shape, dtype=jnp.dtype(dtype))
        logits_t = torch.from_numpy(np.array(logits.astype(jnp.float32))).to(_torch_dtype(dtype)).to(torch_device())
        if card_axis == -1:  # audiocraft's compute_predictions: permute, revert, permute back

            def run_torch(x=logits_t):
                out = reference.revert_pattern_logits(pattern, x.permute(0, 3, 1, 2), NAN, True)[0]
                return out.permute(0, 2, 3, 1)
        else:

            def run_torch(x=logits_t):
                return reference.revert_pattern_logits(pattern, x, NAN, True)[0]

        revert_logits = jax.jit(
            lambda x, n, a=card_axis: pattern.revert_pattern_logits(
                x, NAN, True, card_axis=a, lengths=n, padding_side=side
            )[0]
        )
        nbytes = batch * k * t * card * jnp.dtype(dtype).itemsize
        run_jax = functools.partial(revert_logits, logits, lengths)
        torch_side = None if with_lengths else run_torch
        rows.append(row(f"revert_logits[card_axis={card_axis}]", shape, dtype, run_jax, torch_side, nbytes))
    return rows


def bench_construction(t: int, repeats: int, audiocraft_source: str | None = None) -> list[Row]:
    """`get_pattern` for a new T plus everything up to a lowered jitted build, vs the reference path."""
    import torch

    from torch_compat import load_audiocraft_file, reference

    provider = jp.DelayedPatternProvider(8)
    counter = iter(range(10**6))

    def ours() -> None:
        length = t + next(counter)  # a length never seen: nothing cached
        pattern = provider.get_pattern(length)
        spec = jax.ShapeDtypeStruct((1, 8, length), jnp.int32)
        jax.jit(lambda z: pattern.build_pattern_sequence(z, -1)[0]).lower(spec)

    def torch_reference() -> None:
        length = t + next(counter)
        pattern = reference.get_pattern(provider, length)
        reference.build_pattern_sequence(pattern, torch.zeros((1, 8, length), dtype=torch.long), -1)

    rows = [
        Row(
            "construct new T (delayed K=8)",
            f"1x8x{t}",
            "int32",
            timeit(ours, repeats),
            timeit(torch_reference, repeats),
            None,
            None,
            0,
        )
    ]
    if audiocraft_source:
        module = load_audiocraft_file(audiocraft_source)
        genuine = module.DelayedPatternProvider(8)

        def audiocraft() -> None:
            length = t + next(counter)
            pattern = genuine.get_pattern(length)
            pattern.build_pattern_sequence(torch.zeros((1, 8, length), dtype=torch.long), -1)

        rows.append(
            Row(
                "construct new T vs genuine audiocraft",
                f"1x8x{t}",
                "int32",
                rows[0].jax_ms,
                timeit(audiocraft, repeats),
                None,
                None,
                0,
            )
        )
    return rows
