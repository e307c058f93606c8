"""The coarse-first family (VALL-E style): all of codebook 0, then the other codebooks with delays.

Its length rule shifts the second part: for an example of length `L` it starts
at step `L + 1`, not `T_max + 1`.
"""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

from jax_patterns._layout import LayoutCoord, Pattern
from jax_patterns._providers import (
    LengthRule,
    ValueProvider,
    audiocraft_class,
    audiocraft_fields,
    check_sorted_ints,
    i32,
)


@dataclasses.dataclass(frozen=True)
class CoarseFirstRule(LengthRule):
    """The second part of layout(L) starts at step `L + 1` instead of `T_max + 1`."""

    delays: tuple[int, ...]  # of codebooks 1..n_q-1

    def shape(self, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        L = np.asarray(lengths, dtype=np.int64)
        dmax = max(self.delays, default=0)
        second = np.maximum(L + dmax - self.delays[0], 0) if self.delays else np.zeros_like(L)
        return 1 + 2 * L + dmax, np.maximum(L, second), np.ones_like(L, dtype=bool)

    def to_full(self, xp: tp.Any, lengths: tp.Any, steps: tp.Any, t_max: int) -> tp.Any:
        return xp.where(steps <= lengths, steps, steps + (t_max - lengths))

    def from_full(self, xp: tp.Any, lengths: tp.Any, steps: tp.Any, t_max: int) -> tp.Any:
        return xp.where(steps <= t_max, steps, steps - (t_max - lengths))


class CoarseFirstPattern(ValueProvider):
    """All of codebook 0 first, then the other codebooks with optional delays.

    (audiocraft 1.3.0's name; `VALLEPattern` is the same provider.) With `n_q=1`
    audiocraft fails on `max([])`; here the second part is `timesteps` empty steps.

    Args:
      n_q: number of codebooks.
      delays: sorted non-negative delay of codebooks `1..n_q-1`; default zeros.

    Raises:
      ValueError: `delays` not of length `n_q - 1`, unsorted or negative.
    """

    cli_name = "coarse-first"
    cli_options = ("delays",)
    audiocraft_names = ("CoarseFirstPattern", "VALLEPattern")
    _fields = ("n_q", "delays")

    def __init__(self, n_q: int, delays: tp.Sequence[int] | None = None):
        super().__init__(n_q)
        self.delays = check_sorted_ints("delays", delays, self.n_q - 1, [0] * (self.n_q - 1))
        self._freeze()

    def get_pattern(self, timesteps: int) -> Pattern:
        """The pattern for `timesteps` timesteps, built from flat coordinate arrays."""
        return Pattern.from_coords(self._coords(timesteps), timesteps, self.n_q, provider=self, validate=False)

    def _coords(self, timesteps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Flat `(steps, t, q, num_steps)`: special step, codebook 0 for every t, then 1.. with delays."""
        head_t = np.arange(timesteps, dtype=np.int32)
        max_delay = max(self.delays, default=0)
        j = np.arange(timesteps + max_delay, dtype=np.int32)[:, None]
        t = j - i32(self.delays).reshape(1, -1)
        keep = t >= 0
        tail_steps = np.broadcast_to(1 + timesteps + j, t.shape)[keep]
        tail_q = np.broadcast_to(np.arange(1, self.n_q, dtype=np.int32)[None, :], t.shape)[keep]
        return (
            np.concatenate([1 + head_t, tail_steps]),
            np.concatenate([head_t, t[keep]]),
            np.concatenate([np.zeros(timesteps, dtype=np.int32), tail_q]),
            1 + 2 * timesteps + max_delay,
        )

    def length_rule(self) -> CoarseFirstRule:
        """The closed-form relation between `get_pattern(L)` and `get_pattern(T_max)` (`lengths=` uses it)."""
        return CoarseFirstRule(self.delays)

    def reference_layout(self, timesteps: int) -> list[list[LayoutCoord]]:
        """The layout in plain Python: the specification `get_pattern` is tested against."""
        timesteps = self._layout_timesteps(timesteps)
        layout: list[list[LayoutCoord]] = [[]]
        layout += [[LayoutCoord(t, 0)] for t in range(timesteps)]
        for step in range(timesteps + max(self.delays, default=0)):
            shifted = ((step - delay, q + 1) for q, delay in enumerate(self.delays))
            layout.append([LayoutCoord(t, q) for t, q in shifted if t >= 0])
        return layout

    @classmethod
    def from_audiocraft(cls, obj: tp.Any) -> CoarseFirstPattern:
        """This family's provider equal to the audiocraft provider `obj` (duck-typed by attributes)."""
        n_q, delays = audiocraft_fields(obj, "CoarseFirstPattern", "n_q", "delays")
        return CoarseFirstPattern(n_q, list(delays))

    def to_audiocraft(self, module: tp.Any) -> tp.Any:
        """audiocraft's provider equal to this one, built from audiocraft's `codebooks_patterns` module."""
        cls = audiocraft_class(module, "CoarseFirstPattern", "VALLEPattern")
        return cls(self.n_q, list(self.delays))


class VALLEPattern(CoarseFirstPattern):
    """The pre-1.3.0 name of `CoarseFirstPattern` (equal patterns, same arguments)."""

    cli_name = "valle"
