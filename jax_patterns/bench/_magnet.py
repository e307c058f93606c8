"""MAGNeT: `magnet_generate` against a bare compiled loop making the same model calls, and audiocraft's eager loop."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns import _baselines
from jax_patterns.bench._lm_private import magnet_top_p_sampler
from jax_patterns.bench._report import Row, blocking, timeit


def bench_magnet(repeats: int, audiocraft_tree: str | None = None) -> list[Row]:
    """`magnet_generate` against a bare compiled loop making the same model calls, and audiocraft's eager loop.

    B=4, K=4, T=150 (50 spans of 3), decoding_steps (20, 10, 10, 10), top-p
    sampling with guidance (audiocraft's defaults): 50 model calls on `[8, 4, 150]`.
    Two models: the toy of the goldens (integer arithmetic: the bookkeeping
    dominates) and the NNX CodecLM (bidirectional, dim 64, 2 layers). With an
    audiocraft source tree, audiocraft's own `_generate_magnet` runs the toy model
    in torch, eagerly.
    """
    import torch
    from flax import nnx

    from jax_patterns import lm
    from torch_compat._magnet import Condition, load_magnet, magnet_harness, toy_logits

    batch, k, t, card, steps = 4, 4, 150, 64, (20, 10, 10, 10)
    prompt = jnp.zeros((batch, k, 0), jnp.int32)
    cond = jnp.arange(1, batch + 1, dtype=jnp.int32)
    iterations = jnp.asarray(np.repeat(np.arange(len(steps), dtype=np.int32), steps))  # each iteration's stage
    calls = int(iterations.shape[0])

    def toy(tokens, stage):
        rows = jnp.concatenate([cond, jnp.zeros_like(cond)])[: tokens.shape[0]]
        return toy_logits(tokens, stage, rows, card, jnp)

    model = lm.CodecLM(k, card, dim=64, num_layers=2, num_heads=4, max_len=t, causal=False, rngs=nnx.Rngs(0))
    keys = jax.vmap(lambda b: jax.random.fold_in(jax.random.key(0), b))(jnp.arange(batch))  # magnet_generate's
    top_p_sample = magnet_top_p_sampler(keys, steps, t)  # the same draw as magnet_generate's default (top-p 0.9)

    rows = []
    for name, fn in (("toy model", jax.tree_util.Partial(toy)), ("NNX CodecLM", lm.magnet_fn_of(model))):
        codes = jnp.full((batch, k, t), card, jnp.int32)
        for kind, sample in (("greedy", None), ("top-p", top_p_sample)):
            ours = jax.jit(
                lambda f, key, greedy=sample is None: lm.magnet_generate(
                    f, prompt, timesteps=t, mask_token=card, key=key, decoding_steps=steps, use_sampling=not greedy
                )
            )
            bare = jax.jit(lambda f, c, s=sample: _baselines.bare_magnet(f, c, iterations, True, s))
            ours_ms = timeit(functools.partial(blocking, ours, fn, jax.random.key(0)), repeats)
            bare_ms = timeit(functools.partial(blocking, bare, fn, codes), repeats)
            rows.append(
                Row(
                    f"magnet_generate {calls} iterations, {kind}, {name} (vs bare loop, same model calls and sampler)",
                    f"{batch}x{k}x{t}",
                    "int32",
                    ours_ms,
                    None,
                    None,
                    None,
                    0,
                    extra={"baseline_ms": bare_ms, "ms_per_iteration": ours_ms / calls},
                )
            )
    if audiocraft_tree:
        lm_magnet, _, _ = load_magnet(audiocraft_tree)
        harness = magnet_harness(lm_magnet, k, card, 3, cond_weight=1)

        def audiocraft() -> None:
            harness.inputs.clear()
            harness._generate_magnet(
                conditions=[Condition(int(c)) for c in cond],
                num_samples=batch,
                max_gen_len=t,
                decoding_steps=list(steps),
            )

        torch_ms = timeit(audiocraft, max(1, repeats // 2))
        rows.append(
            Row(
                f"magnet_generate {calls} iterations, top-p, toy model (vs audiocraft's eager loop)",
                f"{batch}x{k}x{t}",
                "int32",
                rows[1].jax_ms,
                torch_ms,
                None,
                None,
                0,
                extra={"torch_ms": torch_ms, "torch_threads": torch.get_num_threads()},
            )
        )
    return rows
