"""Valid inputs the fuzz's new checks refused at first (a review of those checks, each reproduced before the fix)."""

from __future__ import annotations

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from flax import nnx

import jax_patterns as jp
from jax_patterns import lm, train

PATTERN = jp.DelayedPatternProvider(2).get_pattern(4)
OPTIONS = lm.DecodeOptions(5, use_sampling=False)


def toy(state, tokens, *info):
    return jnp.zeros((1, 2, 5)).at[:, :, 1].set(1.0), state


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, ml_dtypes.int4])
def test_a_state_of_ml_dtypes_arrays_decodes(dtype):
    state = {"h": np.zeros((1, 4), dtype)}
    codes = lm.generate(toy, state, PATTERN, np.zeros((1, 2, 1), np.int32), options=OPTIONS).codes
    assert np.asarray(codes).tolist() == [[[0, 1, 1, 1], [0, 1, 1, 1]]]


def test_a_step_function_may_return_a_list():
    def listed(state, tokens):  # a list, not a tuple
        return [toy(state, tokens)[0], state]

    codes = lm.generate(listed, 0, PATTERN, np.zeros((1, 2, 1), np.int32), options=OPTIONS)
    assert np.asarray(codes.codes).tolist() == [[[0, 1, 1, 1], [0, 1, 1, 1]]]


def test_compute_predictions_reads_only_the_codes_lengths_keep():
    pattern = jp.DelayedPatternProvider(2).get_pattern(3)
    model = lambda seq: jnp.zeros((*seq.shape, 5))  # noqa: E731
    padded = np.array([[[1, 2, -1], [1, 2, -1]]])
    for side, codes in (("right", padded), ("left", padded[..., ::-1])):
        _, mask = lm.compute_predictions(model, codes, pattern, 5, lengths=np.array([2]), padding_side=side)
        assert np.asarray(mask).sum() == 3
    with pytest.raises(ValueError, match=r"`codes` holds the code -1"):  # a kept code
        lm.compute_predictions(model, padded, pattern, 5, lengths=np.array([3]))


def test_codec_lm_takes_a_numpy_integer_stage():
    model = lm.CodecLM(2, 5, dim=8, num_heads=2, num_layers=1, max_len=8, causal=False, rngs=nnx.Rngs(0))
    seq = np.zeros((1, 2, 4), np.int32)
    np.testing.assert_array_equal(model(seq, stage=np.array(1)), model(seq, stage=1))


def test_magnet_without_guidance_takes_none_coefficients():
    model = lm.CodecLM(2, 5, dim=8, num_heads=2, num_layers=1, max_len=8, causal=False, rngs=nnx.Rngs(0))
    args = (lm.magnet_fn_of(model), np.zeros((1, 2, 0), np.int32))
    kw = dict(timesteps=4, mask_token=5, decoding_steps=[2, 2], use_sampling=False)
    codes = lm.magnet_generate(*args, max_cfg_coef=None, min_cfg_coef=None, **kw)
    np.testing.assert_array_equal(codes, lm.magnet_generate(*args, max_cfg_coef=None, **kw))


def test_a_provider_with_a_numpy_integer_n_q_segments():
    class Provider:
        n_q = np.int64(2)

        def get_pattern(self, timesteps):
            return jp.DelayedPatternProvider(2).get_pattern(timesteps)

    codes = np.array([[1, 2, 3], [4, 0, 1]], np.int32)
    np.testing.assert_array_equal(
        jp.segment(codes, Provider(), 5)[0], jp.segment(codes, jp.DelayedPatternProvider(2), 5)[0]
    )


def test_sample_next_token_error_types():
    with pytest.raises(ValueError, match=r"`logits` must be \[B, K, card\], got shape \(3, 5\)"):
        lm.sample_next_token(jnp.zeros((3, 5)), None, False)
    with pytest.raises(TypeError, match=r"`logits` must be a float array"):
        lm.sample_next_token(jnp.zeros((1, 3, 5), jnp.int32), None, False)


def test_markov_codes_take_any_size():
    codes = train.MarkovCodes(n_q=2, card=4, min_len=2, max_len=3, size=2**40, seed=0)
    assert len(codes) == 2**40 and codes[2**40 - 1].shape[0] == 2
