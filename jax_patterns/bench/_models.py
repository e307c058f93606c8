"""Benchmarks of `jax_patterns.models.MusicGen` (issue 24): frames per second against transformers and audiocraft.

Rows of `bench._report.Row`, side by side in one run, greedy with guidance 3, random weights:
- `jax`: `MusicGen.generate` (steady state: compiled; the text encoder's states given);
- `torch`: transformers' `MusicgenForConditionalGeneration.generate` on the same weights (a one-layer T5 text
  encoder, run once per call; EnCodec's decode is skipped: both sides stop at the codes), or audiocraft's
  eager `LMModel.generate` (its release files loaded by `torch_compat._musicgen`, `memory_efficient: true`
  as released) when an extracted audiocraft 1.3.0 tree is given.
`extra` holds frames per second of both, the decode step time, and the weight-streaming limit of a step:
the decoder's parameter bytes over the memory bandwidth measured here (XLA's sum over a 512 MB buffer);
`x_limit` is the step time over that limit. `matvec_floor_ms` times XLA's own chain of the step's matrix
products with the same kernels (`x_matvec_floor`: the step over it): what a dot reaches on this machine.
Shapes: "tiny" (dim 64, 2 layers, 4 heads) and "small" (musicgen-small: dim 1024, 24 layers, 16 heads, K 4,
card 2048). Needs torch and transformers.
"""

from __future__ import annotations

import time
import types
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns.bench._report import Row, timeit

K, CARD, TEXT_LEN = 4, 2048, 12
SHAPES = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, ffn_dim=256, text_dim=32),
    "small": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, ffn_dim=4096, text_dim=768),
}


def memory_bandwidth(nbytes: int = 1 << 29, repeats: int = 5) -> float:
    """Bytes per second XLA reads on this device: the best of `repeats` sums over an `nbytes` float32 buffer."""
    x = jnp.ones((nbytes // 4,), jnp.float32)
    total = jax.jit(jnp.sum)
    total(x).block_until_ready()
    best = min(_seconds(lambda: total(x).block_until_ready()) for _ in range(repeats))
    return nbytes / best


def matvec_floor_ms(model: tp.Any, rows: int, steps: int = 20) -> float:
    """One decode step's matrix products alone: XLA's chain of `[rows, D]` products with every kernel a step reads.

    The attention projections, the feed-forward and the heads of `model`, chained so that nothing is
    dead code, in a compiled loop of `steps` steps: the floor a decode step at this batch can reach with
    XLA's dot, as opposed to the bandwidth of a plain read (`memory_bandwidth`).
    """
    layers = [
        (
            layer.self_attn.in_proj.kernel[...],
            layer.self_attn.out_proj.kernel[...],
            layer.cross_attention.q_proj.kernel[...],
            layer.cross_attention.out_proj.kernel[...],
            layer.linear1.kernel[...],
            layer.linear2.kernel[...],
        )
        for layer in model.layers
    ]
    heads = model.linears.kernel[...]

    @jax.jit
    def run(layers: tp.Any, heads: jax.Array, x: jax.Array) -> jax.Array:
        def step(_: tp.Any, carry: tuple) -> tuple:
            x, total = carry
            for in_proj, out_proj, q_proj, cross_out, up, down in layers:
                h = (x @ in_proj)[:, : x.shape[1]] @ out_proj
                h = jax.nn.gelu((h @ q_proj) @ cross_out @ up) @ down
                x = x + h * 1e-3
            logits = jnp.einsum("bd,kdc->bkc", x, heads, preferred_element_type=jnp.float32)
            return x, total + logits.max()

        return jax.lax.fori_loop(0, steps, step, (x, jnp.float32(0)))[1]

    x = jnp.ones((rows, model.dim), model.dtype)
    run(layers, heads, x).block_until_ready()
    return min(_seconds(lambda: run(layers, heads, x).block_until_ready()) for _ in range(3)) / steps * 1e3


def _seconds(fn: tp.Callable[[], tp.Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def transformers_model(shape: str, seed: int = 0) -> tp.Any:
    """A random `MusicgenForConditionalGeneration` of `shape` (one-layer T5; `generate` returns the codes)."""
    import torch
    from transformers import MusicgenConfig, MusicgenForConditionalGeneration

    size = dict(SHAPES[shape])
    text_dim = size.pop("text_dim")
    torch.manual_seed(seed)
    config = MusicgenConfig(
        text_encoder={"model_type": "t5", "d_model": text_dim, "num_layers": 1, "num_heads": 4, "d_kv": 8, "d_ff": 64},
        audio_encoder={"model_type": "encodec", "num_filters": 2, "codebook_size": CARD},
        decoder={
            "model_type": "musicgen_decoder",
            "vocab_size": CARD,
            "num_codebooks": K,
            "pad_token_id": CARD,
            "bos_token_id": CARD,
            "decoder_start_token_id": CARD,
            "max_position_embeddings": 2048,
            **size,
        },
    )
    model = MusicgenForConditionalGeneration(config).eval()
    model.audio_encoder.decode = lambda codes, audio_scales=None: types.SimpleNamespace(audio_values=codes)
    return model


def _audiocraft_ms(tree: str, shape: str, batch: int, frames: int, repeats: int) -> float:
    """audiocraft's eager `LMModel.generate` (greedy, guidance 3) on a random model of `shape`."""
    import torch

    from torch_compat._musicgen import Text, build_lm, load_lm

    size = SHAPES[shape]
    cfg = {
        "lm_model": "transformer_lm",
        "codebooks_pattern": {"modeling": "delay", "delay": {"delays": list(range(K))}},
        "transformer_lm": {
            "dim": size["hidden_size"],
            "num_heads": size["num_attention_heads"],
            "num_layers": size["num_hidden_layers"],
            "hidden_scale": size["ffn_dim"] / size["hidden_size"],
            "n_q": K,
            "card": CARD,
            "activation": "gelu",
            "norm_first": True,
            "bias_ff": False,
            "bias_attn": False,
            "bias_proj": False,
            "causal": True,
            "memory_efficient": True,
            "dropout": 0.0,
        },
        "fuser": {"cross": ["description"], "sum": [], "prepend": [], "input_interpolate": []},
        "classifier_free_guidance": {"training_dropout": 0.3, "inference_coef": 3.0},
    }
    model = build_lm(load_lm(tree), cfg, text_dim=size["text_dim"], condition_len=TEXT_LEN).eval()
    texts = [Text(torch.randn(TEXT_LEN, size["text_dim"]), torch.ones(TEXT_LEN, dtype=torch.long))] * batch

    def run() -> None:
        with torch.no_grad():
            model.generate(conditions=texts, max_gen_len=frames, use_sampling=False, cfg_coef=3.0)  # type: ignore[operator]

    return timeit(run, repeats)


def bench_musicgen(
    repeats: int = 3,
    *,
    frames: int = 100,
    shapes: tp.Sequence[str] = ("tiny", "small"),
    batches: tp.Sequence[int] = (1, 8),
    dtypes: tp.Sequence[str] = ("float32", "bfloat16"),
    audiocraft_tree: str | None = None,
    torch_repeats: int | None = None,
) -> list[Row]:
    """`MusicGen.generate` vs transformers' (and audiocraft's) `generate`, and its step vs the weight limit.

    Args:
      repeats: timed runs of ours (median, after a warm-up call that compiles).
      frames: new frames per request (100 in the issue's rows).
      shapes: "tiny" and/or "small" (musicgen-small's decoder).
      batches: requests per call (each doubled by guidance).
      dtypes: "float32" and/or "bfloat16" (parameters and computation, both sides).
      audiocraft_tree: an extracted audiocraft 1.3.0 source tree: adds audiocraft's eager loop (float32).
      torch_repeats: timed runs of the torch sides (default `repeats`).

    Returns:
      one row per (shape, batch, dtype) against transformers, and one per (shape, batch) against audiocraft.
    """
    import torch

    from jax_patterns.models import MusicGen

    torch_repeats = repeats if torch_repeats is None else torch_repeats
    bandwidth = memory_bandwidth()
    rows = []
    for shape in shapes:
        hf = transformers_model(shape)
        size = SHAPES[shape]
        steps = frames + K - 1  # decode calls: the delayed sequence's steps after the bos
        for dtype in dtypes:
            jdtype, tdtype = (jnp.float32, torch.float32) if dtype == "float32" else (jnp.bfloat16, torch.bfloat16)
            model = MusicGen.from_transformers(hf, param_dtype=jdtype, dtype=jdtype, max_len=steps + 1)
            hf_dtype = hf.to(tdtype)
            weights = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(nnx_params(model)))
            limit_ms = weights / bandwidth * 1e3
            for batch in batches:
                rng = np.random.default_rng(batch)
                text = torch.from_numpy(rng.integers(1, 32, (batch, TEXT_LEN)))
                mask = torch.ones(batch, TEXT_LEN, dtype=torch.long)
                with torch.no_grad():
                    states = hf_dtype.text_encoder(input_ids=text, attention_mask=mask).last_hidden_state
                states_np = states.float().numpy()

                def ours(states_np=states_np, mask=mask, model=model) -> None:
                    codes = model.generate(
                        encoder_hidden_states=states_np,
                        encoder_attention_mask=mask.numpy(),
                        max_new_frames=frames,
                        guidance_scale=3.0,
                    )
                    codes.block_until_ready()

                def theirs(text=text, mask=mask, hf_dtype=hf_dtype) -> None:
                    with torch.no_grad():
                        hf_dtype.generate(
                            input_ids=text,
                            attention_mask=mask,
                            max_length=frames + K,
                            do_sample=False,
                            guidance_scale=3.0,
                        )

                jax_ms = timeit(ours, repeats)
                torch_ms = timeit(theirs, torch_repeats)
                step_ms = jax_ms / steps
                floor_ms = matvec_floor_ms(model, 2 * batch)
                rows.append(
                    Row(
                        f"MusicGen {shape} generate {frames} frames, guidance 3 (vs transformers)",
                        f"B={batch} K={K} dim={size['hidden_size']} layers={size['num_hidden_layers']}",
                        dtype,
                        jax_ms,
                        torch_ms,
                        None,
                        None,
                        batch * K * frames * 4,
                        extra={
                            "frames_per_s": batch * frames / jax_ms * 1e3,
                            "torch_frames_per_s": batch * frames / torch_ms * 1e3,
                            "step_ms": step_ms,
                            "torch_step_ms": torch_ms / steps,
                            "weights_MB": weights / 1e6,
                            "bandwidth_GBps": bandwidth / 1e9,
                            "weights_limit_ms": limit_ms,
                            "x_limit": step_ms / limit_ms,
                            "matvec_floor_ms": floor_ms,
                            "x_matvec_floor": step_ms / floor_ms,
                        },
                    )
                )
                if audiocraft_tree is not None and dtype == "float32":
                    audiocraft_ms = _audiocraft_ms(audiocraft_tree, shape, batch, frames, torch_repeats)
                    rows.append(
                        Row(
                            f"MusicGen {shape} generate {frames} frames, guidance 3 (vs audiocraft's eager loop)",
                            f"B={batch} K={K} dim={size['hidden_size']} layers={size['num_hidden_layers']}",
                            dtype,
                            jax_ms,
                            audiocraft_ms,
                            None,
                            None,
                            batch * K * frames * 4,
                            extra={"audiocraft_frames_per_s": batch * frames / audiocraft_ms * 1e3},
                        )
                    )
        hf.to(torch.float32)
    return rows


def nnx_params(model: tp.Any) -> tp.Any:
    """The model's parameters (what a decode step streams)."""
    from flax import nnx

    return nnx.state(model, nnx.Param)
