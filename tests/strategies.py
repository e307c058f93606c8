"""Hypothesis strategies: random built-in provider configurations."""

from __future__ import annotations

import os

from hypothesis import strategies as st

import jax_patterns as jp


def examples(n: int) -> int:
    """`n` hypothesis examples for a test whose every example compiles programs; 10x under the thorough profile."""
    return n * 10 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else n


@st.composite
def sorted_ints(draw, size: int, max_value: int = 4):
    return sorted(draw(st.lists(st.integers(0, max_value), min_size=size, max_size=size)))


@st.composite
def providers(draw, max_n_q: int = 5):
    n_q = draw(st.integers(1, max_n_q))
    kind = draw(st.sampled_from(["delayed", "any-order", "parallel", "unrolled", "coarse", "musiclm"]))
    if kind == "any-order":
        delays = draw(st.lists(st.integers(0, 4), min_size=n_q, max_size=n_q))
        return jp.DelayedPatternProvider(n_q, delays, draw(st.integers(0, 3)), draw(st.integers(-2, 2)), any_order=True)
    if kind == "delayed":
        return jp.DelayedPatternProvider(n_q, draw(sorted_ints(n_q)), draw(st.integers(0, 3)), draw(st.integers(-2, 2)))
    if kind == "parallel":
        return jp.ParallelPatternProvider(n_q, draw(st.integers(-1, 2)))
    if kind == "unrolled":
        flattening = draw(sorted_ints(n_q, 3))
        group_delay: dict[int, int] = {}
        for inner in sorted(set(flattening)):  # sorted delays, equal within a flattened group
            group_delay[inner] = max(group_delay.values(), default=0) + draw(st.integers(0, 2))
        return jp.UnrolledPatternProvider(n_q, flattening, [group_delay[i] for i in flattening])
    if kind == "coarse":
        return jp.CoarseFirstPattern(n_q, draw(sorted_ints(n_q - 1)))
    group_by = draw(st.sampled_from([g for g in range(1, n_q + 1) if n_q % g == 0]))
    return jp.MusicLMPattern(n_q, group_by)
