"""The leaf of the package: argument checks and encodings every layer shares.

Nothing here knows about patterns. Integer and flag checks, the int32 bound of
index arrays, the special-token encoding (a hashable static key and its fill
value), the one normalised form of `card_axis`, and the `lengths` policy (host
values checked here, traced or device values clipped in the graph, once, by
`clip_lengths`). jax is imported inside the functions that need it, so
`import jax_patterns` stays jax-free.
"""

from __future__ import annotations

import math
import operator
import typing as tp

import numpy as np

INT32_LIMIT = 2**31
Token = tuple[str, tp.Any]
"""A special token as a static key: `("i", int)`, `("f", float.hex())` or `("b", bool)` (NaN keys are equal)."""


INT32_MAX = INT32_LIMIT - 1


N_Q_MAX = 46340
"""The most codebooks anything takes: a pattern of `n_q` codebooks holds at least `n_q**2` int32 indexes
(`check_index_range`), so from 46341 (`46341**2 >= 2**31`) on no pattern exists; refusing it at construction keeps
providers, models and presets from building `n_q`-long structures (a hang for `n_q=2**31 - 1`)."""


def check_provider(provider: tp.Any, name: str = "provider") -> int:
    """Raises unless `provider` is a pattern provider (`get_pattern` and an int `n_q`); returns its `n_q`.

    Raises:
      TypeError: naming `name`.
    """
    n_q = getattr(provider, "n_q", None)
    if (
        not callable(getattr(provider, "get_pattern", None))
        or isinstance(n_q, (bool, np.bool_))
        or not isinstance(n_q, (int, np.integer))
    ):
        raise TypeError(
            f"`{name}` must be a pattern provider (with `get_pattern` and an int `n_q`), got {type(provider).__name__}"
        )
    return int(n_q)


def check_int(name: str, value: object, *, minimum: int | None = None, maximum: int | None = INT32_MAX) -> int:
    """Returns `value` as an int, or raises naming `name`.

    Every int the library takes ends up in int32 device arithmetic, an int32 array's size or index, or a Python
    allocation of that size, so `maximum` defaults to int32's largest value: 2**31 (or 2**64) is refused here
    rather than wrapped, overflowed or allocated later. `maximum=None` lifts the bound.

    Raises:
      TypeError: `value` is not an integer (bools are refused too).
      ValueError: `value` is below `minimum` or above `maximum`.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        bound = "2**31 - 1 (int32)" if maximum == INT32_MAX else str(maximum)
        raise ValueError(f"`{name}` must be <= {bound}, got {value}")
    return value


def check_flag(name: str, value: tp.Any) -> bool:
    """Returns `value` as a bool, or raises `TypeError` naming `name` (no truthy stand-ins)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a bool, got {value!r}")
    return bool(value)


def check_index_range(n_q: int, num_steps: int, timesteps: int) -> None:
    """Raises if a pattern's index arrays (`n_q * steps`, `n_q * (T + 1)`) would not fit int32.

    Called with the sizes alone, before anything is allocated, so an oversized
    request fails in O(1) memory.
    """
    if max(num_steps, timesteps + 1, n_q) * n_q >= INT32_LIMIT:
        raise ValueError(
            f"pattern too large for int32 indexes: n_q={n_q}, steps={num_steps}, timesteps={timesteps} "
            f"(n_q * steps must stay below 2**31)"
        )


# ---------------------------------------------------------------------------
# The special token
# ---------------------------------------------------------------------------
def _token_value(special_token: tp.Any, arg: str) -> tp.Any:
    import jax

    if isinstance(special_token, jax.core.Tracer):
        raise TypeError(
            f"`{arg}` must be a concrete Python or numpy scalar, got a traced value; "
            "it is a compile-time constant of the operation"
        )
    if isinstance(special_token, (jax.Array, np.ndarray, np.generic)):
        if np.ndim(special_token) != 0:
            raise ValueError(f"`{arg}` must be a scalar, got shape {np.shape(special_token)}")
        return np.asarray(special_token).item()
    return special_token


def special_token_key(special_token: tp.Any, dtype: np.dtype, name: str, arg: str = "special_token") -> Token:
    """Checks that the token `arg` (default `special_token`) is representable in `dtype`; returns its key.

    The one check of a token id (special token, `fill_after`, padding tokens):
    `name` is the array whose dtype it must fit. The key is a static jit
    argument: NaN keys compare equal, so a NaN special token does not retrigger
    compilation.

    Raises:
      TypeError: the token's kind does not fit the dtype (0.5 for int codes), or None.
      ValueError: the token is outside the dtype's range (2**40 for int32).
    """
    import jax.numpy as jnp

    value = _token_value(special_token, arg)
    if isinstance(value, bool) or dtype == np.bool_:
        if dtype == np.bool_ and isinstance(value, bool):
            return ("b", value)
        raise TypeError(f"`{arg}`={value!r} does not fit `{name}` of dtype {dtype}")
    if not isinstance(value, (int, float)):
        raise TypeError(f"`{arg}` must be a real number, got {value!r} of type {type(value).__name__}")
    if jnp.issubdtype(dtype, jnp.integer):
        if isinstance(value, float) and not value.is_integer():
            raise TypeError(f"`{arg}`={value!r} is not an integer, but `{name}` has integer dtype {dtype}")
        info = jnp.iinfo(dtype)
        if not info.min <= int(value) <= info.max:
            raise ValueError(
                f"`{arg}`={int(value)} is not representable in `{name}`'s dtype {dtype} "
                f"(range [{info.min}, {info.max}])"
            )
        return ("i", int(value))
    if jnp.issubdtype(dtype, jnp.floating):
        value = float(value)
        limit = float(jnp.finfo(dtype).max)
        if math.isfinite(value) and abs(value) > limit:
            raise ValueError(f"`{arg}`={value!r} is not representable in `{name}`'s dtype {dtype} (max {limit})")
        return ("f", value.hex())
    raise TypeError(f"`{name}` has dtype {dtype}; expected integer or floating values")


def check_int_token(arg: str, value: tp.Any, name: str = "int32 codes") -> int:
    """An integer token id (`special_token`, `fill_after`, ...) that int32 codes can hold, as an int.

    Raises:
      TypeError: None, a float that is not an integer (4.7), a bool, a string.
      ValueError: outside int32 (`2**40`).
    """
    return int(special_token_key(value, np.dtype(np.int32), name, arg)[1])


def token_fill(token: Token, dtype: tp.Any) -> tp.Any:
    """The special token's value as a jax scalar of `dtype` (inside a trace: a constant)."""
    import jax.numpy as jnp

    kind, value = token
    scalar = float.fromhex(value) if kind == "f" else value
    return jnp.asarray(scalar, dtype=dtype)


# ---------------------------------------------------------------------------
# card_axis: one normalised form
# ---------------------------------------------------------------------------
def normalize_card_axis(card_axis: tp.Any, ndim: int) -> int:
    """Checks `card_axis` for logits of rank `ndim`; returns it as a non-negative axis.

    The result is `ndim - 1` (card last, `[..., K, S, card]`) or an axis before the
    K and S axes (`[B, card, K, S]` is 1). The operations take this one form.

    Raises:
      TypeError: `card_axis` is not an int.
      ValueError: the axis is out of range, or sits between the K and S axes.
    """
    if isinstance(card_axis, bool) or not isinstance(card_axis, (int, np.integer)):
        raise TypeError(f"`card_axis` must be an int, got {card_axis!r}")
    axis = operator.index(card_axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"`card_axis`={axis} is out of range for logits of rank {ndim}")
    axis %= ndim
    if axis == ndim - 1 or axis <= ndim - 3:
        return axis
    raise ValueError(
        f"`card_axis`={card_axis} for logits of rank {ndim} sits between the K and S axes; expected the last "
        "axis ([..., K, S, card]) or an axis before K and S (e.g. 1 for audiocraft's [B, card, K, S])"
    )


def check_key(name: str, key: tp.Any, batch: int | None = None) -> tp.Any:
    """One PRNG key (`jax.random.key`, or a raw `uint32[2]` key, wrapped) or, when `batch` is given, also `[batch]`
    keys; raises naming `name` otherwise.

    Raises:
      TypeError: not a PRNG key.
      ValueError: keys of another shape.
    """
    import jax
    import jax.numpy as jnp

    array = key if isinstance(key, (jax.Array, jax.core.Tracer)) else np.asarray(key)
    if array.dtype == np.uint32 and array.shape[-1:] == (2,):
        array = jax.random.wrap_key_data(jnp.asarray(array))
    elif not jnp.issubdtype(array.dtype, jax.dtypes.prng_key):
        raise TypeError(f"`{name}` must be a PRNG key (jax.random.key(...)), got shape {array.shape} {array.dtype}")
    allowed = [()] if batch is None else [(), (batch,)]
    if array.shape not in allowed:
        wanted = "one key" if batch is None else f"one key, or one per example ({batch},)"
        raise ValueError(f"`{name}` has shape {array.shape}; expected {wanted}")
    return array


# ---------------------------------------------------------------------------
# codes
# ---------------------------------------------------------------------------
def check_codes(
    codes: tp.Any,
    name: str,
    *,
    n_q: int | None,
    below: int | None,
    forbid: tp.Iterable[int] = (),
    ndim: int = 3,
) -> tp.Any:
    """The one check of integer codes wherever they enter: rank, K, an integer dtype and (host values) their range.

    Host codes (numpy, Python lists) are range-checked in their own dtype, before
    any cast: an int64 `2**32 + special_token` is refused here, where an int32
    cast would have turned it into the special token. Every host code must lie
    in `[0, below)` (`below=None`: below 2**31, what int32 holds) and differ
    from every id in `forbid`. Device or traced codes are not read back (no
    sync), as for `lengths`; their rank, K and dtype are checked.

    Args:
      codes: `[..., K, T]` codes (`ndim` axes in all; the codebook axis is
        second to last).
      name: the argument's name, for the messages.
      n_q: the number of codebooks K expected (None: any).
      below: codes must be below this (the smallest special id, or `card`).
      forbid: ids no code may equal (special tokens inside `[0, below)`).
      ndim: the rank expected.

    Returns:
      the codes as numpy (host values, dtype unchanged) or as they were (device or traced).

    Raises:
      TypeError: None, or codes that are not integers (floats, bools).
      ValueError: another rank or K; a host code outside `[0, below)` or in `forbid`.
    """
    import jax

    if codes is None:
        raise TypeError(f"`{name}` is None; expected integer codes of rank {ndim} ([..., K, T])")
    host = is_host(codes)
    if host:
        try:
            array = np.asarray(codes)
        except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
            raise TypeError(f"`{name}` must be an integer array, got {type(codes).__name__}") from err
    else:
        array = codes
    shape = tuple(array.shape)
    if len(shape) != ndim or (n_q is not None and shape[-2] != n_q):
        expected = ", ".join(["B"] * (ndim - 2) + [f"K={n_q}" if n_q is not None else "K", "T"])
        raise ValueError(f"`{name}` must be codes [{expected}], got shape {shape}")
    dtype = np.dtype(array.dtype) if host else array.dtype
    if dtype == np.bool_ or not jax.numpy.issubdtype(dtype, jax.numpy.integer):
        raise TypeError(f"`{name}` must hold integer codes, got dtype {dtype}")
    if host and array.size:
        limit = INT32_LIMIT if below is None else int(below)
        low, high = array.min(), array.max()
        if low < 0 or high >= limit:
            bad = int(low) if low < 0 else int(high)
            raise ValueError(f"`{name}` holds the code {bad}; codes must lie in [0, {limit})")
        forbidden = [int(f) for f in forbid if 0 <= int(f) < limit]
        if forbidden:
            hit = np.isin(array, np.asarray(forbidden, dtype=np.int64))
            if hit.any():
                bad = int(array[hit].reshape(-1)[0])
                raise ValueError(f"`{name}` holds the code {bad}, a special id ({forbidden}); codes must differ")
    return array


def check_pytree(name: str, tree: tp.Any) -> None:
    """Raises unless every leaf of `tree` is an array or a number a jitted program takes (a decode state).

    Python ints must fit int32 (jax's default int); strings and other objects are refused, naming the leaf.

    Raises:
      TypeError: a leaf that is not an array or a number.
      ValueError: a Python int outside int32.
    """
    import jax

    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        where = f"{name}{jax.tree_util.keystr(path)}"
        if isinstance(leaf, (jax.Array, jax.core.Tracer, bool, float, complex)):
            continue
        if isinstance(leaf, (np.ndarray, np.generic)) and (
            leaf.dtype == np.bool_ or jax.numpy.issubdtype(leaf.dtype, jax.numpy.number)  # ml_dtypes' bf16, fp8, int4
        ):
            continue
        if isinstance(leaf, int):
            if not -INT32_LIMIT <= leaf < INT32_LIMIT:
                raise ValueError(f"`{where}`={leaf} does not fit int32 (a Python int is an int32 in the program)")
            continue
        raise TypeError(f"`{name}` must be a pytree of arrays and numbers; `{where}` is a {type(leaf).__name__}")


# ---------------------------------------------------------------------------
# lengths
# ---------------------------------------------------------------------------
def is_host(x: tp.Any) -> bool:
    """Whether `x` lives on the host (numpy, Python values): it may be read without a device sync."""
    import jax

    return not isinstance(x, (jax.core.Tracer, jax.Array))


def validate_lengths(
    lengths: tp.Any, batch_shape: tuple[int, ...], timesteps: int, name: str = "lengths", bound: str = "T_max"
) -> tp.Any:
    """Checks `lengths` against the batch shape and, for host values, the range `[0, timesteps]`.

    Host lengths (numpy arrays, Python ints and lists) are range-checked here and
    returned as numpy. Lengths that live on a device (`jax.Array`) or are traced
    are not read back: that would be a blocking device-to-host copy on every
    call. They are clipped into `[0, timesteps]` in the graph (`clip_lengths`);
    `check_lengths` under checkify makes out-of-range values errors.

    Raises:
      TypeError: `lengths` is not an integer array.
      ValueError: wrong shape, or a host value outside `[0, timesteps]`.
    """
    import jax.numpy as jnp

    array: tp.Any
    if not is_host(lengths):
        array = lengths
    else:
        try:
            array = np.asarray(lengths)
        except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
            raise TypeError(f"`{name}` must be an integer array, got {type(lengths).__name__}") from err
    if array.dtype == np.bool_ or not jnp.issubdtype(array.dtype, jnp.integer):
        raise TypeError(f"`{name}` must be an integer array, got dtype {array.dtype}")
    if tuple(array.shape) != tuple(batch_shape):
        raise ValueError(
            f"`{name}` has shape {tuple(array.shape)}; expected the batch shape {tuple(batch_shape)} "
            "(one length per example; a scalar for an unbatched call)"
        )
    if isinstance(array, np.ndarray):  # host values only: never read a device array back
        bad = np.flatnonzero((array < 0) | (array > timesteps))
        if bad.size:
            where = np.unravel_index(bad[0], array.shape) if array.ndim else ()
            raise ValueError(
                f"`{name}` must lie in [0, {bound}={timesteps}]; {name}{list(map(int, where))} = "
                f"{int(array.reshape(-1)[bad[0]])}"
            )
    return array


def check_padding_side(padding_side: tp.Any) -> bool:
    """`padding_side` checked; returns True for "left" (examples right-aligned, padding first)."""
    if not isinstance(padding_side, str) or padding_side not in ("right", "left"):
        raise ValueError(f'`padding_side` must be "right" or "left", got {padding_side!r}')
    return padding_side == "left"


def clip_lengths(lengths: tp.Any, timesteps: int) -> tp.Any:
    """`lengths` as int32 in `[0, timesteps]`: the one clip of traced or device lengths (in the graph)."""
    import jax.numpy as jnp

    return jnp.clip(jnp.asarray(lengths, dtype=jnp.int32), 0, timesteps)


def check_lengths(lengths: tp.Any, timesteps: int) -> None:
    """A `checkify` check that every length is in `[0, timesteps]` (works on traced lengths).

    Traced lengths outside the range cannot raise inside `jit`; the operations
    clip them. Call this inside a function wrapped with
    `jax.experimental.checkify.checkify` to turn them into errors. Host lengths
    (numpy, Python) are checked at once, as everywhere: out of range raises
    `ValueError`.

    Args:
      lengths: integer lengths, any shape (host, device or traced).
      timesteps: the largest length allowed (`T_max`), an int in `[0, 2**31)`.

    Raises:
      TypeError: `timesteps` is not an int (None, a float, a bool), or
        `lengths` is not an integer array.
      ValueError: `timesteps` is negative or does not fit int32; host
        `lengths` outside `[0, timesteps]`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jax.experimental import checkify
      >>> err, _ = checkify.checkify(jax.jit(lambda n: check_lengths(n, 8)))(jnp.array([3, 9]))
      >>> err.get() is not None
      True
    """
    import jax.numpy as jnp
    from jax.experimental import checkify

    timesteps = check_int("timesteps", timesteps, minimum=0)
    if timesteps >= INT32_LIMIT:
        raise ValueError(f"`timesteps` must be below 2**31 (int32 lengths), got {timesteps}")
    if lengths is None:
        raise TypeError("`lengths` is None; expected an integer array")
    if is_host(lengths):  # host values: checked here, in their own dtype (no int32 cast first), as everywhere
        validate_lengths(lengths, np.shape(lengths), timesteps)
        return
    if lengths.dtype == np.bool_ or not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise TypeError(f"`lengths` must be an integer array, got dtype {lengths.dtype}")
    checkify.check(
        jnp.all((lengths >= 0) & (lengths <= timesteps)),
        f"lengths must lie in [0, {timesteps}]; got min {{lo}} and max {{hi}}",  # the static bound as a number
        lo=jnp.min(lengths, initial=jnp.iinfo(lengths.dtype).max),  # (the initial values: an empty array passes)
        hi=jnp.max(lengths, initial=jnp.iinfo(lengths.dtype).min),
    )
