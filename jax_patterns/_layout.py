"""Layer 1: the plain-Python pattern layout.

A `Pattern` says, for every step of the interleaved sequence, which `(t, q)`
coordinates of the original `[K, T]` codes sit there. This module is the
readable specification; it imports neither jax nor torch. The jitted
operations on a pattern live in `_ops.py` and are reached through the methods
at the bottom of `Pattern`, which import that layer only when called.
"""

from __future__ import annotations

import typing as tp

import numpy as np

from jax_patterns._checks import check_flag, check_index_range, check_int, check_provider

if tp.TYPE_CHECKING:  # pragma: no cover - typing only
    import jax


class LayoutCoord(tp.NamedTuple):
    """One code of the original sequence: timestep `t` of codebook `q`."""

    t: int
    q: int


PatternLayout = tp.Sequence[tp.Sequence[LayoutCoord]]
"""A layout: one sequence of coordinates per sequence step (a `Pattern` stores tuples)."""


def _coords_from_layout(layout: object, n_q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Checks a hand-written layout's types and ranges; returns its flat `(steps, t, q)` and length."""
    if isinstance(layout, (str, bytes)) or not isinstance(layout, tp.Sequence):
        raise TypeError(f"`layout` must be a sequence of steps, got {type(layout).__name__}")
    rows: list[tuple[int, int, int]] = []
    for s, step in enumerate(layout):
        if isinstance(step, (str, bytes)) or not isinstance(step, tp.Sequence):
            raise TypeError(f"`layout[{s}]` must be a sequence of (t, q) coordinates, got {step!r}")
        for coord in step:
            if not isinstance(coord, tp.Sequence) or len(coord) != 2:
                raise TypeError(f"`layout[{s}]` holds {coord!r}; expected a (t, q) coordinate")
            t = check_int(f"layout[{s}] t", coord[0], minimum=0)
            q = check_int(f"layout[{s}] q", coord[1])
            if not 0 <= q < n_q:
                raise ValueError(f"`layout[{s}]` has codebook q={q}; expected q in [0, n_q={n_q})")
            rows.append((s, t, q))
    table = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    return table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy(), len(layout)


def _validate_coords(steps: np.ndarray, ts: np.ndarray, qs: np.ndarray, n_q: int) -> None:
    """At most one coordinate per codebook per step; each codebook's time never decreases."""
    if qs.size and (qs.min() < 0 or qs.max() >= n_q or ts.min() < 0):
        raise ValueError(f"coordinates outside q in [0, n_q={n_q}) or t >= 0")
    by_step = np.lexsort((qs, steps))
    key = steps[by_step] * n_q + qs[by_step]
    dup = np.flatnonzero(key[1:] == key[:-1])
    if dup.size:
        i = by_step[dup[0] + 1]
        raise ValueError(f"`layout[{steps[i]}]` holds two coordinates of codebook q={qs[i]}; at most one per step")
    by_q = np.lexsort((steps, qs))
    same_q = qs[by_q][1:] == qs[by_q][:-1]
    back = np.flatnonzero(same_q & (ts[by_q][1:] < ts[by_q][:-1]))
    if back.size:
        later, earlier = by_q[back + 1], by_q[back]
        k = int(np.argmin(steps[later]))
        i, j = later[k], earlier[k]
        raise ValueError(
            f"`layout[{steps[i]}]` goes back in time for codebook q={qs[i]}: t={ts[i]} after t={ts[j]}; "
            "each codebook's timesteps must not decrease along the sequence"
        )


def _checked_coords(coords: tp.Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """`(steps, t, q, num_steps)`: three 1-D integer arrays of one length, within int32, and an int."""
    if not isinstance(coords, tuple) or len(coords) != 4:
        raise TypeError(f"`coords` must be a tuple (steps, t, q, num_steps), got {type(coords).__name__}")
    arrays = tuple(np.asarray(a) for a in coords[:3])
    for a in arrays:
        if a.ndim != 1 or a.shape != arrays[0].shape or a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
            raise TypeError(
                f"`coords` must hold three 1-D integer arrays of one length, got {[a.shape for a in arrays]}"
            )
        if a.dtype != np.int32 and a.size and (a.min() < -(2**31) or a.max() >= 2**31):
            raise ValueError("`coords` hold a value outside int32")
    num_steps = check_int("coords[3] (num_steps)", coords[3], minimum=0)
    return arrays[0], arrays[1], arrays[2], num_steps


class GenericRule:
    """No closed form: each length `L` is `provider.get_pattern(L)`, asked for one by one.

    Equal (and hashed) by the provider's own equality, so two providers that are
    not equal never share a compiled program.
    """

    __slots__ = ("provider",)

    def __init__(self, provider: tp.Any):
        self.provider = provider

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GenericRule):
            return NotImplemented
        return self.provider is other.provider or bool(self.provider == other.provider)

    def __hash__(self) -> int:
        try:
            return hash(("generic", self.provider))
        except TypeError:  # an unhashable provider: only itself is equal to it
            return hash(("generic", id(self.provider)))

    def __repr__(self) -> str:
        return f"GenericRule({self.provider!r})"


def read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Marks derived arrays read-only (they are cached and shared); returns them."""
    for a in arrays:
        a.flags.writeable = False
    return arrays


class Pattern:
    """An interleaving pattern over `n_q` codebooks and `timesteps` timesteps.

    Same fields and semantics as audiocraft 1.3.0's `Pattern`. `layout[s]` lists
    the coordinates placed at sequence step `s`; step 0 is empty, so the
    interleaved sequence starts with a special token, unless
    `omit_special_token=True` (audiocraft 1.3.0's negative `empty_initial`).

    A pattern is immutable and hashable by value (its layout): equal patterns are
    equal and share every compiled operation. Inside, a pattern is its layout
    flattened to `coords` (step, t, q arrays); the built-in providers make those
    arrays directly with vectorised numpy, and the plain-Python `layout` is only
    materialised when asked for. Index arrays derived from a pattern are cached
    on it and kept out of equality. `provider` is the provider that made it
    (None for a hand-written pattern); `lengths=` uses it.

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

    __slots__ = (
        "timesteps",
        "n_q",
        "omit_special_token",
        "provider",
        "_steps",
        "_coords",
        "_layout",
        "_cache",
        "__weakref__",
    )

    timesteps: int
    n_q: int
    omit_special_token: bool
    provider: tp.Any
    _steps: int
    _coords: tuple[np.ndarray, np.ndarray, np.ndarray]
    _layout: tuple[tuple[LayoutCoord, ...], ...] | None
    _cache: dict

    def __init__(self, layout: PatternLayout, timesteps: int, n_q: int, omit_special_token: bool = False):
        n_q = check_int("n_q", n_q, minimum=1)
        steps, ts, qs, num_steps = _coords_from_layout(layout, n_q)
        self._init(steps, ts, qs, num_steps, timesteps, n_q, omit_special_token, None)

    @classmethod
    def from_coords(
        cls,
        coords: tuple[np.ndarray, np.ndarray, np.ndarray, int],
        timesteps: int,
        n_q: int,
        omit_special_token: bool = False,
        provider: tp.Any = None,
        validate: bool = True,
    ) -> Pattern:
        """A pattern from flat `(steps, t, q, num_steps)` arrays in layout order.

        `validate=False` skips the per-codebook checks (two sorts of the
        coordinates); the built-in providers use it, since the tests prove their
        coordinates equal to their plain-Python layouts, which are validated.
        """
        steps, ts, qs, num_steps = _checked_coords(coords)
        validate = check_flag("validate", validate)
        if validate and steps.size and (np.any(np.diff(steps) < 0) or steps[0] < 0 or steps[-1] >= num_steps):
            raise ValueError("`coords` steps must be sorted and within [0, num_steps)")
        if provider is not None:
            check_provider(provider)
        pattern = cls.__new__(cls)
        n_q = check_int("n_q", n_q, minimum=1)
        pattern._init(steps, ts, qs, num_steps, timesteps, n_q, omit_special_token, provider, validate)
        return pattern

    def _init(self, steps, ts, qs, num_steps, timesteps, n_q, omit_special_token, provider, validate=True) -> None:
        timesteps = check_int("timesteps", timesteps, minimum=0)
        if not isinstance(omit_special_token, (bool, np.bool_)):
            raise TypeError(f"`omit_special_token` must be a bool, got {omit_special_token!r}")
        check_index_range(n_q, num_steps, timesteps)  # so every index array fits int32
        steps, ts, qs = (np.ascontiguousarray(a, dtype=np.int32) for a in (steps, ts, qs))
        if not omit_special_token:
            if num_steps == 0:
                raise ValueError("`layout` is empty; it must start with an empty step (the special token)")
            if steps.size and steps[0] == 0:
                first = [(int(t), int(q)) for t, q in zip(ts[steps == 0], qs[steps == 0])]
                raise ValueError(
                    f"`layout[0]` must be empty (the special-token step), got {first}; "
                    "pass omit_special_token=True for a pattern without it"
                )
        if validate:
            _validate_coords(steps, ts, qs, n_q)
        for name, value in (
            ("timesteps", timesteps),
            ("n_q", n_q),
            ("omit_special_token", bool(omit_special_token)),
            ("provider", provider),
            ("_steps", int(num_steps)),
            ("_coords", read_only(steps, ts, qs)),
            ("_layout", None),
            ("_cache", {}),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Pattern is immutable; cannot set `{name}`")

    def with_provider(self, provider: tp.Any) -> Pattern:
        """This pattern as made by `provider` (itself if it already is; else an equal pattern that shares the arrays).

        Patterns are shared (cached, returned by several providers), so a pattern
        is never re-labelled in place: `lengths=` reads the provider's length rule.
        """
        if self.provider is provider:
            return self
        if provider is not None:
            check_provider(provider)
        twin = Pattern.__new__(Pattern)
        for name in self.__slots__:
            if name != "__weakref__":  # each object has its own (not writable)
                object.__setattr__(twin, name, getattr(self, name))
        object.__setattr__(twin, "provider", provider)
        object.__setattr__(twin, "_cache", {})
        return twin

    @property
    def length_rule(self) -> tp.Any:
        """How `provider.get_pattern(L)` relates to this pattern, for `lengths=`; None for a hand-written pattern.

        The provider's `length_rule()` (a closed form, equal by value), or a
        `GenericRule` that asks `provider.get_pattern(L)` for each length. The
        compiled `lengths=` programs are keyed on it as well as on the layout.
        """
        if self.provider is None:
            return None
        rule = self._cache.get("length_rule")
        if rule is None:
            rule = self.provider.length_rule() or GenericRule(self.provider)
            self._cache["length_rule"] = rule
        return rule

    def derived(self, name: str, make: tp.Callable[[Pattern], tp.Any]) -> tp.Any:
        """Data derived from this pattern by `make(self)`, computed once and cached on the pattern.

        For layers above (the decode tables of `lm`): the cache lives and dies
        with the pattern, is kept out of equality and hashing, and is not
        pickled. `make` must return read-only or immutable values (they are shared).
        """
        if not callable(make):
            raise TypeError(f"`make` must be a function of the pattern, got {type(make).__name__}")
        try:
            key = ("derived", name)
            cached = key in self._cache
        except TypeError as err:
            raise TypeError(f"`name` must be hashable, got {type(name).__name__}") from err
        if not cached:
            self._cache[key] = make(self)
        return self._cache[key]

    # ---- Equality and hashing by value (the layout), computed on the flat arrays ----
    def _digest(self) -> tuple:
        """A cheap fingerprint of the coordinates (vectorised sums); equality still compares them all."""
        digest = self._cache.get("digest")
        if digest is None:
            steps, ts, qs = self._coords  # int32 dot products wrap around: fine for a fingerprint
            digest = (steps.size, int(ts.sum()), int(qs.sum()), int(ts @ steps), int(qs @ steps), int(ts @ qs))
            self._cache["digest"] = digest
        return digest

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Pattern):
            return NotImplemented
        return (self.n_q, self.timesteps, self._steps, self._digest()) == (
            other.n_q,
            other.timesteps,
            other._steps,
            other._digest(),
        ) and all(np.array_equal(a, b) for a, b in zip(self._coords, other._coords))

    def __hash__(self) -> int:
        return hash((self.n_q, self.timesteps, self._steps, self._digest()))

    def __repr__(self) -> str:
        return (
            f"Pattern(n_q={self.n_q}, timesteps={self.timesteps}, "
            f"sequence_steps={self._steps}, starts_with_special_token={self.starts_with_special_token()})"
        )

    def __reduce__(self):  # the provider travels too: `lengths=` needs it in a data-loader worker
        args = (self.coords, self._steps, self.timesteps, self.n_q, self.omit_special_token, self.provider)
        return (_rebuild, args)

    # ---- The layout and its properties (audiocraft's names) ----
    @property
    def coords(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The layout flattened to read-only int32 arrays `(step, t, q)`, in layout order."""
        return self._coords

    @property
    def layout(self) -> tuple[tuple[LayoutCoord, ...], ...]:
        """The plain-Python layout: one tuple of `LayoutCoord` per step (built on first use)."""
        if self._layout is None:
            steps, ts, qs = self._coords
            bounds = np.searchsorted(steps, np.arange(self._steps + 1))
            coords = list(map(LayoutCoord, ts.tolist(), qs.tolist()))
            layout = tuple(tuple(coords[a:b]) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()))
            object.__setattr__(self, "_layout", layout)
        return self._layout  # type: ignore[return-value]

    def __len__(self) -> int:
        """Number of steps of the layout (`len(layout)`)."""
        return self._steps

    def starts_with_special_token(self) -> bool:
        """Whether step 0 is empty, i.e. the sequence opens with a special token."""
        steps = self._coords[0]
        return self._steps > 0 and (steps.size == 0 or steps[0] != 0)

    @property
    def num_sequence_steps(self) -> int:
        """`len(layout) - 1`, as in audiocraft."""
        return self._steps - 1

    @property
    def max_delay(self) -> int:
        """How far past `timesteps` the layout reaches (steps after the first)."""
        reach = self._cache.get("reach")  # computed once: the ops ask for it on every call
        if reach is None:
            steps, ts, _ = self._coords
            later = ts[steps >= 1]
            reach = self._cache["reach"] = int(later.max()) + 1 if later.size else 0
        return reach - self.timesteps

    @property
    def valid_steps(self) -> int:
        """`len(valid_layout)`, without building the layout."""
        return len(range(self._steps)[: self._steps - self.max_delay])

    @property
    def valid_layout(self) -> tuple[tuple[LayoutCoord, ...], ...]:
        """The layout cut to its fully defined steps: `layout[:len(layout) - max_delay]`."""
        return self.layout[: self._steps - self.max_delay]

    def get_sequence_coords_with_timestep(self, t: int, q: int | None = None) -> list[tuple[int, LayoutCoord]]:
        """Lists `(step, coord)` for every coordinate at timestep `t` (and codebook `q`).

        Raises:
          ValueError: `t` outside `[0, timesteps]` or `q` outside `[0, n_q)`.
        """
        t = check_int("t", t, minimum=0)
        if t > self.timesteps:
            raise ValueError(f"`t`={t} is greater than the pattern's timesteps={self.timesteps}")
        steps, ts, qs = self._coords
        hit = ts == t
        if q is not None:
            q = check_int("q", q, minimum=0)
            if q >= self.n_q:
                raise ValueError(f"`q`={q} is outside [0, n_q={self.n_q})")
            hit &= qs == q
        return [(s, LayoutCoord(t, c)) for s, c in zip(steps[hit].tolist(), qs[hit].tolist())]

    def get_steps_with_timestep(self, t: int, q: int | None = None) -> list[int]:
        """Lists the sequence steps holding timestep `t` (of codebook `q`)."""
        return [s for s, _ in self.get_sequence_coords_with_timestep(t, q)]

    def get_first_step_with_timesteps(self, t: int, q: int | None = None) -> int | None:
        """The first sequence step holding timestep `t` (of codebook `q`), or None."""
        steps = self.get_steps_with_timestep(t, q)
        return steps[0] if steps else None

    # ---- Jitted operations (layer 3, imported on first use) ----
    def build_pattern_sequence(
        self,
        z: jax.typing.ArrayLike,
        special_token: int | float,
        keep_only_valid_steps: bool = False,
        *,
        lengths: jax.typing.ArrayLike | None = None,
        fill_after: int | float | None = None,
        padding_side: str = "right",
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Interleaves codes `z` `[..., K, T]` into the pattern sequence `[..., K, S]`.

        Args:
          z: codes (or any values) with `K == n_q` and `T <= timesteps`; any
            leading batch dimensions.
          special_token: fills the steps that hold no code of `z`; must be
            representable in `z`'s dtype.
          keep_only_valid_steps: keep only `valid_layout` (drop the trailing
            partially defined steps).
          lengths: optional int array over the leading batch dimensions (a
            scalar for `[K, T]`), may be traced. Example `b` is then built with
            `provider.get_pattern(lengths[b])` from `z[b, :, :lengths[b]]` and
            right-padded with the special token; `z` must have `T == timesteps`.
          fill_after: a second fill token (bos/pad, bos/eos conventions): with
            it, `special_token` fills only the positions before each codebook's
            first code, and `fill_after` every other position without a code
            (after its last code, between codes, and an example's padding).
          padding_side: with `lengths`, "right" (the default: example `b` is
            `z[b, :, :L]` and its sequence starts the row) or "left" (Dia's
            batches: example `b` is `z[b, :, T - L:]`, its sequence ends the row
            and the special token fills the steps before it). Each example's
            values, indexes and mask are the same on both sides, moved.

        Returns:
          `(values [..., K, S], indexes [K, S] int32, mask [K, S] bool)`, equal to
          audiocraft's: `indexes` point into `z` flattened to `[K * T]`, with
          `K * T` marking the special token, and `mask` is True where a code sits.
          With `lengths`, `indexes` and `mask` are per example, `[..., K, S]`,
          each in the convention of that example's own pattern (`K * L` special).

        Raises:
          ValueError: wrong rank, `K != n_q`, `T > timesteps`, a special token
            outside the dtype's range, or bad `lengths` (shape, concrete values
            outside `[0, timesteps]`, a pattern without a provider).
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

        return _ops.build_pattern_sequence(
            self, z, special_token, keep_only_valid_steps, lengths, fill_after, padding_side
        )

    def revert_pattern_sequence(
        self,
        s: jax.typing.ArrayLike,
        special_token: int | float,
        keep_only_valid_steps: bool = False,
        *,
        lengths: jax.typing.ArrayLike | None = None,
        padding_side: str = "right",
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Reverts an interleaved sequence `s` `[..., K, S]` to codes `[..., K, timesteps]`.

        Args:
          s: the interleaved sequence, `S` at most the (valid) layout's length.
          special_token: fills the positions no step of `s` holds.
          keep_only_valid_steps: `s` was built with `keep_only_valid_steps=True`.
          lengths: optional per-example lengths (see `build_pattern_sequence`):
            example `b` is reverted with `get_pattern(lengths[b])` from its first
            `S(lengths[b])` steps; `s` must have the T_max pattern's `S`.
          padding_side: with `lengths`, "left" reads example `b` from the last
            `S(lengths[b])` steps and writes its codes to the last `lengths[b]`
            timesteps (see `build_pattern_sequence`).

        Returns:
          `(values [..., K, T], indexes [K, T] int32, mask [K, T] bool)`, equal to
          audiocraft's (`indexes` point into `s` flattened to `[K * S]`; `K * S`
          marks the special token). With `lengths`, indexes and mask are
          `[..., K, T]`, per example.

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

        return _ops.revert_pattern_sequence(self, s, special_token, keep_only_valid_steps, lengths, padding_side)

    def revert_pattern_logits(
        self,
        logits: jax.typing.ArrayLike,
        special_token: float,
        keep_only_valid_steps: bool = False,
        card_axis: int = 1,
        *,
        lengths: jax.typing.ArrayLike | None = None,
        padding_side: str = "right",
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
          lengths: optional per-example lengths over the batch axes (all axes
            but the card, K and S axes); see `revert_pattern_sequence`.
          padding_side: "right" or "left" (see `revert_pattern_sequence`).

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

        return _ops.revert_pattern_logits(
            self, logits, special_token, keep_only_valid_steps, card_axis, lengths, padding_side
        )

    def to_stream(
        self,
        seq: jax.typing.ArrayLike,
        offsets: tp.Sequence[int],
        special_token: int,
        keep_only_valid_steps: bool = False,
        *,
        card: int | None = None,
    ) -> jax.Array:
        """Single-stream flattening: a built sequence `[..., K, S]` as one token stream `[..., S]`.

        For layouts with one code per step (flattened: Bark's coarse model,
        SNAC / Orpheus' 7 tokens per frame), codebook `q`'s code `c` becomes
        `c + offsets[q]`. Steps holding no code, and positions holding the special
        token (padding with `lengths=`), carry the special token itself.

        Nothing is lost or wrapped: codes narrower than int32 (int8, int16) give
        an int32 stream, so that `c + offsets[q]` fits. Codebook `q`'s tokens are
        `[offsets[q], offsets[q] + card)` (without `card`: every token from
        `offsets[q]` up), and the special token must lie outside all of them, or
        a code would come back from `from_stream` as padding (special = card =
        1024 with offsets `[0, 1024]` is refused; -1, or `card=1024` with special
        2048, is fine). A code that has no token (negative, `>= card`, or past the
        dtype's range once offset) raises for host (numpy) input; device and
        traced input cannot be read without a sync, so such a position gets the
        special token (never a wrapped value that another codebook would read).

        Args:
          seq: the built sequence `[..., K, S]`, integer codes.
          offsets: one int per codebook.
          special_token: padding and empty steps, in `seq` and in the stream.
          keep_only_valid_steps: whether `seq` holds the valid steps only.
          card: optional number of codes per codebook (bounds each range).

        Raises:
          ValueError: a step holding two codes, `offsets` not one int per
            codebook or not fitting the stream's dtype, a special token inside a
            codebook's range or outside its dtype, a sequence of the wrong shape,
            a host code without a token.
          TypeError: non-integer codes, a non-integer `card` or special token.

        Example:
          >>> import numpy as np
          >>> from jax_patterns import DelayedPatternProvider
          >>> p = DelayedPatternProvider(2, [0, 0], flatten_first=3, empty_initial=-1).get_pattern(3)
          >>> seq, _, _ = p.build_pattern_sequence(np.array([[1, 2, 3], [4, 5, 6]]), -1)
          >>> p.to_stream(seq, [100, 200], -1).tolist()
          [101, 204, 102, 205, 103, 206]
        """
        from jax_patterns import _ops

        return _ops.to_stream(self, seq, offsets, special_token, keep_only_valid_steps, card)

    def from_stream(
        self,
        stream: jax.typing.ArrayLike,
        offsets: tp.Sequence[int],
        special_token: int,
        keep_only_valid_steps: bool = False,
        *,
        card: int | None = None,
    ) -> jax.Array:
        """The inverse of `to_stream`: a stream `[..., S]` back to `[..., K, S]` (the special token elsewhere).

        A token outside its step's codebook range raises for host (numpy)
        input and gives the special token for device or traced input.

        Raises:
          ValueError, TypeError: as for `to_stream`.

        Example:
          >>> import numpy as np
          >>> from jax_patterns import DelayedPatternProvider
          >>> p = DelayedPatternProvider(2, [0, 0], flatten_first=2, empty_initial=-1).get_pattern(2)
          >>> p.from_stream(np.array([101, 204, 102, 205]), [100, 200], -1).tolist()
          [[1, -1, 2, -1], [-1, 4, -1, 5]]
        """
        from jax_patterns import _ops

        return _ops.from_stream(self, stream, offsets, special_token, keep_only_valid_steps, card)

    def logit_steps(
        self,
        keep_only_valid_steps: bool = False,
        *,
        lengths: jax.typing.ArrayLike | None = None,
        padding_side: str = "right",
    ) -> tuple[jax.Array, jax.Array]:
        """For every code `(q, t)`: the step of the sequence whose logits predict it.

        The primitive under a loss computed in the pattern domain: the logits at
        step `s` of codebook `q` predict the code the layout places at step `s + 1`
        (or at `s` when the pattern has no leading special step), exactly as
        `revert_pattern_logits` reads them.

        Args:
          keep_only_valid_steps: the sequence was built with valid steps only.
          lengths: optional per-example lengths (as for `revert_pattern_logits`):
            steps are then those of each example's own pattern.
          padding_side: "right" or "left": with "left", steps count in the
            padded sequence, whose last `S(lengths[b])` steps are example `b`'s.

        Returns:
          `(steps [K, T] int32, mask [K, T] bool)` (`[..., K, T]` with `lengths`);
          `steps` is -1 where no logit predicts the code.

        Raises:
          ValueError, TypeError: bad `lengths` (see `build_pattern_sequence`).

        Example:
          >>> from jax_patterns import DelayedPatternProvider
          >>> steps, mask = DelayedPatternProvider(n_q=2).get_pattern(3).logit_steps()
          >>> steps.tolist()
          [[0, 1, 2], [1, 2, 3]]
        """
        from jax_patterns import _ops

        return _ops.logit_steps(self, keep_only_valid_steps, lengths, padding_side)


def _rebuild(coords, num_steps, timesteps, n_q, omit_special_token, provider=None) -> Pattern:
    return Pattern.from_coords((*coords, num_steps), timesteps, n_q, omit_special_token, provider)
