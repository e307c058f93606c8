"""Pattern: construction, validation errors, queries, equality and hashing."""

from __future__ import annotations

import numpy as np
import pytest

import jax_patterns as jp
from jax_patterns import LayoutCoord, Pattern

DELAYED_3 = [[], [(0, 0)], [(1, 0), (0, 1)], [(2, 0), (1, 1)], [(2, 1)]]


def test_fields_are_frozen_to_tuples_of_layout_coords():
    p = Pattern(DELAYED_3, timesteps=3, n_q=2)
    assert p.layout[2] == (LayoutCoord(1, 0), LayoutCoord(0, 1))
    assert isinstance(p.layout, tuple) and all(isinstance(c, LayoutCoord) for s in p.layout for c in s)
    with pytest.raises(AttributeError, match="immutable"):
        p.timesteps = 4  # type: ignore[misc]


def test_properties_match_definitions():
    p = Pattern(DELAYED_3, timesteps=3, n_q=2)
    assert p.num_sequence_steps == 4
    assert p.max_delay == 0
    assert p.valid_layout == p.layout
    assert p.starts_with_special_token()
    q = Pattern([[], [(0, 0)], [(1, 0), (0, 1)], [(2, 0), (1, 1)], [(3, 0), (2, 1)]], timesteps=3, n_q=2)
    assert q.max_delay == 1
    assert q.valid_layout == q.layout[:4]


def test_queries():
    p = Pattern(DELAYED_3, timesteps=3, n_q=2)
    assert p.get_sequence_coords_with_timestep(1) == [(2, LayoutCoord(1, 0)), (3, LayoutCoord(1, 1))]
    assert p.get_steps_with_timestep(1, q=1) == [3]
    assert p.get_first_step_with_timesteps(0) == 1
    assert p.get_first_step_with_timesteps(3) is None  # t == timesteps is allowed, as in audiocraft


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda p: p.get_steps_with_timestep(4), ValueError, r"`t`=4 is greater than the pattern's timesteps=3"),
        (lambda p: p.get_steps_with_timestep(-1), ValueError, r"`t` must be >= 0, got -1"),
        (lambda p: p.get_steps_with_timestep(0, q=2), ValueError, r"`q`=2 is outside \[0, n_q=2\)"),
        (lambda p: p.get_steps_with_timestep(0.5), TypeError, r"`t` must be an int, got 0.5"),
    ],
)
def test_query_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(Pattern(DELAYED_3, timesteps=3, n_q=2))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"layout": DELAYED_3, "timesteps": 3, "n_q": 0}, ValueError, r"`n_q` must be >= 1, got 0"),
        ({"layout": DELAYED_3, "timesteps": -1, "n_q": 2}, ValueError, r"`timesteps` must be >= 0, got -1"),
        ({"layout": DELAYED_3, "timesteps": 3.0, "n_q": 2}, TypeError, r"`timesteps` must be an int, got 3.0"),
        ({"layout": DELAYED_3, "timesteps": 3, "n_q": True}, TypeError, r"`n_q` must be an int"),
        ({"layout": [[(0, 0)], [(1, 0)]], "timesteps": 2, "n_q": 1}, ValueError, r"`layout\[0\]` must be empty"),
        ({"layout": [], "timesteps": 0, "n_q": 1}, ValueError, r"`layout` is empty"),
        (
            {"layout": [[], [(0, 0), (1, 0)]], "timesteps": 2, "n_q": 1},
            ValueError,
            r"`layout\[1\]` holds two coordinates of codebook q=0",
        ),
        (
            {"layout": [[], [(1, 0)], [(0, 0)]], "timesteps": 2, "n_q": 1},
            ValueError,
            r"`layout\[2\]` goes back in time for codebook q=0: t=0 after t=1",
        ),
        (
            {"layout": [[], [(0, 2)]], "timesteps": 1, "n_q": 2},
            ValueError,
            r"`layout\[1\]` has codebook q=2; expected q in \[0, n_q=2\)",
        ),
        ({"layout": [[], [(0, -1)]], "timesteps": 1, "n_q": 2}, ValueError, r"codebook q=-1"),
        ({"layout": [[], [(-1, 0)]], "timesteps": 1, "n_q": 1}, ValueError, r"`layout\[1\] t` must be >= 0"),
        ({"layout": [[], [(0,)]], "timesteps": 1, "n_q": 1}, TypeError, r"expected a \(t, q\) coordinate"),
        ({"layout": "abc", "timesteps": 1, "n_q": 1}, TypeError, r"`layout` must be a sequence of steps"),
        ({"layout": [[], (0, 0)], "timesteps": 1, "n_q": 1}, TypeError, r"`layout\[1\]` holds 0"),
    ],
)
def test_invalid_layouts_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        Pattern(**kwargs)


def test_omit_special_token_allows_a_filled_first_step():
    p = Pattern([[(0, 0)], [(1, 0)]], timesteps=2, n_q=1, omit_special_token=True)
    assert not p.starts_with_special_token()
    assert p.num_sequence_steps == 1
    # an empty first step is still a special-token step, whatever the flag says
    q = Pattern([[], [(0, 0)]], timesteps=1, n_q=1, omit_special_token=True)
    assert q.starts_with_special_token()
    assert q == Pattern([[], [(0, 0)]], timesteps=1, n_q=1)


def test_equality_and_hash_by_value():
    a = Pattern(DELAYED_3, timesteps=3, n_q=2)
    b = Pattern([list(step) for step in DELAYED_3], timesteps=3, n_q=2)
    c = Pattern(DELAYED_3, timesteps=4, n_q=2)
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert a != "not a pattern"


def test_equal_providers_share_one_pattern():
    a = jp.DelayedPatternProvider(4).get_pattern(10)
    b = jp.DelayedPatternProvider(4, delays=[0, 1, 2, 3]).get_pattern(10)
    assert a is b
    assert jp.ParallelPatternProvider(3).get_pattern(5) == jp.DelayedPatternProvider(3, [0, 0, 0]).get_pattern(5)


def test_coords_are_read_only_int_arrays():
    steps, ts, qs = Pattern(DELAYED_3, timesteps=3, n_q=2).coords
    assert steps.tolist() == [1, 2, 2, 3, 3, 4]
    assert ts.tolist() == [0, 1, 0, 2, 1, 2]
    assert qs.tolist() == [0, 0, 1, 0, 1, 1]
    with pytest.raises(ValueError):
        steps[0] = 5


def test_patterns_too_large_for_int32_indexes_are_refused():
    coords = (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32), 1)
    with pytest.raises(ValueError, match=r"pattern too large for int32 indexes: n_q=8"):
        Pattern.from_coords(coords, timesteps=2**28, n_q=8)
    assert Pattern.from_coords(coords, timesteps=2**27, n_q=8).timesteps == 2**27
