"""The MusicLM family: full flattening by groups of codebooks, one codebook a step.

Its length rule shortens each group's block: `L * group_by` steps instead of
`T_max * group_by`.
"""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

from jax_patterns._checks import check_int
from jax_patterns._layout import LayoutCoord, Pattern
from jax_patterns._providers import LengthRule, ValueProvider, audiocraft_class, audiocraft_fields


@dataclasses.dataclass(frozen=True)
class MusicLMRule(LengthRule):
    """Each group of codebooks spans `L * group_by` steps in layout(L)."""

    n_q: int
    group_by: int

    def shape(self, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        L = np.asarray(lengths, dtype=np.int64)
        return 1 + self.n_q * L, L, np.ones_like(L, dtype=bool)

    def to_full(self, xp: tp.Any, lengths: tp.Any, steps: tp.Any, t_max: int) -> tp.Any:
        block = xp.maximum(lengths * self.group_by, 1)
        r = xp.maximum(steps - 1, 0)
        return xp.where(steps == 0, 0, 1 + (r // block) * (t_max * self.group_by) + r % block)

    def from_full(self, xp: tp.Any, lengths: tp.Any, steps: tp.Any, t_max: int) -> tp.Any:
        block = max(t_max * self.group_by, 1)
        r = xp.maximum(steps - 1, 0)
        return xp.where(steps == 0, 0, 1 + (r // block) * (lengths * self.group_by) + r % block)


class MusicLMPattern(ValueProvider):
    """Full flattening by groups: all timesteps of codebooks `0..g-1`, then the next group.

    Args:
      n_q: number of codebooks.
      group_by: codebooks per group; must divide `n_q`.

    Raises:
      ValueError: `group_by <= 0` or `group_by` does not divide `n_q` (audiocraft
        silently emits codebooks `>= n_q` there).
    """

    cli_name = "musiclm"
    cli_options = ("group_by",)
    audiocraft_names = ("MusicLMPattern",)
    _fields = ("n_q", "group_by")

    def __init__(self, n_q: int, group_by: int = 2):
        super().__init__(n_q)
        self.group_by = check_int("group_by", group_by, minimum=1)
        if self.n_q % self.group_by:
            raise ValueError(f"`group_by`={self.group_by} must divide n_q={self.n_q}")
        self._freeze()

    def get_pattern(self, timesteps: int) -> Pattern:
        """The pattern for `timesteps` timesteps, built from flat coordinate arrays."""
        return Pattern.from_coords(self._coords(timesteps), timesteps, self.n_q, provider=self, validate=False)

    def _coords(self, timesteps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Flat `(steps, t, q, num_steps)`: special step, then per group every timestep, one codebook a step."""
        g, t, r = np.meshgrid(
            np.arange(self.n_q // self.group_by, dtype=np.int32),
            np.arange(timesteps, dtype=np.int32),
            np.arange(self.group_by, dtype=np.int32),
            indexing="ij",
        )
        steps = 1 + np.arange(self.n_q * timesteps, dtype=np.int32)
        return steps, t.reshape(-1), (g * self.group_by + r).reshape(-1), 1 + self.n_q * timesteps

    def length_rule(self) -> MusicLMRule:
        """The closed-form relation between `get_pattern(L)` and `get_pattern(T_max)` (`lengths=` uses it)."""
        return MusicLMRule(self.n_q, self.group_by)

    def reference_layout(self, timesteps: int) -> list[list[LayoutCoord]]:
        """The layout in plain Python: the specification `get_pattern` is tested against."""
        timesteps = self._layout_timesteps(timesteps)
        layout: list[list[LayoutCoord]] = [[]]
        for first in range(0, self.n_q, self.group_by):
            for t in range(timesteps):
                layout += [[LayoutCoord(t, q)] for q in range(first, first + self.group_by)]
        return layout

    @classmethod
    def from_audiocraft(cls, obj: tp.Any) -> MusicLMPattern:
        """This family's provider equal to the audiocraft provider `obj` (duck-typed by attributes)."""
        return cls(*audiocraft_fields(obj, "MusicLMPattern", "n_q", "group_by"))

    def to_audiocraft(self, module: tp.Any) -> tp.Any:
        """audiocraft's provider equal to this one, built from audiocraft's `codebooks_patterns` module."""
        return audiocraft_class(module, "MusicLMPattern")(self.n_q, self.group_by)
