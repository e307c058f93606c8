"""`models.MusicGen` against transformers' own MusicGen (5.24.0; tiny random-weight models built in code).

Forward logits, greedy generation token for token, the sampling processors, the training loss and its
gradient, the decode protocol, compilations, dtypes, conversion errors and bad input.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from helpers import assert_same, compilations
from scipy import stats
from transformers import MusicgenConfig, MusicgenDecoderConfig, MusicgenForCausalLM, MusicgenForConditionalGeneration
from transformers.generation.logits_process import (
    ClassifierFreeGuidanceLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

import jax_patterns as jp
from jax_patterns import lm, presets
from jax_patterns.models import MusicGen

CARD, DIM, TEXT_DIM = 16, 16, 8
RNG = np.random.default_rng(0)


def decoder_config(k: int, channels: int = 1) -> dict:
    return dict(
        vocab_size=CARD,
        max_position_embeddings=64,
        num_hidden_layers=2,
        ffn_dim=32,
        num_attention_heads=2,
        hidden_size=DIM,
        num_codebooks=k,
        audio_channels=channels,
        pad_token_id=CARD,
        bos_token_id=CARD,
        decoder_start_token_id=CARD,
    )


def sharpen(heads) -> None:
    with torch.no_grad():  # default init gives near-uniform logits: greedy choices far from ties
        for head in heads:
            head.weight.mul_(8.0)


def tiny_causal(k: int, channels: int = 1, seed: int = 0) -> MusicgenForCausalLM:
    torch.manual_seed(seed)
    model = MusicgenForCausalLM(MusicgenDecoderConfig(**decoder_config(k, channels))).eval()
    sharpen(model.lm_heads)
    return model


def tiny_composite(k: int, seed: int = 0) -> MusicgenForConditionalGeneration:
    """T5 (width 8, so `enc_to_dec_proj` exists) + EnCodec + decoder; `generate` returns the codes, not audio."""
    torch.manual_seed(seed)
    config = MusicgenConfig(
        text_encoder={"model_type": "t5", "d_model": TEXT_DIM, "num_layers": 1, "num_heads": 1, "d_kv": 4, "d_ff": 8},
        audio_encoder={"model_type": "encodec", "num_filters": 2, "codebook_size": CARD},
        decoder={"model_type": "musicgen_decoder", **decoder_config(k)},
    )
    model = MusicgenForConditionalGeneration(config).eval()
    sharpen(model.decoder.lm_heads)
    model.audio_encoder.decode = lambda codes, audio_scales=None: types.SimpleNamespace(audio_values=codes)
    return model


def flat(ids: np.ndarray) -> torch.Tensor:
    """Our `[B, K, S]` -> transformers' `[B * K, S]`."""
    return torch.from_numpy(np.asarray(ids).reshape(-1, np.shape(ids)[-1]).astype(np.int64))


def t(x) -> torch.Tensor | None:
    return None if x is None else torch.from_numpy(np.asarray(x))


def causal_logits(model, seq, states=None, mask=None, attention_mask=None) -> np.ndarray:
    batch, k, steps = seq.shape
    with torch.no_grad():
        out = model(
            input_ids=flat(seq),
            encoder_hidden_states=t(states),
            encoder_attention_mask=t(mask),
            attention_mask=attention_mask,
        )
    return out.logits.reshape(batch, k, steps, CARD).numpy()


def bos_hidden(batch: int, steps: int) -> torch.Tensor:
    """The decoder attention mask `generate` makes (`ids != pad` on `[bos, prompt]`, then ones): step 0 hidden."""
    mask = torch.ones(batch, steps, dtype=torch.long)
    mask[:, 0] = 0
    return mask


def condition(batch: int, width: int = DIM, length: int = 5) -> tuple[np.ndarray, np.ndarray]:
    states = RNG.normal(size=(batch, length, width)).astype(np.float32)
    mask = np.ones((batch, length), np.int64)
    mask[-1, 3:] = 0  # padding in the last row
    return states, mask


@jax.jit
def decode(step, cache, tokens):
    """`model.decode` compiled (`step = model.step_fn()`): one program per shape, not one dispatch per op."""
    return step(cache, tokens)


def close(ours, theirs, rtol=1e-5) -> None:
    theirs = np.asarray(theirs)
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=rtol, atol=rtol * np.abs(theirs).max())


# ---------------------------------------------------------------------------
# forward
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(("k", "channels"), [(2, 1), (4, 2)])
def test_forward_equals_musicgen_for_causal_lm(k, channels):
    hf = tiny_causal(k, channels)
    model = MusicGen.from_transformers(hf)
    assert model.provider == presets.MusicGen(k, CARD, channels).provider
    assert model.hide_special and model.mask_condition and model.max_len == 64
    seq = RNG.integers(0, CARD + 1, (3, k, 7))
    states, mask = condition(3)
    close(model(seq), causal_logits(hf, seq))
    close(model(seq, encoder_hidden_states=states), causal_logits(hf, seq, states))
    close(model(seq, encoder_hidden_states=states, encoder_attention_mask=mask), causal_logits(hf, seq, states, mask))
    # the state dict and its config give the same model
    again = MusicGen.from_transformers(hf.state_dict(), hf.config.to_dict())
    assert_same(again(seq), model(seq))


def test_forward_equals_musicgen_for_conditional_generation():
    hf = tiny_composite(3)
    model = MusicGen.from_transformers(hf)
    assert model.encoder_dim == TEXT_DIM and not model.hide_special
    text = torch.from_numpy(RNG.integers(1, 32, (2, 5)))
    mask = torch.ones(2, 5, dtype=torch.long)
    mask[1, 2:] = 0
    seq = RNG.integers(0, CARD + 1, (2, 3, 6))
    for given in (mask, None):
        with torch.no_grad():
            states = hf.text_encoder(input_ids=text, attention_mask=given).last_hidden_state.numpy()
            expected = hf(input_ids=text, attention_mask=given, decoder_input_ids=flat(seq)).logits
        ours = model(seq, encoder_hidden_states=states, encoder_attention_mask=None if given is None else mask.numpy())
        close(ours, expected.reshape(2, 3, 6, CARD).numpy())


# ---------------------------------------------------------------------------
# greedy generation, token for token
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("k", "channels", "prompt_len", "conditioned", "guidance"),
    [(3, 1, 0, False, None), (3, 1, 3, False, None), (3, 1, 0, True, 3.0), (4, 2, 3, True, 3.0), (3, 1, 2, True, None)],
)
def test_greedy_generate_equals_causal_lm_generate(k, channels, prompt_len, conditioned, guidance):
    """transformers' `generate` hides the bos step from attention (`hide_special`); with the default cache it
    feeds only the prompt's last step and mixes cross-attention keys into the self-attention cache, so the
    reference is `use_cache=False` as soon as a prompt or a condition is given."""
    hf = tiny_causal(k, channels, seed=2)
    model = MusicGen.from_transformers(hf)
    batch, frames = 2, 8
    max_delay = model.provider.get_pattern(frames).max_delay
    prompt = RNG.integers(0, CARD, (batch, k, prompt_len))
    ids = np.concatenate([np.full((batch, k, 1), CARD), prompt], axis=-1)
    kwargs: dict = {"use_cache": prompt_len == 0 and not conditioned}
    states = mask = None
    if conditioned:
        states, mask = condition(batch)
        both = (np.concatenate([states, 0 * states]), np.concatenate([mask, 0 * mask])) if guidance else (states, mask)
        kwargs.update(encoder_hidden_states=t(both[0]), encoder_attention_mask=t(both[1]), guidance_scale=guidance)
    with torch.no_grad():
        expected = hf.generate(
            input_ids=flat(ids), max_length=frames + max_delay + 1, do_sample=False, num_return_sequences=1, **kwargs
        )
    codes = model.generate(
        encoder_hidden_states=states,
        encoder_attention_mask=mask,
        prompt=prompt,
        max_new_frames=frames - prompt_len,
        guidance_scale=guidance,
    )
    assert codes.shape == (batch, k, frames)
    assert_same(codes, expected.numpy())


@pytest.mark.parametrize(("prompt_len", "guidance"), [(0, None), (0, 3.0), (3, 3.0)])
def test_greedy_generate_equals_conditional_generation_generate(prompt_len, guidance):
    """The composite's `generate` (default cache) attends to the bos step: `hide_special=False`."""
    hf = tiny_composite(3, seed=3)
    model = MusicGen.from_transformers(hf)
    batch, frames = 2, 8
    text = torch.from_numpy(RNG.integers(1, 32, (batch, 5)))
    mask = torch.ones(batch, 5, dtype=torch.long)
    mask[1, 3:] = 0
    prompt = RNG.integers(0, CARD, (batch, 3, prompt_len))
    decoder = {"decoder_input_ids": flat(prompt)} if prompt_len else {}
    with torch.no_grad():
        states = hf.text_encoder(input_ids=text, attention_mask=mask).last_hidden_state.numpy()
        expected = hf.generate(
            input_ids=text,
            attention_mask=mask,
            max_length=frames + 3,
            do_sample=False,
            guidance_scale=guidance,
            **decoder,
        )[0]
    codes = model.generate(
        encoder_hidden_states=states,
        encoder_attention_mask=mask.numpy(),
        prompt=prompt,
        max_new_frames=frames - prompt_len,
        guidance_scale=guidance,
    )
    assert_same(codes, expected.numpy())


def test_guidance_scale_one_is_off_and_no_condition_is_the_null_one():
    hf = tiny_causal(2, seed=4)
    model = MusicGen.from_transformers(hf)
    states, mask = condition(2)
    off = model.generate(encoder_hidden_states=states, encoder_attention_mask=mask, max_new_frames=5)
    for scale in (1.0, 0.5):  # transformers' rule: guidance only above 1
        again = model.generate(
            encoder_hidden_states=states, encoder_attention_mask=mask, max_new_frames=5, guidance_scale=scale
        )
        assert_same(again, off)
    # without attention biases, no cross-attention equals the null condition (`get_unconditional_inputs`)
    null = model.generate(encoder_hidden_states=0 * states, encoder_attention_mask=0 * mask, max_new_frames=5)
    assert_same(model.generate(prompt=np.zeros((2, 2, 0), np.int32), max_new_frames=5), null)


# ---------------------------------------------------------------------------
# sampling: transformers' processors, after guidance
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(("temp", "top_k", "top_p"), [(0.8, 4, 0.0), (1.5, 0, 0.7), (1.0, 0, 0.0)])
def test_sampling_follows_transformers_processors(temp, top_k, top_p):
    """The first sampled code's frequencies over many rows against transformers' guidance, temperature, top-k,
    top-p processors applied to its own logits: support exactly, frequencies by a chi-square test."""
    k, prompt_len, rows, scale = 2, 2, 4000, 3.0
    hf = tiny_causal(k, seed=5)
    with torch.no_grad():  # flatter logits: many codes have visible probability
        for head in hf.lm_heads:
            head.weight.mul_(0.25)  # type: ignore[operator]
    model = MusicGen.from_transformers(hf)
    prompt = RNG.integers(0, CARD, (1, k, prompt_len))
    states, mask = condition(1)
    prefix = np.asarray(presets.MusicGen(k, CARD).sequence(prompt))[..., : prompt_len + 1]
    both = np.concatenate([prefix, prefix])
    hide = bos_hidden(2, prefix.shape[-1])
    logits = causal_logits(hf, both, np.concatenate([states, 0 * states]), np.concatenate([mask, 0 * mask]), hide)
    scores = torch.from_numpy(logits[:, 0, -1])  # codebook 0 of the last step, conditional row first
    processors = [ClassifierFreeGuidanceLogitsProcessor(scale), TemperatureLogitsWarper(temp)]
    processors += [TopKLogitsWarper(top_k)] if top_k else []
    processors += [TopPLogitsWarper(top_p)] if top_p else []
    for processor in processors:
        scores = processor(torch.zeros((1, 1), dtype=torch.long), scores)
    expected = torch.softmax(scores, dim=-1)[0].numpy().astype(np.float64)
    codes = model.generate(
        encoder_hidden_states=np.repeat(states, rows, axis=0),
        encoder_attention_mask=np.repeat(mask, rows, axis=0),
        prompt=np.repeat(prompt, rows, axis=0),
        max_new_frames=1,
        guidance_scale=scale,
        use_sampling=True,
        temp=temp,
        top_k=top_k,
        top_p=top_p,
        key=jax.random.key(7),
    )
    sampled = np.asarray(codes)[:, 0, prompt_len]
    counts = np.bincount(sampled, minlength=CARD)
    assert set(np.flatnonzero(counts)) <= set(np.flatnonzero(expected > 0)), "a code outside the kept support"
    big = expected * rows >= 5
    observed = np.append(counts[big], counts[~big].sum())
    wanted = np.append(expected[big], expected[~big].sum()) * rows
    keep = wanted > 0
    assert stats.chisquare(observed[keep], wanted[keep] * observed.sum() / wanted[keep].sum()).pvalue > 1e-3


# ---------------------------------------------------------------------------
# training: the loss (and its gradient) of transformers' `labels`
# ---------------------------------------------------------------------------
def test_training_loss_and_gradient_equal_transformers_labels():
    k = 3
    hf = tiny_causal(k, seed=6)
    model = MusicGen.from_transformers(hf)
    preset = presets.MusicGen(k, CARD)
    codes = RNG.integers(0, CARD, (2, k, 7))
    states, mask = condition(2)
    input_ids = np.asarray(preset.input_ids(codes))
    labels = torch.from_numpy(np.asarray(preset.labels(codes)).astype(np.int64))
    out = hf(input_ids=flat(input_ids), labels=labels, encoder_hidden_states=t(states), encoder_attention_mask=t(mask))
    out.loss.backward()
    grads = {name: p.grad if p.grad is not None else torch.zeros_like(p) for name, p in hf.named_parameters()}
    expected = MusicGen.from_transformers(grads, hf.config)  # their gradients through the same table
    pattern = preset.provider.get_pattern(codes.shape[-1])
    cond = {"encoder_hidden_states": states, "encoder_attention_mask": mask}

    def unfused(m):
        return preset.loss(m(input_ids, **cond), codes)[0]

    def fused(m):
        heads, bias = m.head_weights()
        hidden = m.hidden(input_ids, **cond)
        return lm.fused_pattern_cross_entropy(hidden, heads, codes, pattern, bias=bias, keep_only_valid_steps=False)[0]

    for loss_fn in (unfused, fused):
        loss, grad = nnx.jit(nnx.value_and_grad(loss_fn))(model)
        np.testing.assert_allclose(float(loss), out.loss.item(), rtol=2e-6)
        theirs = dict(nnx.to_flat_state(nnx.state(expected, nnx.Param)))
        for path, ours in nnx.to_flat_state(grad):
            want = np.asarray(theirs[path].get_value())
            np.testing.assert_allclose(np.asarray(ours.get_value()), want, rtol=2e-4, atol=2e-6, err_msg=str(path))


# ---------------------------------------------------------------------------
# the decode protocol
# ---------------------------------------------------------------------------
def test_decode_steps_equal_the_forward_pass_and_hide_the_bos_step_as_transformers():
    k = 3
    hf = tiny_causal(k, seed=8)
    states, mask = condition(2)
    seq = np.asarray(presets.MusicGen(k, CARD).sequence(RNG.integers(0, CARD, (2, k, 5))))[..., :-1]  # bos first
    steps = seq.shape[-1]
    for hide in (False, True):
        model = MusicGen.from_transformers(hf, hide_special=hide, max_len=16)
        attention = bos_hidden(2, steps) if hide else None
        expected = causal_logits(hf, seq, states, mask, attention)
        per_row = hide  # both cache layouts, one each
        cache = model.init_cache(2, per_row=per_row, condition_len=5)
        cache = model.condition(cache, {"encoder_hidden_states": states, "encoder_attention_mask": mask})
        logits, cache = decode(model.step_fn(), cache, seq[..., :3])  # a prefix call, then one step at a time
        got = [logits]
        for s in range(3, steps):
            logits, cache = decode(model.step_fn(), cache, seq[..., s : s + 1])
            got.append(logits)
        # the bos query attends only to itself, so its own logits differ when hidden; every later one agrees
        close(np.stack(got, axis=2), expected[:, :, 2:])
        assert np.asarray(cache["index"]).tolist() == ([steps] * 2 if per_row else steps)
        assert_same(np.asarray(cache["visible"])[:, 0], [not hide] * 2)


def test_per_row_positions_decode_each_row_at_its_own_step():
    """Rows conditioned and prefilled alone, then stacked (as `lm.Engine` inserts requests): one call decodes
    each row at its own position, equal to that row decoded alone."""
    model = MusicGen(2, CARD, DIM, 2, 1, max_len=8, rngs=nnx.Rngs(0))
    states, mask = condition(2)
    seq = RNG.integers(0, CARD, (2, 2, 4))

    def alone(b: int, steps: int):  # one step at a time: one program for every call
        cache = model.init_cache(1, per_row=True, condition_len=5)
        cache = model.condition(
            cache, {"encoder_hidden_states": states[b : b + 1], "encoder_attention_mask": mask[b : b + 1]}
        )
        for s in range(steps):
            logits, cache = decode(model.step_fn(), cache, seq[b : b + 1, :, s : s + 1])
        return logits, cache

    caches = [alone(0, 1)[1], alone(1, 2)[1]]  # row 0 at position 1, row 1 at position 2
    stacked = jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *caches)
    assert np.asarray(stacked["index"]).tolist() == [1, 2]
    logits, cache = decode(model.step_fn(), stacked, np.stack([seq[0, :, 1:2], seq[1, :, 2:3]]))
    close(logits[0], alone(0, 2)[0][0], rtol=1e-6)
    close(logits[1], alone(1, 3)[0][0], rtol=1e-6)
    assert np.asarray(cache["index"]).tolist() == [2, 3]


def test_decode_past_the_cache_gives_nan_and_never_reads_its_position_back():
    model = MusicGen(2, CARD, DIM, 2, 1, max_len=4, cross_attention=False, rngs=nnx.Rngs(0))
    cache = model.init_cache(1)
    with pytest.raises(ValueError, match=r"5 steps given; the cache holds 4 positions"):
        model.decode(cache, np.zeros((1, 2, 5), np.int32))
    _, cache = decode(model.step_fn(), cache, np.zeros((1, 2, 4), np.int32))
    logits, _ = decode(model.step_fn(), cache, np.zeros((1, 2, 1), np.int32))
    assert np.isnan(np.asarray(logits)).all()
    tokens = jax.device_put(np.zeros((1, 2, 1), np.int32))
    with jax.transfer_guard_device_to_host("disallow"):  # eager: no host read of the position either
        logits, _ = model.decode(cache, tokens)
    assert np.isnan(np.asarray(logits)).all()


# ---------------------------------------------------------------------------
# compilation, dtypes, jit and vmap
# ---------------------------------------------------------------------------
def test_generate_compiles_once_per_shape():
    model = MusicGen.from_transformers(tiny_causal(2, seed=9))
    states, mask = condition(2)

    def run(seed: int, temp: float, scale: float) -> jax.Array:
        rng = np.random.default_rng(seed)
        return model.generate(
            encoder_hidden_states=states + seed,
            encoder_attention_mask=mask,
            prompt=rng.integers(0, CARD, (2, 2, 2)),
            max_new_frames=4,
            guidance_scale=scale,
            use_sampling=True,
            temp=temp,
            top_k=3 + seed,
            key=jax.random.key(seed),
        )

    first = run(0, 1.0, 3.0)
    assert compilations(lambda: run(1, 0.7, 2.5).block_until_ready()) == []
    assert_same(run(0, 1.0, 3.0), first)  # the same key and values: the same codes


def test_bfloat16_is_close_to_float32():
    hf = tiny_causal(2, seed=10)
    f32 = MusicGen.from_transformers(hf)
    bf16 = MusicGen.from_transformers(hf, param_dtype=jnp.bfloat16, dtype=jnp.bfloat16)
    assert bf16.linears.kernel[...].dtype == jnp.bfloat16
    seq = RNG.integers(0, CARD + 1, (2, 2, 6))
    states, mask = condition(2)
    full, half = (m(seq, encoder_hidden_states=states, encoder_attention_mask=mask) for m in (f32, bf16))
    assert half.dtype == jnp.float32
    scale = float(np.abs(np.asarray(full)).max())
    np.testing.assert_allclose(np.asarray(half), np.asarray(full), atol=0.05 * scale)
    codes = bf16.generate(encoder_hidden_states=states, encoder_attention_mask=mask, max_new_frames=4)
    assert codes.shape == (2, 2, 4)


def test_jit_and_vmap_equal_the_eager_batch():
    model = MusicGen.from_transformers(tiny_causal(2, seed=11))
    seq = RNG.integers(0, CARD + 1, (3, 2, 5))
    states, mask = condition(3)
    eager = model(seq, encoder_hidden_states=states, encoder_attention_mask=mask)
    jitted = nnx.jit(lambda m, s, h, a: m(s, encoder_hidden_states=h, encoder_attention_mask=a))(
        model, seq, states, mask
    )
    close(jitted, eager, rtol=1e-6)
    one = lambda s, h, a: model(s[None], encoder_hidden_states=h[None], encoder_attention_mask=a[None])[0]
    close(jax.vmap(one)(jnp.asarray(seq), jnp.asarray(states), jnp.asarray(mask)), eager, rtol=1e-6)


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
def test_conversion_errors_name_the_key():
    hf = tiny_causal(2)
    state, config = hf.state_dict(), hf.config
    name = "model.decoder.layers.1.fc1.weight"
    with pytest.raises(ValueError, match=rf"the transformers checkpoint has no `{name}`"):
        MusicGen.from_transformers({k: v for k, v in state.items() if k != name}, config)
    with pytest.raises(ValueError, match=r"no place for: `model.decoder.layers.2.fc1.weight`"):
        MusicGen.from_transformers({**state, "model.decoder.layers.2.fc1.weight": state[name]}, config)
    with pytest.raises(ValueError, match=r"`model.decoder.layers.0.fc1.weight` \(32, 16\).*needs \(16, 64\)"):
        MusicGen.from_transformers(state, {**config.to_dict(), "ffn_dim": 64})
    with pytest.raises(ValueError, match=r"has no `model.decoder.embed_tokens.2.weight`"):  # K=2 weights, K=3 config
        MusicGen.from_transformers(state, tiny_causal(3).config)
    with pytest.raises(ValueError, match=r"not a MusicGen config: model_type='bark'"):
        MusicGen.from_transformers(state, {"model_type": "bark"})
    with pytest.raises(ValueError, match=r"`pad_token_id`=0; MusicGen's special token is vocab_size=16"):
        MusicGen.from_transformers(state, {**config.to_dict(), "pad_token_id": 0})
    with pytest.raises(TypeError, match=r"is a state dict: it needs its `config`"):
        MusicGen.from_transformers(state)
    with pytest.raises(TypeError, match=r"unknown arguments \['causal'\]"):
        MusicGen.from_transformers(hf, causal=False)
    composite = tiny_composite(2)
    with pytest.raises(ValueError, match=r"has no `decoder.model.decoder.embed_tokens.0.weight`"):
        MusicGen.from_transformers(state, composite.config)  # a decoder's weights with the composite's config


def test_bad_input_raises_naming_the_argument():
    model = MusicGen(2, CARD, DIM, 2, 1, max_len=12, rngs=nnx.Rngs(0))
    states, mask = condition(2)
    with pytest.raises(ValueError, match=r"`codes_seq` holds the code 17; codes must lie in \[0, 17\)"):
        model(np.full((1, 2, 3), CARD + 1))
    with pytest.raises(ValueError, match=r"`codes_seq` must be codes \[B, K=2, T\], got shape \(1, 3, 3\)"):
        model(np.zeros((1, 3, 3), np.int32))
    with pytest.raises(TypeError, match=r"`codes_seq` must hold integer codes"):
        model(np.zeros((1, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"`encoder_hidden_states` must be \[B=2, S_enc, 16\], got shape \(2, 5, 8\)"):
        model(np.zeros((2, 2, 3), np.int32), encoder_hidden_states=states[..., :8])
    with pytest.raises(ValueError, match=r"`encoder_attention_mask` must be \[B, S_enc\] = \(2, 5\)"):
        model(np.zeros((2, 2, 3), np.int32), encoder_hidden_states=states, encoder_attention_mask=mask[:, :4])
    with pytest.raises(TypeError, match=r"`encoder_hidden_states` must be floats, got dtype int32"):
        model(np.zeros((2, 2, 3), np.int32), encoder_hidden_states=states.astype(np.int32))
    with pytest.raises(ValueError, match=r"`encoder_attention_mask` given without `encoder_hidden_states`"):
        model(np.zeros((2, 2, 3), np.int32), encoder_attention_mask=mask)
    with pytest.raises(ValueError, match=r"classifier-free guidance needs `encoder_hidden_states`"):
        model.generate(max_new_frames=3, guidance_scale=3.0)
    with pytest.raises(ValueError, match=r"`prompt` holds the code 16; codes must lie in \[0, 16\)"):
        model.generate(max_new_frames=3, prompt=np.full((1, 2, 2), CARD))
    with pytest.raises(ValueError, match=r"take 13 steps, more than the model's max_len=12"):
        model.generate(max_new_frames=12)
    with pytest.raises(ValueError, match=r"sampling .* needs a PRNG `key`"):
        model.generate(max_new_frames=3, use_sampling=True)
    with pytest.raises(ValueError, match=r"`encoder_hidden_states` has 2 rows; the prompt has B=1"):
        model.generate(max_new_frames=3, prompt=np.zeros((1, 2, 1), np.int32), encoder_hidden_states=states)
    with pytest.raises(ValueError, match=r"the cache holds \[B, S_enc\] = \(2, 4\)"):
        model.condition(model.init_cache(2, condition_len=4), {"encoder_hidden_states": states})
    with pytest.raises(ValueError, match=r"`conditions` has unknown keys \['text'\]"):
        model.condition(model.init_cache(2, condition_len=5), {"encoder_hidden_states": states, "text": 1})
    magnet = MusicGen(2, CARD, DIM, 2, 1, causal=False, subcodes_context=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"a MAGNeT model \(causal=False\) decodes with `lm.magnet_generate"):
        magnet.generate(max_new_frames=3)
    with pytest.raises(ValueError, match=r"`decode` runs a causal model step by step"):
        magnet.decode(magnet.init_cache(1), np.zeros((1, 2, 1), np.int32))
    with pytest.raises(ValueError, match=r"`encoder_attention_mask` given without `encoder_hidden_states`"):
        magnet.magnet_fn(encoder_attention_mask=np.ones((1, 3), np.int32))
    with pytest.raises(ValueError, match=r"`param_dtype` must be float32 or bfloat16, got <class 'jax.numpy.float16'>"):
        MusicGen(2, CARD, DIM, 2, 1, param_dtype=jnp.float16, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"`provider` must be a pattern provider of n_q=2"):
        MusicGen(2, CARD, DIM, 2, 1, provider=jp.DelayedPatternProvider(3), rngs=nnx.Rngs(0))
    for bad in (True, 2.5, "01", np.zeros(0)):  # numpy reads "01" as a format and raises a SyntaxError
        with pytest.raises(TypeError, match=r"`dtype` must be a dtype, float32 or bfloat16"):
            MusicGen(2, CARD, DIM, 2, 1, dtype=bad, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match=r"`rngs` must be an nnx.Rngs"):
        MusicGen(2, CARD, DIM, 2, 1, rngs=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sizes", "match"),
    [
        (dict(n_q=2**31 - 1), r"`n_q` must be <= 46340"),
        (dict(num_layers=2**31 - 1), r"`num_layers` must be <= 1024"),
        (dict(card=2**30), r"`emb` \(`n_q`, `card` \+ 1, `dim`\) would have shape \(2, 1073741825, 16\)"),
        (dict(n_q=1, card=1, dim=2**16, num_heads=1), r"`in_proj` \(`dim`, 3 \* `dim`\)"),
        (dict(ffn_dim=2**28), r"`linear1` \(`dim`, `ffn_dim`\)"),
        (dict(dim=2**31), r"`dim` must be <= 2\*\*31 - 1"),
    ],
)
def test_oversized_models_are_refused_before_anything_is_allocated(sizes, match):
    """Found by the fuzz: `n_q=2**31 - 1` built a 2**31-element Python list (a hang, then MemoryError) and
    `dim=2**31` aborted the process in XLA; every size is bounded at the constructor, before any allocation."""
    kwargs = {**dict(n_q=2, card=CARD, dim=DIM, num_heads=2, num_layers=1), **sizes}
    with pytest.raises(ValueError, match=match):
        MusicGen(**kwargs, rngs=nnx.Rngs(0))


def test_conditions_and_stages_of_any_spelling_give_the_same_logits_or_are_refused():
    """Found by the fuzz: a bool mask failed under strict promotion, a list of states could not be read, an int64
    mask holding 2**32 must count as a token (not wrap to 0), and `stage=2.5` was truncated to 2."""
    model = MusicGen(2, CARD, DIM, 2, 1, max_len=12, causal=False, subcodes_context=1, rngs=nnx.Rngs(0))
    states, mask = condition(2)
    mask[0, -1] = 0
    codes = RNG.integers(0, CARD, (2, 2, 6)).astype(np.int32)
    want = model(codes, encoder_hidden_states=states, encoder_attention_mask=mask, stage=1)
    wide = mask.astype(np.int64) * 2**32
    for spelt_states, spelt_mask in [
        (states, mask.astype(bool)),
        (states, jnp.asarray(mask.astype(bool))),
        (states, mask.astype(np.float32)),
        (states, wide),
        (states.tolist(), mask.tolist()),
    ]:
        got = model(codes, encoder_hidden_states=spelt_states, encoder_attention_mask=spelt_mask, stage=1)
        assert_same(got, want, f"states {type(spelt_states).__name__}, mask {getattr(spelt_mask, 'dtype', 'list')}")
    assert_same(model(codes, encoder_hidden_states=states, encoder_attention_mask=mask, stage=np.int64(1)), want)
    with pytest.raises(TypeError, match=r"`stage` must be an int, got 2.5"):
        model(codes, encoder_hidden_states=states, stage=2.5)
    with pytest.raises(ValueError, match=r"`stage` must be <= 1"):
        model(codes, encoder_hidden_states=states, stage=2)
    with pytest.raises(ValueError, match=r"`stage` must be >= 0"):
        model(codes, encoder_hidden_states=states, stage=-1)
    with pytest.raises(TypeError, match=r"`encoder_attention_mask` must be 1 \(token\) / 0 \(padding\) numbers"):
        model(codes, encoder_hidden_states=states, encoder_attention_mask=np.full((2, 5), "1"))
    fn = model.magnet_fn(states.tolist(), wide)
    assert_same(fn(jnp.asarray(codes), jnp.asarray(1, jnp.int32)), want, "magnet_fn")
    with pytest.raises(ValueError, match=r"`encoder_attention_mask` must be \[B, S_enc\]"):
        model.magnet_fn(states, True)


def test_nan_guidance_and_engine_arrays_are_refused():
    """Found by the fuzz: a NaN `guidance_scale` was accepted (a NaN is not > 1: guidance silently off), its other
    errors named `cfg_coef`, and the engine took `[1]` arrays as its engine-wide defaults."""
    model = MusicGen(2, CARD, DIM, 2, 1, max_len=12, rngs=nnx.Rngs(0))
    states, _ = condition(1)
    for bad in (float("nan"), np.float32("nan"), float("inf"), 1e39):
        with pytest.raises(ValueError, match=r"`guidance_scale` must be a finite number within float32"):
            model.generate(encoder_hidden_states=states, max_new_frames=2, guidance_scale=bad)
        with pytest.raises(ValueError, match=r"`guidance_scale` must be a finite number within float32"):
            model.engine(slots=1, max_timesteps=4, condition_len=5, guidance_scale=bad)
    with pytest.raises(ValueError, match=r"`guidance_scale` has shape \(2,\)"):
        model.generate(encoder_hidden_states=states, max_new_frames=2, guidance_scale=np.array([2.0, 3.0]))
    for name in ("temp", "top_k", "top_p", "guidance_scale"):
        with pytest.raises(ValueError, match=rf"`{name}` has shape \(1,\): the engine's default"):
            model.engine(slots=1, max_timesteps=4, condition_len=5, **{name: np.ones(1, np.int32)})
    with pytest.raises(ValueError, match=r"`tokens` holds no step"):
        model.decode(model.init_cache(1), np.zeros((1, 2, 0), np.int32))
    with pytest.raises(TypeError, match=r"`cache` must be the mapping `init_cache` returns"):
        model.decode(None, np.zeros((1, 2, 1), np.int32))
    with pytest.raises(ValueError, match=r"the cache \(`batch`, `length`, `dim`\)"):
        model.init_cache(2**20, length=2**20)


def test_loading_and_running_never_imports_torch():
    """A state dict of numpy arrays and a config dict: jax_patterns.models needs no torch."""
    hf = tiny_causal(2)
    arrays = {name: value.numpy() for name, value in hf.state_dict().items()}
    code = (
        "import sys, json, numpy as np\n"
        "from jax_patterns.models import MusicGen\n"
        "data = np.load(sys.argv[1])\n"
        "model = MusicGen.from_transformers(dict(data), json.loads(sys.argv[2]))\n"
        "print(model.generate(max_new_frames=3).shape)\n"
        "assert 'torch' not in sys.modules, 'jax_patterns.models imported torch'\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/state.npz", **arrays)
        config = json.dumps({k: v for k, v in hf.config.to_dict().items() if isinstance(v, (int, float, str, bool))})
        done = subprocess.run([sys.executable, "-c", code, f"{tmp}/state.npz", config], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 2, 3)"


# ---------------------------------------------------------------------------
# serving: lm.Engine with per-request conditions and guidance
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("guidance", [None, 3.0])
def test_the_engine_serves_each_request_as_generate_alone(guidance):
    """Requests of different prompts, lengths, conditions (padded to one length) and guidance coefficients, fewer
    slots than requests: each request's codes equal `model.generate` of it alone (greedy)."""
    hf = tiny_causal(3, seed=5)
    model = MusicGen.from_transformers(hf)
    engine = model.engine(slots=2, max_timesteps=10, condition_len=6, guidance_scale=guidance, chunk_steps=3)
    requests = []
    for prompt_len, frames, text_len, coef in [(0, 9, 6, 3.0), (3, 6, 4, 1.5), (2, 10, 5, 5.0)]:
        states = np.zeros((1, 6, DIM), np.float32)
        states[:, :text_len] = RNG.normal(size=(1, text_len, DIM))
        mask = (np.arange(6) < text_len)[None].astype(np.int32)
        prompt = RNG.integers(0, CARD, (3, prompt_len)).astype(np.int32)
        sampling = lm.Sampling(cfg_coef=coef) if guidance else None
        rid = engine.submit(prompt, max_timesteps=frames, sampling=sampling,
                            conditions={"encoder_hidden_states": states, "encoder_attention_mask": mask})  # fmt: skip
        scale = coef if guidance else None
        alone = model.generate(encoder_hidden_states=states, encoder_attention_mask=mask, prompt=prompt[None],
                               max_new_frames=frames - prompt_len, guidance_scale=scale)  # fmt: skip
        requests.append((rid, np.asarray(alone)[0]))
    got: dict[int, list] = {}
    for rid, frames_, _ in engine:
        got.setdefault(rid, []).append(frames_)
    for rid, want in requests:
        assert_same(np.concatenate(got[rid], -1), want, f"request {rid}")
    with pytest.raises(ValueError, match=r"guidance needs conditions"):
        model.engine(slots=1, max_timesteps=4, guidance_scale=3.0)


def test_guidance_without_a_mask_has_the_models_null_condition():
    """A condition given without its mask (every position visible): the engine's and `lm.magnet_fn_of`'s null
    condition is MusicGen's (zero states under a zero mask, `model.guided_conditions`), not zeros of what was given
    (which left the null rows seeing the projection's bias everywhere): the engine equals `generate`, and
    `lm.magnet_fn_of(model, conditions)` equals `model.magnet_fn(states)`."""
    model = MusicGen(2, 6, 8, 2, 1, max_len=32, encoder_dim=4, rngs=nnx.Rngs(0))
    assert model.enc_proj is not None and model.enc_proj.bias is not None
    model.enc_proj.bias[...] = jnp.arange(8.0) * 0.7 - 2  # a bias the null rows must not see
    model.linears.kernel[...] = model.linears.kernel[...] * 8
    states = np.random.default_rng(0).normal(size=(1, 3, 4)).astype(np.float32)
    alone = model.generate(encoder_hidden_states=states, max_new_frames=6, guidance_scale=3.0)
    engine = model.engine(slots=1, max_timesteps=6, condition_len=3, guidance_scale=3.0)
    rid = engine.submit(np.zeros((2, 0), np.int32), conditions={"encoder_hidden_states": states})
    got = np.concatenate([frames for r, frames, _ in engine if r == rid], -1)
    assert_same(got, np.asarray(alone)[0])

    magnet = MusicGen(2, 6, 8, 2, 1, max_len=32, encoder_dim=4, causal=False, subcodes_context=2, rngs=nnx.Rngs(1))
    assert magnet.enc_proj is not None and magnet.enc_proj.bias is not None
    magnet.enc_proj.bias[...] = jnp.arange(8.0) * 0.7 - 2
    tokens = jnp.asarray(np.random.default_rng(1).integers(0, 7, (2, 2, 5)), jnp.int32)  # [2B]: guided
    stage = jnp.asarray(1, jnp.int32)
    ours = lm.magnet_fn_of(magnet, {"encoder_hidden_states": states})(tokens, stage)
    assert_same(ours, magnet.magnet_fn(states)(tokens, stage))
    bare = magnet(tokens, stage=1, encoder_hidden_states=np.concatenate([states, 0 * states]))  # all visible: differs
    assert not np.allclose(np.asarray(bare), np.asarray(ours))
