"""The one decode core under generate, stream and Engine (issue 28), and the edge defects of issue 25 it fixes.

Each test here failed before the change it names: per-example keys, settings given twice, a donated and
untraced chunk size, the sort-free sampler, patterns kept alive by module caches, the Engine's re-entry,
admission and bounded state, transfers in steady state, and the step-model protocol with a custom model.
"""

from __future__ import annotations

import copy
import functools
import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import compilations

import jax_patterns as jp
from jax_patterns import lm
from jax_patterns.lm import _decode, _generate

CARD, EOS = 16, 2


def counting_step(state, tokens):
    """Rows independent, fed a prefix at once or step by step alike: logits from a running sum of each row's tokens."""
    k = jnp.arange(tokens.shape[1])[None, :, None]
    h = state + ((tokens + 1) * (k * 5 + 7)).sum(axis=(1, 2))
    c = jnp.arange(CARD)[None, None, :]
    return ((h[:, None, None] * 13 + c * 5 + k * 3 + tokens[..., -1:] * 11) % 17).astype(jnp.float32), h


def zeros(batch):
    return jnp.zeros((batch,), jnp.int32)


PATTERN = jp.DelayedPatternProvider(3).get_pattern(10)
PROMPTS = np.random.default_rng(0).integers(0, CARD, (3, 3, 4)).astype(np.int32)
SAMPLE = dict(special_token=CARD, use_sampling=True, temp=1.3, top_k=5)


# --- generate and stream ----------------------------------------------------------------------------------------
def test_generate_always_returns_codes_and_lengths():
    out = lm.generate(counting_step, zeros(3), PATTERN, PROMPTS, special_token=CARD)
    assert isinstance(out, lm.Generated)
    codes, lengths = out
    assert codes.shape == (3, 3, 10) and lengths.tolist() == [10, 10, 10]
    with_eos = lm.generate(counting_step, zeros(3), PATTERN, PROMPTS, special_token=CARD, eos_token=EOS)
    assert isinstance(with_eos, lm.Generated)


@pytest.mark.parametrize("use_stream", [False, True])
def test_per_example_keys_give_each_example_itself_alone(use_stream):
    keys = jax.random.split(jax.random.key(7), 3)

    def run(prompt, key, batch):
        if use_stream:
            chunks = lm.stream(counting_step, zeros(batch), PATTERN, prompt, chunk_steps=3, key=key, **SAMPLE)
            return np.concatenate(list(chunks), axis=-1)
        return np.asarray(lm.generate(counting_step, zeros(batch), PATTERN, prompt, key=key, **SAMPLE).codes)

    together = run(PROMPTS, keys, 3)
    for b in range(3):
        np.testing.assert_array_equal(together[b], run(PROMPTS[b : b + 1], keys[b], 1)[0], err_msg=f"example {b}")
    assert not np.array_equal(together[0, :, 4:], together[1, :, 4:]), "different keys draw differently"


def test_keys_of_another_shape_are_refused_naming_key():
    with pytest.raises(ValueError, match=r"`key` has shape \(2,\); expected one key, or one per example \(3,\)"):
        lm.generate(counting_step, zeros(3), PATTERN, PROMPTS, key=jax.random.split(jax.random.key(0), 2), **SAMPLE)
    with pytest.raises(TypeError, match=r"`key` must be a PRNG key"):
        lm.generate(counting_step, zeros(3), PATTERN, PROMPTS, key=np.zeros(3, np.float32), **SAMPLE)


def test_a_raw_uint32_key_is_wrapped_without_a_deprecation_warning():
    raw = jax.random.key_data(jax.random.key(3))
    wrapped = lm.generate(counting_step, zeros(3), PATTERN, PROMPTS, key=raw, **SAMPLE).codes  # warnings are errors
    typed = lm.generate(counting_step, zeros(3), PATTERN, PROMPTS, key=jax.random.key(3), **SAMPLE).codes
    np.testing.assert_array_equal(wrapped, typed)


@pytest.mark.parametrize(
    "given",
    [dict(temp=1.0), dict(temp=0.7), dict(top_k=0), dict(cfg_coef=None), dict(top_p=0.0, top_k=3)],
    ids=str,
)
def test_a_keyword_beside_sampling_always_raises(given):
    with pytest.raises(ValueError, match=r"either as `sampling=` or as keywords, not both"):
        lm.generate(counting_step, zeros(3), PATTERN, PROMPTS, special_token=CARD, sampling=lm.Sampling(), **given)


def test_options_object_equals_the_keywords_and_refuses_both():
    options = lm.DecodeOptions(special_token=CARD, eos_token=EOS, use_sampling=True, sampling=lm.Sampling(temp=0.9))
    key = jax.random.key(1)
    by_options = lm.generate(counting_step, zeros(3), PATTERN, PROMPTS, options, key=key)
    by_keywords = lm.generate(
        counting_step,
        zeros(3),
        PATTERN,
        PROMPTS,
        key=key,
        special_token=CARD,
        eos_token=EOS,
        use_sampling=True,
        temp=0.9,
    )
    np.testing.assert_array_equal(by_options.codes, by_keywords.codes)
    streamed = np.concatenate(
        list(lm.stream(counting_step, zeros(3), PATTERN, PROMPTS, options, chunk_steps=4, key=key)), -1
    )
    np.testing.assert_array_equal(streamed, by_options.codes)
    with pytest.raises(ValueError, match=r"either as `options=` or as keywords, not both \(got eos_token"):
        lm.generate(counting_step, zeros(3), PATTERN, PROMPTS, options, eos_token=3)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'tmp'"):
        lm.generate(counting_step, zeros(3), PATTERN, PROMPTS, special_token=CARD, tmp=1.0)
    with pytest.raises(TypeError, match=r"needs `special_token`"):
        lm.generate(counting_step, zeros(3), PATTERN, PROMPTS)
    with pytest.raises(TypeError, match=r"`options` must be an lm.DecodeOptions"):
        lm.generate(counting_step, zeros(3), PATTERN, PROMPTS, {"special_token": CARD})


def test_stream_donates_its_state_and_one_program_serves_every_chunk_size():
    options = lm.DecodeOptions(special_token=CARD)
    fn, (prompt, lengths, key, values), cfg = _generate.prepare(counting_step, PATTERN, PROMPTS, options, None, None)
    carry = _decode.run_first(fn, zeros(3), prompt, lengths, key, values, cfg=cfg)[0]
    after = _decode.run_chunk(fn, carry, jnp.int32(2), cfg=cfg)[0]
    assert carry.seq.is_deleted() and carry.state.is_deleted(), "the chunk program donates the carry"
    assert not after.seq.is_deleted()
    want = lm.generate(counting_step, zeros(3), PATTERN, PROMPTS, options).codes

    def streams():
        for chunk_steps in (1, 2, 5, 2**31 - 1):  # the largest int32 clamps to the pattern: it ends, one chunk
            got = np.concatenate(
                list(lm.stream(counting_step, zeros(3), PATTERN, PROMPTS, options, chunk_steps=chunk_steps)), -1
            )
            np.testing.assert_array_equal(got, want, err_msg=f"chunk_steps={chunk_steps}")

    streams()
    assert not [name for name in compilations(streams) if "run_chunk" in name], "chunk sizes are traced"


def test_the_sampler_sorts_nothing_and_its_truncation_equals_the_sorted_rule():
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3, 64)), jnp.float32)
    jaxpr = str(jax.make_jaxpr(lambda x, k: lm.sample_next_token(x, k, True, 1.0, 5, 0.9))(logits, jax.random.key(0)))
    assert "sort" not in jaxpr
    probs = np.asarray(jax.nn.softmax(logits, -1), np.float64)
    for top_k, top_p in ((0, 0.7), (5, 0.0), (70, 0.0), (0, 0.0)):
        keys = jax.random.split(jax.random.key(2), 300)
        drawn = np.asarray(jax.vmap(lambda k, a=top_k, b=top_p: lm.sample_next_token(logits, k, True, 1.0, a, b))(keys))
        order = np.argsort(-probs, axis=-1, kind="stable")
        ranks = np.argsort(order, axis=-1)
        sorted_probs = np.take_along_axis(probs, order, -1)
        ahead = np.take_along_axis(np.cumsum(sorted_probs, -1) - sorted_probs, ranks, -1)
        allowed = ahead <= top_p if top_p else (ranks < top_k if top_k else np.ones_like(ahead, bool))
        hit = np.take_along_axis(np.broadcast_to(allowed, (300, *allowed.shape)), drawn[..., None], -1)
        assert hit.all(), (top_k, top_p)


def test_decode_tables_live_on_the_pattern_not_in_a_module_cache():
    pattern = copy.copy(jp.DelayedPatternProvider(3).get_pattern(123))  # a twin: the provider caches the original
    _decode.tables(pattern)
    _generate.start_step(pattern, 4, True)
    assert _decode.tables(pattern) is _decode.tables(pattern)
    alive = weakref.ref(pattern)
    del pattern
    gc.collect()
    assert alive() is None, "a module-level cache keeps the pattern alive"


# --- the step-model protocol --------------------------------------------------------------------------------------
class Bigram(nnx.Module):
    """The custom model of docs/generation.md: implements the step-model protocol (max_len, init_cache, decode)."""

    def __init__(self, n_q: int, card: int, max_len: int, *, rngs: nnx.Rngs):
        self.max_len, self.n_q, self.card = max_len, n_q, card
        self.table = nnx.Param(jax.random.normal(rngs.params(), (n_q, card + 1, card)))

    def init_cache(self, batch: int, *, per_row: bool = False):
        return {"index": jnp.zeros((batch,) if per_row else (), jnp.int32)}

    def decode(self, cache, tokens, info=None):  # tokens [B, K, n] -> logits of the last step [B, K, card]
        logits = self.table[...][jnp.arange(self.n_q)[None, :], tokens[:, :, -1]]
        return logits, {"index": cache["index"] + tokens.shape[-1]}


def test_a_custom_model_implementing_the_protocol_is_generated_streamed_and_served():
    model = Bigram(3, CARD, max_len=32, rngs=nnx.Rngs(0))
    assert isinstance(model, lm.StepModel)
    step_fn = lm.step_fn_of(model)
    codes, _ = lm.generate(step_fn, model.init_cache(3), PATTERN, PROMPTS, special_token=CARD)
    streamed = np.concatenate(
        list(lm.stream(step_fn, model.init_cache(3), PATTERN, PROMPTS, special_token=CARD, chunk_steps=3)), -1
    )
    np.testing.assert_array_equal(streamed, codes)
    engine = lm.Engine(step_fn, lambda b: model.init_cache(b, per_row=True), jp.DelayedPatternProvider(3), slots=2,
                       max_timesteps=10, special_token=CARD)  # fmt: skip
    ids = [engine.submit(p) for p in PROMPTS]
    got: dict[int, list] = {rid: [] for rid in ids}
    for rid, frames, _ in engine:
        got[rid].append(frames)
    for b, rid in enumerate(ids):
        np.testing.assert_array_equal(np.concatenate(got[rid], -1), codes[b])
    with pytest.raises(TypeError, match=r"`model` must be a Flax NNX module with `decode`"):
        lm.step_fn_of(None)
    with pytest.raises(TypeError, match=r"`model` must be a Flax NNX module with `condition`"):
        lm.condition_fn_of(lambda c, x: c)
    with pytest.raises(TypeError, match=r"has no `condition` method"):
        lm.condition_fn_of(model)


# --- the Engine ----------------------------------------------------------------------------------------------------
def make_engine(provider=None, **options):
    base = dict(slots=2, max_timesteps=10, special_token=CARD, eos_token=EOS, chunk_steps=3)
    return lm.Engine(counting_step, zeros, provider or jp.DelayedPatternProvider(3), **{**base, **options})


def test_a_consumer_that_breaks_and_comes_back_gets_each_request_finished_once():
    prompts = [PROMPTS[b, :, : b + 1] for b in range(3)] * 2
    reference = make_engine()
    for p in prompts:
        reference.submit(p)
    want: dict[int, list] = {}
    for rid, frames, _ in reference:
        want.setdefault(rid, []).append(frames)
    engine = make_engine()
    for p in prompts[:2]:
        engine.submit(p)
    got: dict[int, list] = {}
    finished: list[int] = []
    rounds = 0
    while len(finished) < len(prompts):
        rounds += 1
        assert rounds < 100, "the engine does not move: a livelock"
        for rid, frames, done in engine:
            got.setdefault(rid, []).append(frames)
            if done:
                assert rid not in finished, f"request {rid} finished twice"
                finished.append(rid)
                if engine._next_id < len(prompts):
                    engine.submit(prompts[engine._next_id])
                break  # leave at each finished request, then come back
    assert sorted(finished) == list(range(len(prompts)))
    for rid in want:
        np.testing.assert_array_equal(np.concatenate(got[rid], -1), np.concatenate(want[rid], -1), err_msg=str(rid))


def test_submit_refuses_what_generate_refuses_and_an_error_never_drops_other_requests():
    engine = make_engine(jp.ParallelPatternProvider(3, empty_initial=-1))
    with pytest.raises(ValueError, match=r"starts with a special token"):
        lm.generate(counting_step, zeros(1), engine.pattern, np.zeros((1, 3, 0), np.int32), special_token=CARD)
    with pytest.raises(ValueError, match=r"starts with a special token"):
        engine.submit(np.zeros((3, 0), np.int32))
    assert not engine._waiting

    def failing(state, tokens):  # fails for a prompt of 2 frames only: its first call is fed 3 steps
        logits, state = counting_step(state, tokens)
        return (logits if tokens.shape[-1] != 3 else logits[..., 0]), state

    engine = lm.Engine(failing, zeros, jp.DelayedPatternProvider(3), slots=1, max_timesteps=10, special_token=CARD,
                       prompt_buckets=[1, 2])  # fmt: skip
    first = engine.submit(PROMPTS[0, :, :1])
    with pytest.raises(ValueError, match=r"logits"):
        engine.submit(PROMPTS[1, :, :2])  # its prefill would fail: refused before it is queued
    second = engine.submit(PROMPTS[2, :, :1])
    served = {rid for rid, _, done in engine if done}
    assert served == {first, second}


def test_submit_checks_codes_in_their_own_dtype():
    engine = make_engine()
    wraps_to_special = np.full((3, 2), 2**32 + CARD, np.int64)
    assert (wraps_to_special.astype(np.int32) == CARD).all()
    with pytest.raises(ValueError, match=r"`prompt` holds the code 4294967312"):
        engine.submit(wraps_to_special)
    with pytest.raises(ValueError, match=r"`prompt` holds the code 4294967312"):
        lm.generate(counting_step, zeros(1), PATTERN, wraps_to_special[None], special_token=CARD)
    with pytest.raises(ValueError, match=r"`prompt` holds the code -1"):
        lm.generate(counting_step, zeros(1), PATTERN, np.full((1, 3, 2), -1), special_token=CARD)


def test_prompt_codes_past_the_models_vocabulary_are_refused():
    """CodecLM embeds card + 1 ids per codebook from one table: a prompt code of card + 1 would read codebook 1's
    row. A step function that declares `input_vocab` (`step_fn_of`) has prompts checked against it, in generate,
    stream and Engine.submit."""
    model = lm.CodecLM(n_q=2, card=5, dim=8, num_layers=1, num_heads=2, max_len=16, rngs=nnx.Rngs(0))
    step, pattern = lm.step_fn_of(model), jp.DelayedPatternProvider(2).get_pattern(6)
    past = np.array([[[6], [0]]], np.int32)
    for run in (lm.generate, lambda *a, **k: list(lm.stream(*a, chunk_steps=2, **k))):
        with pytest.raises(ValueError, match=r"`prompt` holds the code 6; codes must lie in \[0, 6\)"):
            run(step, model.init_cache(1), pattern, past, special_token=5)
    engine = lm.Engine(step, functools.partial(model.init_cache, per_row=True), jp.DelayedPatternProvider(2),
                       special_token=5, slots=1, max_timesteps=6)  # fmt: skip
    with pytest.raises(ValueError, match=r"`prompt` holds the code 6"):
        engine.submit(past[0])
    codes = lm.generate(step, model.init_cache(1), pattern, np.array([[[4], [0]]], np.int32), special_token=5).codes
    assert codes.shape == (1, 2, 6)


def test_huge_chunk_steps_are_clamped_and_served():
    engine = make_engine(chunk_steps=2**31)
    assert engine.chunk_steps == len(engine.pattern)
    rid = engine.submit(PROMPTS[0])
    frames = np.concatenate([f for r, f, _ in engine if r == rid], -1)
    want, length = lm.generate(counting_step, zeros(1), engine.pattern, PROMPTS[:1], special_token=CARD, eos_token=EOS)
    np.testing.assert_array_equal(frames, np.asarray(want)[0, :, : int(length[0])])


def test_the_engines_memory_of_requests_is_bounded():
    engine = make_engine(history=4, slots=3)
    for i in range(30):
        engine.submit(PROMPTS[i % 3, :, : i % 4])
    assert sum(done for _, _, done in engine) == 30
    assert list(engine.entered) == [26, 27, 28, 29]
    assert not engine._outbox and not engine._waiting


@pytest.mark.parametrize("limit", [3, 6])
def test_a_request_limit_equals_generate_with_the_shorter_pattern_for_a_delayed_pattern(limit):
    provider = jp.DelayedPatternProvider(3)
    engine = lm.Engine(counting_step, zeros, provider, slots=2, max_timesteps=10, special_token=CARD)
    rid = engine.submit(PROMPTS[0, :, :2], max_timesteps=limit)
    frames = np.concatenate([f for r, f, _ in engine if r == rid], -1)
    want = lm.generate(counting_step, zeros(1), provider.get_pattern(limit), PROMPTS[:1, :, :2], special_token=CARD)
    np.testing.assert_array_equal(frames, np.asarray(want.codes)[0])


def test_guidance_per_request_equals_generate_alone():
    def guided_step(state, tokens):  # conditional rows see their running sum, null rows a constant shift
        logits, h = counting_step(state, tokens)
        half = tokens.shape[0] // 2
        return logits + jnp.concatenate([jnp.zeros_like(logits[:half]), 3.0 * jnp.ones_like(logits[half:])]), h

    engine = lm.Engine(guided_step, zeros, jp.DelayedPatternProvider(3), slots=2, max_timesteps=10,
                       special_token=CARD, eos_token=EOS, cfg_coef=2.0, chunk_steps=2)  # fmt: skip
    coefs = [2.0, 0.5, -1.0]
    ids = [engine.submit(PROMPTS[b], sampling=lm.Sampling(cfg_coef=coefs[b]) if b else None) for b in range(3)]
    got: dict[int, list] = {}
    for rid, frames, _ in engine:
        got.setdefault(rid, []).append(frames)
    for b, rid in enumerate(ids):
        codes, length = lm.generate(guided_step, zeros(2), engine.pattern, PROMPTS[b : b + 1], special_token=CARD,
                                    eos_token=EOS, cfg_coef=coefs[b])  # fmt: skip
        np.testing.assert_array_equal(np.concatenate(got[rid], -1), np.asarray(codes)[0, :, : int(length[0])])
    plain = make_engine()
    with pytest.raises(ValueError, match=r"`sampling.cfg_coef`: this engine runs without guidance"):
        plain.submit(PROMPTS[0], sampling=lm.Sampling(cfg_coef=2.0))


def test_engine_errors_name_their_argument():
    with pytest.raises(TypeError, match=r"`prompt_buckets` must be a sequence of ints"):
        make_engine(prompt_buckets=4)
    with pytest.raises(ValueError, match=r"`conditions` given, but the engine has no `condition_fn`"):
        make_engine().submit(PROMPTS[0], conditions={"x": np.zeros((1, 2))})


# --- steady state: nothing moves implicitly --------------------------------------------------------------------------
def test_no_implicit_transfer_after_warm_up_with_host_settings():
    settings = dict(special_token=CARD, use_sampling=True, temp=1.0, top_k=3, top_p=0.0, eos_token=EOS)
    key = jax.random.key(0)
    state = jax.device_put(zeros(3))
    prompts = jax.device_put(PROMPTS)

    def everything():
        lm.generate(counting_step, state, PATTERN, prompts, key=key, **settings).codes.block_until_ready()
        list(lm.stream(counting_step, state, PATTERN, prompts, key=key, chunk_steps=4, **settings))
        engine.submit(PROMPTS[0])
        list(engine)
        magnet().block_until_ready()

    engine = make_engine(use_sampling=True, temp=1.0)
    magnet_prompt = jax.device_put(np.zeros((1, 2, 2), np.int32))

    def magnet():
        return lm.magnet_generate(lambda t, s: jax.nn.one_hot(t % 8, 8), magnet_prompt, timesteps=6, mask_token=8,
                                  key=key, decoding_steps=(2, 2), temp=3.0, top_p=0.9, max_cfg_coef=3.0)  # fmt: skip

    everything()
    with jax.transfer_guard("disallow"):
        everything()
