"""Single-stream flattening: round trips, lengths=, jit and vmap, and a clear error for layouts that cannot."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from helpers import assert_same
from hypothesis import given
from hypothesis import strategies as st

import jax_patterns as jp

SPECIAL = -1
FLAT = [
    jp.DelayedPatternProvider(2, [0, 0], flatten_first=1 << 20, empty_initial=-1),  # Bark's coarse stream
    jp.DelayedPatternProvider(3, [0, 0, 0], flatten_first=1 << 20),
    jp.UnrolledPatternProvider(3, [0, 1, 2], [0, 0, 0]),
    jp.UnrolledPatternProvider(4, [0, 1, 2, 3], [0, 1, 1, 2]),
]


def offsets_of(provider):
    return [1000 * (q + 1) for q in range(provider.n_q)]


@pytest.mark.parametrize("provider", FLAT, ids=repr)
@given(timesteps=st.integers(1, 9), seed=st.integers(0, 5))
def test_a_flattened_layout_round_trips_through_one_stream(provider, timesteps, seed):
    pattern = provider.get_pattern(timesteps)
    codes = np.random.default_rng(seed).integers(0, 1000, (2, provider.n_q, timesteps))
    seq, _, mask = pattern.build_pattern_sequence(codes, SPECIAL)
    stream = pattern.to_stream(seq, offsets_of(provider), SPECIAL)
    assert stream.shape == (2, len(pattern))
    # each code appears once, shifted into its codebook's range, in the layout's order
    for step, t, q in zip(*pattern.coords):
        if t < timesteps:
            assert (np.asarray(stream)[:, step] == codes[:, q, t] + 1000 * (q + 1)).all()
    assert_same(pattern.from_stream(stream, offsets_of(provider), SPECIAL), seq)


@pytest.mark.parametrize("provider", FLAT, ids=repr)
def test_lengths_jit_and_vmap(provider):
    t_max, lengths = 7, np.array([7, 2, 5])
    pattern = provider.get_pattern(t_max)
    codes = np.random.default_rng(0).integers(0, 1000, (3, provider.n_q, t_max))
    seq, _, _ = pattern.build_pattern_sequence(codes, SPECIAL, lengths=lengths)
    offsets = offsets_of(provider)
    stream = jax.jit(lambda s: pattern.to_stream(s, offsets, SPECIAL))(seq)
    for b, n in enumerate(lengths):  # each example's stream is its own pattern's, padded with the special token
        own = provider.get_pattern(int(n))
        alone, _, _ = own.build_pattern_sequence(codes[b : b + 1, :, :n], SPECIAL)
        mine = np.asarray(own.to_stream(alone, offsets, SPECIAL))[0]
        assert_same(np.asarray(stream)[b, : mine.size], mine)
        assert (np.asarray(stream)[b, mine.size :] == SPECIAL).all()
    assert_same(jax.vmap(lambda s: pattern.to_stream(s, offsets, SPECIAL))(seq), stream)
    back = jax.vmap(lambda s: pattern.from_stream(s, offsets, SPECIAL))(stream)
    assert_same(back, seq)


def test_a_special_token_outside_the_dtype_is_refused():
    flat = FLAT[0].get_pattern(2)
    with pytest.raises(ValueError, match=r"`special_token`=40000 is not representable in `seq`'s dtype int16"):
        flat.to_stream(np.zeros((2, len(flat)), np.int16), [0, 0], 40000)


def test_layouts_with_two_codes_at_a_step_are_refused():
    pattern = jp.DelayedPatternProvider(3).get_pattern(4)
    with pytest.raises(
        ValueError, match=r"step 2 of the pattern holds 2 codes; a single stream needs one code per step"
    ):
        pattern.to_stream(np.zeros((3, len(pattern)), np.int32), [0, 0, 0], SPECIAL)
    flat = FLAT[0].get_pattern(2)
    with pytest.raises(ValueError, match=r"`offsets` must be 2 ints"):
        flat.to_stream(np.zeros((2, len(flat)), np.int32), [0], SPECIAL)
