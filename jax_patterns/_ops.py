"""Layer 3: the jitted gathers that apply a pattern's index arrays.

Each public function validates its inputs in Python (so errors are raised at
trace time, naming the argument, before any XLA code exists), then calls a
`jax.jit` function whose static arguments are the pattern, the special token
and the flags. Inside the trace the index arrays come from `_indices` (host
numpy, cached) and enter the program as constants: one gather along the
flattened `K * T` (or `K * S`) axis plus a `where` that writes the special
token. Nothing here walks a layout.

Why a gather and a `where` rather than audiocraft's "append the special token,
then gather": the append copies the whole input once more, and the `where`
keeps the gradient of special positions at exactly zero. Index arrays are
int32 and the gather promises in-bounds indexes (special positions point at
element 0 and are overwritten), which lowers to a plain gather on CPU, GPU and
TPU, with no scatter in the forward pass, only static shapes and no XLA
temporary buffer (tested).

Why one lowering for every family: a delayed pattern's revert is, per
codebook, a static slice plus a pad, and we measured that lowering
(slices + pads + concatenate, fused by XLA) against this gather for
`revert_pattern_logits` at B=8, K=4, T=1500, card=2048 on the project's 2-core
CPU: 112 ms against 111 ms (card last) and 124 ms against 121 ms (card at
axis 1). Both already run at XLA:CPU's own copy speed for those bytes (116-140
ms for `x * 1` or `jnp.copy`; numpy's memcpy takes 70 ms), so specialising
buys nothing here and would add a second code path to test; the single flat
gather with constant indices is also the form that lowers well on TPU.
"""

from __future__ import annotations

import functools
import math
import operator
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns import _indices, _varlen
from jax_patterns._layout import Pattern

Token = tuple[str, int | str | bool]


# ---------------------------------------------------------------------------
# Validation (plain Python, before tracing)
# ---------------------------------------------------------------------------
def _as_array(name: str, x: tp.Any) -> tp.Any:
    if isinstance(x, (jax.Array, np.ndarray)):
        return x
    if hasattr(x, "__jax_array__"):
        return x
    try:
        return np.asarray(x)
    except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
        raise TypeError(f"`{name}` must be an array, got {type(x).__name__}") from err


def _dtype(x: tp.Any) -> np.dtype:
    return jax.dtypes.canonicalize_dtype(x.dtype)


def _token_value(special_token: tp.Any) -> tp.Any:
    if isinstance(special_token, jax.core.Tracer):
        raise TypeError(
            "`special_token` must be a concrete Python or numpy scalar, got a traced value; "
            "it is a compile-time constant of the operation"
        )
    if isinstance(special_token, (jax.Array, np.ndarray, np.generic)):
        if np.ndim(special_token) != 0:
            raise ValueError(f"`special_token` must be a scalar, got shape {np.shape(special_token)}")
        return np.asarray(special_token).item()
    return special_token


def special_token_key(special_token: tp.Any, dtype: np.dtype, name: str) -> Token:
    """Checks that `special_token` is representable in `dtype`; returns a hashable key.

    The key is a static jit argument: NaN keys compare equal, so a NaN special
    token does not retrigger compilation.

    Raises:
      TypeError: the token's kind does not fit the dtype (0.5 for int codes).
      ValueError: the token is outside the dtype's range (2**40 for int32).
    """
    value = _token_value(special_token)
    if isinstance(value, bool) or dtype == np.bool_:
        if dtype == np.bool_ and isinstance(value, bool):
            return ("b", value)
        raise TypeError(f"`special_token`={value!r} does not fit `{name}` of dtype {dtype}")
    if not isinstance(value, (int, float)):
        raise TypeError(f"`special_token` must be a real number, got {value!r} of type {type(value).__name__}")
    if jnp.issubdtype(dtype, jnp.integer):
        if isinstance(value, float) and not value.is_integer():
            raise TypeError(f"`special_token`={value!r} is not an integer, but `{name}` has integer dtype {dtype}")
        info = jnp.iinfo(dtype)
        if not info.min <= int(value) <= info.max:
            raise ValueError(
                f"`special_token`={int(value)} is not representable in `{name}`'s dtype {dtype} "
                f"(range [{info.min}, {info.max}])"
            )
        return ("i", int(value))
    if jnp.issubdtype(dtype, jnp.floating):
        value = float(value)
        limit = float(jnp.finfo(dtype).max)
        if math.isfinite(value) and abs(value) > limit:
            raise ValueError(
                f"`special_token`={value!r} is not representable in `{name}`'s dtype {dtype} (max {limit})"
            )
        return ("f", value.hex())
    raise TypeError(f"`{name}` has dtype {dtype}; expected integer or floating values")


def _token_fill(token: Token, dtype: np.dtype) -> jax.Array:
    kind, value = token
    scalar = float.fromhex(value) if kind == "f" else value  # type: ignore[arg-type]
    return jnp.asarray(scalar, dtype=dtype)


def _check_flag(name: str, value: tp.Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a bool, got {value!r}")
    return bool(value)


def _check_pattern_axes(pattern: Pattern, name: str, shape: tuple[int, ...], k_axis: int) -> None:
    if shape[k_axis] != pattern.n_q:
        raise ValueError(
            f"`{name}` has {shape[k_axis]} codebooks (shape {shape}) but the pattern has n_q={pattern.n_q}"
        )


def _check_steps(pattern: Pattern, name: str, steps: int, keep_only_valid_steps: bool) -> None:
    length = _indices.layout_length(pattern, keep_only_valid_steps)
    if steps > length:
        which = "valid layout" if keep_only_valid_steps else "layout"
        raise ValueError(
            f"`{name}` has S={steps} sequence steps but the pattern's {which} has only {length} "
            f"(keep_only_valid_steps={keep_only_valid_steps})"
        )


# ---------------------------------------------------------------------------
# The gather
# ---------------------------------------------------------------------------
def _gather(flat: jax.Array, axis: int, indexes: np.ndarray, mask: np.ndarray, token: Token) -> jax.Array:
    """`flat` gathered along `axis` at `indexes` (flattened), the special token where not `mask`.

    Only `indexes` enters the program as a constant (the mask is `indexes != special`,
    recomputed in the fused gather): one constant of `K * S` int32 keeps tracing
    and lowering cheap for long patterns.
    """
    fill = _token_fill(token, flat.dtype)
    out_shape = flat.shape[:axis] + (indexes.size,) + flat.shape[axis + 1 :]
    if flat.shape[axis] == 0 or not mask.any():
        return jnp.full(out_shape, fill, dtype=flat.dtype)
    constant = jnp.asarray(indexes.reshape(-1))
    if mask.all():
        return _take(flat, axis, constant)
    inside = constant < flat.shape[axis]  # the special index is the only one out of range
    values = _take(flat, axis, jnp.where(inside, constant, 0))
    keep_shape = [1] * flat.ndim
    keep_shape[axis] = indexes.size
    return jnp.where(inside.reshape(keep_shape), values, fill)


def _take(flat: jax.Array, axis: int, index: jax.Array) -> jax.Array:
    """`flat` indexed along `axis` by the int32 vector `index`: one XLA gather, written directly.

    (Equivalent to `jnp.take(..., mode="promise_in_bounds")`, without the Python
    indexing machinery: tracing cost matters when a new length is compiled.)
    """
    out_rank = flat.ndim
    offset_dims = tuple(d for d in range(out_rank) if d != axis)
    dims = jax.lax.GatherDimensionNumbers(
        offset_dims=offset_dims, collapsed_slice_dims=(axis,), start_index_map=(axis,)
    )
    slice_sizes = tuple(1 if d == axis else n for d, n in enumerate(flat.shape))
    return jax.lax.gather(flat, index[:, None], dims, slice_sizes, mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS)


@functools.partial(jax.jit, static_argnames=("pattern", "token", "keep_only_valid_steps"), inline=True)
def _build(z: jax.Array, *, pattern: Pattern, token: Token, keep_only_valid_steps: bool):
    z = jnp.asarray(z)  # numpy input under jax.disable_jit()
    *lead, n_q, timesteps = z.shape
    indexes, mask = _indices.build_indexes(pattern, timesteps, keep_only_valid_steps)
    flat = z.reshape(*lead, n_q * timesteps)
    values = _gather(flat, len(lead), indexes, mask, token).reshape(*lead, *indexes.shape)
    constant = jnp.asarray(indexes)
    return values, constant, constant != n_q * timesteps


@functools.partial(
    jax.jit, static_argnames=("pattern", "token", "keep_only_valid_steps", "model_output", "card_last"), inline=True
)
def _revert(
    s: jax.Array, *, pattern: Pattern, token: Token, keep_only_valid_steps: bool, model_output: bool, card_last: bool
):
    s = jnp.asarray(s)  # numpy input under jax.disable_jit()
    if card_last:
        *lead, n_q, steps, card = s.shape
        flat = s.reshape(*lead, n_q * steps, card)
    else:
        *lead, n_q, steps = s.shape
        flat = s.reshape(*lead, n_q * steps)
    indexes, mask = _indices.revert_indexes(pattern, steps, keep_only_valid_steps, model_output)
    values = _gather(flat, len(lead), indexes, mask, token)
    tail = (card,) if card_last else ()
    constant = jnp.asarray(indexes)
    return values.reshape(*lead, *indexes.shape, *tail), constant, constant != n_q * steps


# ---------------------------------------------------------------------------
# Public entry points (called by the `Pattern` methods)
# ---------------------------------------------------------------------------
def _lengths_arg(
    pattern: Pattern, lengths: tp.Any, batch: tuple[int, ...], name: str, what: str, size: int, expected: int
) -> tp.Any:
    """Checks `lengths` and that the input has the T_max pattern's full `what` (T or S)."""
    if size != expected:
        raise ValueError(
            f"with `lengths`, `{name}` must have {what}={expected} (the T_max pattern's), got {size}; "
            "pad every example to the T_max shape"
        )
    return _varlen.prepare_lengths(pattern, lengths, batch)


def build_pattern_sequence(
    pattern: Pattern, z: tp.Any, special_token: tp.Any, keep_only_valid_steps: bool = False, lengths: tp.Any = None
):
    """See `Pattern.build_pattern_sequence`."""
    z = _as_array("z", z)
    kovs = _check_flag("keep_only_valid_steps", keep_only_valid_steps)
    if z.ndim < 2:
        raise ValueError(f"`z` must have shape [..., K, T], got rank {z.ndim} (shape {tuple(z.shape)})")
    _check_pattern_axes(pattern, "z", tuple(z.shape), -2)
    if z.shape[-1] > pattern.timesteps:
        raise ValueError(
            f"`z` has T={z.shape[-1]} timesteps (shape {tuple(z.shape)}) but the pattern has "
            f"timesteps={pattern.timesteps}"
        )
    token = special_token_key(special_token, _dtype(z), "z")
    if lengths is not None:
        lengths = _lengths_arg(pattern, lengths, tuple(z.shape[:-2]), "z", "T", z.shape[-1], pattern.timesteps)
        return _varlen.build(z, lengths, pattern=pattern, token=token, keep_only_valid_steps=kovs)
    return _build(z, pattern=pattern, token=token, keep_only_valid_steps=kovs)


def revert_pattern_sequence(
    pattern: Pattern, s: tp.Any, special_token: tp.Any, keep_only_valid_steps: bool = False, lengths: tp.Any = None
):
    """See `Pattern.revert_pattern_sequence`."""
    s = _as_array("s", s)
    kovs = _check_flag("keep_only_valid_steps", keep_only_valid_steps)
    if s.ndim < 2:
        raise ValueError(f"`s` must have shape [..., K, S], got rank {s.ndim} (shape {tuple(s.shape)})")
    _check_pattern_axes(pattern, "s", tuple(s.shape), -2)
    _check_steps(pattern, "s", s.shape[-1], kovs)
    token = special_token_key(special_token, _dtype(s), "s")
    if lengths is not None:
        full = _indices.layout_length(pattern, kovs)
        lengths = _lengths_arg(pattern, lengths, tuple(s.shape[:-2]), "s", "S", s.shape[-1], full)
        return _varlen.revert(
            s, lengths, pattern=pattern, token=token, keep_only_valid_steps=kovs, model_output=False, card_axis=None
        )
    return _revert(s, pattern=pattern, token=token, keep_only_valid_steps=kovs, model_output=False, card_last=False)


def normalize_card_axis(card_axis: tp.Any, ndim: int) -> bool:
    """Checks `card_axis` for logits of rank `ndim`; returns whether it is the last axis.

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
    if axis == ndim - 1:
        return True
    if axis <= ndim - 3:
        return False
    raise ValueError(
        f"`card_axis`={card_axis} for logits of rank {ndim} sits between the K and S axes; expected the last "
        "axis ([..., K, S, card]) or an axis before K and S (e.g. 1 for audiocraft's [B, card, K, S])"
    )


def revert_pattern_logits(
    pattern: Pattern,
    logits: tp.Any,
    special_token: tp.Any,
    keep_only_valid_steps: bool = False,
    card_axis: int = 1,
    lengths: tp.Any = None,
):
    """See `Pattern.revert_pattern_logits`."""
    logits = _as_array("logits", logits)
    kovs = _check_flag("keep_only_valid_steps", keep_only_valid_steps)
    if logits.ndim < 3:
        raise ValueError(
            f"`logits` must have a card axis and [K, S] axes, got rank {logits.ndim} (shape {tuple(logits.shape)})"
        )
    card_last = normalize_card_axis(card_axis, logits.ndim)
    k_axis = -3 if card_last else -2
    _check_pattern_axes(pattern, "logits", tuple(logits.shape), k_axis)
    _check_steps(pattern, "logits", logits.shape[k_axis + 1], kovs)
    token = special_token_key(special_token, _dtype(logits), "logits")
    if lengths is not None:
        axis = -1 if card_last else operator.index(card_axis) % logits.ndim
        batch = tuple(n for i, n in enumerate(logits.shape[: k_axis % logits.ndim]) if i != axis)
        full = _indices.layout_length(pattern, kovs)
        lengths = _lengths_arg(pattern, lengths, batch, "logits", "S", logits.shape[k_axis + 1], full)
        return _varlen.revert(
            logits,
            lengths,
            pattern=pattern,
            token=token,
            keep_only_valid_steps=kovs,
            model_output=True,
            card_axis=axis,
        )
    return _revert(
        logits, pattern=pattern, token=token, keep_only_valid_steps=kovs, model_output=True, card_last=card_last
    )
