"""`models.MusicGen.from_audiocraft` against genuine audiocraft 1.3.0 `LMModel` / `MagnetLMModel` (offline goldens).

tests/goldens/musicgen_1_3_0.npz is made by tools/make_musicgen_goldens.py: tiny random
models built from audiocraft's own lm.py, lm_magnet.py and transformer.py, their
`state_dict` and config, inputs and outputs (forward logits, greedy `LMModel.generate`
with guidance, greedy `MagnetLMModel.generate`).
"""

from __future__ import annotations

import collections.abc
import copy
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_same

import jax_patterns as jp
from jax_patterns import lm
from jax_patterns.models import MusicGen

GOLDENS = pathlib.Path(__file__).parent / "goldens" / "musicgen_1_3_0.npz"


@pytest.fixture(scope="module")
def goldens():
    with np.load(GOLDENS) as store:
        arrays = {name: store[name] for name in store.files}
    return arrays, json.loads(str(arrays.pop("index")))


def case(goldens, name: str) -> tuple[dict, dict, dict]:
    arrays, index = goldens
    prefix = f"{name}/"
    state = {k[len(prefix) + 6 :]: v for k, v in arrays.items() if k.startswith(prefix + "state/")}
    data = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix) and "/state/" not in k}
    return state, index["cases"][name], data


@pytest.mark.parametrize("name", ["musicgen", "stereo_mha_biases", "magnet"])
def test_forward_equals_audiocraft(goldens, name):
    state, info, data = case(goldens, name)
    model = MusicGen.from_audiocraft(state, info["cfg"])
    magnet = name == "magnet"
    assert model.causal is not magnet and model.hide_special is False and model.mask_condition is False
    for stage in (0, 1) if magnet else (-1,):
        logits = model(
            data["seq"],
            encoder_hidden_states=data["states"],
            encoder_attention_mask=data["mask"],
            stage=stage if magnet else None,
        )
        expected = data[f"logits/{stage}"]
        np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    if magnet:  # the band: stage 1 attends within subcodes_context, stage 0 everywhere; traced stages agree
        traced = jax.jit(lambda s: model(data["seq"], encoder_hidden_states=data["states"], stage=s))
        eager = model(data["seq"], encoder_hidden_states=data["states"], stage=1)
        np.testing.assert_allclose(np.asarray(traced(jnp.int32(1))), np.asarray(eager), rtol=1e-6, atol=1e-6)
        assert not np.allclose(data["logits/0"], data["logits/1"])


def test_the_whole_checkpoint_and_an_omegaconf_like_config_load_the_same(goldens):
    state, info, data = case(goldens, "musicgen")

    class Config(collections.abc.Mapping):  # a Mapping that is not a dict, as omegaconf's DictConfig
        def __init__(self, items: dict):
            self._items = {k: Config(v) if isinstance(v, dict) else v for k, v in items.items()}

        def __getitem__(self, key):
            return self._items[key]

        def __iter__(self):
            return iter(self._items)

        def __len__(self):
            return len(self._items)

    cfg = Config(info["cfg"])
    assert not isinstance(cfg, dict) and not isinstance(cfg["transformer_lm"], dict)
    model = MusicGen.from_audiocraft({"best_state": state, "xp.cfg": cfg})
    assert model.provider == jp.DelayedPatternProvider(4, [0, 1, 2, 3])
    logits = model(data["seq"], encoder_hidden_states=data["states"], encoder_attention_mask=data["mask"])
    np.testing.assert_allclose(np.asarray(logits), data["logits/-1"], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", ["musicgen", "stereo_mha_biases"])
@pytest.mark.parametrize("prompt_len", [0, 3])
def test_greedy_generate_with_guidance_equals_lmmodel_generate(goldens, name, prompt_len):
    """audiocraft attends to the bos step (`hide_special=False`) and to its zeroed condition pads."""
    state, info, data = case(goldens, name)
    model = MusicGen.from_audiocraft(state, info["cfg"])
    (run,) = [r for r in info["runs"] if r["prompt"] == prompt_len]
    prompt = data[f"generate/{prompt_len}/prompt"]
    codes = model.generate(
        encoder_hidden_states=data["states"],
        encoder_attention_mask=data["mask"],
        prompt=prompt,
        max_new_frames=run["max_gen_len"] - prompt_len,
        guidance_scale=run["cfg_coef"],
    )
    assert_same(codes, data[f"generate/{prompt_len}/codes"])


@pytest.mark.parametrize("prompt_len", [0, 5])
def test_magnet_generate_equals_magnetlmmodel_generate(goldens, prompt_len):
    state, info, data = case(goldens, "magnet")
    model = MusicGen.from_audiocraft(state, info["cfg"])
    (run,) = [r for r in info["runs"] if r["prompt"] == prompt_len]
    codes = lm.magnet_generate(
        model.magnet_fn(data["states"], data["mask"]),
        data[f"magnet/{prompt_len}/prompt"],
        timesteps=run["max_gen_len"],
        mask_token=model.special_token,
        decoding_steps=run["decoding_steps"],
        span_len=run["span_len"],
        use_sampling=False,
        temp=run["temp"],
    )
    assert_same(codes, data[f"magnet/{prompt_len}/codes"])


def changed(cfg: dict, section: str, **values) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg[section].update(values)
    return cfg


def test_conversion_errors_name_the_key(goldens):
    state, info, _ = case(goldens, "musicgen")
    cfg = info["cfg"]
    first = "transformer.layers.0.self_attn.in_proj_weight"
    missing = {k: v for k, v in state.items() if k != first}
    with pytest.raises(ValueError, match=rf"the audiocraft checkpoint has no `{first}`"):
        MusicGen.from_audiocraft(missing, cfg)
    with pytest.raises(ValueError, match=r"has no place for: `transformer.layers.7.norm1.weight`"):
        MusicGen.from_audiocraft({**state, "transformer.layers.7.norm1.weight": np.ones(16)}, cfg)
    bad = {**state, "out_norm.weight": np.ones(17, np.float32)}
    with pytest.raises(ValueError, match=r"`out_norm.weight` \(17,\).*our `out_norm.scale`, which needs \(16,\)"):
        MusicGen.from_audiocraft(bad, cfg)
    with pytest.raises(
        ValueError, match=r"`transformer.layers.0.linear1.weight` \(64, 16\).*gives \(16, 64\).*needs \(16, 32\)"
    ):
        MusicGen.from_audiocraft(state, changed(cfg, "transformer_lm", hidden_scale=2))
    magnet_state, magnet_info, _ = case(goldens, "magnet")
    with pytest.raises(ValueError, match=r"has no `emb.2.weight`"):  # a K=2 checkpoint with a K=4 config
        MusicGen.from_audiocraft(magnet_state, cfg)
    with pytest.raises(ValueError, match=r"`lm_model`='encodec'"):
        MusicGen.from_audiocraft(state, {**cfg, "lm_model": "encodec"})
    with pytest.raises(ValueError, match=r"`transformer_lm.norm_first`=False is not supported"):
        MusicGen.from_audiocraft(state, changed(cfg, "transformer_lm", norm_first=False))
    with pytest.raises(ValueError, match=r"fuses \['self_wav'\] by `prepend`"):
        MusicGen.from_audiocraft(state, changed(cfg, "fuser", prepend=["self_wav"]))
    with pytest.raises(ValueError, match=r"`codebooks_pattern.modeling`='zigzag'"):
        MusicGen.from_audiocraft(state, changed(cfg, "codebooks_pattern", modeling="zigzag"))
    with pytest.raises(TypeError, match=r"config is needed"):
        MusicGen.from_audiocraft(state)
    with pytest.raises(TypeError, match=r"unknown arguments \['causal'\]"):
        MusicGen.from_audiocraft(state, cfg, causal=False)
    with pytest.raises(TypeError, match=r"`emb.0.weight` is not a tensor"):
        MusicGen.from_audiocraft({**state, "emb.0.weight": "text"}, cfg)
