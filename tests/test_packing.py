"""Packing: segments with their own patterns, round trips, and packed training equal to separate examples."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import FAMILIES, assert_same
from hypothesis import given
from hypothesis import strategies as st
from strategies import providers

import jax_patterns as jp
from jax_patterns import lm

CARD = 8
RNG = np.random.default_rng(0)


def examples_of(provider, lengths):
    return [RNG.integers(0, CARD, (provider.n_q, n)) for n in lengths]


@pytest.mark.parametrize("provider", FAMILIES, ids=repr)
@pytest.mark.parametrize("kovs", [True, False])
def test_a_segment_is_the_examples_own_build_and_logit_steps(provider, kovs):
    for length in (1, 4, 7):
        codes = RNG.integers(0, CARD, (provider.n_q, length))
        pattern = provider.get_pattern(length)
        tokens, targets = jp.segment(codes, provider, CARD, kovs)
        seq, _, _ = pattern.build_pattern_sequence(codes, CARD, kovs)
        assert_same(tokens, seq)
        steps, mask = pattern.logit_steps(kovs)
        expected = np.full(tokens.shape, -1)
        for q, t in zip(*np.nonzero(np.asarray(mask))):
            expected[q, int(steps[q, t])] = codes[q, t]
        assert_same(targets, expected)


@given(provider=providers(max_n_q=4), lengths=st.lists(st.integers(1, 9), min_size=1, max_size=8), data=st.data())
def test_pack_then_unpack_returns_every_example(provider, lengths, data):
    kovs = data.draw(st.booleans())
    sizes = [jp.segment_steps(provider, n, kovs) for n in lengths]
    row_steps = data.draw(st.integers(max(sizes), max(sizes) + 12))
    method = data.draw(st.sampled_from(["first-fit", "best-fit"]))
    examples = examples_of(provider, lengths)
    packed = jp.pack(
        examples, provider, row_steps=row_steps, special_token=CARD, method=method, keep_only_valid_steps=kovs
    )
    for original, back in zip(examples, jp.unpack(packed.tokens, packed, special_token=-1)):
        if kovs:  # valid steps only: the codes of the trailing partial steps are not in the sequence (audiocraft)
            pattern = provider.get_pattern(original.shape[1])
            _, _, present = pattern.revert_pattern_sequence(jp.segment(original, provider, CARD, True)[0], -1, True)
            assert_same(back, np.where(present, original, -1))
        else:  # nothing is lost
            assert_same(back, original)
    # the rows hold each segment's own build, where the plan put it
    for i, (row, start, steps, length) in enumerate(packed.placements):
        assert length == lengths[i]
        tokens, targets = jp.segment(examples[i], provider, CARD, kovs)
        assert_same(packed.tokens[row, :, start : start + steps], tokens)
        assert_same(packed.targets[row, :, start : start + steps], targets)
        assert (packed.positions[row, start : start + steps] == np.arange(steps)).all()
        assert len(set(packed.segment_ids[row, start : start + steps].tolist())) == 1
    assert packed.padding_fraction == pytest.approx(1 - sum(sizes) / (len(packed.tokens) * row_steps))


@given(steps=st.lists(st.integers(1, 10), max_size=30), row_steps=st.integers(10, 25))
def test_plans_fit_rows_and_keep_every_item_once(steps, row_steps):
    for method in ("first-fit", "best-fit"):
        rows = jp.plan_rows(steps, row_steps, method)
        assert sorted(i for row in rows for i in row) == list(range(len(steps)))
        assert all(sum(steps[i] for i in row) <= row_steps for row in rows)
        assert all(row == sorted(row) for row in rows)
        # first-fit: an item went to a later row only if no earlier row had room for it then
        if method == "first-fit":
            for row_index, row in enumerate(rows):
                for i in row:
                    for earlier in rows[:row_index]:
                        used = sum(steps[j] for j in earlier if j < i)
                        assert used + steps[i] > row_steps


@pytest.mark.parametrize("provider", FAMILIES, ids=repr)
def test_unpacked_logits_are_each_examples_reverted_logits(provider):
    examples = examples_of(provider, [5, 2, 7])
    packed = jp.pack(examples, provider, row_steps=3 * jp.segment_steps(provider, 7), special_token=CARD)
    logits = RNG.standard_normal((*packed.tokens.shape, 3)).astype(np.float32)
    for i, values in enumerate(jp.unpack(logits, packed, special_token=np.nan, model_output=True)):
        row, start, steps, length = packed.placements[i]
        pattern = provider.get_pattern(length)
        alone = logits[row : row + 1, :, start : start + steps]
        expected, _, _ = pattern.revert_pattern_logits(alone, float("nan"), True, card_axis=-1)
        assert_same(values, np.asarray(expected)[0])


def test_max_segments_one_is_plain_padding():
    provider = jp.DelayedPatternProvider(2)
    packed = jp.pack(examples_of(provider, [3, 5, 2]), provider, row_steps=8, special_token=CARD, max_segments=1)
    assert packed.tokens.shape == (3, 2, 8) and (packed.segment_ids.max(axis=1) == 1).all()
    two = jp.pack(examples_of(provider, [1, 1, 1, 1, 1]), provider, row_steps=20, special_token=CARD, max_segments=2)
    assert [int(row.max()) for row in two.segment_ids] == [2, 2, 1]


def test_packing_errors():
    provider = jp.DelayedPatternProvider(3)
    with pytest.raises(ValueError, match=r"example 1 takes 9 sequence steps, more than a row's row_steps=8"):
        jp.pack(examples_of(provider, [2, 8]), provider, row_steps=8, special_token=CARD)
    with pytest.raises(ValueError, match=r"`row_steps`=1 is too small for any example: one timestep already takes 2"):
        jp.pack(examples_of(provider, [1]), provider, row_steps=1, special_token=CARD)
    with pytest.raises(ValueError, match=r"`examples\[0\]` must be codes \[K=3, T\], got shape \(2, 4\)"):
        jp.pack([np.zeros((2, 4), int)], provider, row_steps=8, special_token=CARD)
    with pytest.raises(ValueError, match=r"the examples need 2 rows of 8 steps; `rows`=1"):
        jp.pack(examples_of(provider, [4, 4]), provider, row_steps=8, special_token=CARD, rows=1)
    with pytest.raises(ValueError, match=r"`examples\[0\]` has no timesteps"):
        jp.pack([np.zeros((3, 0), int)], provider, row_steps=8, special_token=CARD)
    with pytest.raises(TypeError, match=r"must hold integer codes"):
        jp.pack([np.zeros((3, 2))], provider, row_steps=8, special_token=CARD)
    with pytest.raises(ValueError, match=r"`method` must be one of"):
        jp.plan_rows([1], 4, "worst-fit")
    with pytest.raises(ValueError, match=r"expected -1 or a code in \[0, card=4\)"):
        lm.packed_cross_entropy(np.zeros((1, 1, 2, 4), np.float32), np.array([[[4, -1]]]))


# --- packed training == separate examples ---------------------------------------------------------------------------
def model_for(provider, max_len=64):
    return lm.CodecLM(provider.n_q, CARD, dim=32, num_layers=2, num_heads=2, max_len=max_len, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("provider", FAMILIES, ids=repr)
def test_packed_rows_train_exactly_like_their_examples_run_separately(provider):
    lengths = [5, 2, 7, 3, 1, 6]
    t_max = max(lengths)
    examples = examples_of(provider, lengths)
    row_steps = 2 * jp.segment_steps(provider, t_max)
    packed = jp.pack(examples, provider, row_steps=row_steps, special_token=CARD)
    assert len(packed.tokens) < len(examples), "the test must pack several examples per row"
    pattern = provider.get_pattern(t_max)
    codes = np.zeros((len(examples), provider.n_q, t_max), np.int32)
    for b, e in enumerate(examples):
        codes[b, :, : e.shape[1]] = e
    seq, _, _ = pattern.build_pattern_sequence(codes, CARD, True, lengths=np.asarray(lengths))
    graphdef, params = nnx.split(model_for(provider))

    def separate(params):
        return lm.pattern_cross_entropy(nnx.merge(graphdef, params)(seq), codes, pattern, lengths=np.asarray(lengths))

    def together(params):
        model = nnx.merge(graphdef, params)
        logits = model(jnp.asarray(packed.tokens), jnp.asarray(packed.segment_ids), jnp.asarray(packed.positions))
        return lm.packed_cross_entropy(logits, jnp.asarray(packed.targets))

    # jitted: eager, every primitive of the forward and backward would compile on its own (about 45 s a family)
    (loss, per_codebook), grads = jax.jit(jax.value_and_grad(separate, has_aux=True))(params)
    (packed_loss, packed_per_codebook), packed_grads = jax.jit(jax.value_and_grad(together, has_aux=True))(params)
    np.testing.assert_allclose(packed_loss, loss, rtol=2e-6)
    np.testing.assert_allclose(packed_per_codebook, per_codebook, rtol=2e-6)
    for a, b in zip(jax.tree.leaves(packed_grads), jax.tree.leaves(grads)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)


@pytest.mark.parametrize("provider", FAMILIES[::2], ids=repr)
def test_each_segments_loss_is_its_example_alone(provider):
    examples = examples_of(provider, [5, 2, 7, 3])
    packed = jp.pack(examples, provider, row_steps=2 * jp.segment_steps(provider, 7), special_token=CARD)
    model = nnx.jit(lambda m, *args: m(*args))  # one program per shape, not one per primitive
    net = model_for(provider)
    logits = model(net, jnp.asarray(packed.tokens), jnp.asarray(packed.segment_ids), jnp.asarray(packed.positions))
    segments = int(packed.segment_ids.max())
    losses = lm.packed_segment_cross_entropy(logits, packed.targets, packed.segment_ids, segments)
    assert losses.shape == (len(packed.tokens), segments)
    for i, (row, _, _, length) in enumerate(packed.placements):
        j = int(packed.segment_ids[row, packed.placements[i][1]]) - 1
        pattern = provider.get_pattern(length)
        seq, _, _ = pattern.build_pattern_sequence(examples[i][None], CARD, True)
        alone, _ = lm.pattern_cross_entropy(model(net, seq), examples[i][None], pattern)
        np.testing.assert_allclose(losses[row, j], alone, rtol=2e-6)
    counts = packed.segment_ids.max(axis=1, initial=0)
    assert np.isnan(np.asarray(losses)[np.arange(segments)[None, :] >= counts[:, None]]).all()


def test_a_packed_segment_sees_only_itself():
    provider = jp.DelayedPatternProvider(2)
    examples = examples_of(provider, [4, 3])
    packed = jp.pack(examples, provider, row_steps=16, special_token=CARD)
    model = model_for(provider)
    logits = model(jnp.asarray(packed.tokens), jnp.asarray(packed.segment_ids), jnp.asarray(packed.positions))
    for i, (row, start, steps, _) in enumerate(packed.placements):
        alone, _ = jp.segment(examples[i], provider, CARD)
        np.testing.assert_allclose(
            logits[row, :, start : start + steps], model(jnp.asarray(alone)[None])[0], rtol=2e-5, atol=2e-5
        )
    with pytest.raises(ValueError, match=r"need both `segment_ids` and `positions`"):
        model(jnp.asarray(packed.tokens), jnp.asarray(packed.segment_ids))


def test_codes_are_checked_in_their_own_dtype_before_the_int32_cast():
    """Issue 25: an int64 code 2**32 + x wrapped to x (here the special token) and was packed as that token."""
    provider = jp.DelayedPatternProvider(2)
    wrapped = np.array([[1, 2**32 + CARD], [3, 4]], np.int64)
    with pytest.raises(ValueError, match=r"`codes` holds the code 4294967304; codes must lie in \[0, 2147483648\)"):
        jp.segment(wrapped, provider, CARD)
    with pytest.raises(ValueError, match=r"`examples\[1\]` holds the code -1"):
        jp.pack([np.ones((2, 2), int), np.array([[1, -1], [2, 3]])], provider, row_steps=8, special_token=CARD)
    with pytest.raises(ValueError, match=r"`codes` holds the code 8, the `special_token`"):
        jp.segment(np.array([[1, CARD], [3, 4]]), provider, CARD)


def test_a_packed_batch_built_by_hand_is_checked_and_equal_by_value():
    provider = jp.DelayedPatternProvider(2)
    packed = jp.pack(examples_of(provider, [3, 2]), provider, row_steps=8, special_token=CARD)
    fields = {f: getattr(packed, f) for f in packed.__dataclass_fields__}
    again = jp.Packed(**{**fields, "tokens": packed.tokens.tolist()})  # lists become the int32 arrays
    assert again == packed and again.tokens.dtype == np.int32
    other = packed.targets.copy()
    other.flat[np.flatnonzero(other >= 0)[0]] += 1  # one scored target changed (whatever codes RNG drew)
    assert again != jp.Packed(**{**fields, "targets": other})
    (row, start, steps, length), second = packed.placements
    with pytest.raises(ValueError, match=r"`placements\[0\]`=\(0, 0, 3, 3\): an example of length 3 takes 4 steps"):
        jp.Packed(**{**fields, "placements": ((row, start, steps - 1, length), second)})
    with pytest.raises(ValueError, match=r"`placements\[0\]`=\(1, 0, 4, 3\) is outside the 1 rows"):
        jp.Packed(**{**fields, "placements": ((1, start, steps, length), second)})
    with pytest.raises(TypeError, match=r"`targets` must be an integer array, got dtype float32"):
        jp.Packed(**{**fields, "targets": packed.targets.astype(np.float32)})
    with pytest.raises(TypeError, match=r"`keep_only_valid_steps` must be a bool, got None"):
        jp.Packed(**{**fields, "keep_only_valid_steps": None})
    with pytest.raises(TypeError, match=r"`provider` must be a pattern provider"):
        jp.Packed(**{**fields, "provider": None})
    with pytest.raises(TypeError, match=r"`packed` must be a Packed batch"):
        jp.unpack(packed.tokens, None)
