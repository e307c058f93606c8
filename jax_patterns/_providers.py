"""Layer 1: what every pattern family shares: the provider base class, its cache, length rules.

A family is one class, in one module of its own (`_delayed.py`, `_unrolled.py`,
`_coarse_first.py`, `_musiclm.py`), holding everything about it: its arguments,
the fast coordinates of `get_pattern(T)`, the readable `reference_layout(T)`,
its `LengthRule` (how `get_pattern(L)` maps onto `get_pattern(T_max)`, for
`lengths=`), and what the CLI and the audiocraft converters need (`cli_name`,
`cli_options`, `audiocraft_names`, `from_audiocraft`, `to_audiocraft`).
Defining the class registers it in `FAMILIES`; nothing else dispatches on
families.

A user subclass only writes `get_pattern`; the base class validates `timesteps`,
checks the result and caches it. A subclass that overrides `get_pattern`
without declaring its own `length_rule` gets none: `lengths=` then asks its
`get_pattern(L)` for each length (`GenericRule`), never its parent's shortcut.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import types
import typing as tp

import numpy as np

from jax_patterns._checks import INT32_MAX, check_flag, check_index_range, check_int, validate_lengths
from jax_patterns._checks import N_Q_MAX as N_Q_MAX  # re-exported: the families import it from here
from jax_patterns._layout import GenericRule as GenericRule
from jax_patterns._layout import Pattern

PATTERN_CACHE_SIZE = 256
"""How many `(provider, timesteps)` patterns `get_pattern` keeps (LRU)."""

_FAMILIES: dict[str, type[CodebooksPatternProvider]] = {}
FAMILIES: types.MappingProxyType[str, type[CodebooksPatternProvider]] = types.MappingProxyType(_FAMILIES)
"""The built-in families by command-line name (`"delayed"`, ...), filled as their classes are defined (read-only)."""


# ---------------------------------------------------------------------------
# Length rules
# ---------------------------------------------------------------------------
def slice_length(n: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """`len(range(n)[:stop])`, elementwise: Python's slicing of a length-`n` layout."""
    stop = np.where(stop < 0, np.maximum(n + stop, 0), stop)
    return np.minimum(stop, n)


def rule_lengths(lengths: tp.Any) -> np.ndarray:
    """`lengths` of any shape as int64 numpy, or raises naming `lengths`: integers in `[0, 2**31 - 1]` (what a
    pattern's `timesteps` may be), checked in their own dtype before the cast (no float truncated, no wrap)."""
    if lengths is None:
        raise TypeError("`lengths` is None; expected integer lengths (an int or an integer array)")
    try:
        array = np.asarray(lengths)  # a device array is read back: a rule's answer is host numpy anyway
    except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
        raise TypeError(f"`lengths` must be an integer array, got {type(lengths).__name__}") from err
    array = validate_lengths(array, array.shape, INT32_MAX, bound="2**31 - 1 (int32)")
    return np.asarray(array, dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class LengthRule(abc.ABC):
    """How a family's `get_pattern(L)` relates to its `get_pattern(T_max)`, in closed form.

    A rule is a frozen dataclass of the family's parameters: equal by value, a
    static key of the compiled `lengths=` programs. `shape` gives each length's
    step count, reach and first step with numpy; `to_full` / `from_full` map step
    indexes between layout(L) and layout(T_max) for the coordinates with `t < L`,
    with an array module argument (`numpy`, or `jax.numpy` inside a trace).
    The default maps are the identity (layout(L) is layout(T_max) cut short).
    """

    @abc.abstractmethod
    def shape(self, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`(num_steps, reach, starts_with_special)` for each L; reach = max t + 1 over steps >= 1."""

    def to_full(self, xp: tp.Any, lengths: tp.Any, steps: tp.Any, t_max: int) -> tp.Any:
        """Step of layout(L) -> step of layout(T_max) holding the same `t < L` coordinates."""
        return steps

    def from_full(self, xp: tp.Any, lengths: tp.Any, steps: tp.Any, t_max: int) -> tp.Any:
        """Step of layout(T_max) -> step of layout(L), for coordinates with `t < L`."""
        return steps

    def num_steps(self, lengths: tp.Any) -> np.ndarray:
        """`len(get_pattern(L).layout)` for each `L`.

        Raises:
          TypeError: `lengths` is not an integer (array).
          ValueError: a length outside `[0, 2**31 - 1]`.
        """
        return self.shape(rule_lengths(lengths))[0]

    def ref_steps(self, lengths: tp.Any, keep_only_valid_steps: bool) -> np.ndarray:
        """Length of the (valid) layout for each `L`: the `S` of that example's own sequence.

        Raises:
          TypeError: `lengths` is not an integer (array), or `keep_only_valid_steps` not a bool.
          ValueError: a length outside `[0, 2**31 - 1]`.
        """
        lengths = rule_lengths(lengths)
        keep_only_valid_steps = check_flag("keep_only_valid_steps", keep_only_valid_steps)
        n, reach, _ = self.shape(lengths)
        if not keep_only_valid_steps:
            return n
        return slice_length(n, n - (reach - lengths))

    def starts_with_special(self, lengths: tp.Any) -> np.ndarray:
        """Whether `get_pattern(L)` opens with the special-token step, for each `L`.

        Raises:
          TypeError: `lengths` is not an integer (array).
          ValueError: a length outside `[0, 2**31 - 1]`.
        """
        return self.shape(rule_lengths(lengths))[2]


# ---------------------------------------------------------------------------
# The provider base class and its cache
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=PATTERN_CACHE_SIZE)
def _cached_pattern(provider: CodebooksPatternProvider, timesteps: int, build: tp.Callable) -> Pattern:
    return _built_pattern(provider, timesteps, build)


def _built_pattern(provider: CodebooksPatternProvider, timesteps: int, build: tp.Callable) -> Pattern:
    rule = provider.length_rule()
    if rule is not None:  # the size is known from the arguments: refuse before allocating anything
        check_index_range(provider.n_q, int(rule.num_steps(timesteps)), timesteps)
    pattern = build(provider, timesteps)
    if not isinstance(pattern, Pattern):
        raise TypeError(
            f"{type(provider).__name__}.get_pattern({timesteps}) returned {type(pattern).__name__}; expected a Pattern"
        )
    if pattern.n_q != provider.n_q or pattern.timesteps != timesteps:
        raise ValueError(
            f"{type(provider).__name__}.get_pattern({timesteps}) returned a pattern with n_q={pattern.n_q}, "
            f"timesteps={pattern.timesteps}; expected n_q={provider.n_q}, timesteps={timesteps}"
        )
    return pattern.with_provider(provider)


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
        return _built_pattern(self, timesteps, build)

    get_pattern._jax_patterns_cached = True  # type: ignore[attr-defined]
    return get_pattern


class CodebooksPatternProvider(abc.ABC):
    """Base class of pattern providers: `get_pattern(timesteps) -> Pattern`.

    Subclass it and implement `get_pattern`; the result is validated and cached
    (bounded LRU of `PATTERN_CACHE_SIZE` entries, keyed on the provider and
    `timesteps`). With `lengths=`, example `b` is interleaved with
    `get_pattern(lengths[b])`; declare a `length_rule` to give that in closed
    form, otherwise each length is asked for (see `GenericRule`).

    Class attributes of a built-in family: `cli_name` (the command-line name; set
    it to register the class in `FAMILIES`), `cli_options` (its constructor
    arguments after `n_q`), `audiocraft_names` (audiocraft class names it
    converts from).

    Args:
      n_q: number of codebooks.
      cached: keep built patterns in the cache.

    Raises:
      TypeError: `n_q` is not an int.
      ValueError: `n_q <= 0`.
    """

    cli_name: tp.ClassVar[str | None] = None
    cli_options: tp.ClassVar[tuple[str, ...]] = ()
    audiocraft_names: tp.ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_q: int, cached: bool = True):
        self.n_q = check_int("n_q", n_q, minimum=1, maximum=N_Q_MAX)
        self.cached = check_flag("cached", cached)

    def __init_subclass__(cls, **kwargs: tp.Any) -> None:
        super().__init_subclass__(**kwargs)
        build = cls.__dict__.get("get_pattern")
        if build is not None and not getattr(build, "__isabstractmethod__", False):
            if not getattr(build, "_jax_patterns_cached", False):
                cls.get_pattern = _cache_get_pattern(build)  # type: ignore[method-assign]
            if "length_rule" not in cls.__dict__:  # a new layout never inherits its parent's shortcut
                cls.length_rule = CodebooksPatternProvider.length_rule  # type: ignore[method-assign]
        name = cls.__dict__.get("cli_name")
        if name is not None:
            _FAMILIES[name] = cls

    @abc.abstractmethod
    def get_pattern(self, timesteps: int) -> Pattern:
        """Builds the pattern for `timesteps` timesteps.

        Raises:
          TypeError: `timesteps` is not an int.
          ValueError: `timesteps < 0`.
        """
        raise NotImplementedError

    def length_rule(self) -> LengthRule | None:
        """The closed-form relation between `get_pattern(L)` and `get_pattern(T_max)`, or None (ask each L)."""
        return None

    def _layout_timesteps(self, timesteps: tp.Any) -> int:
        """`timesteps` of a plain-Python layout (`reference_layout`), checked as `get_pattern` checks it, so that a
        layout too large for int32 indexes is refused before a loop builds it."""
        timesteps = check_int("timesteps", timesteps, minimum=0)
        rule = self.length_rule()
        if rule is not None:
            check_index_range(self.n_q, int(rule.num_steps(timesteps)), timesteps)
        return timesteps

    @classmethod
    def from_audiocraft(cls, obj: tp.Any) -> CodebooksPatternProvider:
        """This family's provider equal to the audiocraft provider `obj` (duck-typed by attributes)."""
        raise TypeError(f"{cls.__name__} has no audiocraft equivalent")

    def to_audiocraft(self, module: tp.Any) -> tp.Any:
        """audiocraft's provider equal to this one, built from audiocraft's `codebooks_patterns` module."""
        raise TypeError(f"`obj` of type {type(self).__name__} has no audiocraft equivalent")


class ValueProvider(CodebooksPatternProvider):
    """A built-in provider: immutable, equal and hashed by its arguments (`_fields`)."""

    _frozen = False
    _fields: tp.ClassVar[tuple[str, ...]] = ("n_q",)

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


def check_sorted_ints(
    name: str,
    values: tp.Sequence[int] | None,
    length: int,
    default: list[int],
    require_sorted: bool = True,
    any_order: str | None = None,
) -> tuple[int, ...]:
    """`values` (or `default`) as a tuple of `length` (sorted) non-negative ints, or raises naming `name`.

    `any_order` names the provider whose `any_order=True` lifts the order check,
    for the message; families without that option leave it None.
    """
    if values is None:
        return tuple(default)
    if isinstance(values, (str, bytes)) or not isinstance(values, tp.Sequence):
        raise TypeError(f"`{name}` must be a sequence of ints, got {values!r}")
    checked = tuple(check_int(f"{name}[{i}]", d, minimum=0) for i, d in enumerate(values))
    if len(checked) != length:
        raise ValueError(f"`{name}` has {len(checked)} entries, {list(checked)}; expected {length}")
    if require_sorted and list(checked) != sorted(checked):
        lift = f"; `{any_order}(..., any_order=True)` allows any order" if any_order else ""
        raise ValueError(f"`{name}` must be sorted in increasing order, got {list(checked)} (audiocraft's check{lift})")
    return checked


def audiocraft_fields(obj: tp.Any, cls: str, *names: str) -> list[tp.Any]:
    """The attributes `names` of audiocraft's provider `obj` (duck-typed), or a TypeError naming `obj`."""
    missing = [name for name in names if not hasattr(obj, name)]
    if missing:
        raise TypeError(
            f"`obj` must be audiocraft's {cls} (with {', '.join(names)}), got {type(obj).__name__} without {missing}"
        )
    return [getattr(obj, name) for name in names]


def audiocraft_class(module: tp.Any, *names: str) -> tp.Any:
    """The first of the classes `names` in audiocraft's `codebooks_patterns` module, or a TypeError naming `module`."""
    for name in names:
        cls = getattr(module, name, None)
        if cls is not None:
            return cls
    raise TypeError(
        f"`module` must be audiocraft's codebooks_patterns module (with {' or '.join(names)}), "
        f"got {type(module).__name__}"
    )


def i32(x: tp.Any) -> np.ndarray:
    """`x` as an int32 numpy array (coordinates are int32 throughout)."""
    return np.asarray(x, dtype=np.int32)
