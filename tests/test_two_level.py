"""`lm.two_level_step`: a two-level decoder compiled into one step, equal to the eager torch nested loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from helpers import assert_same, compilations

import jax_patterns as jp
from jax_patterns import lm
from jax_patterns.bench import _two_level as toy_models

K, CARD, T = 4, 16, 6
OPTIONS = dict(special_token=CARD, step_info=True, step_returns="tokens")
LEVEL0 = lm.Sampling(temp=0.8, top_k=5)  # codebook 0's settings
DEPTH = lm.Sampling(temp=1.3, top_p=0.9)  # codebooks 1..K-1's


@pytest.fixture(scope="module")
def model() -> toy_models.TwoLevelToy:
    return toy_models.toy(K, CARD, dim=32, depth_dim=16, max_len=T + 1, seed=1)


def empty(batch: int) -> np.ndarray:
    return np.zeros((batch, K, 0), np.int32)


def test_greedy_equals_the_torch_nested_loop(model):
    """Greedy: `lm.generate` with the compiled two-level step equals the torch loop over frames and codebooks (the
    depth cache made anew per frame), token for token."""
    pattern = jp.ParallelPatternProvider(K).get_pattern(T)
    codes = lm.generate(lm.two_level_step_of(model), model.init_cache(3), pattern, empty(3), **OPTIONS).codes
    expected = toy_models.torch_generate(model, 3, T)
    assert_same(codes, expected)
    assert len(np.unique(expected)) > 4 and len(np.unique(expected[:, 1:])) > 2  # depth levels differ from level 0


def audiocraft_choice(sampling: lm.Sampling, noise: np.ndarray):
    """audiocraft's sampler in torch (temperature; top-p by a sorted cumulative sum, else top-k by `torch.topk`),
    drawing with the given Gumbel noise: `argmax(log p + g)` is the categorical draw `jax.random.categorical`
    makes with that noise."""

    def choose(logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits / sampling.temp, dim=-1)
        if sampling.top_p > 0:
            ordered, order = torch.sort(probs, dim=-1, descending=True, stable=True)
            ahead = torch.cumsum(ordered, dim=-1) - ordered
            keep = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, ahead <= sampling.top_p)
        else:
            keep = probs >= torch.topk(probs, sampling.top_k, dim=-1).values[..., -1:]
        return torch.argmax(torch.log(torch.where(keep, probs, 0.0)) + torch.from_numpy(noise), dim=-1)

    return choose


def gumbel_of(key: jax.Array, frame: int, level: int, batch: int) -> np.ndarray:
    """The noise the decode draws level `level` of frame `frame` (step `frame + 1`) with: `[B, card]`."""
    if key.ndim == 0:  # one key: the batch drawn together
        level_key = jax.random.fold_in(jax.random.fold_in(key, frame + 1), level)
        return np.array(jax.random.gumbel(level_key, (batch, 1, CARD)))[:, 0]
    rows = [jax.random.fold_in(jax.random.fold_in(k, frame + 1), level) for k in key]  # each row alone
    return np.concatenate([np.array(jax.random.gumbel(k, (1, 1, CARD)))[:, 0] for k in rows])


@pytest.mark.parametrize("per_example", [False, True])
def test_sampling_equals_the_torch_loop_with_the_same_noise(model, per_example):
    """Sampling, each level with its own settings (codebook 0: temperature and top-k; the depth levels: another
    temperature and top-p) and its own key (`fold_in(step key, level)`): equal to the torch loop drawing with the
    same Gumbel noise, with one key or one key per example."""
    batch = 3
    key = jax.random.key(7)
    keys = jax.random.split(key, batch) if per_example else key
    step = lm.two_level_step_of(model, use_sampling=True, sampling=LEVEL0, depth_sampling=DEPTH)
    pattern = jp.ParallelPatternProvider(K).get_pattern(T)
    codes = lm.generate(step, model.init_cache(batch), pattern, empty(batch), key=keys, **OPTIONS).codes

    def choose(logits, t, level):
        settings = LEVEL0 if level == 0 else DEPTH
        return audiocraft_choice(settings, gumbel_of(keys, t, level, batch))(logits)

    expected = toy_models.torch_generate(model, batch, T, choose)
    assert_same(codes, expected)
    greedy = toy_models.torch_generate(model, batch, T)
    assert not np.array_equal(expected, greedy)  # sampling drew something else than the argmax


def test_each_example_equals_itself_alone_in_generate_stream_and_the_engine(model):
    """Per-example keys and prompts, an EOS code: each example of `generate` equals `generate` of it alone with its
    key; `stream`'s frames concatenate to `generate`'s codes; each `lm.Engine` request (2 slots, 3 requests, its
    prompt fed from the engine's one prefill bucket) equals `generate` of it alone."""
    batch, eos = 3, 3
    pattern = jp.ParallelPatternProvider(K).get_pattern(T)
    prompt = np.random.default_rng(0).integers(0, CARD, (batch, K, 2)).astype(np.int32)
    prompt_lengths = [0, 2, 1]
    keys = jax.random.split(jax.random.key(3), batch)
    step = lm.two_level_step_of(model, use_sampling=True, sampling=LEVEL0, depth_sampling=DEPTH)
    options = OPTIONS | dict(eos_token=eos)
    args = (step, model.init_cache(batch), pattern, prompt)
    codes, lengths = lm.generate(*args, key=keys, prompt_lengths=prompt_lengths, **options)
    alone = [  # a batch of one (its prompt, the same program for each)
        lm.generate(
            step,
            model.init_cache(1),
            pattern,
            prompt[b : b + 1],
            key=keys[b],
            prompt_lengths=prompt_lengths[b : b + 1],
            **options,
        )  # fmt: skip
        for b in range(batch)
    ]
    for b, one in enumerate(alone):
        assert_same(codes[b], one.codes[0], f"example {b}")
        assert int(lengths[b]) == int(one.lengths[0])
    assert len(set(np.asarray(lengths).tolist())) > 1  # the EOS ended examples at different frames
    frames = lm.stream(*args, key=keys, prompt_lengths=prompt_lengths, chunk_steps=3, **options)
    assert_same(np.concatenate(list(frames), axis=-1), codes)
    engine = lm.Engine(step, lambda b: model.init_cache(b, per_row=True), jp.ParallelPatternProvider(K), slots=2,
                       max_timesteps=T, chunk_steps=3, prompt_buckets=(), **options)  # fmt: skip
    ids = [engine.submit(prompt[b, :, : prompt_lengths[b]], key=keys[b]) for b in range(batch)]
    served: dict[int, list] = {rid: [] for rid in ids}
    for rid, out, _ in engine:
        served[rid].append(out)
    for b, rid in enumerate(ids):
        n = int(lengths[b])
        assert_same(np.concatenate(served[rid], axis=-1), np.asarray(codes[b])[:, :n], f"request {rid}")


def test_one_program_for_new_parameters_and_settings(model):
    """The step is a pytree: new sampling values or new parameters compile nothing (one program per shape)."""
    pattern = jp.ParallelPatternProvider(K).get_pattern(T)
    key = jax.random.key(0)

    def run(temp: float) -> None:  # the sampling test's program (compiled there when it runs first)
        step = lm.two_level_step_of(model, use_sampling=True, sampling=lm.Sampling(temp=temp, top_k=5),
                                    depth_sampling=lm.Sampling(temp=temp, top_p=0.8))  # fmt: skip
        lm.generate(step, model.init_cache(3), pattern, empty(3), key=key, **OPTIONS).codes.block_until_ready()

    run(1.0)
    assert compilations(lambda: run(0.7)) == []
    other = toy_models.toy(K, CARD, dim=32, depth_dim=16, max_len=T + 1, seed=5)  # same structure, new weights
    step = lm.two_level_step_of(other)
    greedy = lm.generate(step, other.init_cache(3), pattern, empty(3), **OPTIONS)  # the greedy test's program
    assert compilations(lambda: lm.generate(step, other.init_cache(3), pattern, empty(3), **OPTIONS)) == []
    assert_same(greedy.codes, toy_models.torch_generate(other, 3, T))


def counting(state, tokens, info):
    """A backbone whose codebook 0 is the number of frames seen (mod 5); its hidden state is that code."""
    del info
    state = state + tokens.shape[-1]
    return jax.nn.one_hot(state % 5, 5) * 9.0, state % 5, state


def plus_one(previous, token, level):
    """A depth model: codebook `level` is codebook `level - 1`'s code plus `level`."""
    return jax.nn.one_hot((token + level) % 5, 5) * 9.0, previous


@pytest.mark.parametrize("n_q", [1, 3])
def test_plain_functions_and_k1(n_q):
    pattern = jp.ParallelPatternProvider(n_q).get_pattern(3)
    step = lm.two_level_step(counting, plus_one, n_q=n_q, depth_init=lambda hidden: hidden)
    codes = lm.generate(step, jnp.zeros(2, jnp.int32), pattern, np.zeros((2, n_q, 0), np.int32), special_token=5,
                        step_info=True, step_returns="tokens").codes  # fmt: skip
    expected = [[1, 2, 3], [2, 3, 4], [4, 0, 1]][:n_q]
    assert np.asarray(codes).tolist() == [expected, expected]


def test_bad_inputs_name_their_argument(model):
    pattern = jp.ParallelPatternProvider(3).get_pattern(3)
    prompt = np.zeros((2, 3, 0), np.int32)
    state = jnp.zeros(2, jnp.int32)

    def make(**kwargs):
        return lm.two_level_step(counting, plus_one, depth_init=lambda h: h, **({"n_q": 3} | kwargs))

    with pytest.raises(ValueError, match=r"the decode feeds 3 codebooks; the two-level step has n_q=2"):
        lm.generate(make(n_q=2), state, pattern, prompt, special_token=5, step_info=True, step_returns="tokens")
    with pytest.raises(ValueError, match=r"step_info=True and step_returns='tokens'"):
        lm.generate(make(), state, pattern, prompt, special_token=5, step_returns="tokens")
    with pytest.raises(ValueError, match=r"`depth_sampling.cfg_coef`=3.0: a two-level step has no guidance"):
        make(depth_sampling=lm.Sampling(cfg_coef=3.0))
    with pytest.raises(ValueError, match=r"`sampling.temp` must be a scalar .*got shape \(2,\)"):
        make(sampling=lm.Sampling(temp=np.ones(2)))
    with pytest.raises(ValueError, match=r"`depth_sampling.top_p` must lie in \[0.0, 1.0\], got 1.5"):
        make(depth_sampling=lm.Sampling(top_p=1.5))
    with pytest.raises(TypeError, match=r"`depth_sampling.top_k` must be an int"):
        make(depth_sampling=lm.Sampling(top_k=2.5))
    with pytest.raises(TypeError, match=r"`sampling` must be an lm.Sampling, got dict"):
        make(sampling={"temp": 1.0})
    with pytest.raises(ValueError, match=r"`n_q` must be >= 1, got 0"):
        make(n_q=0)
    with pytest.raises(TypeError, match=r"`depth_fn` must be callable"):
        lm.two_level_step(counting, None, n_q=3, depth_init=lambda h: h)
    with pytest.raises(ValueError, match=r"the step function samples itself .*: pass a `key`"):
        lm.generate(make(use_sampling=True), state, pattern, prompt, special_token=5, step_info=True,
                    step_returns="tokens")  # fmt: skip

    def wide(previous, token, level):
        return jnp.zeros((2, 1, 5)), previous

    with pytest.raises(ValueError, match=r"`depth_fn` must return logits \[B=2, card\] for one codebook"):
        step = lm.two_level_step(counting, wide, n_q=3, depth_init=lambda h: h)
        lm.generate(step, state, pattern, prompt, special_token=5, step_info=True, step_returns="tokens")
    with pytest.raises(TypeError, match=r"`model` must be a Flax NNX module"):
        lm.two_level_step_of(object())
    with pytest.raises(TypeError, match=r"has no `backbone` method"):
        lm.two_level_step_of(lm.CodecLM(2, 4, dim=8, num_layers=1, num_heads=2, max_len=4, rngs=nnx.Rngs(0)))
    assert isinstance(model, lm.TwoLevelModel)


def test_the_backbone_max_len_is_checked_against_the_pattern(model):
    too_long = jp.ParallelPatternProvider(K).get_pattern(T + 2)  # T + 3 steps: T + 2 fed to a backbone of T + 1
    with pytest.raises(ValueError, match=rf"fed {T + 2} of them, more than its max_len={T + 1}"):
        lm.generate(lm.two_level_step_of(model), model.init_cache(1), too_long, empty(1), **OPTIONS)
