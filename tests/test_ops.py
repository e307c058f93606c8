"""The three jitted operations: references, dtypes, batch dims, card axes, jit, vmap, grad, errors."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_same, loop_build, loop_revert

import jax_patterns as jp
from jax_patterns import _ops
from torch_compat import reference

NAN = float("nan")
PROVIDERS = [
    jp.DelayedPatternProvider(4),
    jp.DelayedPatternProvider(3, delays=[1, 2, 2], empty_initial=-1),
    jp.ParallelPatternProvider(2, empty_initial=1),
    jp.UnrolledPatternProvider(4, flattening=[0, 1, 1, 3], delays=[0, 2, 2, 2]),
    jp.CoarseFirstPattern(3, delays=[0, 2]),
    jp.MusicLMPattern(4, group_by=2),
]
RNG = np.random.default_rng(0)


def cache_size(jitted) -> int:
    """How many compiled variants a jitted function holds."""
    return jitted._cache_size()


@pytest.fixture(params=PROVIDERS, ids=repr)
def pattern(request):
    return request.param.get_pattern(7)


@pytest.mark.parametrize("lead", [(), (3,), (2, 3)])
@pytest.mark.parametrize("kovs", [False, True])
def test_ops_equal_plain_loops_with_any_leading_dims(pattern, lead, kovs):
    z = RNG.integers(0, 100, (*lead, pattern.n_q, 7)).astype(np.int32)
    seq, _, _ = pattern.build_pattern_sequence(z, -1, kovs)
    assert_same(seq, loop_build(pattern, z, -1, kovs), "build")
    assert_same(pattern.build_pattern_sequence(z[..., :4], -1, kovs)[0], loop_build(pattern, z[..., :4], -1, kovs))
    seq = np.asarray(seq)
    assert_same(pattern.revert_pattern_sequence(seq, -1, kovs)[0], loop_revert(pattern, seq, -1, kovs), "revert")
    short = seq[..., : seq.shape[-1] // 2]
    assert_same(pattern.revert_pattern_sequence(short, -1, kovs)[0], loop_revert(pattern, short, -1, kovs))
    logits = RNG.standard_normal((*lead, pattern.n_q, seq.shape[-1], 5)).astype(np.float32)
    expected = np.moveaxis(loop_revert(pattern, np.moveaxis(logits, -1, 0), NAN, kovs, model_output=True), 0, -1)
    assert_same(pattern.revert_pattern_logits(logits, NAN, kovs, card_axis=-1)[0], expected, "logits[-1]")
    moved = np.moveaxis(logits, -1, 0)  # [card, ..., K, S]: the card axis before everything
    assert_same(pattern.revert_pattern_logits(moved, NAN, kovs, card_axis=0)[0], np.moveaxis(expected, -1, 0))


def test_card_axis_layouts_agree(pattern):
    steps = len(pattern.layout)
    logits = RNG.standard_normal((2, 5, pattern.n_q, steps)).astype(np.float32)  # audiocraft [B, card, K, S]
    first, idx1, mask1 = pattern.revert_pattern_logits(logits, NAN)
    last, idx2, mask2 = pattern.revert_pattern_logits(np.moveaxis(logits, 1, -1), NAN, card_axis=-1)
    third = pattern.revert_pattern_logits(logits, NAN, card_axis=-3)[0]
    assert first.shape == (2, 5, pattern.n_q, 7) and last.shape == (2, pattern.n_q, 7, 5)
    assert_same(np.moveaxis(np.asarray(last), -1, 1), first)
    assert_same(third, first)
    assert_same(idx1, idx2)
    assert_same(mask1, mask2)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_float_dtypes_and_nan(pattern, dtype):
    logits = jnp.asarray(RNG.standard_normal((2, pattern.n_q, len(pattern.layout), 3)), dtype=dtype)
    values, _, mask = pattern.revert_pattern_logits(logits, NAN, card_axis=-1)
    assert values.dtype == dtype
    as_np = np.asarray(values.astype(jnp.float32))
    assert np.isnan(as_np[:, ~np.asarray(mask)]).all() and not np.isnan(as_np[:, np.asarray(mask)]).any()
    expected = reference.revert_pattern_logits(
        pattern, torch.from_numpy(np.moveaxis(np.array(logits.astype(jnp.float32)), -1, 1)), NAN
    )[0]
    assert_same(np.moveaxis(as_np, -1, 1), expected.numpy())


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32])
def test_integer_dtypes_are_kept(pattern, dtype):
    z = RNG.integers(0, 100, (2, pattern.n_q, 7)).astype(dtype)
    values, _, _ = pattern.build_pattern_sequence(z, 101)
    assert values.dtype == dtype
    assert_same(values, loop_build(pattern, z, 101))


def test_jit_equals_eager_and_disabled_jit(pattern):
    z = RNG.integers(0, 100, (2, pattern.n_q, 7)).astype(np.int32)

    def roundtrip(z):
        seq, _, _ = pattern.build_pattern_sequence(z, -1)
        return pattern.revert_pattern_sequence(seq, -1)[0], seq

    eager = roundtrip(z)
    jitted = jax.jit(roundtrip)(z)
    with jax.disable_jit():
        undone = roundtrip(z)
    for a, b, c in zip(eager, jitted, undone):
        assert_same(a, b)
        assert_same(a, c)


def test_vmap_of_unbatched_equals_batched(pattern):
    z = RNG.integers(0, 100, (4, pattern.n_q, 7)).astype(np.int32)
    single = jax.vmap(lambda x: pattern.build_pattern_sequence(x, -1)[0])(z)
    assert_same(single, pattern.build_pattern_sequence(z, -1)[0])
    seq = np.asarray(single)
    assert_same(
        jax.vmap(lambda x: pattern.revert_pattern_sequence(x, -1)[0])(seq), pattern.revert_pattern_sequence(seq, -1)[0]
    )
    logits = RNG.standard_normal((4, pattern.n_q, seq.shape[-1], 3)).astype(np.float32)
    assert_same(
        jax.vmap(lambda x: pattern.revert_pattern_logits(x, NAN, card_axis=-1)[0])(logits),
        pattern.revert_pattern_logits(logits, NAN, card_axis=-1)[0],
    )


def test_repeat_calls_and_equal_patterns_compile_nothing():
    z = np.zeros((2, 4, 33), np.int32)
    jp.DelayedPatternProvider(4).get_pattern(33).build_pattern_sequence(z, -1)
    jp.DelayedPatternProvider(4).get_pattern(33).revert_pattern_logits(
        np.zeros((2, 4, 37, 3), np.float32), NAN, card_axis=-1
    )
    builds, reverts = cache_size(_ops._build), cache_size(_ops._revert)
    jp._providers._cached_pattern.cache_clear()  # a brand-new but equal pattern object
    pattern = jp.DelayedPatternProvider(4, delays=[0, 1, 2, 3]).get_pattern(33)
    for _ in range(3):
        pattern.build_pattern_sequence(z + 1, -1)
        pattern.revert_pattern_logits(np.ones((2, 4, 37, 3), np.float32), NAN, card_axis=-1)
    assert (cache_size(_ops._build), cache_size(_ops._revert)) == (builds, reverts)


def test_nan_special_token_is_one_compilation():
    pattern = jp.ParallelPatternProvider(2).get_pattern(5)
    fn = chex.assert_max_traces(n=1)(lambda x: pattern.revert_pattern_logits(x, NAN, card_axis=-1)[0])
    jitted = jax.jit(fn)
    for i in range(3):
        jitted(jnp.full((1, 2, 6, 3), float(i)))
    before = cache_size(_ops._revert)
    for i in range(3):
        pattern.revert_pattern_logits(np.full((1, 2, 6, 3), i, np.float32), float("nan"), card_axis=-1)
    assert cache_size(_ops._revert) <= before + 1


def test_indexes_are_cached_read_only_int32(pattern):
    from jax_patterns import _indices

    a = _indices.build_indexes(pattern, 7, False)
    assert a is _indices.build_indexes(pattern, 7, False)
    assert a[0].dtype == np.int32 and a[1].dtype == np.bool_
    assert not a[0].flags.writeable and not a[1].flags.writeable


@pytest.mark.parametrize("card_axis", [1, -1])
def test_grad_through_revert_logits_equals_torch_autograd(pattern, card_axis):
    steps = len(pattern.valid_layout)
    logits = RNG.standard_normal((2, 3, pattern.n_q, steps)).astype(np.float32)  # [B, card, K, S]
    weights = RNG.standard_normal((2, 3, pattern.n_q, 7)).astype(np.float32)

    def loss(x):
        x = x if card_axis == 1 else jnp.moveaxis(x, 1, -1)
        values, _, mask = pattern.revert_pattern_logits(x, NAN, True, card_axis=card_axis)
        values = values if card_axis == 1 else jnp.moveaxis(values, -1, 1)
        return jnp.sum(jnp.where(mask, values, 0.0) * weights)

    ours = jax.grad(loss)(logits)
    t = torch.from_numpy(logits).requires_grad_(True)
    values, _, mask = reference.revert_pattern_logits(pattern, t, NAN, True)
    torch.sum(torch.where(mask, values, 0.0) * torch.from_numpy(weights)).backward()
    assert t.grad is not None
    assert_same(ours, t.grad.numpy())


def test_grad_through_build_and_revert_sequence_equals_torch(pattern):
    z = RNG.standard_normal((2, pattern.n_q, 7)).astype(np.float32)
    w_seq = RNG.standard_normal((2, pattern.n_q, len(pattern.layout))).astype(np.float32)
    w_out = RNG.standard_normal((2, pattern.n_q, 7)).astype(np.float32)

    def loss(x):
        seq = pattern.build_pattern_sequence(x, 0.0)[0]
        return jnp.sum(seq * w_seq) + jnp.sum(pattern.revert_pattern_sequence(seq * 2, 0.0)[0] * w_out)

    ours = jax.grad(loss)(z)
    t = torch.from_numpy(z).requires_grad_(True)
    seq = reference.build_pattern_sequence(pattern, t, 0.0)[0]
    out = reference.revert_pattern_sequence(pattern, seq * 2, 0.0)[0]
    (torch.sum(seq * torch.from_numpy(w_seq)) + torch.sum(out * torch.from_numpy(w_out))).backward()
    assert t.grad is not None
    np.testing.assert_allclose(ours, t.grad.numpy(), rtol=1e-6, atol=1e-6)


P = jp.DelayedPatternProvider(4).get_pattern(10)  # layout of 14 steps, 11 valid


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: P.build_pattern_sequence(np.zeros((2, 3, 10), np.int32), 0),
            ValueError,
            r"`z` has 3 codebooks \(shape \(2, 3, 10\)\) but the pattern has n_q=4",
        ),
        (
            lambda: P.build_pattern_sequence(np.zeros((2, 4, 11), np.int32), 0),
            ValueError,
            r"`z` has T=11 timesteps .* but the pattern has timesteps=10",
        ),
        (
            lambda: P.build_pattern_sequence(np.zeros((10,), np.int32), 0),
            ValueError,
            r"`z` must have shape \[..., K, T\], got rank 1",
        ),
        (
            lambda: P.build_pattern_sequence(np.zeros((1, 4, 10), np.int32), 2**40),
            ValueError,
            r"`special_token`=1099511627776 is not representable in `z`'s dtype int32",
        ),
        (
            lambda: P.build_pattern_sequence(np.zeros((1, 4, 10), np.int32), 0.5),
            TypeError,
            r"`special_token`=0.5 is not an integer, but `z` has integer dtype int32",
        ),
        (lambda: P.build_pattern_sequence(np.zeros((1, 4, 10), np.int32), NAN), TypeError, r"`special_token`=nan"),
        (
            lambda: P.build_pattern_sequence(np.zeros((1, 4, 10), np.uint8), -1),
            ValueError,
            r"`special_token`=-1 is not representable in `z`'s dtype uint8",
        ),
        (lambda: P.build_pattern_sequence(np.zeros((1, 4, 10), np.int32), True), TypeError, r"`special_token`=True"),
        (
            lambda: P.build_pattern_sequence(np.zeros((1, 4, 10), np.int32), "x"),
            TypeError,
            r"`special_token` must be a real number",
        ),
        (
            lambda: P.build_pattern_sequence(np.zeros((1, 4, 10), np.int32), np.array([1, 2])),
            ValueError,
            r"`special_token` must be a scalar",
        ),
        (
            lambda: P.build_pattern_sequence(np.zeros((1, 4, 10), np.int32), 0, keep_only_valid_steps=1),
            TypeError,
            r"`keep_only_valid_steps` must be a bool, got 1",
        ),
        (
            lambda: P.revert_pattern_sequence(np.zeros((1, 4, 15), np.int32), 0),
            ValueError,
            r"`s` has S=15 sequence steps but the pattern's layout has only 14",
        ),
        (
            lambda: P.revert_pattern_sequence(np.zeros((1, 4, 12), np.int32), 0, True),
            ValueError,
            r"`s` has S=12 sequence steps but the pattern's valid layout has only 11",
        ),
        (lambda: P.revert_pattern_sequence(np.zeros((1, 5, 12), np.int32), 0), ValueError, r"`s` has 5 codebooks"),
        (
            lambda: P.revert_pattern_logits(np.zeros((4, 14), np.float32), NAN),
            ValueError,
            r"`logits` must have a card axis and \[K, S\] axes, got rank 2",
        ),
        (
            lambda: P.revert_pattern_logits(np.zeros((1, 3, 4, 14), np.float32), NAN, card_axis=2),
            ValueError,
            r"`card_axis`=2 for logits of rank 4 sits between the K and S axes",
        ),
        (
            lambda: P.revert_pattern_logits(np.zeros((1, 3, 4, 14), np.float32), NAN, card_axis=4),
            ValueError,
            r"`card_axis`=4 is out of range for logits of rank 4",
        ),
        (
            lambda: P.revert_pattern_logits(np.zeros((1, 3, 4, 14), np.float32), NAN, card_axis=1.0),
            TypeError,
            r"`card_axis` must be an int",
        ),
        (
            lambda: P.revert_pattern_logits(np.zeros((1, 3, 4, 14), np.float32), 1e39),
            ValueError,
            r"`special_token`=1e\+39 is not representable in `logits`'s dtype float32",
        ),
        (
            lambda: P.revert_pattern_logits(np.zeros((1, 4, 15, 3), np.float32), NAN, card_axis=-1),
            ValueError,
            r"`logits` has S=15 sequence steps but the pattern's layout has only 14",
        ),
        (
            lambda: P.revert_pattern_logits(np.zeros((1, 3, 4, 14), np.complex64), NAN),
            TypeError,
            r"`logits` has dtype complex64; expected integer or floating values",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_errors_are_raised_at_trace_time_under_jit():
    calls = []

    @jax.jit
    def bad(z):
        calls.append(1)
        return P.build_pattern_sequence(z, 0)[0]

    with pytest.raises(ValueError, match=r"`z` has 3 codebooks"):
        bad(jnp.zeros((2, 3, 10), jnp.int32))
    assert calls == [1]

    @jax.jit
    def traced_token(z, token):
        return P.build_pattern_sequence(z, token)[0]

    with pytest.raises(TypeError, match=r"`special_token` must be a concrete Python or numpy scalar"):
        traced_token(jnp.zeros((2, 4, 10), jnp.int32), 3)


def test_concrete_array_special_token_is_accepted():
    values = P.build_pattern_sequence(np.zeros((1, 4, 10), np.int32), jnp.asarray(7))[0]
    assert int(values[0, 0, 0]) == 7


def test_no_temporary_memory_beyond_inputs_and_outputs():
    """XLA temp memory: none for the three ops; with lengths, index-sized scratch only (never logits-sized)."""
    pattern = jp.DelayedPatternProvider(4).get_pattern(300)
    steps = pattern.valid_steps
    specs = {
        "build": (lambda x, n: pattern.build_pattern_sequence(x, 9, True, lengths=n)[0], (8, 4, 300), jnp.int32),
        "revert": (lambda x, n: pattern.revert_pattern_sequence(x, 9, True, lengths=n)[0], (8, 4, steps), jnp.int32),
        "logits[-1]": (
            lambda x, n: pattern.revert_pattern_logits(x, NAN, True, card_axis=-1, lengths=n)[0],
            (8, 4, steps, 256),
            jnp.float32,
        ),
        "logits[1]": (
            lambda x, n: pattern.revert_pattern_logits(x, NAN, True, card_axis=1, lengths=n)[0],
            (8, 256, 4, steps),
            jnp.float32,
        ),
    }
    for name, (fn, shape, dtype) in specs.items():
        x = jax.ShapeDtypeStruct(shape, dtype)
        fixed = jax.jit(lambda x, fn=fn: fn(x, None)).lower(x).compile().memory_analysis()
        assert fixed is not None and fixed.temp_size_in_bytes == 0, name
        varlen = jax.jit(fn).lower(x, jax.ShapeDtypeStruct((8,), jnp.int32)).compile().memory_analysis()
        assert varlen is not None and varlen.temp_size_in_bytes <= 4 * 8 * 4 * (steps + 300) * 4, name


def test_messages_name_none_input_dtypes_and_take_dlpack_tensors():
    import torch

    pattern = jp.DelayedPatternProvider(2).get_pattern(3)
    with pytest.raises(TypeError, match=r"`z` is None; expected an array"):
        pattern.build_pattern_sequence(None, 0)
    with pytest.raises(ValueError, match=r"`z` is int64; JAX without x64, `jax_enable_x64`, computes it as int32"):
        pattern.build_pattern_sequence(np.zeros((1, 2, 3), np.int64), 2**40)
    codes = torch.arange(6, dtype=torch.bfloat16).reshape(1, 2, 3)
    out = pattern.build_pattern_sequence(codes, -1.0)[0]
    assert out.dtype == jnp.bfloat16
    assert_same(out.astype(jnp.float32), pattern.build_pattern_sequence(np.arange(6.0).reshape(1, 2, 3), -1.0)[0])
