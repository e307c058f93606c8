"""Generation and streaming: `generate` against a bare loop and torch's eager loop; serving; `stream`'s first frame."""

from __future__ import annotations

import functools
import statistics
import time
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

import jax_patterns as jp
from jax_patterns import _baselines
from jax_patterns.bench._report import Row, blocking, timeit


def bench_generation(steps: int, repeats: int) -> list[Row]:
    """`generate` over `steps` decoded steps vs a bare compiled decode loop with the same step function."""
    import torch
    from flax import nnx

    from jax_patterns import lm
    from torch_compat import lm as torch_lm

    k, card = 4, 64
    pattern = jp.DelayedPatternProvider(k).get_pattern(steps - k + 1)  # S - first step == steps
    decoded = len(pattern) - (pattern.get_first_step_with_timesteps(0) or 0)
    prompt = jnp.zeros((1, k, 0), jnp.int32)

    def counting_step(state, tokens):  # the cheapest possible model: the loop itself is measured
        h = state + tokens.sum(axis=(1, 2))
        c = jnp.arange(card)[None, None, :]
        return ((h[:, None, None] * 7 + tokens[..., -1:] * 3 + c * 11) % 13).astype(jnp.float32), h

    model = lm.CodecLM(k, card, dim=64, num_layers=2, num_heads=4, max_len=len(pattern) + 1, rngs=nnx.Rngs(0))
    rows = []
    for name, step_fn, state in (
        ("counting model", counting_step, jnp.zeros((1,), jnp.int32)),
        ("NNX CodecLM, KV cache", lm.step_fn_of(model), model.init_cache(1)),
    ):
        gen = jax.jit(lambda s, p, f=step_fn: lm.generate(f, s, pattern, p, special_token=card))
        bare = jax.jit(lambda s, f=step_fn: _baselines.bare_decode(f, s, jnp.full((1, k, 1), card, jnp.int32), decoded))
        gen_ms = timeit(functools.partial(blocking, gen, state, prompt), repeats)
        bare_ms = timeit(functools.partial(blocking, bare, state), repeats)
        rows.append(
            Row(
                f"generate {decoded} steps, {name} (vs bare loop)",
                f"1x{k}x{pattern.timesteps}",
                "int32",
                gen_ms,
                None,
                None,
                None,
                0,
                extra={"baseline_ms": bare_ms, "ms_per_step": gen_ms / decoded, "bare_ms_per_step": bare_ms / decoded},
            )
        )

    def torch_model(seq):  # the counting model, recomputing the prefix as audiocraft's loop does without cache
        h = torch.cumsum(seq.sum(dim=1), dim=-1)
        c = torch.arange(card)[None, None, None, :]
        return ((h[:, None, :, None] * 7 + seq[..., None] * 3 + c * 11) % 13).float()

    torch_ms = timeit(
        lambda: torch_lm.generate(torch_model, pattern, torch.zeros((1, k, 0), dtype=torch.long), card),
        max(1, repeats // 2),
    )
    rows.append(
        Row(
            f"generate {decoded} steps, counting model (vs eager torch loop)",
            f"1x{k}x{pattern.timesteps}",
            "int32",
            rows[0].jax_ms,
            torch_ms,
            None,
            None,
            0,
            extra={"torch_ms_per_step": torch_ms / decoded},
        )
    )
    return rows


def bench_serving(steps: int, repeats: int, batch: int = 4, chunks: tp.Sequence[int] = (16, 64, 256)) -> list[Row]:
    """Serving generation: per-example prompts and EOS vs a bare loop; `stream` vs `generate`; first-frame latency.

    The EOS token is one the step function never samples (its logit is -inf),
    so every configuration decodes the same `steps` steps and the ratios
    measure bookkeeping alone.
    """
    from flax import nnx

    from jax_patterns import lm

    k, card = 4, 64
    eos = card - 1
    pattern = jp.DelayedPatternProvider(k).get_pattern(steps - k + 1)
    start = pattern.get_first_step_with_timesteps(0) or 0
    decoded = len(pattern) - start
    prompt_len = 8
    prompt = jnp.asarray(np.random.default_rng(0).integers(0, eos, (batch, k, prompt_len)), jnp.int32)
    prompt_lengths = np.linspace(0, prompt_len, batch).astype(np.int32)  # 0 .. T0: decoding starts at step 1

    def no_eos(step_fn):
        def step(state, tokens):
            logits, state = step_fn(state, tokens)
            return logits.at[..., eos].set(-jnp.inf), state

        return step

    def counting_step(state, tokens):
        h = state + tokens.sum(axis=(1, 2))
        c = jnp.arange(card)[None, None, :]
        return ((h[:, None, None] * 7 + tokens[..., -1:] * 3 + c * 11) % 13).astype(jnp.float32), h

    model = lm.CodecLM(k, card, dim=64, num_layers=2, num_heads=4, max_len=len(pattern) + 1, rngs=nnx.Rngs(0))
    rows = []
    shape = f"{batch}x{k}x{pattern.timesteps}"
    for name, step_fn, make_state in (
        ("counting model", no_eos(counting_step), lambda: jnp.zeros((batch,), jnp.int32)),
        ("NNX CodecLM, KV cache", jax.tree_util.Partial(no_eos(lm.step_fn_of(model))), lambda: model.init_cache(batch)),
    ):
        state = make_state()
        serve: dict[str, tp.Any] = dict(special_token=card, prompt_lengths=prompt_lengths, eos_token=eos)
        gen = functools.partial(lm.generate, step_fn, state, pattern, prompt, **serve)
        bare = jax.jit(
            lambda s, f=step_fn: _baselines.bare_decode(f, s, jnp.full((batch, k, 1), card, jnp.int32), decoded)
        )
        gen_ms = timeit(functools.partial(blocking, gen), repeats)
        bare_ms = timeit(functools.partial(blocking, bare, state), repeats)
        assert (np.asarray(gen()[1]) == pattern.timesteps).all(), "EOS was sampled: the step counts differ"
        rows.append(
            Row(
                f"generate {decoded} steps, prompt_lengths + eos_token, {name} (vs bare loop)",
                shape,
                "int32",
                gen_ms,
                None,
                None,
                None,
                0,
                extra={"baseline_ms": bare_ms, "ms_per_step": gen_ms / decoded},
            )
        )
        if name == "counting model":
            continue
        steps_to_first = max(pattern.get_steps_with_timestep(0)) - start + 1  # decode steps until frame 0 is complete
        for chunk in chunks:

            def run_stream(chunk=chunk, fn=step_fn, state=state, serve=serve) -> float:
                began = time.perf_counter()
                first = None
                for _ in lm.stream(fn, state, pattern, prompt, chunk_steps=chunk, **serve):
                    first = time.perf_counter() - began if first is None else first
                return 1e3 * (first or 0.0)

            run_stream()  # compile
            totals, firsts = [], []
            for _ in range(max(3, repeats // 3)):
                began = time.perf_counter()
                firsts.append(run_stream())
                totals.append(1e3 * (time.perf_counter() - began))
            limit_ms = (steps_to_first + chunk) * gen_ms / decoded
            rows.append(
                Row(
                    f"stream chunk_steps={chunk}, {name} (vs generate)",
                    shape,
                    "int32",
                    statistics.median(totals),
                    None,
                    None,
                    None,
                    0,
                    extra={
                        "baseline_ms": gen_ms,
                        "first_frame_ms": statistics.median(firsts),
                        "first_frame_limit_ms": limit_ms,
                        "steps_to_first_frame": float(steps_to_first),
                    },
                )
            )
    return rows
