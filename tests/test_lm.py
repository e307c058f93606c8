"""jax_patterns.lm against torch transcriptions of audiocraft: predictions, CE and its gradient, generation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax import nnx
from helpers import assert_same

import jax_patterns as jp
from jax_patterns import _baselines, lm
from torch_compat import lm as torch_lm

CARD = 8
PROVIDERS = [
    jp.DelayedPatternProvider(3),
    jp.DelayedPatternProvider(3, [0, 2, 2], flatten_first=1, empty_initial=1),
    jp.ParallelPatternProvider(2),
    jp.UnrolledPatternProvider(3, [0, 1, 1], [0, 2, 2]),
    jp.CoarseFirstPattern(3, [0, 1]),
    jp.MusicLMPattern(4, 2),
]
RNG = np.random.default_rng(0)


def table_model(n_q: int):
    """The same deterministic model in jax and torch: logits from a lookup table, codebooks mixed."""
    table = RNG.standard_normal((n_q, CARD + 1, CARD)).astype(np.float32)

    def jax_model(seq):
        picked = jnp.stack([jnp.asarray(table)[k][seq[:, k]] for k in range(n_q)], axis=1)
        return picked + jnp.roll(picked, 1, axis=1)

    def torch_model(seq):
        picked = torch.stack([torch.from_numpy(table)[k][seq[:, k]] for k in range(n_q)], dim=1)
        return picked + torch.roll(picked, 1, dims=1)

    return jax_model, torch_model


@pytest.mark.parametrize("provider", PROVIDERS, ids=repr)
@pytest.mark.parametrize("kovs", [True, False])
def test_compute_predictions_equals_audiocraft(provider, kovs):
    pattern = provider.get_pattern(9)
    codes = RNG.integers(0, CARD, (2, provider.n_q, 9))
    jax_model, torch_model = table_model(provider.n_q)
    logits, mask = lm.compute_predictions(jax_model, codes.astype(np.int32), pattern, CARD, kovs)
    expected, expected_mask = torch_lm.compute_predictions(torch_model, torch.from_numpy(codes), pattern, CARD, kovs)
    assert_same(logits, expected.numpy())
    assert_same(mask, expected_mask.numpy())


@pytest.mark.parametrize("provider", PROVIDERS, ids=repr)
@pytest.mark.parametrize("kovs", [True, False])
def test_pattern_cross_entropy_and_gradient_equal_audiocraft(provider, kovs):
    pattern = provider.get_pattern(9)
    steps = pattern.valid_steps if kovs else len(pattern)
    codes = RNG.integers(0, CARD, (3, provider.n_q, 9))
    padding = RNG.random((3, provider.n_q, 9)) < 0.8
    logits_seq = RNG.standard_normal((3, provider.n_q, steps, CARD)).astype(np.float32)

    def loss(x):
        return lm.pattern_cross_entropy(x, codes.astype(np.int32), pattern, keep_only_valid_steps=kovs, mask=padding)

    (ce, per_codebook), grad = jax.value_and_grad(loss, has_aux=True)(logits_seq)
    x = torch.from_numpy(logits_seq).requires_grad_(True)
    reverted, model_mask = torch_lm.compute_predictions(lambda s: x, torch.from_numpy(codes), pattern, CARD, kovs)
    expected, expected_per_codebook = torch_lm.cross_entropy(
        reverted, torch.from_numpy(codes), torch.from_numpy(padding) & model_mask
    )
    expected.backward()
    np.testing.assert_allclose(float(ce), float(expected.detach()), rtol=1e-6)
    np.testing.assert_allclose(per_codebook, torch.stack(expected_per_codebook).numpy(), rtol=1e-6)
    assert x.grad is not None
    np.testing.assert_allclose(grad, x.grad.numpy(), rtol=1e-5, atol=1e-8)


def test_pattern_cross_entropy_with_lengths_equals_reverting_per_example():
    provider = jp.CoarseFirstPattern(3, [0, 1])
    pattern = provider.get_pattern(10)
    lengths = np.array([10, 3, 0, 7])
    codes = RNG.integers(0, CARD, (4, 3, 10)).astype(np.int32)
    logits_seq = RNG.standard_normal((4, 3, pattern.valid_steps, CARD)).astype(np.float32)
    ce, per_codebook = lm.pattern_cross_entropy(logits_seq, codes, pattern, lengths=lengths)
    reverted, _, mask = pattern.revert_pattern_logits(logits_seq, float("nan"), True, card_axis=-1, lengths=lengths)
    expected, expected_per_codebook = _baselines.reverted_cross_entropy(reverted, jnp.asarray(codes), mask)
    np.testing.assert_allclose(per_codebook, expected_per_codebook, rtol=1e-6)
    np.testing.assert_allclose(ce, expected, rtol=1e-6)
    # and example by example against the torch transcription on each example's own pattern
    total, count = np.zeros(3), np.zeros(3)
    for b, length in enumerate(lengths):
        own = provider.get_pattern(int(length))
        if length == 0:
            continue
        x = torch.from_numpy(logits_seq[b : b + 1, :, : own.valid_steps])
        rev, m = torch_lm.compute_predictions(
            lambda s, x=x: x, torch.from_numpy(codes[b : b + 1, :, :length]), own, CARD
        )
        logp = torch.log_softmax(torch.nan_to_num(rev), dim=-1)
        nll = -torch.gather(logp, -1, torch.from_numpy(codes[b : b + 1, :, :length]).long()[..., None])[..., 0]
        total += (nll * m).sum(dim=(0, 2)).numpy()
        count += m.sum(dim=(0, 2)).numpy()
    np.testing.assert_allclose(per_codebook, total / count, rtol=1e-5)


def _move_right(x: np.ndarray, shifts: np.ndarray, axis: int) -> np.ndarray:
    """Each example's row rolled right along `axis` by its shift (right padding -> left padding)."""
    return np.stack([np.roll(row, int(n), axis=axis if axis < 0 else axis - 1) for row, n in zip(x, shifts)])


@pytest.mark.parametrize(
    "provider", [jp.CoarseFirstPattern(3, [0, 1]), jp.DelayedPatternProvider(3, [2, 0, 1], any_order=True)], ids=repr
)
def test_left_padded_loss_and_predictions_equal_the_right_padded_ones(provider):
    """`padding_side="left"`: the loss, its gradient and the predictions of the same examples, right-aligned."""
    pattern = provider.get_pattern(8)
    lengths = np.array([8, 3, 0, 5])
    steps = pattern.valid_steps
    own_steps = np.array([provider.get_pattern(int(n)).valid_steps for n in lengths])
    codes = RNG.integers(0, CARD, (4, 3, 8)).astype(np.int32)
    logits_seq = RNG.standard_normal((4, 3, steps, CARD)).astype(np.float32)
    left_codes = _move_right(codes, 8 - lengths, axis=-1)
    left_logits = _move_right(logits_seq, steps - own_steps, axis=-2)

    def loss(x, c, n, side):
        return lm.pattern_cross_entropy(x, c, pattern, lengths=n, padding_side=side)

    right, right_per = loss(logits_seq, codes, lengths, "right")
    right_grad = jax.grad(lambda x: loss(x, codes, lengths, "right")[0])(logits_seq)
    left_fn = jax.jit(loss, static_argnums=3)
    left, left_per = left_fn(left_logits, left_codes, jnp.asarray(lengths), "left")
    left_grad = jax.grad(lambda x: left_fn(x, left_codes, jnp.asarray(lengths), "left")[0])(left_logits)
    np.testing.assert_allclose(left, right, rtol=1e-6)
    np.testing.assert_allclose(left_per, right_per, rtol=1e-6)
    np.testing.assert_allclose(left_grad, _move_right(np.asarray(right_grad), steps - own_steps, axis=-2), rtol=1e-6)

    def model(x):  # logits that depend on the input step by step, so a misplaced step shows
        return jax.nn.one_hot(x % CARD, CARD) * 3.0 + jnp.cos(x[..., None].astype(jnp.float32))

    right_pred, right_mask = lm.compute_predictions(model, codes, pattern, CARD, lengths=lengths)
    left_pred, left_mask = lm.compute_predictions(
        model, left_codes, pattern, CARD, lengths=lengths, padding_side="left"
    )
    assert_same(left_mask, _move_right(np.asarray(right_mask), 8 - lengths, axis=-1))
    assert_same(left_pred, _move_right(np.asarray(right_pred), 8 - lengths, axis=-2))


@pytest.mark.parametrize("side", ["right", "left"])
def test_cross_entropy_on_the_inputs_without_their_last_step(side):
    """transformers trains on `ids[..., :-1]`: with a leading special step, S - 1 logit steps give the same loss."""
    provider = jp.DelayedPatternProvider(3, [0, 2, 1], any_order=True)
    pattern = provider.get_pattern(6)
    lengths = np.array([6, 2, 4])
    codes = RNG.integers(0, CARD, (3, 3, 6)).astype(np.int32)
    logits = RNG.standard_normal((3, 3, len(pattern), CARD)).astype(np.float32)
    full = lm.pattern_cross_entropy(
        logits, codes, pattern, keep_only_valid_steps=False, lengths=lengths, padding_side=side
    )
    cut = lm.pattern_cross_entropy(
        logits[:, :, :-1], codes, pattern, keep_only_valid_steps=False, lengths=lengths, padding_side=side
    )
    np.testing.assert_allclose(cut[1], full[1], rtol=1e-6)
    no_special = jp.DelayedPatternProvider(3, [0, 2, 1], empty_initial=-1, any_order=True).get_pattern(6)
    with pytest.raises(ValueError, match=r"S=7; the pattern needs K=3, S=8 \(keep_only_valid_steps=False\)"):
        lm.pattern_cross_entropy(logits[:, :, :-2], codes, no_special, keep_only_valid_steps=False)


def test_token_average_is_the_mean_over_scored_codes():
    """`average="tokens"`: transformers' `CrossEntropyLoss` mean over every scored code, not per codebook first."""
    provider = jp.DelayedPatternProvider(3, [0, 1, 1], empty_initial=-1)  # Moshi: codebooks with unequal counts
    pattern = provider.get_pattern(6)
    lengths = np.array([6, 2, 5])
    codes = RNG.integers(0, CARD, (3, 3, 6)).astype(np.int32)
    logits = RNG.standard_normal((3, 3, pattern.valid_steps, CARD)).astype(np.float32)
    ce, per_codebook = lm.pattern_cross_entropy(logits, codes, pattern, lengths=lengths, average="tokens")
    reverted, _, mask = pattern.revert_pattern_logits(logits, float("nan"), True, card_axis=-1, lengths=lengths)
    logp = torch.log_softmax(torch.from_numpy(np.nan_to_num(np.asarray(reverted))), dim=-1)
    nll = -torch.gather(logp, -1, torch.from_numpy(codes).long()[..., None])[..., 0].numpy()
    m = np.asarray(mask)
    np.testing.assert_allclose(ce, nll[m].mean(), rtol=1e-6)
    np.testing.assert_allclose(per_codebook, [nll[:, q][m[:, q]].mean() for q in range(3)], rtol=1e-6)
    assert len({int(m[:, q].sum()) for q in range(3)}) > 1  # unequal counts: the two averages differ
    codebooks = lm.pattern_cross_entropy(logits, codes, pattern, lengths=lengths)[0]
    assert abs(float(codebooks) - float(ce)) > 1e-4
    with pytest.raises(ValueError, match=r'`average` must be "codebooks" or "tokens", got \'mean\''):
        lm.pattern_cross_entropy(logits, codes, pattern, lengths=lengths, average="mean")


def test_cross_entropy_errors():
    pattern = jp.DelayedPatternProvider(2).get_pattern(5)
    with pytest.raises(ValueError, match=r"`logits_seq` has K=2, S=7; the pattern needs K=2, S=6"):
        lm.pattern_cross_entropy(np.zeros((1, 2, 7, 4), np.float32), np.zeros((1, 2, 5), np.int32), pattern)
    with pytest.raises(TypeError, match=r"`codes` must hold integer codes"):
        lm.pattern_cross_entropy(np.zeros((1, 2, 6, 4), np.float32), np.zeros((1, 2, 5), np.float32), pattern)


# --- generation ------------------------------------------------------------------------------------------------
def counting_model():
    """A deterministic model with exact integer logits, as a KV-cached jax step and a full-prefix torch model."""

    def logits_of(h, last, rows, xp):
        k = xp.arange(last.shape[1])[None, :, None]
        c = xp.arange(CARD)[None, None, :]
        r = rows[:, None, None]
        return (h[:, None, None] * 7 + last[..., None] * 3 + k * 5 + c * 11) % 13 + (r * c) % 5

    def step_fn(state, tokens):
        h = state + tokens.sum(axis=(1, 2))
        return logits_of(h, tokens[..., -1], jnp.arange(tokens.shape[0]), jnp).astype(jnp.float32), h

    def torch_model(seq):
        h = torch.cumsum(seq.sum(dim=1), dim=-1)  # [B, n]
        rows = torch.arange(seq.shape[0])
        steps = [logits_of(h[:, j], seq[..., j], rows, torch) for j in range(seq.shape[-1])]
        return torch.stack(steps, dim=2).float()

    return step_fn, torch_model


@pytest.mark.parametrize("provider", PROVIDERS, ids=repr)
@pytest.mark.parametrize("prompt_len", [0, 1, 4])
def test_greedy_generation_equals_audiocraft_loop(provider, prompt_len):
    pattern = provider.get_pattern(7)
    prompt = RNG.integers(0, CARD, (2, provider.n_q, prompt_len))
    step_fn, torch_model = counting_model()
    state = jnp.zeros((2,), jnp.int32)
    out = jax.jit(lambda s, p: lm.generate(step_fn, s, pattern, p, special_token=CARD).codes)(state, prompt)
    expected = torch_lm.generate(torch_model, pattern, torch.from_numpy(prompt), CARD)
    assert_same(out, expected.numpy())
    assert_same(np.asarray(out)[..., :prompt_len], prompt)
    top1 = lm.generate(
        step_fn, state, pattern, prompt, special_token=CARD, key=jax.random.key(3), use_sampling=True, top_k=1
    ).codes
    assert_same(top1, out)


def test_classifier_free_guidance_equals_audiocraft():
    pattern = jp.DelayedPatternProvider(3).get_pattern(6)
    prompt = RNG.integers(0, CARD, (2, 3, 2))
    step_fn, torch_model = counting_model()
    out = lm.generate(step_fn, jnp.zeros((4,), jnp.int32), pattern, prompt, special_token=CARD, cfg_coef=3.0).codes
    expected = torch_lm.generate(torch_model, pattern, torch.from_numpy(prompt), CARD, cfg_coef=3.0)
    assert_same(out, expected.numpy())


def test_sampling_respects_top_k_and_top_p():
    logits = jnp.log(jnp.asarray([[[0.5, 0.3, 0.15, 0.05]]]))
    keys = jax.random.split(jax.random.key(0), 400)
    top2 = jax.vmap(lambda k: lm.sample_next_token(logits, k, True, 1.0, 2, 0.0))(keys)
    assert set(np.unique(top2).tolist()) == {0, 1}
    nucleus = jax.vmap(lambda k: lm.sample_next_token(logits, k, True, 1.0, 0, 0.6))(keys)
    assert set(np.unique(nucleus).tolist()) == {0, 1}  # 0.5 alone is below 0.6: keep the second too
    assert set(np.unique(jax.vmap(lambda k: lm.sample_next_token(logits, k, True, 1.0, 0, 0.0))(keys))) == {0, 1, 2, 3}


def test_generation_errors():
    pattern = jp.DelayedPatternProvider(2).get_pattern(4)
    step_fn, _ = counting_model()
    with pytest.raises(ValueError, match=r"`prompt` has T0=4 timesteps; expected fewer than timesteps=4"):
        lm.generate(step_fn, 0, pattern, np.zeros((1, 2, 4), np.int32), special_token=CARD)
    with pytest.raises(ValueError, match=r"needs a PRNG `key`"):
        lm.generate(step_fn, 0, pattern, np.zeros((1, 2, 0), np.int32), special_token=CARD, use_sampling=True)
    omitted = jp.ParallelPatternProvider(2, empty_initial=-1).get_pattern(4)
    with pytest.raises(ValueError, match=r"needs a pattern that starts with a special token"):
        lm.generate(step_fn, 0, omitted, np.zeros((1, 2, 0), np.int32), special_token=CARD)


# --- the NNX model ---------------------------------------------------------------------------------------------
def small_model(n_q: int = 2, max_len: int = 32) -> lm.CodecLM:
    return lm.CodecLM(n_q, CARD, dim=32, num_layers=2, num_heads=2, max_len=max_len, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("per_row", [False, True])
def test_kv_cached_decode_equals_the_full_forward(per_row):
    """A scalar cache position, or one per row (`lm.Engine`'s slots), gives the full forward's logits."""
    model = small_model()
    seq = jnp.asarray(RNG.integers(0, CARD + 1, (2, 2, 9)), jnp.int32)
    full = model(seq)
    cache = model.init_cache(2, per_row=per_row)
    decode = nnx.jit(lambda m, cache, tokens: m.decode(cache, tokens))  # one program per shape
    first, cache = decode(model, cache, seq[..., :4])
    steps = [first]
    for j in range(4, 9):
        logits, cache = decode(model, cache, seq[..., j : j + 1])
        steps.append(logits)
    np.testing.assert_allclose(jnp.stack(steps, axis=2), full[:, :, 3:], rtol=2e-5, atol=2e-5)


def test_codec_lm_refuses_inputs_it_would_misread():
    """Host codes and positions are checked in their own dtype (an int32 cast wrapped 2**32 + 8 into the special
    token); settings are never truthy or truncated stand-ins."""
    model = small_model(max_len=8)
    seq = RNG.integers(0, CARD + 1, (1, 2, 5))
    segments, positions = np.array([[1, 1, 1, 2, 2]]), np.array([[0, 1, 2, 0, 1]])
    np.testing.assert_array_equal(model(seq), model(seq.astype(np.int32)))  # int64 codes that fit int32: the same
    wrapped = seq.copy()
    wrapped[0, 1, 0] = 2**32 + CARD
    for call in (model, model.hidden):
        with pytest.raises(ValueError, match="`seq` holds the code 4294967304"):
            call(wrapped)
        with pytest.raises(ValueError, match=r"`seq` holds the code 9"):
            call(np.where(np.arange(5) == 0, CARD + 1, seq))  # one code past the card, whatever RNG drew
        with pytest.raises(ValueError, match="`positions` holds 8"):  # read the last position's row before
            call(seq, segments, np.array([[0, 1, 2, 0, 8]]))
        with pytest.raises(ValueError, match="`positions` holds 4294967296"):
            call(seq, segments, np.array([[0, 1, 2, 0, 2**32]]))
        with pytest.raises(TypeError, match="`segment_ids`"):
            call(seq, segments.astype(np.float32), positions)
    with pytest.raises(ValueError, match="`seq` has 9 steps"):
        model(RNG.integers(0, CARD + 1, (1, 2, 9)))
    for stage, error in ((2.5, TypeError), (-1, ValueError), (2, ValueError), (np.array([1]), TypeError)):
        with pytest.raises(error, match="`stage`"):  # 2.5 and -1 were accepted
            model(seq, stage=stage)
    cache = model.init_cache(1)
    with pytest.raises(ValueError, match="`tokens` holds the code 4294967304"):
        model.decode(cache, wrapped)
    with pytest.raises(ValueError, match=r"`cache\['keys'\]`"):
        model.decode(model.init_cache(2), seq)
    with pytest.raises(TypeError, match="`per_row`"):  # "yes" was truthy: a per-row cache
        model.init_cache(1, per_row="yes")
    with pytest.raises(TypeError, match="`dtype`"):  # None was float32
        model.init_cache(1, dtype=None)


def test_training_lowers_the_loss_and_generation_samples():
    pattern = jp.DelayedPatternProvider(2).get_pattern(12)
    model = small_model()
    graphdef, params = nnx.split(model)
    codes = jnp.asarray(np.tile(np.arange(12) % 4, (8, 2, 1)), jnp.int32)  # an easy periodic signal
    seq, _, _ = pattern.build_pattern_sequence(codes, CARD, True)
    tx = optax.adam(3e-3)
    opt_state = tx.init(params)

    def loss_fn(params):
        return lm.pattern_cross_entropy(nnx.merge(graphdef, params)(seq), codes, pattern)[0]

    @jax.jit
    def train_step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    losses = []
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes Python floats and int steps
        for _ in range(30):
            params, opt_state, loss = train_step(params, opt_state)
            losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0], losses
    trained = nnx.merge(graphdef, params)
    out = lm.generate(
        lm.step_fn_of(trained),
        trained.init_cache(8),
        pattern,
        codes[..., :4],
        special_token=CARD,
        key=jax.random.key(0),
        use_sampling=True,
        temp=0.7,
        top_k=3,
    ).codes
    assert out.shape == (8, 2, 12) and (np.asarray(out) >= 0).all() and (np.asarray(out) < CARD).all()
    assert_same(np.asarray(out)[..., :4], codes[..., :4])


def test_cross_entropy_refuses_out_of_range_targets_and_never_returns_a_number_for_them():
    pattern = jp.DelayedPatternProvider(2).get_pattern(3)
    logits = np.zeros((1, 2, 4, 4), np.float32)
    codes = np.array([[[0, 4, 1], [1, 1, 1]]])  # the special token (card) left in the targets at a scored position
    with pytest.raises(ValueError, match=r"`codes`\[0, 0, 1\] = 4 is a target outside \[0, card=4\)"):
        lm.pattern_cross_entropy(logits, codes, pattern)
    ce, per_codebook = lm.pattern_cross_entropy(jnp.asarray(logits), jnp.asarray(codes), pattern)  # device codes
    assert np.isnan(ce) and np.isnan(per_codebook[0]) and np.isfinite(per_codebook[1])
    traced = jax.jit(lambda c: lm.pattern_cross_entropy(logits, c, pattern)[1])(codes)
    assert np.isnan(traced[0]) and np.isfinite(traced[1])
    masked = np.ones(codes.shape, bool)
    masked[0, 0, 1] = False  # the same target, not scored: fine, and equal to dropping it
    ce, _ = lm.pattern_cross_entropy(logits, codes, pattern, mask=masked)
    assert np.isclose(float(ce), np.log(4.0))
    short = lm.pattern_cross_entropy(logits, codes, pattern, lengths=np.array([1]))  # t=1 is past the length
    assert np.isclose(float(short[1][0]), np.log(4.0))  # codebook 1 has no valid step at L=1: NaN, as audiocraft


@pytest.mark.thorough
def test_cross_entropy_works_when_k_s_card_exceeds_int32():
    # K * S * card = 2 * 16385 * 65536 > 2**31: flat indexes would overflow; the CE indexes per step, then per code.
    k, t, card = 2, 16384, 65536
    pattern = jp.ParallelPatternProvider(k).get_pattern(t)
    shape = jax.ShapeDtypeStruct((1, k, t + 1, card), jnp.float32)
    codes = jax.ShapeDtypeStruct((1, k, t), jnp.int32)
    out = jax.eval_shape(lambda x, c: lm.pattern_cross_entropy(x, c, pattern), shape, codes)
    assert out[1].shape == (k,)
    # and the values at the far end of such a tensor (8 GiB of float32, made inside the program): codebook 1's last
    # step predicts the last code
    target = np.zeros((1, k, t), np.int32)
    target[0, 1, -1] = card - 1

    def loss() -> jax.Array:
        q, s, c = (jax.lax.broadcasted_iota(jnp.int32, shape.shape, d) for d in (1, 2, 3))
        hot = (q == 1) & (s == t - 1) & (c == card - 1)
        return lm.pattern_cross_entropy(jnp.where(hot, 30.0, 0.0), target, pattern)[1]

    expected = (np.log(card) * (t - 1) + (np.log(np.exp(30.0) + card - 1) - 30.0)) / t
    np.testing.assert_allclose(np.asarray(jax.jit(loss)()), [np.log(card), expected], rtol=1e-5)


def test_cross_entropy_of_an_empty_batch_is_nan_like_audiocraft():
    pattern = jp.DelayedPatternProvider(2).get_pattern(3)
    ce, per_codebook = lm.pattern_cross_entropy(np.zeros((0, 2, 4, 5), np.float32), np.zeros((0, 2, 3), int), pattern)
    assert np.isnan(ce) and per_codebook.shape == (2,) and np.isnan(per_codebook).all()
    ce, _ = lm.pattern_cross_entropy(
        np.zeros((0, 2, 4, 5), np.float32), np.zeros((0, 2, 3), int), pattern, lengths=np.zeros(0, int)
    )
    assert np.isnan(ce)


def test_segment_losses_never_turn_device_values_they_cannot_check_into_a_number():
    logits = jnp.asarray(RNG.standard_normal((2, 2, 4, CARD)), jnp.float32)
    targets = np.array([[[1, 2, 3, -1], [0, 1, 7, -1]], [[4, 5, -1, -1], [6, 2, -1, -1]]])
    ids = np.array([[1, 1, 2, 0], [1, 1, 0, 0]])
    good = lm.packed_segment_cross_entropy(logits, targets, ids, 2)
    assert np.isfinite(np.asarray(good)[:, 0]).all() and np.isfinite(float(good[0, 1]))
    bad = targets.copy()
    bad[0, 0, 2] = CARD  # a target outside [0, card): host raises, device gives NaN for its segment only
    with pytest.raises(ValueError, match=r"`targets`\[0, 0, 2\] = 8; expected -1 or a code in \[0, card=8\)"):
        lm.packed_segment_cross_entropy(logits, bad, ids, 2)
    got = np.asarray(lm.packed_segment_cross_entropy(logits, jnp.asarray(bad), ids, 2))
    assert np.isnan(got[0, 1]) and np.array_equal(got[0, 0], good[0, 0]) and np.array_equal(got[1], good[1], True)
    lost = ids.copy()
    lost[1, 1] = 3  # beyond `segments`: its target would be scored nowhere; host raises, device gives NaN for the row
    with pytest.raises(ValueError, match=r"`segment_ids`\[1, 1\] = 3; expected an id in \[1, segments=2\]"):
        lm.packed_segment_cross_entropy(logits, targets, lost, 2)
    got = np.asarray(lm.packed_segment_cross_entropy(logits, targets, jnp.asarray(lost), 2))
    assert np.isnan(got[1]).all() and np.array_equal(got[0], good[0])
    padding = ids.copy()
    padding[0, 2] = 0  # a target at a padding position (id 0)
    with pytest.raises(ValueError, match=r"`segment_ids`\[0, 2\] = 0; expected an id in \[1, segments=2\]"):
        lm.packed_segment_cross_entropy(logits, targets, padding, 2)


def test_compute_predictions_refuses_what_it_would_feed_the_model_wrong():
    pattern = jp.DelayedPatternProvider(2).get_pattern(3)
    seen = []

    def model(seq):
        seen.append(np.asarray(seq))
        return jnp.zeros((*seq.shape, CARD))

    codes = np.array([[[1, 2, 3], [2**32 + 1, 2, 3]]], np.int64)  # an int32 cast would feed the model the code 1
    with pytest.raises(ValueError, match=r"`codes` holds the code 4294967297"):
        lm.compute_predictions(model, codes, pattern, CARD)
    assert seen == []
    with pytest.raises(ValueError, match=r"`apply_fn` returned logits of shape \(1, 2, 3, 8\) for the sequence of "
                                         r"shape \(1, 2, 4\)"):  # fmt: skip
        lm.compute_predictions(lambda seq: jnp.zeros((*seq.shape[:2], 3, CARD)), codes % 4, pattern, CARD)


def test_check_lengths_reports_the_real_minimum():
    from jax.experimental import checkify

    def run(n):
        return checkify.checkify(jax.jit(lambda n: jp.check_lengths(n, 8)))(n)[0].get()

    assert run(jnp.array([3, 9])) == "lengths must lie in [0, 8]; got min 3 and max 9 (`check` failed)"
    assert run(jnp.array([3, -2])) == "lengths must lie in [0, 8]; got min -2 and max 3 (`check` failed)"
    assert run(jnp.zeros(0, jnp.int32)) is None and run(jnp.array([0, 8])) is None
    with pytest.raises(ValueError, match=r"`lengths` must lie in \[0, T_max=8\]; lengths\[1\] = 4294967296"):
        jp.check_lengths(np.array([1, 2**32]), 8)  # host lengths: checked at once, in their own dtype


def test_eager_cross_entropy_moves_nothing_to_the_device_in_steady_state():
    pattern = jp.CoarseFirstPattern(3, [0, 1]).get_pattern(6)
    logits = jnp.ones((2, 3, pattern.valid_steps, 5))
    codes = jnp.ones((2, 3, 6), jnp.int32)
    lengths, mask = jnp.array([6, 3]), jnp.ones((2, 3, 6), bool)
    for _ in range(2):  # the first call compiles
        lm.pattern_cross_entropy(logits, codes, pattern)
        lm.pattern_cross_entropy(logits, codes, pattern, mask=mask, lengths=lengths)
    with jax.transfer_guard_host_to_device("disallow"):
        lm.pattern_cross_entropy(logits, codes, pattern)[0].block_until_ready()
        lm.pattern_cross_entropy(logits, codes, pattern, mask=mask, lengths=lengths)[0].block_until_ready()
