"""The unrolled family: codebooks flattened over inner steps of each timestep, with optional delays.

Its length rule is the identity (the layout for `L` is the layout for `T_max`
cut short); the step count follows from the empty inner steps and group delays.
"""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

from jax_patterns._checks import check_int
from jax_patterns._layout import LayoutCoord, Pattern
from jax_patterns._providers import (
    N_Q_MAX,
    LengthRule,
    ValueProvider,
    audiocraft_class,
    audiocraft_fields,
    check_sorted_ints,
    i32,
)


@dataclasses.dataclass(frozen=True)
class UnrolledRule(LengthRule):
    """Closed form of an unrolled layout's size; the step maps are the identity."""

    empty_inner: int  # inner steps no codebook is flattened to
    group_delays: tuple[int, ...]  # one per non-empty inner step
    max_delay: int

    def shape(self, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        L = np.asarray(lengths, dtype=np.int64)
        horizon = L + self.max_delay
        n = 1 + self.empty_inner * horizon + sum(horizon - d for d in self.group_delays)
        reach = np.maximum(horizon - min(self.group_delays), 0)
        return n, reach, np.ones_like(L, dtype=bool)


class UnrolledPatternProvider(ValueProvider):
    """Flattens codebooks over inner steps, optionally with per-codebook delays.

    Codebook `q` goes to inner step `flattening[q]` of each timestep; codebooks
    sharing an inner step share a step (and must share a delay). With `n_q=3`,
    `timesteps=4` and the defaults (full flattening, no delay)::

        [[S, S, 1, S, S, 2, S, S, 3, S, S, 4],
         [S, 1, S, S, 2, S, S, 3, S, S, 4, S],
         [1, S, S, 2, S, S, 3, S, S, 4, S, S]]

    Args:
      n_q: number of codebooks.
      flattening: sorted inner step of each codebook; default `range(n_q)`.
      delays: sorted non-negative delay of each codebook; default zeros.

    Raises:
      ValueError: wrong lengths, unsorted values, or two codebooks flattened to
        the same inner step with different delays.
    """

    cli_name = "unrolled"
    cli_options = ("flattening", "delays")
    audiocraft_names = ("UnrolledPatternProvider",)
    _fields = ("n_q", "flattening", "delays")

    def __init__(
        self,
        n_q: int,
        flattening: tp.Sequence[int] | None = None,
        delays: tp.Sequence[int] | None = None,
    ):
        super().__init__(n_q)
        self.flattening = check_sorted_ints("flattening", flattening, self.n_q, list(range(self.n_q)))
        self.delays = check_sorted_ints("delays", delays, self.n_q, [0] * self.n_q)
        groups: dict[int, tuple[list[int], int]] = {}
        for q, (inner, delay) in enumerate(zip(self.flattening, self.delays)):
            codebooks, group_delay = groups.setdefault(inner, ([], delay))
            if group_delay != delay:
                raise ValueError(
                    f"codebooks {codebooks[0]} and {q} are flattened to inner step {inner} but have delays "
                    f"{group_delay} and {delay}; codebooks flattened together need the same delay"
                )
            codebooks.append(q)
        self._groups = {inner: (tuple(cbs), delay) for inner, (cbs, delay) in groups.items()}
        self.max_delay = max(self.delays)
        self._freeze()

    @property
    def _num_inner_steps(self) -> int:
        return max(self.flattening) + 1

    def num_virtual_steps(self, timesteps: int) -> int:
        """`timesteps * inner_steps + 1`, as in audiocraft.

        Raises:
          TypeError, ValueError: `timesteps` is not an int in `[0, 2**31)`.
        """
        return check_int("timesteps", timesteps, minimum=0) * self._num_inner_steps + 1

    def get_pattern(self, timesteps: int) -> Pattern:
        """The pattern for `timesteps` timesteps, built from flat coordinate arrays."""
        return Pattern.from_coords(self._coords(timesteps), timesteps, self.n_q, provider=self, validate=False)

    def _coords(self, timesteps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Flat `(steps, t, q, num_steps)`: entries `(t + delay, group)` sorted by key, then their codebooks."""
        flattening_a, delays_a = i32(self.flattening), i32(self.delays)
        inner_steps = self._num_inner_steps
        horizon = timesteps + self.max_delay
        # one entry per (t, inner step); empty inner steps are keyed by t and sort before groups of equal key
        inner = np.arange(inner_steps, dtype=np.int32)
        has_group = np.isin(inner, flattening_a)
        first_q = np.full(inner_steps, -1, dtype=np.int32)
        group_delay = np.zeros(inner_steps, dtype=np.int32)
        firsts = np.searchsorted(flattening_a, inner[has_group])
        first_q[has_group] = firsts
        group_delay[has_group] = delays_a[firsts]
        t = np.repeat(np.arange(horizon, dtype=np.int32), inner_steps)
        i = np.tile(inner, horizon)
        key = t + group_delay[i]
        emitted = ~has_group[i] | (key < horizon)
        t, i, key = t[emitted], i[emitted], key[emitted]
        nonempty = has_group[i]
        order = np.lexsort((first_q[i], t, nonempty, key))  # (key, coords): () first, then by (t, q)
        t, i, nonempty = t[order], i[order], nonempty[order]
        step_of_entry = 1 + np.arange(t.size, dtype=np.int32)
        # expand each group entry into its codebooks, in codebook order
        sizes = np.bincount(flattening_a, minlength=inner_steps)
        counts = np.where(nonempty, sizes[i], 0)
        steps = np.repeat(step_of_entry, counts)
        entry_t = np.repeat(t, counts)
        offsets = np.arange(steps.size, dtype=np.int32) - np.repeat(np.cumsum(counts) - counts, counts)
        q = np.repeat(first_q[i], counts) + offsets
        return steps, entry_t, q, 1 + int(t.size)

    def length_rule(self) -> UnrolledRule:
        """The closed-form relation between `get_pattern(L)` and `get_pattern(T_max)` (`lengths=` uses it)."""
        groups = dict(zip(self.flattening, self.delays))
        return UnrolledRule(self._num_inner_steps - len(groups), tuple(groups.values()), self.max_delay)

    def reference_layout(self, timesteps: int) -> list[list[LayoutCoord]]:
        """The layout in plain Python: the specification `get_pattern` is tested against."""
        # Every (timestep, inner step) emits one entry keyed by the timestep it is
        # shown at (t + delay); entries are ordered by (key, coordinates), which
        # places delayed groups after the undelayed ones of the same key.
        timesteps = self._layout_timesteps(timesteps)
        horizon = timesteps + self.max_delay
        entries: list[tuple[int, tuple[LayoutCoord, ...]]] = [(-1, ())]
        for t in range(horizon):
            for inner in range(self._num_inner_steps):
                if inner not in self._groups:
                    entries.append((t, ()))
                    continue
                codebooks, delay = self._groups[inner]
                if t + delay < horizon:
                    entries.append((t + delay, tuple(LayoutCoord(t, q) for q in codebooks)))
        entries.sort()
        return [list(coords) for _, coords in entries]

    @classmethod
    def from_audiocraft(cls, obj: tp.Any) -> UnrolledPatternProvider:
        """This family's provider equal to the audiocraft provider `obj` (duck-typed by attributes)."""
        n_q, groups = audiocraft_fields(obj, "UnrolledPatternProvider", "n_q", "_flattened_codebooks")
        n_q = check_int("n_q", n_q, minimum=1, maximum=N_Q_MAX)
        flattening = [0] * n_q
        delays = [0] * n_q
        try:
            for inner, group in groups.items():
                for q in group.codebooks:
                    flattening[q], delays[q] = int(inner), int(group.delay)
        except (AttributeError, TypeError, IndexError, ValueError) as err:
            raise TypeError(f"`obj` has a malformed `_flattened_codebooks` {groups!r}: {err}") from err
        return cls(n_q, flattening=flattening, delays=delays)

    def to_audiocraft(self, module: tp.Any) -> tp.Any:
        """audiocraft's provider equal to this one, built from audiocraft's `codebooks_patterns` module."""
        cls = audiocraft_class(module, "UnrolledPatternProvider")
        return cls(self.n_q, list(self.flattening), list(self.delays))
