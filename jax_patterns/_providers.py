"""Layer 1: pattern providers, which build a `Pattern` for a number of timesteps.

Same names, arguments and layouts as audiocraft 1.3.0 (`DelayedPatternProvider`,
`ParallelPatternProvider`, `UnrolledPatternProvider`, `CoarseFirstPattern` alias
`VALLEPattern`, `MusicLMPattern`). Plain Python, no jax.

Built-in providers are immutable and compare and hash by value, so two equal
providers return the very same cached `Pattern`. Each built-in has two
descriptions of its layout: `reference_layout(T)`, plain Python and readable
(the specification, written from audiocraft's semantics), and `get_pattern(T)`,
which builds the same layout as flat arrays with vectorised numpy (`_coords`);
the tests check that both agree. A user subclass only writes
`get_pattern`; the base class validates `timesteps`, checks the result and caches it.
"""

from __future__ import annotations

import abc
import functools
import typing as tp

from jax_patterns import _coords
from jax_patterns._layout import LayoutCoord, Pattern, check_int

PATTERN_CACHE_SIZE = 256
"""How many `(provider, timesteps)` patterns `get_pattern` keeps (LRU)."""


@functools.lru_cache(maxsize=PATTERN_CACHE_SIZE)
def _cached_pattern(provider: CodebooksPatternProvider, timesteps: int, build: tp.Callable) -> Pattern:
    return _checked_pattern(provider, timesteps, build(provider, timesteps))


def _checked_pattern(provider: CodebooksPatternProvider, timesteps: int, pattern: object) -> Pattern:
    """Checks what a `get_pattern` returned, and records the provider on the pattern."""
    if not isinstance(pattern, Pattern):
        raise TypeError(
            f"{type(provider).__name__}.get_pattern({timesteps}) returned {type(pattern).__name__}; expected a Pattern"
        )
    if pattern.n_q != provider.n_q or pattern.timesteps != timesteps:
        raise ValueError(
            f"{type(provider).__name__}.get_pattern({timesteps}) returned a pattern with n_q={pattern.n_q}, "
            f"timesteps={pattern.timesteps}; expected n_q={provider.n_q}, timesteps={timesteps}"
        )
    pattern._attach_provider(provider)
    return pattern


def _cache_get_pattern(build: tp.Callable) -> tp.Callable:
    """Wraps a subclass's `get_pattern` with validation and the shared LRU cache."""

    @functools.wraps(build)
    def get_pattern(self: CodebooksPatternProvider, timesteps: int) -> Pattern:
        timesteps = check_int("timesteps", timesteps, minimum=0)
        if getattr(self, "cached", True):
            try:
                return _cached_pattern(self, timesteps, build)
            except TypeError as err:  # an unhashable user provider: build without the cache
                if "unhashable" not in str(err):
                    raise
        return _checked_pattern(self, timesteps, build(self, timesteps))

    get_pattern._jax_patterns_cached = True  # type: ignore[attr-defined]
    return get_pattern


class CodebooksPatternProvider(abc.ABC):
    """Base class of pattern providers: `get_pattern(timesteps) -> Pattern`.

    Subclass it and implement `get_pattern`; the result is validated and cached
    (bounded LRU of `PATTERN_CACHE_SIZE` entries, keyed on the provider and
    `timesteps`).

    Args:
      n_q: number of codebooks.
      cached: keep built patterns in the cache.

    Raises:
      TypeError: `n_q` is not an int.
      ValueError: `n_q <= 0`.
    """

    def __init__(self, n_q: int, cached: bool = True):
        self.n_q = check_int("n_q", n_q, minimum=1)
        self.cached = bool(cached)

    def __init_subclass__(cls, **kwargs: tp.Any) -> None:
        super().__init_subclass__(**kwargs)
        build = cls.__dict__.get("get_pattern")
        if build is not None and not getattr(build, "__isabstractmethod__", False):
            if not getattr(build, "_jax_patterns_cached", False):
                cls.get_pattern = _cache_get_pattern(build)  # type: ignore[method-assign]

    @abc.abstractmethod
    def get_pattern(self, timesteps: int) -> Pattern:
        """Builds the pattern for `timesteps` timesteps.

        Raises:
          TypeError: `timesteps` is not an int.
          ValueError: `timesteps < 0`.
        """
        raise NotImplementedError


class _ValueProvider(CodebooksPatternProvider):
    """A built-in provider: immutable, equal and hashed by its arguments."""

    _frozen = False
    _fields: tuple[str, ...] = ("n_q",)

    def _args(self) -> tuple:
        return tuple(getattr(self, name) for name in self._fields)

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, name: str, value: object) -> None:
        if self._frozen:
            raise AttributeError(f"{type(self).__name__} is immutable; build a new provider instead")
        super().__setattr__(name, value)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._args() == other._args()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._args()))

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({args})"


def _check_delays(name: str, delays: tp.Sequence[int] | None, length: int, default: list[int]) -> tuple[int, ...]:
    if delays is None:
        return tuple(default)
    if isinstance(delays, (str, bytes)) or not isinstance(delays, tp.Sequence):
        raise TypeError(f"`{name}` must be a sequence of ints, got {delays!r}")
    values = tuple(check_int(f"{name}[{i}]", d, minimum=0) for i, d in enumerate(delays))
    if len(values) != length:
        raise ValueError(f"`{name}` has {len(values)} entries, {list(values)}; expected {length}")
    if list(values) != sorted(values):
        raise ValueError(f"`{name}` must be sorted in increasing order, got {list(values)}")
    return values


class DelayedPatternProvider(_ValueProvider):
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

    Raises:
      TypeError: an argument is not an int (or sequence of ints).
      ValueError: `n_q <= 0`, `delays` of the wrong length, unsorted or negative,
        or `flatten_first < 0`.
    """

    def __init__(
        self,
        n_q: int,
        delays: tp.Sequence[int] | None = None,
        flatten_first: int = 0,
        empty_initial: int = 0,
    ):
        super().__init__(n_q)
        self.delays = _check_delays("delays", delays, self.n_q, list(range(self.n_q)))
        self.flatten_first = check_int("flatten_first", flatten_first, minimum=0)
        self.empty_initial = check_int("empty_initial", empty_initial)
        self._freeze()

    _fields: tuple[str, ...] = ("n_q", "delays", "flatten_first", "empty_initial")

    def get_pattern(self, timesteps: int) -> Pattern:
        coords = _coords.delayed_coords(self.n_q, self.delays, self.flatten_first, self.empty_initial, timesteps)
        return Pattern.from_coords(coords, timesteps, self.n_q, self.empty_initial < 0, provider=self, validate=False)

    def reference_layout(self, timesteps: int) -> list[list[LayoutCoord]]:
        """The layout in plain Python: the specification `get_pattern` is tested against."""
        omit_special = self.empty_initial < 0
        layout: list[list[LayoutCoord]] = [] if omit_special else [[]]
        layout += [[] for _ in range(max(self.empty_initial, 0))]
        for t in range(min(timesteps, self.flatten_first)):
            layout += [[LayoutCoord(t, q)] for q in range(self.n_q)]
        for step in range(self.flatten_first, timesteps + max(self.delays)):
            shifted = ((step - delay, q) for q, delay in enumerate(self.delays))
            layout.append([LayoutCoord(t, q) for t, q in shifted if t >= self.flatten_first])
        return layout


class ParallelPatternProvider(DelayedPatternProvider):
    """All codebooks of a timestep in one step (a delayed pattern with zero delays).

    Args:
      n_q: number of codebooks.
      empty_initial: as in `DelayedPatternProvider`.
    """

    def __init__(self, n_q: int, empty_initial: int = 0):
        n_q = check_int("n_q", n_q, minimum=1)
        super().__init__(n_q, [0] * n_q, empty_initial=empty_initial)

    _fields = ("n_q", "empty_initial")


class UnrolledPatternProvider(_ValueProvider):
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

    def __init__(
        self,
        n_q: int,
        flattening: tp.Sequence[int] | None = None,
        delays: tp.Sequence[int] | None = None,
    ):
        super().__init__(n_q)
        self.flattening = _check_delays("flattening", flattening, self.n_q, list(range(self.n_q)))
        self.delays = _check_delays("delays", delays, self.n_q, [0] * self.n_q)
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

    _fields = ("n_q", "flattening", "delays")

    @property
    def _num_inner_steps(self) -> int:
        return max(self.flattening) + 1

    def num_virtual_steps(self, timesteps: int) -> int:
        """`timesteps * inner_steps + 1`, as in audiocraft."""
        return timesteps * self._num_inner_steps + 1

    def get_pattern(self, timesteps: int) -> Pattern:
        coords = _coords.unrolled_coords(self.n_q, self.flattening, self.delays, timesteps)
        return Pattern.from_coords(coords, timesteps, self.n_q, provider=self, validate=False)

    def reference_layout(self, timesteps: int) -> list[list[LayoutCoord]]:
        """The layout in plain Python: the specification `get_pattern` is tested against."""
        # Every (timestep, inner step) emits one entry keyed by the timestep it is
        # shown at (t + delay); entries are ordered by (key, coordinates), which
        # places delayed groups after the undelayed ones of the same key.
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


class CoarseFirstPattern(_ValueProvider):
    """All of codebook 0 first, then the other codebooks with optional delays.

    (audiocraft 1.3.0's name; `VALLEPattern` is the same provider.) With `n_q=1`
    audiocraft fails on `max([])`; here the second part is `timesteps` empty steps.

    Args:
      n_q: number of codebooks.
      delays: sorted non-negative delay of codebooks `1..n_q-1`; default zeros.

    Raises:
      ValueError: `delays` not of length `n_q - 1`, unsorted or negative.
    """

    def __init__(self, n_q: int, delays: tp.Sequence[int] | None = None):
        super().__init__(n_q)
        self.delays = _check_delays("delays", delays, self.n_q - 1, [0] * (self.n_q - 1))
        self._freeze()

    _fields = ("n_q", "delays")

    def get_pattern(self, timesteps: int) -> Pattern:
        coords = _coords.coarse_first_coords(self.n_q, self.delays, timesteps)
        return Pattern.from_coords(coords, timesteps, self.n_q, provider=self, validate=False)

    def reference_layout(self, timesteps: int) -> list[list[LayoutCoord]]:
        """The layout in plain Python: the specification `get_pattern` is tested against."""
        layout: list[list[LayoutCoord]] = [[]]
        layout += [[LayoutCoord(t, 0)] for t in range(timesteps)]
        for step in range(timesteps + max(self.delays, default=0)):
            shifted = ((step - delay, q + 1) for q, delay in enumerate(self.delays))
            layout.append([LayoutCoord(t, q) for t, q in shifted if t >= 0])
        return layout


class VALLEPattern(CoarseFirstPattern):
    """The pre-1.3.0 name of `CoarseFirstPattern` (equal patterns, same arguments)."""


class MusicLMPattern(_ValueProvider):
    """Full flattening by groups: all timesteps of codebooks `0..g-1`, then the next group.

    Args:
      n_q: number of codebooks.
      group_by: codebooks per group; must divide `n_q`.

    Raises:
      ValueError: `group_by <= 0` or `group_by` does not divide `n_q` (audiocraft
        silently emits codebooks `>= n_q` there).
    """

    def __init__(self, n_q: int, group_by: int = 2):
        super().__init__(n_q)
        self.group_by = check_int("group_by", group_by, minimum=1)
        if self.n_q % self.group_by:
            raise ValueError(f"`group_by`={self.group_by} must divide n_q={self.n_q}")
        self._freeze()

    _fields = ("n_q", "group_by")

    def get_pattern(self, timesteps: int) -> Pattern:
        coords = _coords.musiclm_coords(self.n_q, self.group_by, timesteps)
        return Pattern.from_coords(coords, timesteps, self.n_q, provider=self, validate=False)

    def reference_layout(self, timesteps: int) -> list[list[LayoutCoord]]:
        """The layout in plain Python: the specification `get_pattern` is tested against."""
        layout: list[list[LayoutCoord]] = [[]]
        for first in range(0, self.n_q, self.group_by):
            for t in range(timesteps):
                layout += [[LayoutCoord(t, q)] for q in range(first, first + self.group_by)]
        return layout
