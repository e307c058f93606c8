"""Layer 1: the plain-Python pattern layout.

A `Pattern` says, for every step of the interleaved sequence, which `(t, q)`
coordinates of the original `[K, T]` codes sit there. This module is the
readable specification; it imports neither jax nor torch. The jitted
operations on a pattern live in `_ops.py` and are reached through the methods
at the bottom of `Pattern`, which import that layer only when called.
"""

from __future__ import annotations

import dataclasses
import functools
import typing as tp

import numpy as np

if tp.TYPE_CHECKING:  # pragma: no cover - typing only
    import jax


class LayoutCoord(tp.NamedTuple):
    """One code of the original sequence: timestep `t` of codebook `q`."""

    t: int
    q: int


PatternLayout = tp.Sequence[tp.Sequence[LayoutCoord]]
"""A layout: one sequence of coordinates per sequence step (a `Pattern` stores tuples)."""


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """Returns `value` as an int, or raises naming `name`.

    Raises:
      TypeError: `value` is not an integer (bools are refused too).
      ValueError: `value` is below `minimum`.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return value


def _freeze_layout(layout: object, n_q: int) -> tuple[tuple[LayoutCoord, ...], ...]:
    if isinstance(layout, (str, bytes)) or not isinstance(layout, tp.Sequence):
        raise TypeError(f"`layout` must be a sequence of steps, got {type(layout).__name__}")
    frozen = []
    for s, step in enumerate(layout):
        if isinstance(step, (str, bytes)) or not isinstance(step, tp.Sequence):
            raise TypeError(f"`layout[{s}]` must be a sequence of (t, q) coordinates, got {step!r}")
        coords = []
        for coord in step:
            if not isinstance(coord, tp.Sequence) or len(coord) != 2:
                raise TypeError(f"`layout[{s}]` holds {coord!r}; expected a (t, q) coordinate")
            t = check_int(f"layout[{s}] t", coord[0], minimum=0)
            q = check_int(f"layout[{s}] q", coord[1])
            if not 0 <= q < n_q:
                raise ValueError(f"`layout[{s}]` has codebook q={q}; expected q in [0, n_q={n_q})")
            coords.append(LayoutCoord(t, q))
        frozen.append(tuple(coords))
    return tuple(frozen)


def _validate_layout(layout: PatternLayout, n_q: int) -> None:
    last_t = [0] * n_q
    for s, step in enumerate(layout):
        seen: set[int] = set()
        for t, q in step:
            if q in seen:
                raise ValueError(f"`layout[{s}]` holds two coordinates of codebook q={q}; at most one per step")
            seen.add(q)
            if t < last_t[q]:
                raise ValueError(
                    f"`layout[{s}]` goes back in time for codebook q={q}: t={t} after t={last_t[q]}; "
                    "each codebook's timesteps must not decrease along the sequence"
                )
            last_t[q] = t


@dataclasses.dataclass(frozen=True, eq=False)
class Pattern:
    """An interleaving pattern over `n_q` codebooks and `timesteps` timesteps.

    Same fields and semantics as audiocraft 1.3.0's `Pattern`. `layout[s]` lists
    the coordinates placed at sequence step `s`; step 0 is empty, so the
    interleaved sequence starts with a special token, unless
    `omit_special_token=True` (audiocraft 1.3.0's negative `empty_initial`).

    A pattern is immutable and hashable by value: two patterns with equal layouts
    are equal and share every compiled operation. Index arrays derived from it are
    cached on it and kept out of equality.

    Args:
      layout: one sequence of `(t, q)` coordinates per sequence step.
      timesteps: number of timesteps T of the codes the pattern is built for.
      n_q: number of codebooks K.
      omit_special_token: allow a first step that is not empty (the pattern then
        does not start with a special-token step).

    Raises:
      TypeError: a field has the wrong type.
      ValueError: `n_q <= 0`, `timesteps < 0`, an empty first step is missing,
        a step holds two coordinates of one codebook, a codebook's time goes
        backwards, or a coordinate has `q` outside `[0, n_q)`.

    Example:
      >>> p = Pattern([[], [(0, 0)], [(1, 0), (0, 1)], [(2, 0), (1, 1)]], timesteps=2, n_q=2)
      >>> p.num_sequence_steps, p.max_delay
      (3, 1)
    """

    layout: PatternLayout
    timesteps: int
    n_q: int
    omit_special_token: bool = False
    _cache: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n_q = check_int("n_q", self.n_q, minimum=1)
        timesteps = check_int("timesteps", self.timesteps, minimum=0)
        if not isinstance(self.omit_special_token, (bool, np.bool_)):
            raise TypeError(f"`omit_special_token` must be a bool, got {self.omit_special_token!r}")
        layout = _freeze_layout(self.layout, n_q)
        if not self.omit_special_token:
            if len(layout) == 0:
                raise ValueError("`layout` is empty; it must start with an empty step (the special token)")
            if layout[0]:
                raise ValueError(
                    f"`layout[0]` must be empty (the special-token step), got {list(layout[0])}; "
                    "pass omit_special_token=True for a pattern without it"
                )
        _validate_layout(layout, n_q)
        object.__setattr__(self, "layout", layout)
        object.__setattr__(self, "n_q", n_q)
        object.__setattr__(self, "timesteps", timesteps)
        object.__setattr__(self, "omit_special_token", bool(self.omit_special_token))

    # Equality and hashing by value; the hash is computed once (layouts are long).
    # `omit_special_token` only relaxes validation, so it takes no part in equality.
    def _key(self) -> tuple:
        return (self.n_q, self.timesteps, self.layout)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Pattern):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        cached = self._cache.get("hash")
        if cached is None:
            cached = self._cache["hash"] = hash(self._key())
        return cached

    def __repr__(self) -> str:
        return (
            f"Pattern(n_q={self.n_q}, timesteps={self.timesteps}, "
            f"sequence_steps={len(self.layout)}, starts_with_special_token={self.starts_with_special_token()})"
        )

    # ---- Layout queries (audiocraft's names) ----
    def starts_with_special_token(self) -> bool:
        """Whether step 0 is empty, i.e. the sequence opens with a special token."""
        return len(self.layout) > 0 and len(self.layout[0]) == 0

    @property
    def num_sequence_steps(self) -> int:
        """`len(layout) - 1`, as in audiocraft."""
        return len(self.layout) - 1

    @property
    def max_delay(self) -> int:
        """How far past `timesteps` the layout reaches (steps after the first)."""
        reach = max((t + 1 for step in self.layout[1:] for t, _ in step), default=0)
        return reach - self.timesteps

    @property
    def valid_layout(self) -> PatternLayout:
        """The layout cut to its fully defined steps: `layout[:len(layout) - max_delay]`."""
        return self.layout[: len(self.layout) - self.max_delay]

    def get_sequence_coords_with_timestep(self, t: int, q: int | None = None) -> list[tuple[int, LayoutCoord]]:
        """Lists `(step, coord)` for every coordinate at timestep `t` (and codebook `q`).

        Raises:
          ValueError: `t` outside `[0, timesteps]` or `q` outside `[0, n_q)`.
        """
        t = check_int("t", t, minimum=0)
        if t > self.timesteps:
            raise ValueError(f"`t`={t} is greater than the pattern's timesteps={self.timesteps}")
        if q is not None:
            q = check_int("q", q, minimum=0)
            if q >= self.n_q:
                raise ValueError(f"`q`={q} is outside [0, n_q={self.n_q})")
        return [
            (s, coord)
            for s, step in enumerate(self.layout)
            for coord in step
            if coord.t == t and (q is None or coord.q == q)
        ]

    def get_steps_with_timestep(self, t: int, q: int | None = None) -> list[int]:
        """Lists the sequence steps holding timestep `t` (of codebook `q`)."""
        return [s for s, _ in self.get_sequence_coords_with_timestep(t, q)]

    def get_first_step_with_timesteps(self, t: int, q: int | None = None) -> int | None:
        """The first sequence step holding timestep `t` (of codebook `q`), or None."""
        steps = self.get_steps_with_timestep(t, q)
        return steps[0] if steps else None

    @functools.cached_property
    def coords(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The layout flattened to read-only int64 arrays `(step, t, q)`, in step order."""
        counts = [len(step) for step in self.layout]
        steps = np.repeat(np.arange(len(self.layout), dtype=np.int64), counts)
        flat = [c for step in self.layout for c in step]
        tq = np.asarray(flat, dtype=np.int64).reshape(-1, 2)
        arrays = (steps, tq[:, 0].copy(), tq[:, 1].copy())
        for a in arrays:
            a.flags.writeable = False
        return arrays

    # ---- Jitted operations (layer 3, imported on first use) ----
    def build_pattern_sequence(
        self, z: jax.typing.ArrayLike, special_token: int | float, keep_only_valid_steps: bool = False
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Interleaves codes `z` `[..., K, T]` into the pattern sequence `[..., K, S]`.

        Args:
          z: codes (or any values) with `K == n_q` and `T <= timesteps`; any
            leading batch dimensions.
          special_token: fills the steps that hold no code of `z`; must be
            representable in `z`'s dtype.
          keep_only_valid_steps: keep only `valid_layout` (drop the trailing
            partially defined steps).

        Returns:
          `(values [..., K, S], indexes [K, S] int32, mask [K, S] bool)`, equal to
          audiocraft's: `indexes` point into `z` flattened to `[K * T]`, with
          `K * T` marking the special token, and `mask` is True where a code sits.

        Raises:
          ValueError: wrong rank, `K != n_q`, `T > timesteps`, or a special token
            outside the dtype's range.
          TypeError: a non-integer special token for integer codes.

        Example:
          >>> import numpy as np
          >>> from jax_patterns import DelayedPatternProvider
          >>> p = DelayedPatternProvider(n_q=2).get_pattern(3)
          >>> values, _, _ = p.build_pattern_sequence(np.array([[1, 2, 3], [4, 5, 6]]), special_token=-1)
          >>> values.tolist()
          [[-1, 1, 2, 3, -1], [-1, -1, 4, 5, 6]]
        """
        from jax_patterns import _ops

        return _ops.build_pattern_sequence(self, z, special_token, keep_only_valid_steps)

    def revert_pattern_sequence(
        self, s: jax.typing.ArrayLike, special_token: int | float, keep_only_valid_steps: bool = False
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Reverts an interleaved sequence `s` `[..., K, S]` to codes `[..., K, timesteps]`.

        Args:
          s: the interleaved sequence, `S` at most the (valid) layout's length.
          special_token: fills the positions no step of `s` holds.
          keep_only_valid_steps: `s` was built with `keep_only_valid_steps=True`.

        Returns:
          `(values [..., K, T], indexes [K, T] int32, mask [K, T] bool)`, equal to
          audiocraft's (`indexes` point into `s` flattened to `[K * S]`; `K * S`
          marks the special token).

        Raises:
          ValueError: wrong rank, `K != n_q`, `S` longer than the pattern, or a
            special token outside the dtype's range.
          TypeError: a non-integer special token for integer values.

        Example:
          >>> import numpy as np
          >>> from jax_patterns import DelayedPatternProvider
          >>> p = DelayedPatternProvider(n_q=2).get_pattern(3)
          >>> seq = np.array([[-1, 1, 2, 3, -1], [-1, -1, 4, 5, 6]])
          >>> p.revert_pattern_sequence(seq, special_token=-1)[0].tolist()
          [[1, 2, 3], [4, 5, 6]]
        """
        from jax_patterns import _ops

        return _ops.revert_pattern_sequence(self, s, special_token, keep_only_valid_steps)

    def revert_pattern_logits(
        self,
        logits: jax.typing.ArrayLike,
        special_token: float,
        keep_only_valid_steps: bool = False,
        card_axis: int = 1,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Reverts model logits over the sequence back to the codes' timesteps.

        Step `s + 1`'s code is predicted by the logits at step `s`, so when the
        pattern starts with a special token the first step is skipped (as in
        audiocraft). The card axis is never moved: `card_axis=1` takes
        audiocraft's `[B, card, K, S]` and returns `[B, card, K, T]`;
        `card_axis=-1` takes the Flax layout `[..., K, S, card]` and returns
        `[..., K, T, card]`. Any other axis before `K` works too.

        Args:
          logits: model outputs with a card axis and `[K, S]` as the other two
            trailing axes.
          special_token: fill for positions with no prediction (usually NaN).
          keep_only_valid_steps: the sequence was built with valid steps only.
          card_axis: position of the card axis: the last axis, or any axis
            before the `K` and `S` axes.

        Returns:
          `(values, indexes [K, T] int32, mask [K, T] bool)`.

        Raises:
          ValueError: wrong rank, a bad `card_axis`, `K != n_q`, `S` longer than
            the pattern, or a special token outside the dtype's range.

        Example:
          >>> import numpy as np
          >>> from jax_patterns import DelayedPatternProvider
          >>> p = DelayedPatternProvider(n_q=2).get_pattern(3)
          >>> logits = np.arange(10, dtype=np.float32).reshape(1, 2, 5, 1)
          >>> p.revert_pattern_logits(logits, float("nan"), card_axis=-1)[0][0, :, :, 0].tolist()
          [[0.0, 1.0, 2.0], [6.0, 7.0, 8.0]]
        """
        from jax_patterns import _ops

        return _ops.revert_pattern_logits(self, logits, special_token, keep_only_valid_steps, card_axis)
