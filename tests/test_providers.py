"""Providers: layouts of the docstrings, options, T=0, custom providers, caching, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import providers

import jax_patterns as jp
from jax_patterns import LayoutCoord as C
from jax_patterns import Pattern

ALL_KINDS = [
    jp.DelayedPatternProvider(3),
    jp.DelayedPatternProvider(3, empty_initial=-1),
    jp.ParallelPatternProvider(3),
    jp.UnrolledPatternProvider(3),
    jp.CoarseFirstPattern(3),
    jp.VALLEPattern(3, delays=[0, 1]),
    jp.MusicLMPattern(4, group_by=2),
]


def grid(pattern: Pattern) -> list[list[str]]:
    times = np.broadcast_to(np.arange(pattern.timesteps, dtype=np.int32) + 1, (pattern.n_q, pattern.timesteps))
    values = np.asarray(pattern.build_pattern_sequence(times, 0)[0])
    return [["S" if v == 0 else str(v) for v in row] for row in values.tolist()]


def test_delayed_docstring_example():
    assert grid(jp.DelayedPatternProvider(3).get_pattern(4)) == [list("S1234SS"), list("SS1234S"), list("SSS1234")]


def test_unrolled_docstring_example():
    # audiocraft's docstring prints these rows bottom-up; its code (and the goldens) put codebook 0 first.
    assert grid(jp.UnrolledPatternProvider(3).get_pattern(4)) == [
        list("S1SS2SS3SS4SS"),
        list("SS1SS2SS3SS4S"),
        list("SSS1SS2SS3SS4"),
    ]


def test_delayed_options():
    p = jp.DelayedPatternProvider(2, flatten_first=1, empty_initial=1).get_pattern(2)
    assert p.layout == ((), (), (C(0, 0),), (C(0, 1),), (C(1, 0),), (C(2, 0), C(1, 1)))
    q = jp.DelayedPatternProvider(2, empty_initial=-1).get_pattern(2)
    assert q.layout == ((C(0, 0),), (C(1, 0), C(0, 1)), (C(2, 0), C(1, 1)))
    assert not q.starts_with_special_token()


def test_coarse_first_and_musiclm_layouts():
    p = jp.CoarseFirstPattern(3, delays=[0, 1]).get_pattern(2)
    assert p.layout == ((), (C(0, 0),), (C(1, 0),), (C(0, 1),), (C(1, 1), C(0, 2)), (C(2, 1), C(1, 2)))
    m = jp.MusicLMPattern(4, group_by=2).get_pattern(2)
    assert [c for step in m.layout for c in step] == [
        C(0, 0),
        C(0, 1),
        C(1, 0),
        C(1, 1),
        C(0, 2),
        C(0, 3),
        C(1, 2),
        C(1, 3),
    ]
    # n_q=1 (audiocraft fails on max([])): codebook 0, then T empty steps
    assert jp.CoarseFirstPattern(1).get_pattern(2).layout == ((), (C(0, 0),), (C(1, 0),), (), ())


def test_valle_is_coarse_first():
    assert jp.VALLEPattern(4, [0, 1, 2]).get_pattern(7) == jp.CoarseFirstPattern(4, [0, 1, 2]).get_pattern(7)
    assert issubclass(jp.VALLEPattern, jp.CoarseFirstPattern)


@pytest.mark.parametrize("provider", ALL_KINDS, ids=repr)
def test_zero_timesteps_is_all_special(provider):
    pattern = provider.get_pattern(0)
    assert pattern.timesteps == 0
    values, indexes, mask = pattern.build_pattern_sequence(np.zeros((2, provider.n_q, 0), np.int32), 7)
    assert values.shape == (2, provider.n_q, len(pattern.layout))
    assert (np.asarray(values) == 7).all() and not np.asarray(mask).any()
    assert (np.asarray(indexes) == 0).all()  # n_q * T == 0 is the special index
    out, _, out_mask = pattern.revert_pattern_sequence(values, 7)
    assert out.shape == (2, provider.n_q, 0) and out_mask.shape == (provider.n_q, 0)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: jp.DelayedPatternProvider(0), ValueError, r"`n_q` must be >= 1, got 0"),
        (lambda: jp.DelayedPatternProvider(-2), ValueError, r"`n_q` must be >= 1, got -2"),
        (lambda: jp.DelayedPatternProvider(2.0), TypeError, r"`n_q` must be an int"),
        (
            lambda: jp.DelayedPatternProvider(3, delays=[0, 1]),
            ValueError,
            r"`delays` has 2 entries, \[0, 1\]; expected 3",
        ),
        (lambda: jp.DelayedPatternProvider(3, delays=[0, 2, 1]), ValueError, r"`delays` must be sorted.*\[0, 2, 1\]"),
        (lambda: jp.DelayedPatternProvider(2, delays=[-1, 0]), ValueError, r"`delays\[0\]` must be >= 0, got -1"),
        (lambda: jp.DelayedPatternProvider(2, delays="01"), TypeError, r"`delays` must be a sequence of ints"),
        (lambda: jp.DelayedPatternProvider(2, flatten_first=-1), ValueError, r"`flatten_first` must be >= 0"),
        (lambda: jp.ParallelPatternProvider(0), ValueError, r"`n_q` must be >= 1"),
        (lambda: jp.UnrolledPatternProvider(3, flattening=[0, 2, 1]), ValueError, r"`flattening` must be sorted"),
        (lambda: jp.UnrolledPatternProvider(3, flattening=[0, 1]), ValueError, r"`flattening` has 2 entries"),
        (
            lambda: jp.UnrolledPatternProvider(3, flattening=[0, 1, 1], delays=[0, 1, 2]),
            ValueError,
            r"codebooks 1 and 2 are flattened to inner step 1 but have delays 1 and 2",
        ),
        (lambda: jp.CoarseFirstPattern(3, delays=[0, 1, 2]), ValueError, r"`delays` has 3 entries.*expected 2"),
        (lambda: jp.CoarseFirstPattern(3, delays=[1, 0]), ValueError, r"`delays` must be sorted"),
        (lambda: jp.MusicLMPattern(4, group_by=3), ValueError, r"`group_by`=3 must divide n_q=4"),
        (lambda: jp.MusicLMPattern(4, group_by=0), ValueError, r"`group_by` must be >= 1, got 0"),
        (lambda: jp.DelayedPatternProvider(2).get_pattern(-1), ValueError, r"`timesteps` must be >= 0, got -1"),
        (lambda: jp.DelayedPatternProvider(2).get_pattern(2.5), TypeError, r"`timesteps` must be an int, got 2.5"),
    ],
)
def test_invalid_configs_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_providers_are_immutable_and_hash_by_value():
    p = jp.DelayedPatternProvider(4)
    with pytest.raises(AttributeError, match="immutable"):
        p.delays = (0, 0, 0, 0)
    assert p == jp.DelayedPatternProvider(4, [0, 1, 2, 3]) and hash(p) == hash(jp.DelayedPatternProvider(4))
    assert p != jp.DelayedPatternProvider(4, [0, 1, 2, 4])
    assert jp.MusicLMPattern(4) != jp.UnrolledPatternProvider(4)


class Reversed(jp.CodebooksPatternProvider):
    """A user provider: last codebook first, one codebook per step."""

    calls = 0

    def get_pattern(self, timesteps: int) -> Pattern:
        type(self).calls += 1
        layout: list[list[C]] = [[]] + [[C(t, q)] for t in range(timesteps) for q in reversed(range(self.n_q))]
        return Pattern(layout, timesteps=timesteps, n_q=self.n_q)


def test_custom_provider_is_validated_cached_and_works_with_every_op():
    provider = Reversed(2)
    before = Reversed.calls
    p = provider.get_pattern(3)
    assert provider.get_pattern(3) is p and Reversed.calls == before + 1
    z = np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.int32)
    seq, _, mask = p.build_pattern_sequence(z, -1)
    assert np.asarray(seq).tolist() == [[[-1, -1, 1, -1, 2, -1, 3], [-1, 4, -1, 5, -1, 6, -1]]]
    assert np.asarray(p.revert_pattern_sequence(seq, -1)[0]).tolist() == z.tolist()
    logits = np.arange(14, dtype=np.float32).reshape(1, 1, 2, 7)  # [B, card, K, S]
    assert np.asarray(p.revert_pattern_logits(logits, np.nan)[0])[0, 0].tolist() == [[1, 3, 5], [7, 9, 11]]
    with pytest.raises(ValueError, match=r"`timesteps` must be >= 0"):
        provider.get_pattern(-3)


def test_custom_provider_returning_wrong_things_raises():
    class Wrong(jp.CodebooksPatternProvider):
        def get_pattern(self, timesteps):
            return Pattern([[]], timesteps=timesteps + 1, n_q=self.n_q)

    class NotAPattern(jp.CodebooksPatternProvider):
        def get_pattern(self, timesteps):
            return [[]]

    with pytest.raises(ValueError, match=r"Wrong.get_pattern\(2\) returned a pattern with n_q=1, timesteps=3"):
        Wrong(1).get_pattern(2)
    with pytest.raises(TypeError, match=r"NotAPattern.get_pattern\(2\) returned list; expected a Pattern"):
        NotAPattern(1).get_pattern(2)


def test_uncached_provider_builds_each_time():
    class Fresh(jp.CodebooksPatternProvider):
        def get_pattern(self, timesteps):
            return Pattern([[]] + [[C(t, 0)] for t in range(timesteps)], timesteps=timesteps, n_q=1)

    provider = Fresh(1, cached=False)
    a, b = provider.get_pattern(4), provider.get_pattern(4)
    assert a == b and a is not b


def test_abstract_provider_cannot_be_instantiated():
    with pytest.raises(TypeError):
        jp.CodebooksPatternProvider(2)  # type: ignore[abstract]


@given(providers(), st.integers(0, 40))
def test_fast_layouts_equal_the_plain_python_spec(provider, timesteps):
    """get_pattern (vectorised numpy) == reference_layout (plain Python), and so are their index arrays."""
    from jax_patterns import _indices

    fast = provider.get_pattern(timesteps)
    spec = Pattern(
        provider.reference_layout(timesteps), timesteps, provider.n_q, omit_special_token=fast.omit_special_token
    )
    assert fast == spec and hash(fast) == hash(spec)
    assert fast.layout == spec.layout
    for kovs in (False, True):
        for a, b in zip(_indices.build_indexes(fast, timesteps, kovs), _indices.build_indexes(spec, timesteps, kovs)):
            np.testing.assert_array_equal(a, b)
        steps = _indices.layout_length(fast, kovs)
        for model_output in (False, True):
            fast_idx = _indices.revert_indexes(fast, steps, kovs, model_output)
            spec_idx = _indices.revert_indexes(spec, steps, kovs, model_output)
            for a, b in zip(fast_idx, spec_idx):
                np.testing.assert_array_equal(a, b)


def test_layout_is_built_lazily():
    pattern = jp.DelayedPatternProvider(8).get_pattern(30000)
    assert pattern._layout is None
    pattern.build_pattern_sequence(np.zeros((1, 8, 30000), np.int32), -1, keep_only_valid_steps=True)
    assert pattern.max_delay == 7 and pattern.valid_steps == 30001
    assert pattern._layout is None, "the ops and properties must not materialise the layout"
    assert len(pattern.layout) == 30008 and pattern.layout[2] == (C(1, 0), C(0, 1))
