"""lengths=: each example equals audiocraft's pattern for its own length; rules equal real layouts."""

from __future__ import annotations

import golden_grid
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_same, provider_from
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.experimental import checkify
from strategies import examples, providers

import jax_patterns as jp
from jax_patterns import LayoutCoord, Pattern, _indices
from torch_compat import reference

NAN = float("nan")


def check_per_example(
    provider, t_max: int, lengths: np.ndarray, kovs: bool, seed: int = 0, jit: bool = False, side: str = "right"
):
    """Every op with `lengths` equals the torch reference on `get_pattern(lengths[b])`, padded.

    `side="right"`: example `b` is the first `lengths[b]` timesteps (steps) and
    the padding follows; `side="left"`: the last ones, with the padding before
    (Dia's batches), so each result is the reference's, right-aligned.
    """
    rng = np.random.default_rng(seed)
    pattern = provider.get_pattern(t_max)
    k = provider.n_q
    z = rng.integers(0, 50, (len(lengths), k, t_max)).astype(np.int32)
    steps = _indices.layout_length(pattern, kovs)
    s = rng.integers(0, 50, (len(lengths), k, steps)).astype(np.int32)
    logits = rng.standard_normal((len(lengths), 2, k, steps)).astype(np.float32)
    kw = {} if side == "right" else {"padding_side": side}

    def ops(z, s, logits, lengths):
        return (
            pattern.build_pattern_sequence(z, -1, kovs, lengths=lengths, **kw),
            pattern.revert_pattern_sequence(s, -1, kovs, lengths=lengths, **kw),
            pattern.revert_pattern_logits(logits, NAN, kovs, lengths=lengths, **kw),
            pattern.revert_pattern_logits(jnp.moveaxis(logits, 1, -1), NAN, kovs, card_axis=-1, lengths=lengths, **kw),
            pattern.logit_steps(kovs, lengths=lengths, **kw),
        )

    built, reverted, logit1, logit_last, own_steps_of = (jax.jit(ops) if jit else ops)(
        z, s, logits, jnp.asarray(lengths)
    )
    for b, length in enumerate(int(n) for n in lengths):
        own = provider.get_pattern(length)
        own_steps = _indices.layout_length(own, kovs)
        # where the example sits: its codes `T`, its steps `S`, and the padding `pad_T`, `pad_S`
        if side == "right":
            T, S, pad_T, pad_S = slice(0, length), slice(0, own_steps), slice(length, None), slice(own_steps, None)
        else:
            T, S = slice(t_max - length, t_max), slice(steps - own_steps, steps)
            pad_T, pad_S = slice(0, t_max - length), slice(0, steps - own_steps)
        ev, ei, em = reference.build_pattern_sequence(own, torch.from_numpy(z[b : b + 1, :, T]), -1, kovs)
        assert_same(built[0][b, :, S], ev[0].numpy(), f"build values b={b}")
        assert_same(built[1][b, :, S], ei.numpy(), f"build indexes b={b}")
        assert_same(built[2][b, :, S], em.numpy(), f"build mask b={b}")
        assert (np.asarray(built[0][b, :, pad_S]) == -1).all() and not np.asarray(built[2][b, :, pad_S]).any()
        assert (np.asarray(built[1][b, :, pad_S]) == k * length).all()
        ev, ei, em = reference.revert_pattern_sequence(own, torch.from_numpy(s[b : b + 1, :, S]), -1, kovs)
        assert_same(reverted[0][b, :, T], ev[0].numpy(), f"revert values b={b}")
        assert_same(reverted[1][b, :, T], ei.numpy(), f"revert indexes b={b}")
        assert_same(reverted[2][b, :, T], em.numpy(), f"revert mask b={b}")
        assert (np.asarray(reverted[0][b, :, pad_T]) == -1).all() and not np.asarray(reverted[2][b, :, pad_T]).any()
        ev, ei, em = reference.revert_pattern_logits(own, torch.from_numpy(logits[b : b + 1, ..., S]), NAN, kovs)
        assert_same(logit1[0][b, :, :, T], ev[0].numpy(), f"logits b={b}")
        assert_same(np.moveaxis(np.asarray(logit_last[0][b, :, T]), -1, 0), ev[0].numpy(), f"logits[-1] b={b}")
        assert_same(logit1[1][b, :, T], ei.numpy())
        assert_same(logit_last[2][b, :, T], em.numpy())
        assert np.isnan(np.asarray(logit1[0][b, :, :, pad_T])).all()
        # logit_steps: the step (of the padded sequence) whose logits predict each code, -1 where none
        own_logit_steps, own_mask = own.logit_steps(kovs)
        start = S.start or 0
        expected = np.where(np.asarray(own_mask), np.asarray(own_logit_steps) + start, -1)
        assert_same(own_steps_of[0][b, :, T], expected, f"logit_steps b={b}")
        assert_same(own_steps_of[1][b, :, T], np.asarray(own_mask))
        assert (np.asarray(own_steps_of[0][b, :, pad_T]) == -1).all() and not np.asarray(
            own_steps_of[1][b, :, pad_T]
        ).any()


KINDS = [
    jp.DelayedPatternProvider(4),
    jp.DelayedPatternProvider(3, [1, 2, 2], flatten_first=2, empty_initial=-1),
    jp.DelayedPatternProvider(2, [0, 3], flatten_first=4, empty_initial=1),
    jp.DelayedPatternProvider(3, [1, 0, 2], empty_initial=-1, any_order=True),  # Dia-style: delays in any order
    jp.DelayedPatternProvider(4, [2, 0, 3, 1], flatten_first=2, any_order=True),
    jp.ParallelPatternProvider(3, empty_initial=-1),
    jp.UnrolledPatternProvider(4, [0, 1, 1, 3], [0, 2, 2, 2]),
    jp.CoarseFirstPattern(3, [0, 1]),
    jp.CoarseFirstPattern(1),
    jp.MusicLMPattern(4, 2),
    jp.MusicLMPattern(2, 1),
]


@pytest.mark.parametrize("provider", KINDS, ids=repr)
@pytest.mark.parametrize("kovs", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_every_length_of_every_kind(provider, kovs, side):
    t_max = 9
    check_per_example(provider, t_max, np.arange(t_max + 1), kovs, side=side)


@settings(max_examples=examples(15))
@given(providers(), st.integers(0, 12), st.booleans(), st.sampled_from(["right", "left"]), st.data())
def test_random_lengths_jitted_with_traced_lengths(provider, t_max, kovs, side, data):
    lengths = np.asarray(data.draw(st.lists(st.integers(0, t_max), min_size=1, max_size=4)))
    check_per_example(provider, t_max, lengths, kovs, seed=int(lengths.sum()), jit=True, side=side)


@pytest.mark.parametrize("entry", golden_grid.Goldens().manifest[::7], ids=lambda e: str(e["id"]))
def test_rules_equal_real_layouts(entry):
    """N(L), valid steps, special start and both step maps against get_pattern(L), for every L <= T_max."""
    provider = provider_from(entry["provider"], entry["kwargs"], entry["n_q"])
    t_max = entry["timesteps"]
    rule = provider.get_pattern(t_max).length_rule
    assert rule is not None
    t_at, step_of = _indices.full_tables(provider.get_pattern(t_max))
    all_lengths = np.arange(t_max + 1)
    for length in all_lengths:
        own = provider.get_pattern(int(length))
        assert rule.num_steps(all_lengths)[length] == len(own)
        assert rule.ref_steps(all_lengths, True)[length] == own.valid_steps
        assert rule.starts_with_special(all_lengths)[length] == own.starts_with_special_token()
        steps, ts, qs = own.coords
        inside = ts < length
        np.testing.assert_array_equal(t_at[qs[inside], rule.to_full(np, length, steps[inside], t_max)], ts[inside])
        np.testing.assert_array_equal(rule.from_full(np, length, step_of[qs[inside], ts[inside]], t_max), steps[inside])


@pytest.mark.parametrize("side", ["right", "left"])
def test_vmap_of_unbatched_with_scalar_lengths(side):
    provider = jp.CoarseFirstPattern(3, [0, 2])
    pattern = provider.get_pattern(8)
    z = np.arange(4 * 3 * 8, dtype=np.int32).reshape(4, 3, 8)
    lengths = np.array([8, 0, 3, 5])
    batched = pattern.build_pattern_sequence(z, -1, lengths=lengths, padding_side=side)
    mapped = jax.vmap(lambda x, n: pattern.build_pattern_sequence(x, -1, lengths=n, padding_side=side))(z, lengths)
    for a, b in zip(batched, mapped):
        assert_same(a, b)
    seq = np.asarray(batched[0])
    back = jax.vmap(lambda x, n: pattern.revert_pattern_sequence(x, -1, lengths=n, padding_side=side)[0])(seq, lengths)
    t = np.arange(8)
    kept = t < lengths[:, None, None] if side == "right" else t >= 8 - lengths[:, None, None]
    assert_same(back, np.where(kept, z, -1))
    steps, mask = jax.vmap(lambda n: pattern.logit_steps(lengths=n, padding_side=side))(lengths)
    assert_same(steps, pattern.logit_steps(lengths=lengths, padding_side=side)[0])


def test_left_padding_is_the_right_padding_moved():
    """A left-padded batch is its right-padded twin with every row moved to the end, values and padding alike."""
    provider = jp.DelayedPatternProvider(3, [1, 0, 2], empty_initial=-1, any_order=True)
    pattern = provider.get_pattern(6)
    lengths = np.array([6, 2, 0, 4])
    rng = np.random.default_rng(3)
    right_z = rng.integers(0, 9, (4, 3, 6)).astype(np.int32)
    left_z = np.stack([np.roll(z, 6 - n, axis=-1) for z, n in zip(right_z, lengths)])
    right, _, _ = pattern.build_pattern_sequence(right_z, 9, lengths=lengths, fill_after=10)
    left, _, _ = pattern.build_pattern_sequence(left_z, 9, lengths=lengths, fill_after=10, padding_side="left")
    S = right.shape[-1]
    for b, n in enumerate(lengths):
        own = S - (n + 2) if n else S  # `get_pattern(n)` has n + 2 steps (none for n = 0)
        assert_same(left[b, :, own:], right[b, :, : S - own])
        assert (np.asarray(left[b, :, :own]) == 9).all()  # bos before the example (fill_after only after a code)
    back, _, mask = pattern.revert_pattern_sequence(left, -1, lengths=lengths, padding_side="left")
    assert_same(np.where(mask, back, -1), np.where(mask, left_z, -1))
    assert_same(mask.sum((1, 2)), 3 * lengths)


def test_full_lengths_equal_the_fixed_length_ops():
    pattern = jp.MusicLMPattern(4, 2).get_pattern(6)
    z = np.arange(2 * 4 * 6, dtype=np.int32).reshape(2, 4, 6)
    with_lengths = pattern.build_pattern_sequence(z, -1, lengths=np.array([6, 6]))
    plain = pattern.build_pattern_sequence(z, -1)
    assert_same(with_lengths[0], plain[0])
    assert_same(with_lengths[1][0], plain[1])


class Reversed(jp.CodebooksPatternProvider):
    """A custom provider: codebooks in reverse order, one per step (layouts are not prefixes of each other)."""

    def get_pattern(self, timesteps: int) -> Pattern:
        layout: list[list[LayoutCoord]] = [[]]
        layout += [[LayoutCoord(t, q)] for q in reversed(range(self.n_q)) for t in range(timesteps)]
        return Pattern(layout, timesteps, self.n_q)


@pytest.mark.parametrize("kovs", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_custom_provider_uses_the_generic_tables(kovs, side):
    check_per_example(Reversed(3), 7, np.array([0, 7, 2, 5]), kovs, jit=True, side=side)
    check_per_example(Reversed(3), 7, np.array([0, 7, 2, 5]), kovs, jit=False, side=side)  # host rows


def test_custom_provider_over_the_limit_says_what_to_do(monkeypatch):
    monkeypatch.setattr(_indices, "GENERIC_LIMIT", 100)
    pattern = Reversed(3).get_pattern(20)
    z = np.zeros((1, 3, 20), np.int32)
    with pytest.raises(ValueError, match=r"needs per-length tables of \d+ entries \(limit 100\)"):
        jax.jit(lambda n: pattern.build_pattern_sequence(z, -1, lengths=n))(np.array([4]))
    # host lengths ask only the lengths that occur: no all-lengths table, no limit
    out = pattern.build_pattern_sequence(z, -1, lengths=np.array([4]))[0]
    assert_same(out[0, :, : 1 + 3 * 4], Reversed(3).get_pattern(4).build_pattern_sequence(z[..., :4], -1)[0][0])


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda p: p.build_pattern_sequence(np.zeros((2, 3, 8), np.int32), -1, lengths=np.array([3, 9])),
            ValueError,
            r"`lengths` must lie in \[0, T_max=8\]; lengths\[1\] = 9",
        ),
        (
            lambda p: p.build_pattern_sequence(np.zeros((2, 3, 8), np.int32), -1, lengths=np.array([-1, 2])),
            ValueError,
            r"lengths\[0\] = -1",
        ),
        (
            lambda p: p.build_pattern_sequence(np.zeros((2, 3, 8), np.int32), -1, lengths=np.array([3])),
            ValueError,
            r"`lengths` has shape \(1,\); expected the batch shape \(2,\)",
        ),
        (
            lambda p: p.build_pattern_sequence(np.zeros((2, 3, 8), np.int32), -1, lengths=np.array([3.0, 2.0])),
            TypeError,
            r"`lengths` must be an integer array, got dtype float64",
        ),
        (
            lambda p: p.build_pattern_sequence(np.zeros((2, 3, 7), np.int32), -1, lengths=np.array([3, 2])),
            ValueError,
            r"with `lengths`, `z` must have T=8 \(the T_max pattern's\), got 7",
        ),
        (
            lambda p: p.revert_pattern_sequence(np.zeros((2, 3, 9), np.int32), -1, lengths=np.array([3, 2])),
            ValueError,
            r"with `lengths`, `s` must have S=11",
        ),
        (
            lambda p: p.revert_pattern_logits(np.zeros((2, 5, 3, 11), np.float32), NAN, lengths=np.array([[3, 2]])),
            ValueError,
            r"`lengths` has shape \(1, 2\); expected the batch shape \(2,\)",
        ),
        (
            lambda p: Pattern(p.layout, 8, 3).build_pattern_sequence(
                np.zeros((1, 3, 8), np.int32), -1, lengths=np.array([2])
            ),
            ValueError,
            r"lengths= needs a pattern made by a provider's get_pattern",
        ),
        (
            lambda p: p.build_pattern_sequence(np.zeros((1, 3, 8), np.int32), -1, lengths=[2], padding_side="start"),
            ValueError,
            r"`padding_side` must be \"right\" or \"left\", got 'start'",
        ),
        (
            lambda p: p.logit_steps(lengths=np.array([2]), padding_side=None),
            ValueError,
            r"`padding_side` must be \"right\" or \"left\", got None",
        ),
    ],
)
def test_bad_lengths_raise(call, error, match):
    with pytest.raises(error, match=match):
        call(jp.DelayedPatternProvider(3).get_pattern(8))


def test_length_rules_refuse_lengths_and_flags_they_would_misread():
    rule = jp.DelayedPatternProvider(2, [0, 1]).length_rule()
    assert rule.num_steps(np.array([3, 4], np.int64)).tolist() == [5, 6]
    for bad, error in ((2.5, TypeError), (np.array([3.0]), TypeError), ("3", TypeError), (None, TypeError)):
        with pytest.raises(error, match="`lengths`"):  # truncated (2.5 -> 2) or parsed ("3") before
            rule.num_steps(bad)
    for bad in (-1, 2**31, np.array([3, 2**63], np.uint64)):  # -1 gave 0 steps; past int32 no pattern exists
        for query in (rule.num_steps, rule.starts_with_special, lambda n: rule.ref_steps(n, True)):
            with pytest.raises(ValueError, match="`lengths` must lie in"):
                query(bad)
    with pytest.raises(TypeError, match="`keep_only_valid_steps`"):  # "no" was truthy: the valid steps only
        rule.ref_steps([3], "no")


def test_device_lengths_are_not_read_back_but_clipped():
    """Host lengths are range-checked; a jax.Array is not pulled to the host on each call (no sync): clipped."""
    pattern = jp.DelayedPatternProvider(2).get_pattern(4)
    z = np.arange(16, dtype=np.int32).reshape(2, 2, 4)
    with pytest.raises(ValueError, match=r"lengths\[0\] = 9"):
        pattern.build_pattern_sequence(z, -1, lengths=np.array([9, 2]))
    clipped = pattern.build_pattern_sequence(z, -1, lengths=jnp.array([9, 2]))[0]
    assert_same(clipped, pattern.build_pattern_sequence(z, -1, lengths=np.array([4, 2]))[0])


def test_traced_lengths_are_clipped_and_checkify_catches_them():
    pattern = jp.DelayedPatternProvider(2).get_pattern(4)
    z = np.arange(16, dtype=np.int32).reshape(2, 2, 4)
    build = jax.jit(lambda z, n: pattern.build_pattern_sequence(z, -1, lengths=n)[0])
    assert_same(build(z, jnp.array([9, -3])), build(z, jnp.array([4, 0])))

    def checked(z, n):
        jp.check_lengths(n, pattern.timesteps)
        return pattern.build_pattern_sequence(z, -1, lengths=n)[0]

    err, _ = checkify.checkify(jax.jit(checked))(z, jnp.array([9, 2]))
    with pytest.raises(checkify.JaxRuntimeError, match=r"lengths must lie in \[0, 4\]"):
        err.throw()
    err, _ = checkify.checkify(jax.jit(checked))(z, jnp.array([4, 2]))
    assert err.get() is None


def test_long_audio_builds_and_reverts_in_bounded_memory():
    """T_max = 20000, K = 8: every table is O(K * T_max); the compiled ops need no quadratic temp."""
    provider = jp.DelayedPatternProvider(8)
    pattern = provider.get_pattern(20000)
    z = jnp.zeros((2, 8, 20000), jnp.int32)
    lengths = jnp.array([20000, 12345])
    build = jax.jit(lambda z, n: pattern.build_pattern_sequence(z, -1, lengths=n))
    compiled = build.lower(z, lengths).compile()
    memory = compiled.memory_analysis()
    temp = getattr(memory, "temp_size_in_bytes", 0)
    assert temp < 64 * 2**20, f"temp memory {temp} bytes"
    seq, _, mask = compiled(z, lengths)
    assert int(mask[1].sum()) == 8 * 12345
    logits = jnp.zeros((2, 8, seq.shape[-1], 4), jnp.float32)
    out = pattern.revert_pattern_logits(logits, NAN, card_axis=-1, lengths=lengths)
    assert int(out[2][1].sum()) == 8 * 12345  # every code of example 1 has its prediction
    assert bool(jnp.isnan(out[0][1, :, 12345:]).all())
