"""The delayed family (MusicGen's pattern) and its zero-delay case, the parallel pattern.

Everything about the family lives here: arguments, fast coordinates, the
readable reference layout, the length rule (the identity: the layout for `L` is
the layout for `T_max` cut short) and the CLI and audiocraft names.
"""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

from jax_patterns._checks import check_flag, check_int
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


def _base_steps(empty_initial: int) -> int:
    """Steps before the first code: the special step (unless dropped) and the empty ones."""
    return (0 if empty_initial < 0 else 1) + max(empty_initial, 0)


@dataclasses.dataclass(frozen=True)
class DelayedRule(LengthRule):
    """Closed form of a delayed layout's size; the step maps are the identity."""

    n_q: int
    base: int  # steps before the first code
    delays: tuple[int, ...]
    flatten_first: int

    def shape(self, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        L = np.asarray(lengths, dtype=np.int64)
        base, k, flatten_first = self.base, self.n_q, self.flatten_first
        d0, dmax = self.delays[0], self.delays[-1]
        head = np.minimum(L, flatten_first)
        tail = np.maximum(L + dmax - flatten_first, 0)
        n = base + head * k + tail
        head_reach = np.where((head >= 1) & ~((head * k == 1) & (base == 0)), head, 0)
        top = L + dmax - 1 - d0  # largest t of the delayed part, at its last step
        top_step = base + head * k + (L + dmax - 1 - flatten_first)
        tail_reach = np.where((tail > 0) & (top >= flatten_first) & (top_step >= 1), top + 1, 0)
        starts = (n > 0) & ((base >= 1) | ((head == 0) & (d0 > 0)))
        return n, np.maximum(head_reach, tail_reach), starts


class DelayedPatternProvider(ValueProvider):
    """Delays codebook `q` by `delays[q]` steps (MusicGen's pattern).

    With `n_q=3`, `timesteps=4` and the default delays `[0, 1, 2]`::

        [[S, 1, 2, 3, 4],
         [S, S, 1, 2, 3],
         [S, S, S, 1, 2]]

    Args:
      n_q: number of codebooks.
      delays: sorted non-negative delay of each codebook; default `range(n_q)`.
      flatten_first: flatten the first N timesteps (one codebook per step).
      empty_initial: insert N empty steps after the special token; a negative
        value drops the leading special-token step (audiocraft 1.3.0).
      any_order: accept delays in any order (each codebook is independent, as
        Dia's `[0, 8, 9, ...]` or `[1, 3, 2]`). audiocraft requires sorted
        delays, so the default keeps its check for drop-in use; such a provider
        has no audiocraft counterpart.

    Raises:
      TypeError: an argument is not an int (or sequence of ints).
      ValueError: `n_q <= 0`, `delays` of the wrong length, unsorted (without
        `any_order`) or negative, or `flatten_first < 0`.

    Example:
      >>> import numpy as np
      >>> p = DelayedPatternProvider(3, delays=[1, 0, 2], empty_initial=-1, any_order=True).get_pattern(2)
      >>> p.build_pattern_sequence(np.array([[1, 2], [3, 4], [5, 6]]), 0)[0].tolist()
      [[0, 1, 2, 0], [3, 4, 0, 0], [0, 0, 5, 6]]
    """

    cli_name = "delayed"
    cli_options: tp.ClassVar[tuple[str, ...]] = ("delays", "flatten_first", "empty_initial", "any_order")
    audiocraft_names = ("DelayedPatternProvider",)
    _fields: tp.ClassVar[tuple[str, ...]] = ("n_q", "delays", "flatten_first", "empty_initial", "any_order")

    def __init__(
        self,
        n_q: int,
        delays: tp.Sequence[int] | None = None,
        flatten_first: int = 0,
        empty_initial: int = 0,
        any_order: bool = False,
    ):
        super().__init__(n_q)
        self.any_order = check_flag("any_order", any_order)
        self.delays = check_sorted_ints(
            "delays", delays, self.n_q, list(range(self.n_q)), not self.any_order, "DelayedPatternProvider"
        )
        self.flatten_first = check_int("flatten_first", flatten_first, minimum=0)
        self.empty_initial = check_int("empty_initial", empty_initial, minimum=-(2**31))
        self._freeze()

    def __repr__(self) -> str:  # audiocraft's arguments; `any_order` only where it is set
        text = super().__repr__()
        return text if self.any_order else text.replace(", any_order=False", "")

    def get_pattern(self, timesteps: int) -> Pattern:
        """The pattern for `timesteps` timesteps, built from flat coordinate arrays."""
        coords = self._coords(timesteps)
        return Pattern.from_coords(coords, timesteps, self.n_q, self.empty_initial < 0, provider=self, validate=False)

    def _coords(self, timesteps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Flat `(steps, t, q, num_steps)` by vectorised numpy: special and empty steps, flattened head, delays."""
        n_q, delays, flatten_first = self.n_q, self.delays, self.flatten_first
        base = _base_steps(self.empty_initial)
        head = min(timesteps, flatten_first)
        head_steps = base + np.arange(head * n_q, dtype=np.int32)
        head_t = np.repeat(np.arange(head, dtype=np.int32), n_q)
        head_q = np.tile(np.arange(n_q, dtype=np.int32), head)
        tail = max(timesteps + max(delays) - flatten_first, 0)  # steps j in [flatten_first, T + max_delay)
        j = flatten_first + np.arange(tail, dtype=np.int32)[:, None]
        t = j - i32(delays)[None, :]
        keep = t >= flatten_first
        tail_steps = np.broadcast_to(base + head * n_q + (j - flatten_first), t.shape)[keep]
        tail_q = np.broadcast_to(np.arange(n_q, dtype=np.int32)[None, :], t.shape)[keep]
        return (
            np.concatenate([head_steps, tail_steps]),
            np.concatenate([head_t, t[keep]]),
            np.concatenate([head_q, tail_q]),
            base + head * n_q + tail,
        )

    def length_rule(self) -> DelayedRule:
        """The closed-form relation between `get_pattern(L)` and `get_pattern(T_max)` (`lengths=` uses it)."""
        # the rule reads the smallest and the largest delay only: their order is the codebooks' business
        return DelayedRule(self.n_q, _base_steps(self.empty_initial), tuple(sorted(self.delays)), self.flatten_first)

    def reference_layout(self, timesteps: int) -> list[list[LayoutCoord]]:
        """The layout in plain Python: the specification `get_pattern` is tested against."""
        timesteps = self._layout_timesteps(timesteps)
        omit_special = self.empty_initial < 0
        layout: list[list[LayoutCoord]] = [] if omit_special else [[]]
        layout += [[] for _ in range(max(self.empty_initial, 0))]
        for t in range(min(timesteps, self.flatten_first)):
            layout += [[LayoutCoord(t, q)] for q in range(self.n_q)]
        for step in range(self.flatten_first, timesteps + max(self.delays)):
            shifted = ((step - delay, q) for q, delay in enumerate(self.delays))
            layout.append([LayoutCoord(t, q) for t, q in shifted if t >= self.flatten_first])
        return layout

    @classmethod
    def from_audiocraft(cls, obj: tp.Any) -> DelayedPatternProvider:
        """This family's provider equal to the audiocraft provider `obj` (duck-typed by attributes)."""
        n_q, delays, flatten_first, empty_initial = audiocraft_fields(
            obj, "DelayedPatternProvider", "n_q", "delays", "flatten_first", "empty_initial"
        )
        if isinstance(delays, (str, bytes)) or not isinstance(delays, tp.Iterable):
            raise TypeError(f"`obj.delays` must be a sequence of ints, got {delays!r}")
        return cls(n_q, list(delays), flatten_first, empty_initial)

    def to_audiocraft(self, module: tp.Any) -> tp.Any:
        """audiocraft's provider equal to this one, built from audiocraft's `codebooks_patterns` module."""
        if list(self.delays) != sorted(self.delays):
            raise ValueError(f"audiocraft needs sorted delays; {self!r} has none in audiocraft")
        if self.empty_initial < 0 and not _modern(module):
            raise ValueError("a negative empty_initial needs audiocraft >= 1.3.0")
        cls = audiocraft_class(module, "DelayedPatternProvider")
        return cls(self.n_q, list(self.delays), self.flatten_first, self.empty_initial)


class ParallelPatternProvider(DelayedPatternProvider):
    """All codebooks of a timestep in one step (a delayed pattern with zero delays).

    Args:
      n_q: number of codebooks.
      empty_initial: as in `DelayedPatternProvider`.
    """

    cli_name = "parallel"
    cli_options = ("empty_initial",)
    audiocraft_names = ("ParallelPatternProvider",)
    _fields = ("n_q", "empty_initial")

    def __init__(self, n_q: int, empty_initial: int = 0):
        n_q = check_int("n_q", n_q, minimum=1, maximum=N_Q_MAX)  # before the n_q-long delays are built
        super().__init__(n_q, [0] * n_q, empty_initial=empty_initial)

    @classmethod
    def from_audiocraft(cls, obj: tp.Any) -> ParallelPatternProvider:
        """This family's provider equal to the audiocraft provider `obj` (duck-typed by attributes)."""
        (n_q,) = audiocraft_fields(obj, "ParallelPatternProvider", "n_q")
        return cls(n_q, empty_initial=getattr(obj, "empty_initial", 0))

    def to_audiocraft(self, module: tp.Any) -> tp.Any:
        """audiocraft's provider equal to this one, built from audiocraft's `codebooks_patterns` module."""
        cls = audiocraft_class(module, "ParallelPatternProvider")
        if not _modern(module):
            if self.empty_initial:
                raise ValueError("ParallelPatternProvider(empty_initial=...) needs audiocraft >= 1.3.0")
            return cls(self.n_q)
        return cls(self.n_q, empty_initial=self.empty_initial)


def _modern(module: tp.Any) -> bool:
    """Whether audiocraft's module is 1.3.0 or newer (negative and parallel `empty_initial`)."""
    return hasattr(audiocraft_class(module, "Pattern"), "starts_with_special_token")
