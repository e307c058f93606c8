"""No silent wrong answers at the edges of the newest features (issue 17): one test per defect, each failing before.

Presets, single-stream flattening, packing and generation; the command-line items are in `test_cli.py`
and `test_train.py`, the table-driven sweep of the public API in `test_bad_input.py`.
"""

from __future__ import annotations

import types
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import FAMILIES, assert_same, compilations

import jax_patterns as jp
from jax_patterns import lm, presets
from jax_patterns.lm import _decode

CARD = 8
SPECIAL = CARD
RNG = np.random.default_rng(17)


# --- 1. presets refuse out-of-range host lengths -------------------------------------------------------------------
@pytest.mark.parametrize("lengths", [[5], [-1], [4]])
@pytest.mark.parametrize(
    "call",
    [
        lambda c, n: presets.Dia((0, 1), bos_token_id=8, pad_token_id=9, eos_token_id=7).sequence(c, lengths=n),
        lambda c, n: presets.Dia((0, 1), bos_token_id=8, pad_token_id=9, eos_token_id=7).inputs(c, n),
        lambda c, n: presets.Dia((0, 1), bos_token_id=8, pad_token_id=9, eos_token_id=7).frames(c, n),
        lambda c, n: presets.HiggsAudio(2, 8, 9).sequence(c, n),
        lambda c, n: presets.HiggsAudio(2, 8, 9).inputs(c, n),
        lambda c, n: presets.HiggsAudio(2, 8, 9).loss(jnp.zeros((1, 2, 7, 8)), c, n),
        lambda c, n: presets.HiggsAudio(2, 8, 9).decode(jnp.zeros((1, 2, 7), jnp.int32), 3, n),
        lambda c, n: presets.MusicGen(2, 8).labels(c, n),
        lambda c, n: presets.Moshi(2, 8).labels(c, n),
        lambda c, n: presets.KyutaiSTT(2, 9, 5, 8, 23).audio_ids(c, n),
    ],
)
def test_every_preset_refuses_host_lengths_outside_the_codes(call, lengths):
    codes = np.array([[[1, 2, 3], [1, 2, 3]]])
    with pytest.raises(ValueError, match=r"`lengths` must lie in \[0, (T_max|`timesteps`)=3\]"):  # decode: its arg
        call(codes, lengths)


def test_preset_codes_that_collide_with_its_ids_are_refused():
    dia = presets.Dia((0, 1), bos_token_id=8, pad_token_id=9, eos_token_id=7)
    with pytest.raises(ValueError, match=r"`codes` holds the code 7; codes must lie in \[0, 7\)"):
        dia.sequence(np.array([[[1, 7], [1, 2]]]))
    with pytest.raises(ValueError, match=r"`codes` must be codes \[B, K=2, T\], got shape \(2, 3\)"):
        presets.MusicGen(2, 8).sequence(np.zeros((2, 3), np.int32))
    with pytest.raises(TypeError, match=r"`codes` must hold integer codes, got dtype float64"):
        presets.Moshi(2, 8).labels(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match=r"must be three different ids"):
        presets.Dia((0, 1), bos_token_id=8, pad_token_id=8, eos_token_id=7)
    with pytest.raises(ValueError, match=r"`audio_stream_bos_id` and `audio_stream_eos_id` are both 8"):
        presets.HiggsAudio(2, 8, 8)


# --- 2. Moshi's labels and loss agree with lengths= ------------------------------------------------------------------
@pytest.mark.parametrize(("k", "lengths"), [(2, [3, 2]), (3, [5, 1, 3]), (4, [0, 4])])
def test_moshi_labels_and_loss_agree_with_lengths(k, lengths):
    preset = presets.Moshi(k, CARD)
    lengths = np.asarray(lengths)
    codes = RNG.integers(0, CARD, (len(lengths), k, int(lengths.max())))
    logits = jnp.asarray(RNG.normal(size=(*codes.shape, CARD)), jnp.float32)
    labels = np.asarray(preset.labels(codes, lengths))
    for b, n in enumerate(lengths):  # each example's labels are its own labels alone, pad after
        alone = np.asarray(preset.labels(codes[b : b + 1, :, :n]))[0]
        assert_same(labels[b, :, :n], alone)
        assert (labels[b, :, n:] == CARD).all()
    scored = labels != CARD
    logp = np.asarray(jax.nn.log_softmax(logits, axis=-1))
    nll = -np.take_along_axis(logp, np.where(scored, labels, 0)[..., None], axis=-1)[..., 0]
    loss, _ = preset.loss(logits, codes, lengths)
    np.testing.assert_allclose(float(loss), nll[scored].mean(), rtol=1e-6)


# --- 3, 4. single-stream flattening neither wraps nor collides -------------------------------------------------------
FLAT = jp.DelayedPatternProvider(2, [0, 0], flatten_first=1 << 20, empty_initial=-1)


def test_to_stream_widens_narrow_codes_instead_of_wrapping():
    pattern = FLAT.get_pattern(3)
    codes = np.array([[[1, 2, 3], [0, 5, 6]]], np.int16)
    seq, _, _ = pattern.build_pattern_sequence(codes, -1)
    stream = pattern.to_stream(seq, [128266, 132362], -1)
    assert stream.dtype == jnp.int32
    assert np.asarray(stream).tolist() == [[128267, 132362, 128268, 132367, 128269, 132368]]
    assert_same(pattern.from_stream(stream, [128266, 132362], -1), np.asarray(seq).astype(np.int32))
    with pytest.raises(ValueError, match=r"`offsets`\[1\]=2147483648 does not fit the stream's dtype int32"):
        pattern.to_stream(seq, [0, 2**31], -1)
    with pytest.raises(ValueError, match=r"`seq` holds code 2147483000 \(as token 2147484024\) of codebook 1"):
        pattern.to_stream(np.full((1, 2, 6), 2147483000, np.int32), [0, 1024], -1)


def test_device_codes_without_a_token_become_the_special_token_never_a_wrapped_value():
    pattern = FLAT.get_pattern(3)
    seq = jnp.asarray([[[1, -1, 9, -1, 2**31 - 2, -1], [-1, -5, -1, 3, -1, 2**31 - 100]]], jnp.int32)
    stream = np.asarray(jax.jit(lambda s: pattern.to_stream(s, [0, 1024], -1, card=1024))(seq))
    assert stream.tolist() == [[1, -1, 9, 1027, -1, -1]]


def test_a_special_token_inside_a_codebook_range_is_refused():
    pattern = FLAT.get_pattern(3)
    seq, _, _ = pattern.build_pattern_sequence(np.array([[[1, 2, 3], [0, 5, 6]]]), 1024)
    with pytest.raises(ValueError, match=r"`special_token`=1024 is also codebook 1's token for code 0"):
        pattern.to_stream(seq, [0, 1024], 1024, card=1024)
    with pytest.raises(ValueError, match=r"`special_token`=1024 is also codebook 0's token"):
        pattern.to_stream(seq, [0, 1024], 1024)  # without card every token from offsets[q] up is possible
    with pytest.raises(ValueError, match=r"`special_token`=1024 is also codebook 1's token"):
        pattern.from_stream(np.zeros((1, 6), np.int32), [0, 1024], 1024, card=1024)
    # outside every range: the round trip keeps every code (codebook 1's code 0 included)
    seq, _, _ = pattern.build_pattern_sequence(np.array([[[1, 2, 3], [0, 5, 6]]]), 2048)
    stream = pattern.to_stream(seq, [0, 1024], 2048, card=1024)
    assert_same(pattern.from_stream(stream, [0, 1024], 2048, card=1024), seq)


# --- 5, 6, 9. packing: the valid-steps contract, the special token, plan_rows -----------------------------------------
def test_unpack_says_which_codes_a_valid_steps_row_cannot_hold():
    examples = [np.array([[1, 2, 3], [4, 5, 6]]), np.array([[7], [0]])]
    packed = jp.pack(examples, jp.DelayedPatternProvider(2), row_steps=8, special_token=SPECIAL)
    back = jp.unpack(packed.tokens, packed, return_mask=True)
    assert [v.tolist() for v, _ in back] == [[[1, 2, 3], [4, 5, -1]], [[7], [-1]]]
    for (values, held), codes in zip(back, examples):  # every held code is the example's, the others are marked
        assert_same(np.where(held, values, -1), np.where(held, codes, -1))
        assert (values[~held] == -1).all()
    full = jp.pack(examples, jp.DelayedPatternProvider(2), row_steps=8, special_token=SPECIAL,
                   keep_only_valid_steps=False)  # fmt: skip
    for (values, held), codes in zip(jp.unpack(full.tokens, full, return_mask=True), examples):
        assert held.all()
        assert_same(values, codes)


@pytest.mark.parametrize(
    ("special", "error", "match"),
    [
        (0.5, TypeError, r"`special_token`=0.5 is not an integer"),
        (2**40, ValueError, r"`special_token`=1099511627776 is not representable"),
        (None, TypeError, r"`special_token` must be a real number, got None"),
        (True, TypeError, r"`special_token`=True does not fit"),
    ],
)
def test_pack_and_segment_refuse_a_special_token_int32_codes_cannot_hold(special, error, match):
    examples = [np.ones((2, 3), np.int32)]
    with pytest.raises(error, match=match):
        jp.pack(examples, jp.DelayedPatternProvider(2), row_steps=8, special_token=special)
    with pytest.raises(error, match=match):
        jp.segment(examples[0], jp.DelayedPatternProvider(2), special)


def test_plan_rows_refuses_sizes_that_are_not_positive_ints():
    with pytest.raises(ValueError, match=r"`steps\[0\]` must be >= 1, got -5"):
        jp.plan_rows([-5, 3, 8], 8)
    with pytest.raises(TypeError, match=r"`steps\[1\]` must be an int, got 2.5"):
        jp.plan_rows([1, 2.5], 8)


# --- 7, 22. generate's token ids and top_k ------------------------------------------------------------------------
def step_fn(state, tokens):
    logits = jax.nn.one_hot((tokens[:, :, -1] + 1) % CARD, CARD) * 4.0
    return logits, state + 1


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"special_token": 4.7}, TypeError, r"`special_token`=4.7 is not an integer"),
        ({"special_token": None}, TypeError, r"`special_token` must be a real number, got None"),
        ({"special_token": 2**40}, ValueError, r"`special_token`=1099511627776 is not representable"),
        ({"special_token": SPECIAL, "fill_after": 2**40}, ValueError, r"`fill_after`=1099511627776 is not"),
        ({"special_token": SPECIAL, "fill_after": 1.5}, TypeError, r"`fill_after`=1.5 is not an integer"),
        ({"special_token": SPECIAL, "eos_token": 2**40}, ValueError, r"`eos_token`=1099511627776 is not"),
        ({"special_token": SPECIAL, "temp": -1.0}, ValueError, r"`temp` must lie in \[0.0, inf\], got -1.0"),
        ({"special_token": SPECIAL, "top_p": 1.5}, ValueError, r"`top_p` must lie in \[0.0, 1.0\], got 1.5"),
        ({"special_token": SPECIAL, "top_k": 2.5}, TypeError, r"`top_k` must be an int"),
        ({"special_token": SPECIAL, "top_k": [1, 2, 3]}, ValueError, r"`top_k` has shape \(3,\); expected a scalar"),
        ({"special_token": SPECIAL, "temp": None}, TypeError, r"`temp` is None"),
        ({"special_token": SPECIAL, "cfg_coef": float("nan")}, ValueError, r"`cfg_coef` must be a finite number"),
        ({"special_token": SPECIAL, "use_sampling": 1}, TypeError, r"`use_sampling` must be a bool"),
        (
            {"special_token": SPECIAL, "temp": 2.0, "sampling": lm.Sampling(temp=1.0)},
            ValueError,
            r"either as `sampling=` or as keywords, not both \(got temp too\)",
        ),
    ],
)
def test_generate_refuses_bad_token_ids_and_settings(options, error, match):
    pattern = jp.DelayedPatternProvider(2).get_pattern(4)
    with pytest.raises(error, match=match):
        lm.generate(step_fn, 0, pattern, np.zeros((2, 2, 0), np.int32), key=jax.random.key(0), **options)


def test_top_k_larger_than_the_vocabulary_keeps_every_code():
    logits = jnp.asarray(RNG.normal(size=(3, 2, CARD)), jnp.float32)
    key = jax.random.key(3)
    assert_same(
        lm.sample_next_token(logits, key, True, 1.0, 250, 0.0), lm.sample_next_token(logits, key, True, 1.0, 0, 0.0)
    )
    assert_same(
        lm.sample_next_token(logits, key, True, 1.0, CARD, 0.0), lm.sample_next_token(logits, key, True, 1.0, 0, 0.0)
    )
    pattern = jp.DelayedPatternProvider(2).get_pattern(5)
    out = lm.generate(step_fn, 0, pattern, np.zeros((2, 2, 0), np.int32), special_token=SPECIAL, key=key,
                      use_sampling=True, top_k=250).codes  # fmt: skip
    assert out.shape == (2, 2, 5)


# --- 11, 12. one program per workload --------------------------------------------------------------------------------
def decode_compilations(fn) -> list[str]:
    """The decode programs (`run_all`, `run_first`, `run_chunk`) XLA compiles while `fn` runs."""
    return [name for name in compilations(fn) if "run_" in name]


def test_host_prompt_lengths_share_one_program_and_give_the_same_tokens():
    pattern = jp.DelayedPatternProvider(3).get_pattern(10)
    prompt = RNG.integers(0, CARD, (2, 3, 5)).astype(np.int32)
    requests = [[4, 5], [3, 5], [2, 4], [1, 1], [0, 5]]

    def serve(lengths):
        return lm.generate(step_fn, 0, pattern, prompt, special_token=SPECIAL, prompt_lengths=lengths).codes

    first = decode_compilations(lambda: serve(requests[0]).block_until_ready())
    later = decode_compilations(lambda: [serve(n).block_until_ready() for n in requests[1:]])
    assert len(first) == 1 and later == [], (first, later)
    for lengths in requests:  # each example equals that example alone, whatever the batch's minimum
        out = np.asarray(serve(lengths))
        for b, n in enumerate(lengths):
            alone = lm.generate(step_fn, 0, pattern, prompt[b : b + 1, :, :n], special_token=SPECIAL).codes
            assert_same(out[b : b + 1], alone, f"lengths={lengths}, b={b}")


def test_sampling_settings_are_traced_per_example_values():
    pattern = jp.DelayedPatternProvider(2).get_pattern(8)
    prompt = np.zeros((3, 2, 0), np.int32)
    key = jax.random.key(5)

    def model(state, tokens):
        return jnp.broadcast_to(jnp.linspace(0.0, 3.0, CARD), (tokens.shape[0], 2, CARD)), state

    def run(**settings):
        options = dict(special_token=SPECIAL, key=key, use_sampling=True)
        return lm.generate(model, 0, pattern, prompt, **options, **settings).codes

    run(temp=1.0, top_k=0, top_p=0.0).block_until_ready()
    settings = [
        dict(temp=0.7, top_k=3, top_p=0.0),
        dict(temp=1.3, top_k=0, top_p=0.9),
        dict(temp=np.array([0.5, 1.0, 2.0]), top_k=np.array([0, 2, 250]), top_p=np.array([0.8, 0.0, 0.0])),
        dict(sampling=lm.Sampling(temp=0.9, top_k=np.array([1, 2, 3]), top_p=0.0)),
    ]
    assert decode_compilations(lambda: [run(**s).block_until_ready() for s in settings]) == []
    # per-example values: each example equals the batch run with that example's settings for all
    temps, top_ks, top_ps = np.array([0.5, 1.0, 2.0]), np.array([0, 2, 250]), np.array([0.8, 0.0, 0.0])
    mixed = np.asarray(run(temp=temps, top_k=top_ks, top_p=top_ps))
    for b in range(3):
        alone = run(temp=float(temps[b]), top_k=int(top_ks[b]), top_p=float(top_ps[b]))
        assert_same(mixed[b], np.asarray(alone)[b], f"example {b}")
    # a temperature of 0 is greedy for that example (audiocraft's `temp > 0` test)
    greedy = np.asarray(run(temp=np.array([0.0, 1.0, 0.0])))
    assert (greedy[[0, 2]] == CARD - 1).all()


def test_guidance_coefficient_is_traced_and_per_example():
    pattern = jp.DelayedPatternProvider(2).get_pattern(6)
    prompt = np.zeros((2, 2, 0), np.int32)

    def model(state, tokens):  # conditional favours 1, unconditional favours 2: the coefficient decides
        half = tokens.shape[0] // 2
        cond = jnp.broadcast_to(jax.nn.one_hot(1, CARD) * 2.0 + jax.nn.one_hot(2, CARD), (half, 2, CARD))
        uncond = jnp.broadcast_to(jax.nn.one_hot(2, CARD) * 3.0, (half, 2, CARD))
        return jnp.concatenate([cond, uncond]), state

    def run(coef):
        return lm.generate(model, 0, pattern, prompt, special_token=SPECIAL, cfg_coef=coef).codes

    run(1.0).block_until_ready()
    assert decode_compilations(lambda: run(3.0).block_until_ready()) == []
    assert (np.asarray(run(3.0)) == 1).all() and (np.asarray(run(0.0)) == 2).all()
    assert_same(np.asarray(run(np.array([3.0, 0.0])))[:, 0, 0], [1, 2])


def test_stream_takes_the_same_settings_and_equals_generate():
    pattern = jp.DelayedPatternProvider(3).get_pattern(9)
    prompt = RNG.integers(0, CARD, (2, 3, 4)).astype(np.int32)
    options = dict(special_token=SPECIAL, key=jax.random.key(1), use_sampling=True,
                   sampling=lm.Sampling(temp=np.array([0.8, 1.5]), top_k=np.array([3, 0]), top_p=0.0),
                   prompt_lengths=[2, 4])  # fmt: skip

    def model(state, tokens):
        return jax.nn.one_hot((tokens[:, :, -1] * 3 + 1) % CARD, CARD) * 2.0, state

    codes = lm.generate(model, 0, pattern, prompt, **options).codes
    streamed = np.concatenate(list(lm.stream(model, 0, pattern, prompt, chunk_steps=3, **options)), -1)
    assert_same(streamed, codes)


def test_decode_config_holds_no_sampling_values():
    fields = {f.name for f in _decode.Config.__dataclass_fields__.values()}
    assert not fields & {"temp", "top_k", "top_p", "cfg_coef"}
    assert {"use_sampling", "guidance"} <= fields


# --- 18, 19. from_transformers reads mappings and documented fallbacks -----------------------------------------------
def test_from_transformers_reads_a_config_mapping():
    config = {"model_type": "musicgen", "decoder": {"num_codebooks": 4, "pad_token_id": 2048, "audio_channels": 2}}
    assert presets.from_transformers(config) == presets.MusicGen(4, 2048, 2)
    dia = {"model_type": "dia", "delay_pattern": [0, 1], "decoder_config": {"bos_token_id": 3, "pad_token_id": 4,
           "eos_token_id": 5}}  # fmt: skip
    assert presets.from_transformers(dia) == presets.Dia((0, 1), 3, 4, 5)
    with pytest.raises(ValueError, match=r"no preset for model_type=None"):
        presets.from_transformers({"num_codebooks": 4})


def test_moshi_audio_vocab_size_falls_back_to_the_audio_encoders_codebook_size():
    unset = types.SimpleNamespace(model_type="moshi", num_codebooks=8, audio_vocab_size=None,
                                  audio_encoder_config=types.SimpleNamespace(codebook_size=2048))  # fmt: skip
    assert presets.from_transformers(unset) == presets.Moshi(8, 2048)
    as_dict = {"model_type": "moshi", "num_codebooks": 8, "audio_encoder_config": {"codebook_size": 1024}}
    assert presets.from_transformers(as_dict) == presets.Moshi(8, 1024)
    with pytest.raises(ValueError, match=r"no `audio_vocab_size` nor `audio_encoder_config.codebook_size`"):
        presets.from_transformers({"model_type": "moshi", "num_codebooks": 8})


def test_from_transformers_reads_a_fresh_moshi_config():
    from transformers import MoshiConfig

    config = MoshiConfig(num_codebooks=8)  # audio_vocab_size is None until a save/load round trip
    encoder: tp.Any = config.audio_encoder_config
    assert presets.from_transformers(config) == presets.Moshi(8, encoder.codebook_size)


# --- the families still agree end to end ---------------------------------------------------------------------------
@pytest.mark.parametrize("provider", FAMILIES, ids=repr)
def test_per_example_prompts_equal_each_example_alone_from_the_earliest_start(provider):
    pattern = provider.get_pattern(7)
    prompt = RNG.integers(0, CARD, (3, provider.n_q, 4)).astype(np.int32)
    lengths = [4, 2, 3]
    out = np.asarray(lm.generate(step_fn, 0, pattern, prompt, special_token=SPECIAL, prompt_lengths=lengths).codes)
    for b, n in enumerate(lengths):
        alone = lm.generate(step_fn, 0, pattern, prompt[b : b + 1, :, :n], special_token=SPECIAL).codes
        assert_same(out[b : b + 1], alone, f"b={b}")


# --- 20. the notebook's extra installs what the notebook imports ------------------------------------------------------
def test_the_notebooks_extra_carries_the_pinned_cpu_torch_the_tour_imports():
    import json
    import os
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml")) as f:  # read as text: tomllib needs Python 3.11
        extra = re.search(r"^notebooks = \[(.*?)\]", f.read(), re.S | re.M)
    assert extra is not None
    wanted = re.findall(r'"([^"]+)"', extra.group(1))
    with open(os.path.join(root, "notebooks", "tour.ipynb")) as f:
        source = "".join("".join(cell["source"]) for cell in json.load(f)["cells"])
    assert "import torch_compat" in source and "import optax" in source
    assert "torch>=2.1,<=2.13.0" in wanted and any(d.startswith("optax") for d in wanted)


# --- 17. the order message advises only where the option exists ----------------------------------------------------
def test_unsorted_delays_advise_any_order_only_where_it_exists():
    with pytest.raises(ValueError, match=r"`DelayedPatternProvider\(\.\.\., any_order=True\)` allows any order"):
        jp.DelayedPatternProvider(3, [1, 0, 2])
    for make in (lambda: jp.UnrolledPatternProvider(4, delays=[0, 0, 2, 1]), lambda: jp.CoarseFirstPattern(3, [1, 0])):
        with pytest.raises(ValueError, match=r"must be sorted in increasing order") as info:
            make()
        assert "any_order" not in str(info.value)
