"""Two fill tokens: one before each codebook's first code, one after (bos/pad, bos/eos), in build and generate."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_same

import jax_patterns as jp
from jax_patterns import lm

BOS, PAD = 90, 91
KINDS = [
    jp.DelayedPatternProvider(3),
    jp.DelayedPatternProvider(3, [1, 0, 2], empty_initial=-1, any_order=True),
    jp.UnrolledPatternProvider(4, [0, 1, 1, 3], [0, 2, 2, 2]),
    jp.CoarseFirstPattern(3, [0, 1]),
    jp.MusicLMPattern(4, 2),
]


def expected_fill(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The definition, by loops: code positions kept; empty ones BOS until the row's first code, PAD after."""
    out = values.copy()
    for index in np.ndindex(*values.shape[:-1]):
        seen = False
        for s in range(values.shape[-1]):
            if mask[index + (s,)]:
                seen = True
            else:
                out[index + (s,)] = PAD if seen else BOS
    return out


@pytest.mark.parametrize("provider", KINDS, ids=repr)
@pytest.mark.parametrize("kovs", [False, True])
def test_build_with_two_fill_tokens(provider, kovs):
    t_max, lengths = 6, np.array([6, 0, 3, 1])
    pattern = provider.get_pattern(t_max)
    codes = np.random.default_rng(0).integers(0, 50, (4, provider.n_q, t_max))
    plain, indexes, mask = pattern.build_pattern_sequence(codes, BOS, kovs)
    filled, filled_indexes, _ = pattern.build_pattern_sequence(codes, BOS, kovs, fill_after=PAD)
    assert_same(filled, expected_fill(np.asarray(plain), np.broadcast_to(np.asarray(mask), plain.shape)))
    assert_same(filled_indexes, indexes)
    per_example = jax.jit(lambda z, n: pattern.build_pattern_sequence(z, BOS, kovs, lengths=n, fill_after=PAD))(
        codes, jnp.asarray(lengths)
    )
    plain, _, mask = pattern.build_pattern_sequence(codes, BOS, kovs, lengths=lengths)
    assert_same(per_example[0], expected_fill(np.asarray(plain), np.asarray(mask)))
    one = jax.vmap(lambda z: pattern.build_pattern_sequence(z, BOS, kovs, fill_after=PAD)[0])(codes)
    assert_same(one, filled)


def test_fill_after_must_fit_the_dtype():
    pattern = jp.DelayedPatternProvider(2).get_pattern(3)
    with pytest.raises(TypeError, match=r"`fill_after`=0.5 is not an integer"):
        pattern.build_pattern_sequence(np.zeros((2, 3), np.int32), 8, fill_after=0.5)
    with pytest.raises(ValueError, match=r"`fill_after`=40000 is not representable in `z`'s dtype int16"):
        pattern.build_pattern_sequence(np.zeros((2, 3), np.int16), 8, fill_after=40000)
    with pytest.raises(TypeError, match=r"`fill_after` must be a real number, got 'pad' of type str"):
        lm.generate(
            lambda s, t: (jnp.zeros((1, 2, 4)), s),
            0,
            pattern,
            np.zeros((1, 2, 0), np.int32),
            special_token=8,
            fill_after="pad",
        )


@pytest.mark.parametrize("provider", [jp.DelayedPatternProvider(3), jp.CoarseFirstPattern(3, [0, 1])], ids=repr)
def test_generate_feeds_the_model_the_two_fill_tokens(provider):
    pattern = provider.get_pattern(6)
    _, _, after = lm._decode.tables(pattern)
    _, _, mask = pattern.build_pattern_sequence(np.zeros((provider.n_q, 6), np.int32), BOS)

    def classify(state, tokens):  # returns, per codebook, what it was fed at the step before: 1 PAD, 2 BOS, 3 a code
        seen = tokens[:, :, -1]
        kind = jnp.where(seen == PAD, 1, jnp.where(seen == BOS, 2, 3)).astype(jnp.int32)
        return kind, state

    codes = lm.generate(
        classify,
        0,
        pattern,
        np.zeros((2, provider.n_q, 0), np.int32),
        special_token=BOS,
        fill_after=PAD,
        step_returns="tokens",
    ).codes
    for step, t, q in zip(*pattern.coords):
        if t < 6 and step >= 1:
            fed = step - 1
            expected = 3 if mask[q, fed] else (1 if after[q, fed] else 2)
            assert int(codes[0, q, t]) == expected, (step, t, q)
    stream = lm.stream(
        classify,
        0,
        pattern,
        np.zeros((2, provider.n_q, 0), np.int32),
        special_token=BOS,
        fill_after=PAD,
        step_returns="tokens",
        chunk_steps=2,
    )
    assert_same(np.concatenate(list(stream), -1), codes)
