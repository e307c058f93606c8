"""The engine: `lm.Engine` (continuous batching) against static batches of `generate`, on mixed lengths."""

from __future__ import annotations

import time
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

import jax_patterns as jp
from jax_patterns.bench._report import Row, seconds


def frame_tables(pattern: jp.Pattern) -> tuple[np.ndarray, np.ndarray]:
    """From the pattern's coordinates: codebook 0's frame at each step (-1 where it holds none), `[S]`, and the step
    holding each frame's last code (the step after which the frame is complete in every codebook), `[T]`."""
    steps, ts, qs = pattern.coords
    keep = ts < pattern.timesteps
    steps, ts, qs = steps[keep], ts[keep], qs[keep]
    first = np.full(len(pattern), -1, np.int32)
    first[steps[qs == 0]] = ts[qs == 0]
    last = np.full(pattern.timesteps, -1, np.int64)
    np.maximum.at(last, ts, steps)
    return first, last.astype(np.int32)


def _eos_model(model: tp.Any, eos: int, pattern: jp.Pattern, card: int) -> tuple[tp.Callable, tp.Callable]:
    """The NNX CodecLM with a length chosen by its prompt: the step function and its state for `batch` rows
    (per-row cache positions).

    A request's one-frame prompt holds in codebook 0 a code `c`: its EOS comes at frame
    `timesteps * (0.1 + 0.9 * c / (card - 1))` (10-100% of the limit). The first call (the prompt's steps) stores
    that target per row; later calls force EOS in codebook 0 at the target, and forbid it before.
    """
    from jax_patterns import lm

    step = lm.step_fn_of(model)
    timesteps = pattern.timesteps
    frames_of = jnp.asarray(frame_tables(pattern)[0])  # the pattern's own table: no family assumed

    def target_of(code: tp.Any) -> tp.Any:
        rate = jnp.float32(0.1) + jnp.float32(0.9 / (card - 1)) * code.astype(jnp.float32)
        return (jnp.float32(timesteps) * rate).astype(jnp.int32)

    def step_fn(params_step, state, tokens, info):
        logits, cache = params_step(state["cache"], tokens)
        target = target_of(tokens[:, 0, 1]) if tokens.shape[-1] > 1 else state["target"]
        frame = frames_of[jnp.reshape(info.step, (-1,))]  # codebook 0's frame at each row's step (-1: none)
        column = jnp.where(frame >= target, jnp.float32(1e4), jnp.float32(-1e4)).astype(logits.dtype)
        logits = logits.at[:, 0, eos].set(jnp.broadcast_to(column, logits.shape[:1]))
        return logits, {"cache": cache, "target": target}

    def init_state(batch: int) -> dict:
        return {"cache": model.init_cache(batch, per_row=True), "target": jnp.zeros((batch,), jnp.int32)}

    return jax.tree_util.Partial(step_fn, step), init_state


def bench_engine(
    requests: int = 64, slots: int = 16, timesteps: int = 200, chunk_steps: int = 16, dim: int = 256, layers: int = 4
) -> list[Row]:
    """`lm.Engine` vs static batches of `generate` in arrival order, on a workload of mixed lengths.

    64 requests, EOS uniform over 10-100% of `max_timesteps` (forced by the prompt, see `_eos_model`), the NNX
    CodecLM (`dim` wide, `layers` deep, per-row KV cache), K=4 delayed, greedy. Frames per second counts each
    request's frames up to its EOS. Time to first frame: from the request's entry into a slot to its first frames
    on the host, against its limit (the steps until frame 0 is complete, here none past the prompt, plus one
    chunk, at the engine's measured time per step).
    """
    from flax import nnx

    from jax_patterns import lm

    k, card, eos = 4, 64, 0
    provider = jp.DelayedPatternProvider(k)
    pattern = provider.get_pattern(timesteps)
    model = lm.CodecLM(k, card, dim=dim, num_layers=layers, num_heads=4, max_len=len(pattern), rngs=nnx.Rngs(0))
    step_fn, init_state = _eos_model(model, eos, pattern, card)
    last_step = frame_tables(pattern)[1]
    rng = np.random.default_rng(0)
    codes = rng.integers(1, card, (requests, k, 1)).astype(np.int32)

    def static() -> tuple[int, int]:
        frames = steps = 0
        for start in range(0, requests, slots):
            batch = codes[start : start + slots]
            _, lengths = lm.generate(
                step_fn, init_state(len(batch)), pattern, batch, special_token=card, eos_token=eos, step_info=True
            )
            lengths = jax.device_get(lengths)
            frames += int(np.sum(lengths))
            steps += (
                int(last_step[max(lengths) - 1]) + 1
            )  # the loop ends once the longest example's last frame is written
        return frames, steps

    def engine_run() -> tuple[lm.Engine, dict, float]:
        engine = lm.Engine(
            step_fn,
            init_state,
            provider,
            slots=slots,
            max_timesteps=timesteps,
            special_token=card,
            eos_token=eos,
            chunk_steps=chunk_steps,
            step_info=True,
        )
        for prompt in codes:
            engine.submit(prompt)
        first: dict[int, float] = {}
        frames = 0
        began = time.perf_counter()
        for rid, out, _ in engine:
            first.setdefault(rid, time.perf_counter())
            frames += out.shape[1]
        assert frames == total, (frames, total)
        return engine, first, time.perf_counter() - began

    total, static_steps = static()  # compiled; the workload's frames (each request's EOS length)
    engine_run()
    static_runs, runs = [], []
    for _ in range(2):  # interleaved: this box's speed drifts
        static_runs.append(seconds(static))
        runs.append(engine_run())
    engine, first, engine_s = min(runs, key=lambda r: r[2])
    static_s = min(static_runs)
    per_step = engine_s / max(1, engine.chunks * chunk_steps)
    waits = np.asarray([first[r] - engine.entered[r] for r in range(requests)])
    limit = chunk_steps * per_step
    return [
        Row(
            f"Engine, {requests} requests, EOS 10-100% of T, NNX CodecLM (vs static generate batches)",
            f"{slots} slots x{k}x{timesteps}",
            "int32",
            engine_s * 1e3,
            None,
            None,
            None,
            0,
            extra={
                "baseline_ms": static_s * 1e3,
                "frames_per_s": total / engine_s,
                "static_frames_per_s": total / static_s,
                "speedup": static_s / engine_s,
                "first_frame_p50_ms": float(np.percentile(waits, 50) * 1e3),
                "first_frame_p99_ms": float(np.percentile(waits, 99) * 1e3),
                "first_frame_limit_ms": limit * 1e3,
                "chunks": engine.chunks,
                "engine_steps": engine.steps,
                "static_steps": static_steps,
            },
        )
    ]
