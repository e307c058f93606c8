"""Writes tests/goldens/musicgen_1_3_0.npz from genuine audiocraft 1.3.0 language models.

Builds tiny random `LMModel`s and a `MagnetLMModel` in code, from audiocraft's own
`models/lm.py`, `models/lm_magnet.py` and `modules/transformer.py` (loaded by file path by
`torch_compat._musicgen.load_lm`, with stand-ins for xformers, flashy, omegaconf and the
conditioners; `einops` must be installed), and stores per case: the model's `state_dict`
(its `best_state`) and config (its `xp.cfg`), the inputs, and what the model returns:
- `forward`: logits of `model(seq, [], condition_tensors)` (MAGNeT: at stages 0 and 1);
- `generate`: greedy `LMModel.generate` with classifier-free guidance (and a prompt);
- `magnet`: greedy `MagnetLMModel.generate` (the codes with torch's order of tied
  scores and with it pinned to ours; the script checks they agree).

The condition is random "text encoder states" `[B, S, text_dim]` with a mask (padding in one
row): audiocraft's conditioner returns `output_proj(states) * mask` and its cross-attention
attends to the zeroed padding unmasked. MusicGen cases run with the released
`memory_efficient: true` (torch's `scaled_dot_product_attention`); one case runs torch's
`nn.MultiheadAttention` (`custom: false`, biases on). The MAGNeT case runs with
`memory_efficient: false`: with the torch backend, `memory_efficient` ignores the contents of
MAGNeT's custom mask (`is_causal=attn_mask is not None` makes its `subcodes_context` band
causal), where the einsum path adds the band, as the xformers kernels the models were trained
with do. audiocraft's source itself is never committed.

Usage:
  python tools/make_musicgen_goldens.py                         # downloads the sdist with pip
  python tools/make_musicgen_goldens.py --source path/to/audiocraft-1.3.0
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import typing as tp

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools"), str(ROOT / "tests")]

from make_goldens import fetch_sdist_files  # noqa: E402
from make_magnet_goldens import StableOrder  # noqa: E402

from torch_compat._musicgen import FILES, Text, build_lm, load_lm  # noqa: E402

VERSION = "1.3.0"
OUT = ROOT / "tests" / "goldens" / "musicgen_1_3_0.npz"
TEXT_DIM, CONDITION_LEN, BATCH = 12, 5, 2


def config(**changes) -> dict:
    """audiocraft's `musicgen_lm` (text to music, cross-attention to a T5 description) at a tiny scale."""
    cfg: dict[str, tp.Any] = {
        "lm_model": "transformer_lm",
        "codebooks_pattern": {
            "modeling": "delay",
            "delay": {"delays": [0, 1, 2, 3], "flatten_first": 0, "empty_initial": 0},
        },
        "transformer_lm": {
            "dim": 16,
            "num_heads": 2,
            "num_layers": 2,
            "hidden_scale": 4,
            "n_q": 4,
            "card": 16,
            "dropout": 0.0,
            "emb_lr": None,
            "activation": "gelu",
            "norm_first": True,
            "bias_ff": False,
            "bias_attn": False,
            "bias_proj": False,
            "past_context": None,
            "causal": True,
            "custom": False,
            "memory_efficient": True,
            "attention_as_float32": False,
            "layer_scale": None,
            "positional_embedding": "sin",
            "xpos": False,
            "checkpointing": "none",
            "weight_init": None,
            "depthwise_init": None,
            "zero_bias_init": False,
            "norm": "layer_norm",
            "cross_attention": False,
            "qk_layer_norm": False,
            "qk_layer_norm_cross": False,
            "attention_dropout": None,
            "kv_repeat": 1,
            "two_step_cfg": False,
        },
        "fuser": {
            "cross_attention_pos_emb": False,
            "cross_attention_pos_emb_scale": 1,
            "sum": [],
            "prepend": [],
            "cross": ["description"],
            "input_interpolate": [],
        },
        "conditioners": {"description": {"model": "t5", "t5": {"name": "t5-base", "finetune": False}}},
        "classifier_free_guidance": {"training_dropout": 0.3, "inference_coef": 3.0},
        "attribute_dropout": {},
        "channels": 1,
    }
    for key, value in changes.items():
        if key in cfg and isinstance(cfg[key], dict) and isinstance(value, dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


CASES = {
    "musicgen": config(),
    "stereo_mha_biases": config(
        codebooks_pattern={"modeling": "delay", "delay": {"delays": [0, 0, 1, 1]}},
        transformer_lm={"memory_efficient": False, "bias_ff": True, "bias_attn": True, "bias_proj": True},
        channels=2,
    ),
    "magnet": config(
        lm_model="transformer_lm_magnet",
        codebooks_pattern={"modeling": "parallel", "parallel": {"empty_initial": -1}},
        transformer_lm={
            "n_q": 2,
            "causal": False,
            "custom": True,
            "memory_efficient": False,
            "subcodes_context": 2,
            "compression_model_framerate": 8,
            "segment_duration": 3,
            "span_len": 3,
        },
    ),
}
MAGNET_T = 24  # framerate * segment_duration: the einsum path adds a mask of exactly this size


def condition(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    states = rng.normal(size=(BATCH, CONDITION_LEN, TEXT_DIM)).astype(np.float32)
    mask = np.ones((BATCH, CONDITION_LEN), np.int64)
    mask[1, 3:] = 0
    return states, mask


def texts(states: np.ndarray, mask: np.ndarray) -> list:
    return [Text(torch.from_numpy(s), torch.from_numpy(m)) for s, m in zip(states, mask)]


def run_case(modules, name: str, cfg: dict, seed: int, arrays: dict) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model: tp.Any = build_lm(modules, cfg, text_dim=TEXT_DIM, condition_len=CONDITION_LEN).eval()
    with torch.no_grad():
        for head in model.linears:  # sharper distributions: greedy choices far from ties
            head.weight.mul_(4.0)
    for key, value in model.state_dict().items():
        arrays[f"{name}/state/{key}"] = value.numpy()
    states, mask = condition(rng)
    arrays[f"{name}/states"], arrays[f"{name}/mask"] = states, mask
    t = cfg["transformer_lm"]
    n_q, card = t["n_q"], t["card"]
    provider = model.condition_provider
    info: dict = {"cfg": cfg, "runs": []}
    with torch.no_grad():
        tensors = provider(provider.tokenize(texts(states, mask)))
        magnet = cfg["lm_model"] == "transformer_lm_magnet"
        steps = MAGNET_T if magnet else 9
        seq = rng.integers(0, card + 1, (BATCH, n_q, steps))
        arrays[f"{name}/seq"] = seq.astype(np.int32)
        for stage in (0, 1) if magnet else (-1,):
            logits = model(torch.from_numpy(seq), [], tensors, stage=stage)
            arrays[f"{name}/logits/{stage}"] = logits.numpy()
        if not magnet:
            for prompt_len in (0, 3):
                prompt = rng.integers(0, card, (BATCH, n_q, prompt_len))
                codes = model.generate(
                    prompt=torch.from_numpy(prompt) if prompt_len else None,
                    conditions=texts(states, mask),
                    num_samples=BATCH,
                    max_gen_len=8,
                    use_sampling=False,
                    cfg_coef=3.0,
                )
                arrays[f"{name}/generate/{prompt_len}/prompt"] = prompt.astype(np.int32)
                arrays[f"{name}/generate/{prompt_len}/codes"] = codes.numpy().astype(np.int32)
                info["runs"].append({"prompt": prompt_len, "max_gen_len": 8, "cfg_coef": 3.0})
        else:
            for prompt_len in (0, 5):
                prompt = rng.integers(0, card, (BATCH, n_q, prompt_len))
                run = {
                    "prompt": prompt_len,
                    "max_gen_len": MAGNET_T,
                    "decoding_steps": [4, 3],
                    "span_len": 3,
                    "temp": 1.0,
                }
                outs = []
                for pinned in (False, True):
                    kwargs = dict(
                        prompt=torch.from_numpy(prompt) if prompt_len else None,
                        conditions=texts(states, mask),
                        num_samples=BATCH,
                        max_gen_len=MAGNET_T,
                        use_sampling=False,
                        temp=run["temp"],  # `MagnetLMModel.generate`'s default (its `_generate_magnet` defaults to 3)
                        decoding_steps=run["decoding_steps"],
                    )
                    if pinned:
                        with StableOrder():
                            outs.append(model.generate(**kwargs).numpy())
                    else:
                        outs.append(model.generate(**kwargs).numpy())
                assert np.array_equal(outs[0], outs[1]), "tied scores decide a re-masking: pick another seed"
                arrays[f"{name}/magnet/{prompt_len}/prompt"] = prompt.astype(np.int32)
                arrays[f"{name}/magnet/{prompt_len}/codes"] = outs[0].astype(np.int32)
                info["runs"].append(run)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=pathlib.Path, help="an extracted audiocraft 1.3.0 source tree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or fetch_sdist_files(pathlib.Path(tmp), FILES)
        modules = load_lm(source)
        arrays: dict[str, np.ndarray] = {}
        index: dict[str, tp.Any] = {
            "audiocraft": VERSION,
            "torch": torch.__version__,
            "text_dim": TEXT_DIM,
            "cases": {},
        }
        for seed, (name, cfg) in enumerate(CASES.items()):
            index["cases"][name] = run_case(modules, name, cfg, seed, arrays)
    arrays["index"] = np.asarray(json.dumps(index))
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, cases: {', '.join(CASES)})")


if __name__ == "__main__":
    main()
