"""Serving-grade generation: per-example prompts, EOS, streaming, two-level decoders, one compiled loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from helpers import FAMILIES, assert_same, compilations
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import examples, providers

import jax_patterns as jp
from jax_patterns import lm
from jax_patterns.lm import _decode, _generate
from torch_compat import lm as torch_lm

CARD = 8
SPECIAL = CARD
RNG = np.random.default_rng(0)


# --- a model that depends only on its own example's tokens ---------------------------------------------------------
def _logits(h, last, xp):
    """Exact integer logits from the running token sum `h [B]` and the last step's tokens `[B, K]`."""
    k = xp.arange(last.shape[1])[None, :, None]
    c = xp.arange(CARD)[None, None, :]
    return (h[:, None, None] * 7 + last[..., None] * 3 + k * 5 + c * 11) % 13


def step_fn(state, tokens):
    """KV-cache style: `state` is each example's running sum of every token fed so far."""
    h = state + tokens.sum(axis=(1, 2))
    return _logits(h, tokens[..., -1], jnp).astype(jnp.float32), h


def torch_model(seq):
    """The same model recomputing the whole prefix, as audiocraft's loop calls it."""
    h = torch.cumsum(seq.sum(dim=1), dim=-1)
    return torch.stack([_logits(h[:, j], seq[..., j], torch) for j in range(seq.shape[-1])], dim=2).float()


def numpy_logits(prefix: np.ndarray) -> np.ndarray:
    """Last-step logits `[K, card]` of one example's prefix `[K, n]`."""
    return _logits(np.array([prefix.sum()]), prefix[None, :, -1], np)[0].astype(np.float32)


def zeros(batch: int) -> jax.Array:
    return jnp.zeros((batch,), jnp.int32)


# --- a plain loop: the specification of EOS, one example alone -----------------------------------------------------
def reference_one(pattern: jp.Pattern, prompt: np.ndarray, eos: int | None) -> tuple[np.ndarray, int, int]:
    """One example `[K, P]`, decoded step by step from its whole prefix; returns (codes, length, last step written).

    Every position of a step is decided from the length known before the step:
    a prompt code is kept; a position with no code, or whose timestep is at or
    past the length, is special; anything else is the argmax. Codebook 0
    sampling `eos` at timestep t sets the length to t. Decoding stops once every
    code of a timestep below the length is written.
    """
    n_q, timesteps, steps = pattern.n_q, pattern.timesteps, len(pattern)
    prompt_len = prompt.shape[-1]
    where = {}  # (q, step) -> t
    seq = np.full((n_q, steps), SPECIAL, np.int64)
    for s, step in enumerate(pattern.layout):
        for t, q in step:
            if t < timesteps:
                where[q, s] = t
                seq[q, s] = prompt[q, t] if t < prompt_len else lm.UNKNOWN
    length, last, start = timesteps, -1, pattern.get_first_step_with_timesteps(prompt_len)
    assert start is not None
    for s in range(start, steps):
        if all(seq[q, j] != lm.UNKNOWN for (q, j), t in where.items() if t < length):
            break
        logits = numpy_logits(seq[:, :s])
        before = length
        for q in range(n_q):
            if seq[q, s] != lm.UNKNOWN:
                continue
            here = where.get((q, s))
            if here is None or here >= before:
                seq[q, s] = SPECIAL
                continue
            seq[q, s] = int(np.argmax(logits[q]))
            if q == 0 and eos is not None and seq[q, s] == eos:
                length = min(length, here)
        last = s
    codes = np.full((n_q, timesteps), lm.UNKNOWN, np.int64)
    for (q, s), t in where.items():
        codes[q, t] = seq[q, s] if seq[q, s] != lm.UNKNOWN else lm.UNKNOWN
    codes[:, length:] = SPECIAL
    return codes, length, last


# --- per-example prompts ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", FAMILIES, ids=repr)
def test_per_example_prompts_equal_audiocraft_loop_on_each_example_alone(provider):
    timesteps = 7
    pattern = provider.get_pattern(timesteps)
    lengths = np.array([0, timesteps - 1, 3, 1])
    prompt = RNG.integers(0, CARD, (4, provider.n_q, timesteps - 1))  # codes past each length are noise
    out = lm.generate(step_fn, zeros(4), pattern, prompt, special_token=SPECIAL, prompt_lengths=lengths).codes
    for b, n in enumerate(lengths):
        alone = torch_lm.generate(torch_model, pattern, torch.from_numpy(prompt[b : b + 1, :, :n]), SPECIAL)
        assert_same(np.asarray(out)[b : b + 1], alone.numpy(), f"example {b}, prompt length {n}")
        assert_same(np.asarray(out)[b, :, :n], prompt[b, :, :n], "prompt tokens are never overwritten")
    traced = jax.jit(
        lambda s, p, n: lm.generate(step_fn, s, pattern, p, special_token=SPECIAL, prompt_lengths=n).codes
    )(zeros(4), prompt, jnp.asarray(lengths))
    assert_same(traced, out, "traced prompt lengths (decoding from the step of an empty prompt)")


def test_equal_prompt_lengths_give_the_plain_call():
    pattern = jp.DelayedPatternProvider(3).get_pattern(8)
    prompt = RNG.integers(0, CARD, (2, 3, 4))
    plain = lm.generate(step_fn, zeros(2), pattern, prompt, special_token=SPECIAL).codes
    per_example = lm.generate(step_fn, zeros(2), pattern, prompt, special_token=SPECIAL, prompt_lengths=[4, 4]).codes
    assert_same(per_example, plain)


@settings(max_examples=examples(15))
@given(
    provider=providers(max_n_q=3),
    timesteps=st.integers(2, 6),
    data=st.data(),
)
def test_per_example_prompts_equal_generating_each_example_alone(provider, timesteps, data):
    pattern = provider.get_pattern(timesteps)
    assume(pattern.starts_with_special_token())  # otherwise nothing predicts the first step: refused
    prompt_len = data.draw(st.integers(0, timesteps - 1))
    lengths = data.draw(st.lists(st.integers(0, prompt_len), min_size=1, max_size=3))
    prompt = RNG.integers(0, CARD, (len(lengths), provider.n_q, prompt_len))
    out = lm.generate(
        step_fn, zeros(len(lengths)), pattern, prompt, special_token=SPECIAL, prompt_lengths=lengths
    ).codes
    for b, n in enumerate(lengths):
        alone = lm.generate(step_fn, zeros(1), pattern, prompt[b : b + 1, :, :n], special_token=SPECIAL).codes
        assert_same(np.asarray(out)[b : b + 1], alone, f"example {b} of prompt length {n}")


def _final_carry(step, state, pattern, prompt, **options) -> _decode.Carry:
    """The loop's state after `generate`'s whole loop (the first call, then steps until it stops)."""
    prompt_lengths = options.pop("prompt_lengths", None)
    decode = lm.DecodeOptions(special_token=SPECIAL, **options)
    fn, (prompt, lengths, key, values), cfg = _generate.prepare(step, pattern, prompt, decode, None, prompt_lengths)
    carry = _decode.run_first(fn, state, prompt, lengths, key, values, cfg=cfg)[0]
    return _decode.run_chunk(fn, carry, jnp.int32(len(pattern)), cfg=cfg)[0]


# --- EOS -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", FAMILIES, ids=repr)
def test_eos_lengths_fill_and_countdown_equal_a_plain_loop(provider):
    timesteps = 9
    pattern = provider.get_pattern(timesteps)
    lengths = np.array([0, 2, 5])
    prompt = RNG.integers(0, CARD, (3, provider.n_q, 5))
    ended = 0
    for eos in range(CARD):
        options = dict(prompt_lengths=lengths, eos_token=eos)
        codes, out_lengths = lm.generate(step_fn, zeros(3), pattern, prompt, special_token=SPECIAL, **options)
        expected = [reference_one(pattern, prompt[b, :, :n], eos) for b, n in enumerate(lengths)]
        for b, (ref_codes, ref_length, _) in enumerate(expected):
            assert_same(np.asarray(codes)[b], ref_codes, f"eos={eos}, example {b}")
            assert int(out_lengths[b]) == ref_length, (eos, b)
            assert (np.asarray(codes)[b, :, ref_length:] == SPECIAL).all()
        carry = _final_carry(step_fn, zeros(3), pattern, prompt, **options)
        assert int(carry.offset) - 1 == max(last for _, _, last in expected), "the loop stops with the last example"
        ended += sum(length < timesteps for _, length, _ in expected)
    assert ended > 3, "the model must sample EOS for the test to mean something"


@pytest.mark.parametrize("provider", [jp.DelayedPatternProvider(4), jp.CoarseFirstPattern(3, [0, 1])], ids=repr)
def test_the_loop_stops_when_every_example_is_finished_after_the_patterns_countdown(provider):
    timesteps, prompt_len, eos = 10, 2, 7
    pattern = provider.get_pattern(timesteps)
    prompt = RNG.integers(0, CARD, (2, provider.n_q, prompt_len))
    stops = jnp.asarray([6, 9], jnp.int32)

    def depth(state, tokens, info):  # returns tokens: 1, and EOS in codebook 0 from step `state[b]` on
        del tokens
        first = jnp.arange(provider.n_q)[None, :] == 0
        token = jnp.where(first & (info.step >= state)[:, None], eos, jnp.ones((2, provider.n_q), jnp.int32))
        return token.astype(jnp.int32), state

    options = dict(eos_token=eos, step_info=True, step_returns="tokens")
    codes, lengths = lm.generate(depth, stops, pattern, prompt, special_token=SPECIAL, **options)
    timestep, last_of, _ = _decode.tables(pattern)
    last = 0
    for b, stop in enumerate([6, 9]):
        eos_step = next(s for s in range(stop, len(pattern)) if timestep[0, s] >= prompt_len)
        assert int(lengths[b]) == timestep[0, eos_step], b
        length = int(lengths[b])
        assert (np.asarray(codes)[b, :, length:] == SPECIAL).all()
        assert (np.asarray(codes)[b, :, prompt_len:length] == 1).all()
        last = max(last, eos_step, int(last_of[prompt_len:length].max(initial=-1)))
    assert last < len(pattern) - 1, "the test must end early to show the countdown"
    carry = _final_carry(depth, stops, pattern, jnp.asarray(prompt), **options)
    assert int(carry.offset) == last + 1, "decoding ran past the last example's countdown"


def cache_size(jitted) -> int:
    """How many compiled variants a jitted function holds."""
    return jitted._cache_size()


# --- streaming ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", [jp.DelayedPatternProvider(3), jp.CoarseFirstPattern(3, [0, 1])], ids=repr)
@pytest.mark.parametrize("chunk_steps", [1, 3, 7, 1000])
def test_stream_concatenates_to_generate_and_yields_frames_as_soon_as_complete(provider, chunk_steps):
    pattern = provider.get_pattern(12)
    prompt = RNG.integers(0, CARD, (3, provider.n_q, 4))
    options = dict(special_token=SPECIAL, prompt_lengths=[0, 4, 2], eos_token=5)
    codes, lengths = lm.generate(step_fn, zeros(3), pattern, prompt, **options)
    reported = []
    chunks = lm.stream(
        step_fn, zeros(3), pattern, prompt, chunk_steps=chunk_steps, progress=lambda r, t: reported.append(r), **options
    )
    frames = list(chunks)
    assert all(f.dtype == np.int32 and f.shape[:2] == (3, provider.n_q) and f.shape[2] > 0 for f in frames)
    assert_same(np.concatenate(frames, axis=-1), codes)
    assert_same(chunks.lengths, lengths)
    assert reported == sorted(reported) and reported[-1] == pattern.timesteps


@pytest.mark.parametrize("provider", [jp.DelayedPatternProvider(4), jp.CoarseFirstPattern(3, [0, 1])], ids=repr)
@pytest.mark.parametrize("chunk_steps", [1, 4])
def test_each_frame_is_yielded_by_the_chunk_that_completes_it(provider, chunk_steps):
    pattern = provider.get_pattern(10)
    reported: list[int] = []
    chunks = lm.stream(
        step_fn,
        zeros(2),
        pattern,
        np.zeros((2, provider.n_q, 0), np.int32),
        special_token=SPECIAL,
        chunk_steps=chunk_steps,
        progress=lambda ready, total: reported.append(ready),
    )
    sizes = [frames.shape[-1] for frames in chunks]
    _, last_of, _ = _decode.tables(pattern)
    start = pattern.get_first_step_with_timesteps(0)
    assert start is not None
    written = range(start + 1, len(pattern) + chunk_steps, chunk_steps)  # steps written after each program
    expected = [int(np.argmin(last_of < min(n, len(pattern)))) if (last_of >= n).any() else 10 for n in written]
    assert reported == expected
    assert sizes == [b - a for a, b in zip([0, *expected], expected) if b > a]


def test_guidance_with_per_example_prompts_streams_like_generate():
    pattern = jp.DelayedPatternProvider(3).get_pattern(8)
    prompt = RNG.integers(0, CARD, (2, 3, 4))
    options = dict(special_token=SPECIAL, cfg_coef=2.5, prompt_lengths=[1, 4])
    codes = lm.generate(step_fn, zeros(4), pattern, prompt, **options).codes
    for b, n in enumerate([1, 4]):
        alone = torch_lm.generate(torch_model, pattern, torch.from_numpy(prompt[b : b + 1, :, :n]), SPECIAL, 2.5)
        assert_same(np.asarray(codes)[b : b + 1], alone.numpy())
    streamed = lm.stream(step_fn, zeros(4), pattern, prompt, chunk_steps=3, **options)
    assert_same(np.concatenate(list(streamed), -1), codes)


def test_stream_with_sampling_equals_generate():
    pattern = jp.DelayedPatternProvider(2).get_pattern(9)
    prompt = jnp.zeros((4, 2, 0), jnp.int32)
    options = dict(special_token=SPECIAL, key=jax.random.key(7), use_sampling=True, temp=1.2, top_k=4)
    codes = lm.generate(step_fn, zeros(4), pattern, prompt, **options).codes
    streamed = lm.stream(step_fn, zeros(4), pattern, prompt, chunk_steps=2, **options)
    assert_same(np.concatenate(list(streamed), -1), codes)


def test_stream_compiles_one_chunk_program_and_moves_nothing_implicitly():
    pattern = jp.DelayedPatternProvider(3).get_pattern(40)
    prompt = jax.device_put(jnp.asarray(RNG.integers(0, CARD, (2, 3, 3)), jnp.int32))
    state = jax.device_put(zeros(2))
    lengths = jax.device_put(jnp.asarray([1, 3], jnp.int32))
    before = cache_size(_decode.run_chunk)
    options = dict(special_token=SPECIAL, chunk_steps=4, prompt_lengths=lengths, eos_token=6)
    first = list(lm.stream(step_fn, state, pattern, prompt, **options))
    assert cache_size(_decode.run_chunk) == before + 1, "one program for every chunk"
    with jax.transfer_guard("disallow"):  # only the explicit copy per chunk, nothing implicit
        stream = lm.stream(step_fn, state, pattern, prompt, **options)
        again = list(stream)
    assert stream.chunks >= 3
    assert cache_size(_decode.run_chunk) == before + 1
    assert_same(np.concatenate(again, -1), np.concatenate(first, -1))


def test_stream_shows_a_tqdm_bar(capsys):
    pattern = jp.DelayedPatternProvider(2).get_pattern(6)
    frames = list(
        lm.stream(
            step_fn,
            zeros(1),
            pattern,
            np.zeros((1, 2, 0), np.int32),
            special_token=SPECIAL,
            chunk_steps=2,
            progress=True,
        )
    )
    assert sum(f.shape[-1] for f in frames) == 6
    assert "6/6" in capsys.readouterr().err


# --- one compilation ----------------------------------------------------------------------------------------------
def test_a_second_identical_eager_generate_compiles_nothing():
    pattern = jp.DelayedPatternProvider(2).get_pattern(12)
    model = lm.CodecLM(2, CARD, dim=16, num_layers=1, num_heads=2, max_len=16, rngs=nnx.Rngs(0))
    prompt = np.zeros((2, 2, 3), np.int32)

    def run():
        lm.generate(
            lm.step_fn_of(model),
            model.init_cache(2),
            pattern,
            prompt,
            special_token=SPECIAL,
            prompt_lengths=[1, 3],
            eos_token=3,
        ).codes[0].block_until_ready()

    assert any("run_all" in name for name in compilations(run))
    assert compilations(run) == []
    # new parameters, same structure: the same program
    model.heads.kernel[...] = model.heads.kernel[...] * 2.0
    assert compilations(run) == []


# --- jit, vmap ----------------------------------------------------------------------------------------------------
def test_generate_under_jit_and_vmap():
    pattern = jp.CoarseFirstPattern(2, [0]).get_pattern(6)
    prompts = RNG.integers(0, CARD, (3, 2, 2, 4))  # 3 batches of 2
    lengths = np.array([[0, 4], [2, 1], [3, 3]])

    def one(p, n):
        return lm.generate(step_fn, zeros(2), pattern, p, special_token=SPECIAL, prompt_lengths=n, eos_token=2)

    codes, out_lengths = jax.jit(jax.vmap(one))(prompts, lengths)
    for i in range(3):
        c, n = one(prompts[i], lengths[i])
        assert_same(codes[i], c)
        assert_same(out_lengths[i], n)


# --- two-level decoders and the step information -------------------------------------------------------------------
def depth_model(n_q: int):
    """A toy two-level decoder: a temporal state, then a depth loop sampling codebook k from codebook k - 1."""

    def token_logits(h, previous):  # [B], [B] -> [B, card]
        c = jnp.arange(CARD)[None, :]
        return ((h[:, None] * 5 + previous[:, None] * 3 + c * 7) % 11).astype(jnp.float32)

    def depth(h):  # [B] -> tokens [B, K]
        def one(previous, _):
            token = jnp.argmax(token_logits(h, previous), axis=-1).astype(jnp.int32)
            return token, token

        return jax.lax.scan(one, jnp.zeros_like(h), None, length=n_q)[1].T

    def as_tokens(state, tokens):
        h = state + tokens.sum(axis=(1, 2))
        return depth(h), h

    def as_logits(state, tokens):  # the same decoder as a one-level model: one-hot logits of its tokens
        out, h = as_tokens(state, tokens)
        return jax.nn.one_hot(out, CARD), h

    return as_tokens, as_logits


@pytest.mark.parametrize("provider", [jp.DelayedPatternProvider(3), jp.CoarseFirstPattern(3, [0, 1])], ids=repr)
def test_a_step_function_returning_tokens_keeps_every_rule(provider):
    pattern = provider.get_pattern(10)
    prompt = RNG.integers(0, CARD, (3, 3, 4))
    as_tokens, as_logits = depth_model(3)
    options = dict(special_token=SPECIAL, prompt_lengths=[0, 4, 2], eos_token=4)
    codes, lengths = lm.generate(as_tokens, zeros(3), pattern, prompt, step_returns="tokens", **options)
    expected, expected_lengths = lm.generate(as_logits, zeros(3), pattern, prompt, **options)
    assert_same(codes, expected)
    assert_same(lengths, expected_lengths)
    assert_same(np.asarray(codes)[1, :, :4], prompt[1])
    streamed = lm.stream(as_tokens, zeros(3), pattern, prompt, chunk_steps=3, step_returns="tokens", **options)
    assert_same(np.concatenate(list(streamed), -1), codes)


def test_the_step_function_is_told_the_step_and_the_special_positions():
    pattern = jp.DelayedPatternProvider(3, empty_initial=1).get_pattern(6)
    prompt = RNG.integers(0, CARD, (2, 3, 2))

    def reporting(state, tokens, info):  # writes what it is told into the codes it returns
        del tokens
        told = info.step % 4 + 4 * info.special.sum(axis=1, keepdims=True, dtype=jnp.int32)
        return jnp.broadcast_to(told, info.special.shape).astype(jnp.int32), state

    codes = lm.generate(
        reporting, 0, pattern, prompt, special_token=99, step_info=True, step_returns="tokens", prompt_lengths=[0, 2]
    ).codes
    timestep, _, _ = _decode.tables(pattern)
    for step, t, q in zip(*pattern.coords):
        if t >= 2 or step == 0:
            continue
        expected = step % 4 + 4 * int((timestep[:, step] < 0).sum())
        assert int(codes[0, q, t]) == expected, (step, t, q)  # example 0 has no prompt: every code generated
    assert_same(np.asarray(codes)[1, :, :2], prompt[1])


def test_info_known_marks_the_prompt_positions():
    pattern = jp.DelayedPatternProvider(2).get_pattern(5)
    prompt = RNG.integers(0, CARD, (2, 2, 3))

    def known_count(state, tokens, info):
        del tokens
        known = info.known.sum(axis=1, keepdims=True, dtype=jnp.int32)
        return jnp.broadcast_to(known, info.known.shape), state

    codes = lm.generate(
        known_count,
        0,
        pattern,
        prompt,
        special_token=SPECIAL,
        step_info=True,
        step_returns="tokens",
        prompt_lengths=[3, 1],
    ).codes
    # example 1 at frame 1 of codebook 1 (step 3): codebook 0 holds frame 2 there, not in its 1-frame prompt
    assert int(codes[1, 1, 1]) == 0
    # example 1, frame 1 of codebook 0 (step 2): codebook 1 holds frame 0 (prompt) there
    assert int(codes[1, 0, 1]) == 1


# --- the model's length -------------------------------------------------------------------------------------------
def test_codec_lm_refuses_positions_past_max_len():
    model = lm.CodecLM(2, CARD, dim=16, num_layers=1, num_heads=2, max_len=6, rngs=nnx.Rngs(0))
    pattern = jp.DelayedPatternProvider(2).get_pattern(5)  # 7 steps: 6 fed to the model
    lm.generate(lm.step_fn_of(model), model.init_cache(1), pattern, np.zeros((1, 2, 0), np.int32), special_token=CARD)
    longer = jp.DelayedPatternProvider(2).get_pattern(6)
    with pytest.raises(ValueError, match=r"fed 7 of them, more than its max_len=6"):
        lm.generate(lm.step_fn_of(model), model.init_cache(1), longer, np.zeros((1, 2, 0), np.int32), special_token=8)
    with pytest.raises(ValueError, match=r"`seq` has 7 steps; the model holds at most max_len=6"):
        model(jnp.zeros((1, 2, 7), jnp.int32))
    _, cache = model.decode(model.init_cache(1), jnp.zeros((1, 2, 5), jnp.int32))
    with jax.transfer_guard_device_to_host("disallow"):  # the eager decode never reads its position back
        logits, _ = model.decode(cache, jnp.zeros((1, 2, 2), jnp.int32))
    assert np.isnan(np.asarray(logits)).all(), "a position past max_len gives NaN, not plausible logits"
    logits, _ = jax.jit(model.decode)(cache, jnp.zeros((1, 2, 2), jnp.int32))
    assert np.isnan(np.asarray(logits)).all(), "a traced position past max_len gives NaN, not plausible logits"


# --- errors -------------------------------------------------------------------------------------------------------
def test_generation_argument_errors():
    pattern = jp.DelayedPatternProvider(2).get_pattern(6)
    prompt = np.zeros((2, 2, 3), np.int32)

    def call(**kw):
        return lm.generate(step_fn, zeros(2), pattern, prompt, special_token=SPECIAL, **kw).codes

    with pytest.raises(ValueError, match=r"`prompt_lengths` must lie in \[0, T0=3\]; prompt_lengths\[1\] = 4"):
        call(prompt_lengths=[1, 4])
    with pytest.raises(ValueError, match=r"`prompt_lengths` has shape \(3,\); expected the batch shape \(2,\)"):
        call(prompt_lengths=[1, 2, 3])
    with pytest.raises(TypeError, match=r"`prompt_lengths` must be an integer array, got dtype float"):
        call(prompt_lengths=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"`eos_token`=8 equals `special_token`"):
        call(eos_token=SPECIAL)
    with pytest.raises(ValueError, match=r"`eos_token`=9 is not a code the model can sample \(card=8\)"):
        call(eos_token=9)
    with pytest.raises(ValueError, match=r"`eos_token` must be a non-negative int"):
        call(eos_token=-1)
    with pytest.raises(ValueError, match=r"`step_returns` must be 'logits' or 'tokens', got 'probs'"):
        call(step_returns="probs")
    with pytest.raises(ValueError, match=r"`cfg_coef` mixes logits"):
        call(step_returns="tokens", cfg_coef=3.0)
    with pytest.raises(ValueError, match=r"step_returns='tokens' the step function must return int tokens"):
        call(step_returns="tokens")  # it returns logits
    with pytest.raises(TypeError, match=r"`step_fn` must be callable"):
        lm.generate(3, zeros(2), pattern, prompt, special_token=SPECIAL)
    with pytest.raises(ValueError, match=r"`eos_token`=9 is not a code the model can sample"):
        lm.stream(step_fn, zeros(2), pattern, prompt, special_token=SPECIAL, chunk_steps=2, eos_token=9)
    with pytest.raises(ValueError, match=r"`chunk_steps` must be >= 1, got 0"):
        lm.stream(step_fn, zeros(2), pattern, prompt, special_token=SPECIAL, chunk_steps=0)
    with pytest.raises(TypeError, match=r"`progress` must be a bool or a callable"):
        lm.stream(step_fn, zeros(2), pattern, prompt, special_token=SPECIAL, chunk_steps=2, progress="yes")
    traced = jax.jit(lambda n: call(prompt_lengths=n))(jnp.asarray([-3, 9]))  # traced: clipped into [0, T0]
    assert_same(traced, call(prompt_lengths=[0, 3]))
