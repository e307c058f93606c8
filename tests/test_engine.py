"""lm.Engine: continuous batching over per-slot pattern timelines, exact against `generate` alone per request."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import FAMILIES, compilations

import jax_patterns as jp
from jax_patterns import lm

CARD, EOS = 16, 2


def counting_step(state, tokens):
    """Rows independent, and fed a prefix at once or step by step alike (as a KV-cached model): each row's logits
    depend on its own history only, through a running sum of its tokens."""
    k = jnp.arange(tokens.shape[1])[None, :, None]
    h = state + ((tokens + 1) * (k * 5 + 7)).sum(axis=(1, 2))
    c = jnp.arange(CARD)[None, None, :]
    return ((h[:, None, None] * 13 + c * 5 + k * 3 + tokens[..., -1:] * 11) % 17).astype(jnp.float32), h


def init_state(batch):
    return jnp.zeros((batch,), jnp.int32)


def prompts_for(n_q: int, lengths, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, CARD, (n_q, n)).astype(np.int32) for n in lengths]


def serve(engine: lm.Engine) -> dict[int, np.ndarray]:
    """Runs the engine; each request's frames concatenated; checks each request finishes exactly once, last."""
    frames: dict[int, list[np.ndarray]] = {}
    done: set[int] = set()
    for rid, chunk, finished in engine:
        assert rid not in done, f"request {rid} yielded after its finished=True"
        assert chunk.dtype == np.int32 and chunk.ndim == 2
        frames.setdefault(rid, []).append(chunk)
        if finished:
            done.add(rid)
    assert done == set(frames)
    return {rid: np.concatenate(parts, axis=1) for rid, parts in frames.items()}


def alone(step_fn, state, pattern, prompt, **options) -> np.ndarray:
    """`generate` of one request alone: its codes up to its length."""
    codes, lengths = lm.generate(step_fn, state, pattern, prompt[None], **options)
    return np.asarray(codes[0, :, : int(lengths[0])])


def batch_alone(step_fn, init, pattern, prompts, **options) -> list[np.ndarray]:
    """Each request's codes up to its length, from one `generate` call with per-example prompts: equal to
    `generate` of each alone when the rows are independent (`test_generate` proves that equality)."""
    width = max(p.shape[1] for p in prompts)
    padded = np.stack([np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in prompts])
    lengths = np.asarray([p.shape[1] for p in prompts], np.int32)
    codes, ends = lm.generate(step_fn, init(len(prompts)), pattern, padded, prompt_lengths=lengths, **options)
    return [np.asarray(codes[b, :, : int(ends[b])]) for b in range(len(prompts))]


def check_engine(provider, slots, chunk_steps, seed, **options):
    timesteps = 14
    pattern = provider.get_pattern(timesteps)
    prompts = prompts_for(provider.n_q, [0, 3, 9, 1, 13, 5, 0, 7], seed=seed)
    engine = lm.Engine(
        counting_step,
        init_state,
        provider,
        slots=slots,
        max_timesteps=timesteps,
        special_token=CARD,
        eos_token=EOS,
        chunk_steps=chunk_steps,
        **options,
    )
    ids = [engine.submit(p) for p in prompts]
    got = serve(engine)
    wants = batch_alone(counting_step, init_state, pattern, prompts, special_token=CARD, eos_token=EOS, **options)
    for rid, want in zip(ids, wants):
        np.testing.assert_array_equal(got[rid], want, err_msg=f"request {rid}")
    assert len({w.shape[1] for w in wants}) > 1, "EOS at different steps: the test needs requests of different lengths"


@pytest.mark.parametrize("provider", FAMILIES, ids=repr)
def test_each_request_equals_generate_alone_every_family(provider):
    check_engine(provider, 3, 5, seed=1, fill_after=CARD + 1)


@pytest.mark.parametrize(("slots", "chunk_steps"), [(1, 3), (8, 16), (5, 1)])
@pytest.mark.parametrize("provider", [FAMILIES[0], FAMILIES[4]], ids=repr)
def test_each_request_equals_generate_alone_any_slots_and_chunks(provider, slots, chunk_steps):
    check_engine(provider, slots, chunk_steps, seed=slots)


def test_equal_to_generate_of_each_request_alone():
    """The direct comparison, one request at a time, for one family (the batched form above is equal to it)."""
    provider = FAMILIES[3]
    pattern = provider.get_pattern(14)
    prompts = prompts_for(provider.n_q, [0, 6, 2], seed=9)
    engine = lm.Engine(
        counting_step, init_state, provider, slots=2, max_timesteps=14, special_token=CARD, eos_token=EOS, chunk_steps=4
    )
    ids = [engine.submit(p) for p in prompts]
    got = serve(engine)
    for rid, prompt in zip(ids, prompts):
        want = alone(counting_step, init_state(1), pattern, prompt, special_token=CARD, eos_token=EOS)
        np.testing.assert_array_equal(got[rid], want)


def test_arrival_order_and_late_submissions_change_nothing():
    provider = jp.DelayedPatternProvider(3)
    prompts = prompts_for(3, [4, 0, 11, 2, 6], seed=4)
    results = []
    for order in ([0, 1, 2, 3, 4], [4, 2, 0, 3, 1]):
        engine = lm.Engine(
            counting_step,
            init_state,
            provider,
            slots=2,
            max_timesteps=16,
            special_token=CARD,
            eos_token=EOS,
            chunk_steps=4,
        )
        ids = {engine.submit(prompts[i]): i for i in order[:2]}
        out: dict[int, list] = {}
        for rid, frames, _ in engine:
            out.setdefault(ids[rid], []).append(frames)
            for i in order[len(ids) : len(ids) + 1]:  # one more request arrives while serving
                ids[engine.submit(prompts[i])] = i
        results.append({i: np.concatenate(v, axis=1) for i, v in out.items()})
    assert sorted(results[0]) == list(range(5))
    for i in range(5):
        np.testing.assert_array_equal(results[0][i], results[1][i])


def test_sampling_per_request_settings_and_keys():
    provider = jp.DelayedPatternProvider(2)
    pattern = provider.get_pattern(12)
    prompts = prompts_for(2, [0, 5, 2, 8], seed=7)
    settings = [lm.Sampling(1.0, 0, 0.0), lm.Sampling(0.7, 4, 0.0), lm.Sampling(1.3, 0, 0.8), lm.Sampling(0.0)]
    engine = lm.Engine(
        counting_step,
        init_state,
        provider,
        slots=2,
        max_timesteps=12,
        special_token=CARD,
        eos_token=EOS,
        use_sampling=True,
        key=jax.random.key(11),
        chunk_steps=3,
    )
    keys = [None, jax.random.key(5), None, None]
    ids = [engine.submit(p, sampling=s, key=k) for p, s, k in zip(prompts, settings, keys)]
    got = serve(engine)
    for rid, prompt, s, k in zip(ids, prompts, settings, keys):
        key = jax.random.fold_in(jax.random.key(11), rid) if k is None else k
        want = alone(
            counting_step,
            init_state(1),
            pattern,
            prompt,
            special_token=CARD,
            eos_token=EOS,
            use_sampling=True,
            key=key,
            sampling=s,
        )
        np.testing.assert_array_equal(got[rid], want)


def test_a_request_without_eos_ends_at_its_max_timesteps():
    provider = jp.DelayedPatternProvider(3)
    engine = lm.Engine(
        counting_step, init_state, provider, slots=2, max_timesteps=20, special_token=CARD, chunk_steps=4
    )  # no eos_token: every request runs to its limit
    prompts = prompts_for(3, [2, 0, 5], seed=1)
    ids = [
        engine.submit(prompts[0]),
        engine.submit(prompts[1], max_timesteps=9),
        engine.submit(prompts[2], max_timesteps=6),
    ]
    got = serve(engine)
    for rid, prompt, limit in zip(ids, prompts, (20, 9, 6)):
        assert got[rid].shape == (3, limit)
        want = lm.generate(
            counting_step, init_state(1), provider.get_pattern(limit), prompt[None], special_token=CARD
        ).codes
        np.testing.assert_array_equal(got[rid], np.asarray(want[0]))


def test_one_program_for_the_workload():
    provider = jp.DelayedPatternProvider(3)
    engine = lm.Engine(
        counting_step,
        init_state,
        provider,
        slots=2,
        max_timesteps=24,
        special_token=CARD,
        eos_token=EOS,
        chunk_steps=4,
        prompt_buckets=[4],
    )
    for p in prompts_for(3, [0, 5, 1], seed=2):
        engine.submit(p, sampling=lm.Sampling(temp=0.5))
    first = compilations(lambda: serve(engine))
    assert len([n for n in first if "_run_chunk" in n]) == 1
    assert len([n for n in first if "_prefill" in n]) == 2  # buckets 0 and 4
    for p in prompts_for(3, [3, 7, 0, 12, 6], seed=3):  # new lengths, settings, limits: nothing new
        engine.submit(p, sampling=lm.Sampling(temp=1.5, top_k=3), max_timesteps=20)
    again = compilations(lambda: serve(engine))
    assert [n for n in again if "_run_chunk" in n or "_prefill" in n or "_insert" in n] == []


def test_no_implicit_transfer_inside_chunks():
    provider = jp.DelayedPatternProvider(2)
    engine = lm.Engine(
        counting_step, init_state, provider, slots=2, max_timesteps=10, special_token=CARD, eos_token=EOS, chunk_steps=3
    )
    for p in prompts_for(2, [0, 4, 2], seed=5):
        engine.submit(p)
    serve(engine)  # compiled
    for p in prompts_for(2, [1, 3, 0], seed=6):
        engine.submit(p)
    with jax.transfer_guard("disallow"):
        got = serve(engine)
    assert len(got) == 3


def test_codec_lm_serves_with_per_row_positions():
    provider = jp.DelayedPatternProvider(2)
    pattern = provider.get_pattern(10)
    model = lm.CodecLM(2, CARD, dim=16, num_layers=1, num_heads=2, max_len=len(pattern), rngs=nnx.Rngs(0))
    step_fn = lm.step_fn_of(model)
    engine = lm.Engine(
        step_fn,
        lambda b: model.init_cache(b, per_row=True),
        provider,
        slots=2,
        max_timesteps=10,
        special_token=CARD,
        eos_token=EOS,
        chunk_steps=4,
    )
    prompts = prompts_for(2, [0, 4, 2, 7], seed=8)
    ids = [engine.submit(p) for p in prompts]
    got = serve(engine)
    for rid, prompt in zip(ids, prompts):
        want = alone(step_fn, model.init_cache(1), pattern, prompt, special_token=CARD, eos_token=EOS)
        np.testing.assert_array_equal(got[rid], want)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda e: e.submit(np.zeros((3, 2), np.int32)), ValueError, r"`prompt` must be codes \[K=2, T\]"),
        (lambda e: e.submit(np.zeros((2, 2))), TypeError, r"`prompt` must hold integer codes"),
        (lambda e: e.submit(np.zeros((2, 2), np.int32), max_timesteps=11), ValueError, r"beyond the engine's"),
        (lambda e: e.submit(np.zeros((2, 10), np.int32)), ValueError, r"T0=10 frames; expected fewer than"),
        (lambda e: e.submit(np.full((2, 2), CARD, np.int32)), ValueError, r"holds the code 16, a special id"),
        (
            lambda e: e.submit(np.zeros((2, 2), np.int32), sampling=lm.Sampling(cfg_coef=3.0)),
            ValueError,
            r"`sampling.cfg_coef`",
        ),
        (lambda e: e.submit(np.zeros((2, 2), np.int32), sampling=lm.Sampling(top_p=2.0)), ValueError, r"`top_p`"),
        (lambda e: e.submit(np.zeros((2, 2), np.int32), max_timesteps=0), ValueError, r"`max_timesteps` must be"),
    ],
)
def test_bad_requests_raise_at_submit(call, error, match):
    engine = lm.Engine(
        counting_step, init_state, jp.DelayedPatternProvider(2), slots=2, max_timesteps=10, special_token=CARD
    )
    with pytest.raises(error, match=match):
        call(engine)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (dict(init_state=lambda b: jnp.zeros((), jnp.int32)), ValueError, r"needs the slot axis first"),
        (dict(init_state=lambda b: {"index": jnp.zeros(()), "x": jnp.zeros((b,))}), ValueError, r"\['index'\]"),
        (dict(slots=0), ValueError, r"`slots` must be >= 1"),
        (dict(chunk_steps=2.5), TypeError, r"`chunk_steps` must be an int"),
        (dict(max_timesteps=None), TypeError, r"`max_timesteps` must be an int"),
        (dict(special_token=4.5), TypeError, r"`special_token`"),
        (dict(eos_token=CARD), ValueError, r"`eos_token`=16 equals `special_token`"),
        (dict(pattern_provider=3), TypeError, r"`pattern_provider` must be a pattern provider"),
        (dict(prompt_buckets=[-1]), ValueError, r"`prompt_buckets\[0\]` must be >= 0"),
    ],
)
def test_bad_construction_raises(options, error, match):
    base = dict(
        step_fn=counting_step,
        init_state=init_state,
        pattern_provider=jp.DelayedPatternProvider(2),
        slots=2,
        max_timesteps=10,
        special_token=CARD,
    )
    merged = {**base, **options}
    with pytest.raises(error, match=match):
        lm.Engine(merged.pop("step_fn"), merged.pop("init_state"), merged.pop("pattern_provider"), **merged)


def test_step_info_gives_each_slot_its_own_step():
    """A step function reading `StepInfo.step` (`[B]` in the engine, a scalar in `generate`) and `special`."""

    def step(state, tokens, info):
        logits, state = counting_step(state, tokens)
        step_of_row = jnp.broadcast_to(jnp.reshape(info.step, (-1,)), state.shape)
        codes = jnp.arange(CARD)[None, None, :]
        special = info.special[..., None].astype(jnp.int32)
        bias = ((step_of_row[:, None, None] * 3 + special * 5 + codes) % 4).astype(jnp.float32)
        if info.reset is not None:  # the engine: a bool per slot
            assert info.reset.shape == state.shape and info.step.shape == state.shape
        return logits + bias, state

    provider = jp.DelayedPatternProvider(3)
    pattern = provider.get_pattern(12)
    prompts = prompts_for(3, [0, 4, 2, 9, 1], seed=12)
    engine = lm.Engine(
        step,
        init_state,
        provider,
        slots=2,
        max_timesteps=12,
        special_token=CARD,
        eos_token=EOS,
        chunk_steps=5,
        step_info=True,
    )
    ids = [engine.submit(p) for p in prompts]
    got = serve(engine)
    wants = batch_alone(step, init_state, pattern, prompts, special_token=CARD, eos_token=EOS, step_info=True)
    for rid, want in zip(ids, wants):
        np.testing.assert_array_equal(got[rid], want)


def test_a_raw_uint32_key_is_the_same_key():
    provider = jp.DelayedPatternProvider(2)
    outs = []
    for key in (jax.random.PRNGKey(3), jax.random.wrap_key_data(jax.random.PRNGKey(3))):
        engine = lm.Engine(
            counting_step,
            init_state,
            provider,
            slots=2,
            max_timesteps=8,
            special_token=CARD,
            use_sampling=True,
            key=key,
            chunk_steps=4,
        )
        for p in prompts_for(2, [0, 3], seed=13):
            engine.submit(p)
        outs.append(serve(engine))
    for rid in outs[0]:
        np.testing.assert_array_equal(outs[0][rid], outs[1][rid])
