"""Test helpers: providers from the golden manifest, NaN-aware equality, plain-loop references."""

from __future__ import annotations

import logging

import jax
import numpy as np

import jax_patterns as jp

FAMILIES = [  # one small configuration of every built-in family (the LM, generation and packing tests)
    jp.DelayedPatternProvider(3),
    jp.DelayedPatternProvider(3, [0, 2, 2], flatten_first=1, empty_initial=1),
    jp.ParallelPatternProvider(2),
    jp.UnrolledPatternProvider(3, [0, 1, 1], [0, 2, 2]),
    jp.CoarseFirstPattern(3, [0, 1]),
    jp.VALLEPattern(3),
    jp.MusicLMPattern(4, 2),
]


def provider_from(name: str, kwargs: dict, n_q: int) -> jp.CodebooksPatternProvider:
    """The jax_patterns provider that audiocraft's class `name` with `kwargs` corresponds to."""
    return getattr(jp, name)(n_q, **kwargs)


def assert_same(actual, expected, what: str = "") -> None:
    """Exact equality of shape and values; NaN equals NaN; dtypes may differ in width only."""
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    if a.dtype == bool or e.dtype == bool:
        assert a.dtype == e.dtype, f"{what}: dtype {a.dtype} != {e.dtype}"
        np.testing.assert_array_equal(a, e, err_msg=what)
        return
    np.testing.assert_array_equal(a.astype(np.float64), e.astype(np.float64), err_msg=what)


def loop_build(pattern: jp.Pattern, z: np.ndarray, special, keep_only_valid_steps: bool = False) -> np.ndarray:
    """Plain-loop build: walk the layout and copy each code (the definition, no index tables)."""
    layout = pattern.valid_layout if keep_only_valid_steps else pattern.layout
    *lead, n_q, timesteps = z.shape
    out = np.full((*lead, n_q, len(layout)), special, dtype=z.dtype)
    for s, step in enumerate(layout):
        for t, q in step:
            if t < timesteps:
                out[..., q, s] = z[..., q, t]
    return out


def loop_revert(
    pattern: jp.Pattern, seq: np.ndarray, special, keep_only_valid_steps: bool = False, model_output: bool = False
) -> np.ndarray:
    """Plain-loop revert of `seq` `[..., K, S]` (the definition, no index tables)."""
    layout = pattern.valid_layout if keep_only_valid_steps else pattern.layout
    if model_output and pattern.starts_with_special_token():
        layout = layout[1:]
    *lead, n_q, steps = seq.shape
    out = np.full((*lead, n_q, pattern.timesteps), special, dtype=seq.dtype)
    for s, step in enumerate(layout[:steps]):
        for t, q in step:
            if t < pattern.timesteps:
                out[..., q, t] = seq[..., q, s]
    return out


class _Compiles(logging.Handler):
    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def emit(self, record):
        if record.getMessage().startswith("Compiling "):
            self.names.append(record.getMessage().split(" with ")[0])


def compilations(fn) -> list[str]:
    """The programs XLA compiles while `fn` runs."""
    handler = _Compiles()
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles():
            fn()
    finally:
        logger.removeHandler(handler)
    return handler.names
