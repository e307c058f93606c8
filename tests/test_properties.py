"""Property tests over random provider configurations and lengths."""

from __future__ import annotations

import jax
import numpy as np
import torch
from helpers import assert_same, loop_build, loop_revert
from hypothesis import given
from hypothesis import strategies as st
from strategies import providers

from jax_patterns import _indices
from torch_compat import reference

NAN = float("nan")


@given(providers(), st.integers(0, 12), st.integers(0, 2**31 - 1))
def test_build_then_revert_returns_every_token(provider, timesteps, seed):
    pattern = provider.get_pattern(timesteps)
    z = np.random.default_rng(seed).integers(0, 1024, (2, provider.n_q, timesteps)).astype(np.int32)
    seq, _, build_mask = pattern.build_pattern_sequence(z, 1024)
    out, _, mask = pattern.revert_pattern_sequence(seq, 1024)
    assert np.asarray(mask).all(), "a built-in pattern places every (q, t) of the codes"
    assert_same(out, z)
    assert int(np.asarray(build_mask).sum()) >= provider.n_q * timesteps
    # with valid steps only, every token the valid layout holds comes back
    seq_v, _, _ = pattern.build_pattern_sequence(z, 1024, True)
    out_v, _, mask_v = pattern.revert_pattern_sequence(seq_v, 1024, True)
    assert_same(np.asarray(out_v)[:, np.asarray(mask_v)], z[:, np.asarray(mask_v)])


@given(providers(), st.integers(0, 10), st.booleans(), st.integers(0, 2**31 - 1))
def test_jax_equals_torch_reference_and_plain_loops(provider, timesteps, kovs, seed):
    rng = np.random.default_rng(seed)
    pattern = provider.get_pattern(timesteps)
    steps = _indices.layout_length(pattern, kovs)
    z = rng.integers(0, 50, (2, provider.n_q, timesteps)).astype(np.int32)
    s = rng.integers(0, 50, (2, provider.n_q, steps)).astype(np.int32)
    logits = rng.standard_normal((2, 3, provider.n_q, steps)).astype(np.float32)
    checks = [
        (
            pattern.build_pattern_sequence(z, -1, kovs),
            reference.build_pattern_sequence(pattern, torch.from_numpy(z), -1, kovs),
            loop_build(pattern, z, -1, kovs),
        ),
        (
            pattern.revert_pattern_sequence(s, -1, kovs),
            reference.revert_pattern_sequence(pattern, torch.from_numpy(s), -1, kovs),
            loop_revert(pattern, s, -1, kovs),
        ),
        (
            pattern.revert_pattern_logits(logits, NAN, kovs),
            reference.revert_pattern_logits(pattern, torch.from_numpy(logits), NAN, kovs),
            loop_revert(pattern, logits, NAN, kovs, model_output=True),
        ),
    ]
    for ours, theirs, loops in checks:
        for a, b in zip(ours, theirs):
            assert_same(a, b.numpy())
        assert_same(ours[0], loops)


@given(providers(max_n_q=4), st.integers(1, 9), st.integers(0, 2**31 - 1))
def test_jit_vmap_and_eager_agree(provider, timesteps, seed):
    pattern = provider.get_pattern(timesteps)
    z = np.random.default_rng(seed).integers(0, 9, (3, provider.n_q, timesteps)).astype(np.int32)

    def build(x):
        return pattern.build_pattern_sequence(x, -1)[0]

    def revert_logits(x):
        return pattern.revert_pattern_logits(x, NAN, card_axis=-1)[0]

    eager = build(z)
    assert_same(jax.jit(build)(z), eager)
    assert_same(jax.vmap(build)(z), eager)
    logits = np.random.default_rng(seed).standard_normal((3, provider.n_q, eager.shape[-1], 2)).astype(np.float32)
    expected = revert_logits(logits)
    assert_same(jax.jit(revert_logits)(logits), expected)
    assert_same(jax.vmap(revert_logits)(logits), expected)


@given(providers(), st.integers(0, 8))
def test_equal_providers_give_equal_patterns_and_indexes(provider, timesteps):
    again = type(provider)(*provider._args())
    assert again == provider and hash(again) == hash(provider)
    assert again.get_pattern(timesteps) is provider.get_pattern(timesteps)
