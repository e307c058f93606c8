"""The public-API fuzz's machinery: argument kinds, the values that replace an argument, the judge, the runner.

An entry of the table (`fuzz_table.py`) is a valid call: a callable and one `Arg` per argument, holding a valid
value and the argument's kind. The fuzz replaces one argument at a time by another value (`Arg.mutations`, the
fixed list; `Arg.strategy`, hypothesis's) and judges the outcome (`check`):

- it raised `ValueError` or `TypeError` whose message names the argument: always fine;
- any other exception, or no answer within `TIMEOUT` seconds (`Hang`), or memory beyond `MEMORY` (a `MemoryError`
  instead of an exhausted machine): a defect;
- it returned: `Arg.judge` says whether the value must be refused (`RAISE`: a silent acceptance is a defect, e.g.
  2.5 truncated to 2), is another valid value (`OK`), or spells a valid value another way (`same(v)`: the result
  must equal the call with `v`, e.g. `np.int64(2)` and `2`, an int64 array and the int32 one).
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import gc
import math
import os
import resource
import signal
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

TIMEOUT = float(os.environ.get("FUZZ_TIMEOUT", "20"))
"""Seconds a call may take (a compile on a busy 2-core machine takes a few); past it the call is a hang."""
MEMORY = 3 * 2**30
"""Bytes of address space a call may add; past it allocations fail (MemoryError) instead of exhausting the machine.
Memory a call keeps (a cache) counts against the next calls: the whole run stays within twice this of its start."""
_CEILING: list[int] = []


class Hang(BaseException):  # noqa: N818 - not an Exception: the library's `except Exception` must not swallow it
    """A call that gave no answer within `TIMEOUT` seconds."""


def _address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


@contextlib.contextmanager
def limits(seconds: float | None = None) -> tp.Iterator[None]:
    """Runs the body under a timeout that really stops it (SIGALRM raises `Hang` in the main thread) and a cap on
    the memory it may take. A call stuck inside native code, where the alarm cannot land, is ended by faulthandler
    (the process exits with every thread's stack, so the test run fails) at three times the timeout."""

    seconds = TIMEOUT if seconds is None else seconds

    def on_alarm(signum: int, frame: tp.Any) -> None:
        if frame is not None and frame.f_code in {getattr(c, "__code__", None) for c in gc.callbacks}:
            return  # raised inside a gc callback, it would be ignored: the next alarm (0.5 s on) lands elsewhere
        raise Hang(f"no answer after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    now = _address_space()
    if not _CEILING:
        _CEILING.append(now + 2 * MEMORY)
    cap = min(now + MEMORY, _CEILING[0])
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    faulthandler.dump_traceback_later(3 * seconds, exit=True)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)  # repeated: an alarm that lands in a gc callback is lost
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------------
# Judgements
# ---------------------------------------------------------------------------
VALID = "<the valid value>"


@dataclasses.dataclass(frozen=True)
class Judgement:
    """What a call with a replaced argument may do besides raising ValueError/TypeError naming the argument."""

    kind: str  # "raise": it must raise; "ok": it may return anything; "same": it must return what `canonical` gives
    canonical: tp.Any = None


RAISE = Judgement("raise")
OK = Judgement("ok")


def same(value: tp.Any) -> Judgement:
    return Judgement("same", value)


def _is_int(x: tp.Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_array(x: tp.Any) -> bool:
    return isinstance(x, (np.ndarray, jax.Array))


def _scalar_of(value: tp.Any) -> tp.Any:
    """A 0-d array's Python value (numpy or jax); other values as they are."""
    if _is_array(value) and np.ndim(value) == 0 and not jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        return np.asarray(value).item()
    if isinstance(value, np.generic):
        return value.item()
    return value


SCALARS: tuple[tuple[str, tp.Any], ...] = (
    ("None", None),
    ("True", True),
    ("False", False),
    ("2.5", 2.5),
    ("nan", math.nan),
    ("'2'", "2"),
    ("-1", -1),
    ("0", 0),
    ("2**31", 2**31),
    ("2**63", 2**63),
    ("2**64", 2**64),
)
"""The values every argument is replaced by (the issue's list)."""


def random_scalars() -> st.SearchStrategy:
    """Hypothesis's values of the same kinds: any float, string, negative or huge int, a bool, None."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.floats(),
        st.text(max_size=4),
        st.integers(max_value=-1),
        st.integers(min_value=2**31, max_value=2**80),
    )


class Arg:
    """An argument: its valid value, how a replacement is judged, and the replacements to try.

    Args:
      valid: the value of the valid call.
      optional: None is a valid value (the default).
      names: other names a message may use for it (besides the argument's own).
    """

    def __init__(self, valid: tp.Any, *, optional: bool = False, names: tp.Sequence[str] = ()):
        self.valid = valid
        self.optional = optional
        self.names = tuple(names)

    def judge(self, value: tp.Any) -> Judgement:
        if value is None:
            return OK if self.optional else RAISE
        return self._judge(value)

    def _judge(self, value: tp.Any) -> Judgement:
        return RAISE

    def mutations(self) -> list[tuple[str, tp.Any]]:
        return [*SCALARS, *self._extra()]

    def _extra(self) -> list[tuple[str, tp.Any]]:
        return [("[]", np.zeros(0)), ("[[0]]", np.zeros((1, 1), np.int32))]

    def strategy(self) -> st.SearchStrategy:
        return st.one_of(st.sampled_from(self.mutations()).map(lambda m: m[1]), random_scalars())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.valid!r})"


class Int(Arg):
    """An integer in `[lo, hi]` (`hi` defaults to int32's top). A bool, an integral float or a 0-d array may stand
    for the int they equal (the result must then be the int's), or be refused."""

    def __init__(
        self, valid: tp.Any, lo: int | None = 0, hi: int | None = 2**31 - 1, *, batch: int | None = None, **kw: tp.Any
    ):
        super().__init__(valid, **kw)
        self.lo, self.hi, self.batch = lo, hi, batch

    def holds(self, n: int) -> bool:
        return (self.lo is None or n >= self.lo) and (self.hi is None or n <= self.hi)

    def _judge(self, value: tp.Any) -> Judgement:
        if self.batch is not None and _is_array(value) and value.shape == (self.batch,):
            return _per_example(self, value)
        if _is_array(value) and np.ndim(value) == 0 and jnp.issubdtype(value.dtype, jnp.integer):
            value = np.asarray(value).item()
            return same(value) if self.holds(value) else RAISE
        if isinstance(value, (bool, np.bool_)):
            return same(int(value)) if self.holds(int(value)) else RAISE
        if isinstance(value, np.integer):
            return same(int(value)) if self.holds(int(value)) else RAISE
        if isinstance(value, int):
            if value == self.valid and type(self.valid) is int:
                return same(VALID)
            return OK if self.holds(value) else RAISE
        if isinstance(value, (float, np.floating)):
            f = float(value)
            return same(int(f)) if math.isfinite(f) and f.is_integer() and self.holds(int(f)) else RAISE
        return RAISE

    def _extra(self) -> list[tuple[str, tp.Any]]:
        v = self.valid
        out = [("[v]", np.asarray([v])), ("[]", np.zeros(0, np.int32))]
        if _is_int(v):
            out += [("np.int64(v)", np.int64(v)), ("float(v)", float(v)), ("0-d array", np.asarray(v))]
            out += [("hi + 1", self.hi + 1)] if self.hi is not None and self.hi < 2**31 - 1 else []
            out += [("lo - 1", self.lo - 1)] if self.lo is not None and self.lo not in (0, 1) else []
            out += [("2**31 - 1", 2**31 - 1)] if self.hi is not None and self.hi < 2**31 - 1 else []
        return out


def _per_example(arg: Int | Real, value: tp.Any) -> Judgement:
    """`[B]` values, one per example, where a scalar or `[B]` is taken: each element judged as the scalar."""
    if value.dtype == np.bool_ or value.dtype == object:
        return RAISE
    if isinstance(arg, Int) and not jnp.issubdtype(value.dtype, jnp.integer):
        return RAISE
    judged = [arg.judge(x) for x in np.asarray(value).tolist()]
    if any(j.kind == "raise" for j in judged):
        return RAISE
    if isinstance(value, np.ndarray) and np.all(value == arg.valid):
        return same(VALID)
    return OK


class Real(Arg):
    """A real number in `[lo, hi]`; an int or a bool may stand for the float it equals."""

    def __init__(
        self,
        valid: tp.Any,
        lo: float = -math.inf,
        hi: float = math.inf,
        *,
        nan: bool = False,
        batch: int | None = None,
        **kw: tp.Any,
    ):
        super().__init__(valid, **kw)
        self.lo, self.hi, self.nan, self.batch = lo, hi, nan, batch

    def holds(self, f: float) -> bool:
        return (math.isnan(f) and self.nan) or self.lo <= f <= self.hi

    def _judge(self, value: tp.Any) -> Judgement:
        if self.batch is not None and _is_array(value) and value.shape == (self.batch,):
            return _per_example(self, value)
        value = _scalar_of(value)
        if isinstance(value, (bool, int)):
            try:
                f = float(value)
            except OverflowError:
                return RAISE
            return same(f) if self.holds(f) else RAISE
        if isinstance(value, float):
            return OK if self.holds(value) else RAISE
        return RAISE

    def _extra(self) -> list[tuple[str, tp.Any]]:
        return [
            ("[v]", np.asarray([self.valid, self.valid])),
            ("inf", math.inf),
            ("np.float32(v)", np.float32(1.0)),
            ("1e39", 1e39),  # finite, above float32's largest
        ]


class Flag(Arg):
    """A bool; 0 and 1 (or a numpy bool) may stand for the bool they equal."""

    def _judge(self, value: tp.Any) -> Judgement:
        value = _scalar_of(value) if not _is_array(value) or np.ndim(value) == 0 else value
        if isinstance(value, bool):
            return same(VALID) if value == self.valid else OK
        if isinstance(value, int) and value in (0, 1):
            return same(bool(value))
        return RAISE

    def _extra(self) -> list[tuple[str, tp.Any]]:
        return [("np.bool_", np.bool_(self.valid)), ("'yes'", "yes"), ("1", 1), ("[v]", np.asarray([self.valid]))]


class Choice(Arg):
    """One of a few strings."""

    def __init__(self, valid: tp.Any, choices: tp.Sequence[str], **kw: tp.Any):
        super().__init__(valid, **kw)
        self.choices = tuple(choices)

    def _judge(self, value: tp.Any) -> Judgement:
        if isinstance(value, str) and value in self.choices:
            return same(VALID) if value == self.valid else OK
        return RAISE

    def _extra(self) -> list[tuple[str, tp.Any]]:
        return [("upper", str(self.valid).upper()), ("['v']", [self.valid]), ("'v '", f"{self.valid} ")]


class Obj(Arg):
    """Another kind of object (a pattern, a callable, a config): only the valid one, `others` (values that must work,
    judged OK), or what `accept` says is fine; anything else must be refused."""

    def __init__(
        self,
        valid: tp.Any,
        *others: tp.Any,
        accept: tp.Callable[[tp.Any], bool] | None = None,
        wrong: tp.Sequence[tp.Any] = (),
        **kw: tp.Any,
    ):
        super().__init__(valid, **kw)
        self.others, self.accept, self.wrong = others, accept, tuple(wrong)

    def _judge(self, value: tp.Any) -> Judgement:
        if value is self.valid:
            return same(VALID)
        if any(value is o for o in self.others) or (self.accept is not None and self.accept(value)):
            return OK
        return RAISE

    def _extra(self) -> list[tuple[str, tp.Any]]:
        return [
            ("object()", object()),
            ("lambda", lambda *a, **k: None),
            *[(f"wrong {i}", w) for i, w in enumerate(self.wrong)],
            *[(f"other {i}", o) for i, o in enumerate(self.others)],
            ("[]", np.zeros(0)),
        ]


class Anything(Arg):
    """Any value is valid (a user's state pytree, a label): only the exception types and hangs are judged."""

    def _judge(self, value: tp.Any) -> Judgement:
        return OK

    def judge(self, value: tp.Any) -> Judgement:
        return OK


class Key(Arg):
    """A PRNG key (or a raw uint32[2] one, the same key); `batch`: `[batch]` keys are valid too."""

    def __init__(self, valid: tp.Any, *, batch: int | None = None, **kw: tp.Any):
        super().__init__(valid, **kw)
        self.batch = batch

    def _judge(self, value: tp.Any) -> Judgement:
        if not _is_array(value):
            return RAISE
        shapes = [()] if self.batch is None else [(), (self.batch,)]
        if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
            return OK if value.shape in shapes else RAISE
        if value.dtype == np.uint32 and value.shape[-1:] == (2,):
            if value.shape[:-1] == () and np.array_equal(
                np.asarray(value), np.asarray(jax.random.key_data(self.valid))
            ):
                return same(VALID)
            return OK if value.shape[:-1] in shapes else RAISE
        return RAISE

    def _extra(self) -> list[tuple[str, tp.Any]]:
        return [
            ("raw key", np.asarray(jax.random.key_data(self.valid))),
            ("3 keys", jax.random.split(self.valid, 3)),
            ("uint32[3]", np.zeros(3, np.uint32)),
            ("int32[2]", np.zeros(2, np.int32)),
            ("[2, 2] raw keys", np.zeros((2, 2), np.uint32)),
        ]


class Array(Arg):
    """An array (or nested list) of `dtype` ("int", "float", "bool" or "any") and one of `ranks` (None: any).

    `elem`: an `Int` for the elements of an integer array (`forbid`: ids no element may equal); its bounds give the
    element replacements (below, above, int64 holding `2**32 + wrap`, the int32 wrap of a special id). `empty`: the
    judgement of an empty array of the valid rank (cut along its last axis). `shape`: the shapes that are valid
    (default: the valid value's only, besides added batch axes where `ranks` allows them)."""

    def __init__(
        self,
        valid: tp.Any,
        dtype: str = "int",
        *,
        ranks: tp.Iterable[int] | None = None,
        elem: Int | Real | None = None,
        forbid: tp.Iterable[int] = (),
        wrap: int | None = None,
        empty: Judgement = OK,
        shapes: tp.Callable[[tuple[int, ...]], bool] | None = None,
        **kw: tp.Any,
    ):
        super().__init__(valid, **kw)
        self.dtype = dtype
        self.ndim = np.ndim(valid)
        self.ranks = {self.ndim} if ranks is None else set(ranks)
        self.elem, self.forbid, self.wrap, self.empty = elem, tuple(forbid), wrap, empty
        self.shapes = shapes

    def _dtype_fits(self, dtype: tp.Any) -> bool:
        if self.dtype == "any":
            return True
        if dtype == np.bool_:
            return self.dtype == "bool"
        if jnp.issubdtype(dtype, jnp.integer):
            return self.dtype == "int"
        if jnp.issubdtype(dtype, jnp.floating):
            return self.dtype == "float"
        return False

    def _judge(self, value: tp.Any) -> Judgement:
        if isinstance(value, (list, tuple)):
            try:
                value = np.asarray(value)
            except (ValueError, TypeError, OverflowError):
                return RAISE
        elif not _is_array(value):
            if 0 in self.ranks and (self.elem is not None) and not isinstance(value, str):
                return self.elem.judge(value) if self.elem.judge(value).kind != "same" else OK
            return RAISE
        if value.ndim not in self.ranks or value.dtype == object:
            return RAISE
        if not self._dtype_fits(value.dtype):
            bits = self.dtype == "bool" and isinstance(value, np.ndarray) and jnp.issubdtype(value.dtype, jnp.integer)
            if bits and value.shape == np.shape(self.valid) and np.isin(value, (0, 1)).all():
                return same(VALID) if np.array_equal(value.astype(bool), self.valid) else OK
            return RAISE
        shape = tuple(value.shape)
        valid = np.asarray(self.valid)
        if value.size == 0 and shape != valid.shape:
            return self.empty if value.ndim == self.ndim else RAISE
        if value.ndim == self.ndim and shape != valid.shape and (self.shapes is None or not self.shapes(shape)):
            return RAISE
        host = isinstance(value, np.ndarray)
        if host and value.size and self.elem is not None and jnp.issubdtype(value.dtype, jnp.integer):
            low, high = int(value.min()), int(value.max())
            if not (self.elem.holds(low) and self.elem.holds(high)):
                return RAISE
            if self.forbid and np.isin(value, np.asarray(self.forbid)).any():
                return RAISE
        if shape == valid.shape and self._dtype_fits(valid.dtype):
            if np.array_equal(np.asarray(value, np.float64), valid.astype(np.float64), equal_nan=True):
                return same(VALID)
        return OK

    def _extra(self) -> list[tuple[str, tp.Any]]:
        v = np.asarray(self.valid)
        out: list[tuple[str, tp.Any]] = [
            ("[]", np.asarray([])),
            ("v[None]", v[None]),
            ("list", v.tolist()),
            ("device", jnp.asarray(v)),
        ]
        if v.ndim:
            out += [("v[0]", v[0]), ("v[..., :0]", v[..., :0])]
        if v.dtype.kind in "iu":
            out += [("int64", v.astype(np.int64)), ("float32", v.astype(np.float32)), ("bool", v.astype(bool))]
        if v.dtype.kind == "f":
            out += [("float64", v.astype(np.float64)), ("int32", v.astype(np.int32))]
        if v.dtype == np.bool_:
            out += [("int32", v.astype(np.int32)), ("float32", v.astype(np.float32))]
        if self.elem is not None and v.size and v.dtype.kind in "iu":
            out += [(f"element {name}", self._with(v, x)) for name, x in self._elements()]
        return out

    def _elements(self) -> list[tuple[str, tp.Any]]:
        elem = self.elem
        assert isinstance(elem, Int)
        out: list[tuple[str, tp.Any]] = [("2**31", 2**31), ("2**63", 2**63), ("2.5", 2.5), ("-2**40", -(2**40))]
        if elem.lo is not None:
            out.append(("lo - 1", elem.lo - 1))
        if elem.hi is not None and elem.hi < 2**31 - 1:
            out.append(("hi + 1", elem.hi + 1))
        for special in (*self.forbid, *([] if self.wrap is None else [self.wrap])):
            out += [(f"{special}", special), (f"2**32 + {special}", 2**32 + special)]
        return out

    @staticmethod
    def _with(v: np.ndarray, x: tp.Any) -> np.ndarray:
        out = np.asarray(v).copy()
        if isinstance(x, float):
            out = out.astype(np.float64)
        elif not (np.iinfo(out.dtype).min <= x <= np.iinfo(out.dtype).max):
            out = out.astype(np.uint64 if x >= 2**63 else np.int64)
        out.reshape(-1)[0] = x
        return out

    def strategy(self) -> st.SearchStrategy:
        base = super().strategy()
        v = np.asarray(self.valid)
        if self.elem is None or not v.size or v.dtype.kind not in "iu":
            return base
        assert isinstance(self.elem, Int)
        low = -(2**63)  # the elements live in an int64 (or uint64) array
        bad = st.integers(low, -1) if self.elem.lo is None else st.integers(low, self.elem.lo - 1)
        if self.elem.hi is not None:
            bad = st.one_of(bad, st.integers(min_value=self.elem.hi + 1, max_value=2**64 - 1))
        if self.elem.lo is None and self.elem.hi is None:
            return base
        return st.one_of(base, bad.map(lambda x: self._with(v, x)))


class Seq(Arg):
    """A sequence of `elem` values (a list or a tuple of the same length as the valid one, unless `lengths` says
    which lengths are valid); an element replaced by a bad value must be refused naming the argument."""

    def __init__(
        self,
        valid: tp.Sequence[tp.Any],
        elem: Arg,
        *,
        lengths: tp.Callable[[int], bool] | None = None,
        **kw: tp.Any,
    ):
        super().__init__(valid, **kw)
        self.elem = elem
        self.lengths = lengths

    def _judge(self, value: tp.Any) -> Judgement:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, np.ndarray)):
            return RAISE
        if isinstance(value, np.ndarray) and value.ndim != 1:
            return RAISE
        items = list(value)
        ok_length = len(items) == len(self.valid) if self.lengths is None else self.lengths(len(items))
        if not ok_length:
            return RAISE
        judged = [self.elem.judge(x) for x in items]
        if any(j.kind == "raise" for j in judged):
            return RAISE
        if len(items) == len(self.valid) and all(
            type(_scalar_of(x)) is type(v) and equal(_scalar_of(x), v) for x, v in zip(items, self.valid)
        ):
            return same(VALID)
        plain = [j.canonical if j.kind == "same" and j.canonical is not VALID else x for j, x in zip(judged, items)]
        if all(j.kind == "same" for j in judged) and equal(list(self.valid), plain):
            return same(VALID)
        return OK

    def _extra(self) -> list[tuple[str, tp.Any]]:
        v = list(self.valid)
        out: list[tuple[str, tp.Any]] = [("tuple", tuple(v)), ("[]", []), ("[v]", [v])]
        try:
            out.append(("array", np.asarray(v)))
        except ValueError:  # ragged: no array spells it
            pass
        if v:
            out += [(f"element {name}", [*v[:-1], x]) for name, x in SCALARS]
            out += [(f"element {name}", [*v[:-1], x]) for name, x in self.elem._extra() if not _is_array(x)]
            out += [("one more", [*v, v[-1]]), ("one fewer", v[:-1])]
        return out

    def strategy(self) -> st.SearchStrategy:
        v = list(self.valid)
        base = super().strategy()
        if not v:
            return base
        return st.one_of(base, self.elem.strategy().map(lambda x: [*v[:-1], x]))


# ---------------------------------------------------------------------------
# Entries and the runner
# ---------------------------------------------------------------------------
class Call:
    """A valid call: `fn(**{name: arg.valid})`; `post` turns the result into plain data (consumes an iterator,
    closes a figure) inside the timeout."""

    def __init__(self, fn: tp.Callable, post: tp.Callable[[tp.Any], tp.Any] | None = None, **args: Arg):
        self.fn, self.post, self.args = fn, post, args

    def __call__(self, **overrides: tp.Any) -> tp.Any:
        kwargs = {name: arg.valid for name, arg in self.args.items()}
        kwargs.update(overrides)
        result = self.fn(**kwargs)
        return result if self.post is None else self.post(result)


@dataclasses.dataclass
class Outcome:
    result: tp.Any = None
    error: BaseException | None = None


def attempt(call: Call, overrides: dict[str, tp.Any]) -> Outcome:
    try:
        with limits():
            return Outcome(result=call(**overrides))
    except BaseException as err:  # noqa: BLE001 - every outcome is judged; KeyboardInterrupt is let through
        if isinstance(err, KeyboardInterrupt):
            raise
        return Outcome(error=err)


def equal(a: tp.Any, b: tp.Any) -> bool:
    """Equal values: arrays by shape and values (NaN equal to NaN, dtypes of any width), containers item by item."""
    if isinstance(a, (np.ndarray, jax.Array, np.generic)) or isinstance(b, (np.ndarray, jax.Array, np.generic)):
        if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = jax.random.key_data(a)
        if isinstance(b, jax.Array) and jnp.issubdtype(b.dtype, jax.dtypes.prng_key):
            b = jax.random.key_data(b)
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape or (x.dtype == np.bool_) != (y.dtype == np.bool_):
            return False
        if x.dtype.kind in "iub" and y.dtype.kind in "iub":
            return bool(np.array_equal(x, y))
        return bool(np.array_equal(x.astype(np.float64), y.astype(np.float64), equal_nan=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def names_the_argument(message: str, names: tp.Iterable[str]) -> bool:
    return any(f"`{n}" in message or f"{n}=" in message or f"{n}[" in message for n in names)


def describe(value: tp.Any) -> str:
    if _is_array(value):
        return f"{type(value).__name__}{tuple(value.shape)} {value.dtype}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Judge:
    """Runs an entry's calls and judges them; the results of valid calls are computed once."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, str], Outcome] = {}

    def reference(self, key: str, call: Call, name: str, canonical: tp.Any) -> Outcome:
        label = "valid" if canonical is VALID else repr(canonical)
        slot = (key, "" if canonical is VALID else name, label)
        if slot not in self._cache:
            self._cache[slot] = attempt(call, {} if canonical is VALID else {name: canonical})
        return self._cache[slot]

    def check(self, key: str, call: Call, name: str, value: tp.Any) -> str | None:
        """None when the outcome of `call` with `name=value` keeps the contract, else what went wrong."""
        arg = call.args[name]
        judgement = arg.judge(value)
        outcome = attempt(call, {name: value})
        shown = f"{key}({name}={describe(value)})"
        if outcome.error is not None:
            err = outcome.error
            if not isinstance(err, (ValueError, TypeError)):
                return f"{shown} raised {type(err).__name__}: {str(err)[:300]}"
            if not names_the_argument(str(err), (name, *arg.names)):
                return f"{shown} raised {type(err).__name__} without naming `{name}`: {str(err)[:300]}"
            return None
        if judgement.kind == "raise":
            return f"{shown} was accepted (returned {describe(outcome.result)})"
        if judgement.kind == "same":
            ref = self.reference(key, call, name, judgement.canonical)
            if ref.error is not None:
                return f"{shown} was accepted, but the value it stands for raises: {ref.error!r}"[:400]
            if not equal(outcome.result, ref.result):
                return f"{shown} returned another result than the value it stands for ({judgement.canonical!r})"
        return None
