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
codebook, a static slice plus a pad; that lowering was measured against this
gather and bought nothing on CPU (benchmarks/RESULTS.md has the figures), so
there is one code path to test, and a flat gather with constant indices is the
form that lowers well on TPU.

With `lengths=`, the indexes are per example: `_varlen` computes them in the
graph (or `_indices.generic_rows` on the host, for host lengths and a provider
without a length rule), and the same `gather` applies them. Every jitted
function here is keyed on all it reads: the pattern (its layout), its length
rule, the special-token key and the flags.
"""

from __future__ import annotations

import functools
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns import _indices, _varlen
from jax_patterns._checks import (
    Token,
    check_flag,
    check_int,
    check_padding_side,
    clip_lengths,
    normalize_card_axis,
    special_token_key,
    token_fill,
    validate_lengths,
)
from jax_patterns._layout import GenericRule, Pattern


# ---------------------------------------------------------------------------
# Validation (plain Python, before tracing)
# ---------------------------------------------------------------------------
def _as_array(name: str, x: tp.Any) -> tp.Any:
    """`x` as an array the ops take: jax and numpy arrays as they are, DLPack tensors (torch) adopted.

    Raises:
      TypeError: `x` is None, or not an array of numbers.
    """
    if isinstance(x, (jax.Array, np.ndarray)) or hasattr(x, "__jax_array__"):
        return x
    if x is None:
        raise TypeError(f"`{name}` is None; expected an array of codes or logits")
    if hasattr(x, "__dlpack__"):  # torch tensors (bfloat16 included) and other frameworks, without importing them
        try:
            return jnp.from_dlpack(x)
        except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
            raise TypeError(
                f"`{name}` is a {type(x).__name__} that JAX cannot adopt through DLPack ({err}); convert it first, "
                "e.g. with torch_compat.to_jax"
            ) from err
    try:
        array = np.asarray(x)
    except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
        raise TypeError(f"`{name}` must be an array, got {type(x).__name__}") from err
    if array.dtype == object:
        raise TypeError(f"`{name}` must be an array of numbers, got {type(x).__name__} holding {array.dtype} values")
    return array


def _dtype(x: tp.Any) -> np.dtype:
    return jax.dtypes.canonicalize_dtype(x.dtype)


def _token(special_token: tp.Any, x: tp.Any, name: str, arg: str = "special_token") -> Token:
    """The key of token `arg` for `x`'s dtype as JAX will hold it, with the input's own dtype in errors."""
    try:
        return special_token_key(special_token, _dtype(x), name, arg)
    except (TypeError, ValueError) as err:
        given = np.dtype(x.dtype)
        if given != _dtype(x):
            note = f" (`{name}` is {given}; JAX without x64, `jax_enable_x64`, computes it as {_dtype(x)})"
            raise type(err)(str(err) + note) from err
        raise


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


PerExample = tuple[tp.Any, tp.Any, tp.Any]  # (lengths, rule, host rows or None)


def _per_example(
    pattern: Pattern,
    lengths: tp.Any,
    batch: tuple[int, ...],
    full: tuple[str, str, int, int] | None,
    kovs: bool,
    model_output: bool,
) -> PerExample:
    """Checks `lengths=` once for every operation; returns `(lengths, rule, host rows)`.

    `full` is `(argument, axis name, its size, the T_max pattern's size)`: with
    lengths every input has the T_max pattern's full shape (None: no sequence
    input to check, as for `logit_steps`). For a provider
    without a length rule and host lengths, the rows of the lengths that occur
    are made here (`(ref, t_src)` for a build, `(ref, pos)` for a revert).
    """
    name, what, size, expected = full if full is not None else ("", "", 0, 0)
    if size != expected:
        raise ValueError(
            f"with `lengths`, `{name}` must have {what}={expected} (the T_max pattern's), got {size}; "
            "pad every example to the T_max shape"
        )
    rule = pattern.length_rule
    if rule is None:
        raise ValueError(
            "lengths= needs a pattern made by a provider's get_pattern (it interleaves example b with "
            "get_pattern(lengths[b])); a hand-written Pattern has no pattern for shorter lengths"
        )
    lengths = validate_lengths(lengths, batch, pattern.timesteps)
    rows = None
    if isinstance(rule, GenericRule) and isinstance(lengths, np.ndarray):
        ref, t_src, pos = _indices.generic_rows(pattern, lengths, kovs, model_output)
        rows = (ref, t_src if what == "T" else pos)
    return lengths, rule, rows


# ---------------------------------------------------------------------------
# The gather: one routine for constant and per-example indexes
# ---------------------------------------------------------------------------
def gather(flat: jax.Array, axis: int, index: tp.Any, fill: jax.Array, card_axis: int | None = None) -> jax.Array:
    """`flat` gathered along `axis` at `index`, the special token `fill` where an index has no source.

    Args:
      flat: values with the `K * T` (or `K * S`) axis at `axis`.
      axis: the flattened axis.
      index: a numpy `[N]` vector shared by every example (entries
        `>= flat.shape[axis]` are special), entering the program as a
        constant; or a jax `[*batch, N]` array per example (entries `< 0` are
        special), where `batch` is the axes before `axis` less `card_axis`.
      fill: the special token's value.
      card_axis: a card axis before `axis` that `index` lacks (per-example only).

    Returns:
      `flat` with `axis` replaced by `N`.
    """
    if isinstance(index, np.ndarray):  # one constant: only `index` enters the program, not a mask
        inside_host = index < flat.shape[axis]
        out_shape = flat.shape[:axis] + (index.size,) + flat.shape[axis + 1 :]
        if flat.shape[axis] == 0 or not inside_host.any():
            return jnp.full(out_shape, fill, dtype=flat.dtype)
        constant = jnp.asarray(index)
        if inside_host.all():
            return _take(flat, axis, constant)
        inside = constant < flat.shape[axis]
        values = _take(flat, axis, jnp.where(inside, constant, 0))
        keep_shape = [1] * flat.ndim
        keep_shape[axis] = index.size
        return jnp.where(inside.reshape(keep_shape), values, fill)
    if card_axis is not None:
        index = jnp.expand_dims(index, card_axis)
    index = index.reshape(index.shape + (1,) * (flat.ndim - axis - 1))  # broadcast over a trailing card axis
    inside = index >= 0
    if flat.shape[axis] == 0:
        shape = jnp.broadcast_shapes(flat.shape[:axis] + (1,) + flat.shape[axis + 1 :], index.shape)
        return jnp.full(shape, fill, dtype=flat.dtype)
    values = jnp.take_along_axis(flat, jnp.maximum(index, 0), axis=axis, mode="promise_in_bounds")
    return jnp.where(inside, values, fill)


def _take(flat: jax.Array, axis: int, index: jax.Array) -> jax.Array:
    """`flat` indexed along `axis` by the int32 vector `index`: one XLA gather, written directly.

    (Equivalent to `jnp.take(..., mode="promise_in_bounds")`, without the Python
    indexing machinery: tracing cost matters when a new length is compiled.)
    """
    offset_dims = tuple(d for d in range(flat.ndim) if d != axis)
    dims = jax.lax.GatherDimensionNumbers(
        offset_dims=offset_dims, collapsed_slice_dims=(axis,), start_index_map=(axis,)
    )
    slice_sizes = tuple(1 if d == axis else n for d, n in enumerate(flat.shape))
    return jax.lax.gather(flat, index[:, None], dims, slice_sizes, mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS)


# ---------------------------------------------------------------------------
# The jitted operations (static key: pattern, rule, token, flags)
# ---------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("pattern", "rule", "token", "keep_only_valid_steps", "left"), inline=True)
def _build(z, lengths, rows, *, pattern: Pattern, rule: tp.Any, token: Token, keep_only_valid_steps: bool, left: bool):
    """`left`: examples are the last `lengths[b]` timesteps of `z` and end the sequence (left padding)."""
    z = jnp.asarray(z)  # numpy input under jax.disable_jit()
    *lead, n_q, timesteps = z.shape
    flat = z.reshape(*lead, n_q * timesteps)
    fill = token_fill(token, z.dtype)
    if rule is None:
        indexes, _ = _indices.build_indexes(pattern, timesteps, keep_only_valid_steps)
        values = gather(flat, len(lead), indexes.reshape(-1), fill).reshape(*lead, *indexes.shape)
        constant = jnp.asarray(indexes)
        return values, constant, constant != n_q * timesteps
    lengths = clip_lengths(lengths, pattern.timesteps)
    if rows is None:
        t_src, ref = _varlen.build_sources(pattern, rule, lengths, keep_only_valid_steps)
    else:
        ref, t_src = rows
    start: tp.Any = 0
    if left:  # the same example, moved to the end of its row; its codes start at T - L
        t_src = _varlen.right_align(t_src, t_src.shape[-1] - jnp.asarray(ref))
        start = _varlen.expand(timesteps - lengths, len(lead) + 2)
    valid = t_src >= 0
    codebooks = _varlen.grid(len(lead), n_q, 0)
    src = jnp.where(valid, codebooks * timesteps + start + t_src, -1)
    values = gather(flat, len(lead), src.reshape(*lead, src.shape[-2] * src.shape[-1]), fill)
    L = _varlen.expand(lengths, len(lead) + 2)
    return values.reshape(t_src.shape), jnp.where(valid, codebooks * L + t_src, n_q * L), valid


@functools.partial(
    jax.jit,
    static_argnames=("pattern", "rule", "token", "keep_only_valid_steps", "model_output", "card_axis", "left"),
    inline=True,
)
def _revert(
    s,
    lengths,
    rows,
    *,
    pattern: Pattern,
    rule: tp.Any,
    token: Token,
    keep_only_valid_steps: bool,
    model_output: bool,
    card_axis: int | None,
    left: bool,
):
    """`card_axis`: None (no card axis) or the normalised card axis of `s`; `left`: left-padded examples."""
    s = jnp.asarray(s)  # numpy input under jax.disable_jit()
    card_last = card_axis == s.ndim - 1
    k_axis = s.ndim - 3 if card_last else s.ndim - 2
    lead, (n_q, steps), tail = s.shape[:k_axis], s.shape[k_axis : k_axis + 2], s.shape[k_axis + 2 :]
    flat = s.reshape(*lead, n_q * steps, *tail)
    fill = token_fill(token, s.dtype)
    if rule is None:
        indexes, _ = _indices.revert_indexes(pattern, steps, keep_only_valid_steps, model_output)
        values = gather(flat, k_axis, indexes.reshape(-1), fill)
        constant = jnp.asarray(indexes)
        return values.reshape(*lead, *indexes.shape, *tail), constant, constant != n_q * steps
    lengths = clip_lengths(lengths, pattern.timesteps)
    if rows is None:
        pos, ref = _varlen.revert_positions(pattern, rule, lengths, keep_only_valid_steps, model_output)
    else:
        ref, pos = rows
    n_batch, timesteps = lengths.ndim, pattern.timesteps
    at = pos  # where the example's own step sits in `s`
    if left:
        pos, at = _varlen.left_positions(pos, ref, lengths, steps)
    valid = pos >= 0
    codebooks = _varlen.grid(n_batch, n_q, 0)
    src = jnp.where(valid, codebooks * steps + at, -1).reshape(*lengths.shape, n_q * timesteps)
    inner_card = None if card_axis is None or card_last else card_axis
    values = gather(flat, k_axis, src, fill, inner_card).reshape(*lead, n_q, timesteps, *tail)
    R = _varlen.expand(ref, n_batch + 2)
    return values, jnp.where(valid, pos + codebooks * R, n_q * R), valid


@functools.partial(jax.jit, static_argnames=("pattern", "rule", "keep_only_valid_steps", "left"), inline=True)
def _logit_steps(lengths, rows, *, pattern: Pattern, rule: tp.Any, keep_only_valid_steps: bool, left: bool):
    if rule is None:
        steps = _indices.layout_length(pattern, keep_only_valid_steps)
        indexes, mask = _indices.revert_indexes(pattern, steps, keep_only_valid_steps, True)
        own = np.where(mask, indexes - np.arange(pattern.n_q, dtype=np.int32)[:, None] * steps, -1)
        return jnp.asarray(own.astype(np.int32)), jnp.asarray(mask)
    lengths = clip_lengths(lengths, pattern.timesteps)
    if rows is None:
        pos, ref = _varlen.revert_positions(pattern, rule, lengths, keep_only_valid_steps, True)
    else:
        ref, pos = rows
    if left:  # steps of the padded sequence, whose last S(L) steps are the example's
        _, pos = _varlen.left_positions(pos, ref, lengths, _indices.layout_length(pattern, keep_only_valid_steps))
    return pos, pos >= 0


# ---------------------------------------------------------------------------
# Public entry points (called by the `Pattern` methods)
# ---------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("token",), inline=True)
def _fill_after(values, mask, *, token: Token):
    """`token` at the positions with no code after each codebook's first code (gaps, the end, padding)."""
    started = jnp.cumsum(mask, axis=-1, dtype=jnp.int32) > 0
    after = jnp.broadcast_to(~mask & started, values.shape)
    return jnp.where(after, token_fill(token, values.dtype), values)


def _entry(
    pattern: Pattern, name: str, axis: str, x: tp.Any, keep_only_valid_steps: tp.Any, lengths: tp.Any, padding_side: str
) -> tuple[tp.Any, bool, bool]:
    """The checks `build_pattern_sequence` and `revert_pattern_sequence` share: `x` (named `name`) an array
    `[..., K, axis]` with the pattern's K, the flag and the padding side. Returns `(x, kovs, left)`."""
    x = _as_array(name, x)
    kovs = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    left = check_padding_side(padding_side) and lengths is not None
    if x.ndim < 2:
        raise ValueError(f"`{name}` must have shape [..., K, {axis}], got rank {x.ndim} (shape {tuple(x.shape)})")
    _check_pattern_axes(pattern, name, tuple(x.shape), -2)
    return x, kovs, left


def build_pattern_sequence(
    pattern: Pattern,
    z: tp.Any,
    special_token: tp.Any,
    keep_only_valid_steps: bool = False,
    lengths: tp.Any = None,
    fill_after: tp.Any = None,
    padding_side: str = "right",
):
    """See `Pattern.build_pattern_sequence`."""
    z, kovs, left = _entry(pattern, "z", "T", z, keep_only_valid_steps, lengths, padding_side)
    if z.shape[-1] > pattern.timesteps:
        raise ValueError(
            f"`z` has T={z.shape[-1]} timesteps (shape {tuple(z.shape)}) but the pattern has "
            f"timesteps={pattern.timesteps}"
        )
    token = _token(special_token, z, "z")
    rule = rows = None
    if lengths is not None:
        full = ("z", "T", z.shape[-1], pattern.timesteps)
        lengths, rule, rows = _per_example(pattern, lengths, tuple(z.shape[:-2]), full, kovs, False)
    after = None if fill_after is None else _token(fill_after, z, "z", "fill_after")
    values, indexes, mask = _build(
        z, lengths, rows, pattern=pattern, rule=rule, token=token, keep_only_valid_steps=kovs, left=left
    )
    if after is not None:
        values = _fill_after(values, mask, token=after)
    return values, indexes, mask


def revert_pattern_sequence(
    pattern: Pattern,
    s: tp.Any,
    special_token: tp.Any,
    keep_only_valid_steps: bool = False,
    lengths: tp.Any = None,
    padding_side: str = "right",
):
    """See `Pattern.revert_pattern_sequence`."""
    s, kovs, left = _entry(pattern, "s", "S", s, keep_only_valid_steps, lengths, padding_side)
    _check_steps(pattern, "s", s.shape[-1], kovs)
    token = _token(special_token, s, "s")
    rule = rows = None
    if lengths is not None:
        full = ("s", "S", s.shape[-1], _indices.layout_length(pattern, kovs))
        lengths, rule, rows = _per_example(pattern, lengths, tuple(s.shape[:-2]), full, kovs, False)
    return _revert(
        s,
        lengths,
        rows,
        pattern=pattern,
        rule=rule,
        token=token,
        keep_only_valid_steps=kovs,
        model_output=False,
        card_axis=None,
        left=left,
    )


def revert_pattern_logits(
    pattern: Pattern,
    logits: tp.Any,
    special_token: tp.Any,
    keep_only_valid_steps: bool = False,
    card_axis: int = 1,
    lengths: tp.Any = None,
    padding_side: str = "right",
):
    """See `Pattern.revert_pattern_logits`."""
    logits = _as_array("logits", logits)
    kovs = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    left = check_padding_side(padding_side) and lengths is not None
    if logits.ndim < 3:
        raise ValueError(
            f"`logits` must have a card axis and [K, S] axes, got rank {logits.ndim} (shape {tuple(logits.shape)})"
        )
    axis = normalize_card_axis(card_axis, logits.ndim)
    k_axis = logits.ndim - 3 if axis == logits.ndim - 1 else logits.ndim - 2
    _check_pattern_axes(pattern, "logits", tuple(logits.shape), k_axis)
    _check_steps(pattern, "logits", logits.shape[k_axis + 1], kovs)
    token = _token(special_token, logits, "logits")
    rule = rows = None
    if lengths is not None:
        batch = tuple(n for i, n in enumerate(logits.shape[:k_axis]) if i != axis)
        full = ("logits", "S", logits.shape[k_axis + 1], _indices.layout_length(pattern, kovs))
        lengths, rule, rows = _per_example(pattern, lengths, batch, full, kovs, True)
    return _revert(
        logits,
        lengths,
        rows,
        pattern=pattern,
        rule=rule,
        token=token,
        keep_only_valid_steps=kovs,
        model_output=True,
        card_axis=axis,
        left=left,
    )


def logit_steps(
    pattern: Pattern, keep_only_valid_steps: bool = False, lengths: tp.Any = None, padding_side: str = "right"
):
    """See `Pattern.logit_steps`."""
    kovs = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    left = check_padding_side(padding_side) and lengths is not None
    rule = rows = None
    if lengths is not None:
        batch = tuple(np.shape(lengths))
        lengths, rule, rows = _per_example(pattern, lengths, batch, None, kovs, True)
    return _logit_steps(lengths, rows, pattern=pattern, rule=rule, keep_only_valid_steps=kovs, left=left)


# ---------------------------------------------------------------------------
# Single-stream flattening (one code per step, per-codebook vocabulary offsets)
# ---------------------------------------------------------------------------
def _stream_offsets(pattern: Pattern, offsets: tp.Any) -> tuple[int, ...]:
    try:
        array = np.asarray(offsets)
    except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
        raise TypeError(f"`offsets` must be {pattern.n_q} ints (one per codebook), got {offsets!r}") from err
    if array.shape != (pattern.n_q,) or array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"`offsets` must be {pattern.n_q} ints (one per codebook), got {offsets!r}")
    return tuple(int(o) for o in array)


def _stream_dtype(dtype: np.dtype, name: str) -> np.dtype:
    """The stream's dtype: integer codes narrower than 32 bits widen to int32, so code + offset fits."""
    if dtype == np.bool_ or not np.issubdtype(dtype, np.integer):
        raise TypeError(f"`{name}` must hold integer tokens, got dtype {dtype}")
    return np.dtype(np.int32) if np.dtype(dtype).itemsize < 4 else np.dtype(dtype)


def _stream_ranges(
    offsets: tuple[int, ...], card: tp.Any, token: Token, dtype: np.dtype
) -> tuple[tuple[int, int], ...]:
    """Each codebook's token range `[low, high]` in the stream, checked against the dtype and the special token.

    A code `c` of codebook `q` is the token `c + offsets[q]`, for `0 <= c < card`
    (without `card`: every `c >= 0` the dtype can hold). The special token must
    lie outside every range, or a code would come back as padding.
    """
    info = np.iinfo(dtype)
    if card is not None:
        card = check_int("card", card, minimum=1)
    ranges = []
    for q, offset in enumerate(offsets):
        high = info.max if card is None else offset + card - 1
        if not info.min <= offset <= info.max or high > info.max:
            top = "" if card is None else f" + card - 1 = {high}"
            raise ValueError(
                f"`offsets`[{q}]={offset}{top} does not fit the stream's dtype {dtype} (range [{info.min}, {info.max}])"
            )
        ranges.append((offset, high))
    special = token[1]
    for q, (low, high) in enumerate(ranges):
        if token[0] == "i" and low <= special <= high:
            what = f"[{low}, {high}]" if card is not None else f"[{low}, ...) (no `card` given)"
            raise ValueError(
                f"`special_token`={special} is also codebook {q}'s token for code {special - low} "
                f"(its tokens: offsets[{q}] + code, {what}): it would come back as padding. Use a special token "
                "outside every codebook's range (e.g. -1), or pass `card` so that the ranges are known"
            )
    return tuple(ranges)


def _host_codes_fit(name: str, values: np.ndarray, owners: np.ndarray, ranges: tuple, offsets: tuple, special: int):
    """Host values are checked at once: a code (or token) that has no place in its codebook's range raises."""
    low = np.asarray([r[0] for r in ranges], np.int64)[np.maximum(owners, 0)]
    high = np.asarray([r[1] for r in ranges], np.int64)[np.maximum(owners, 0)]
    shift = 0 if name == "stream" else np.asarray(offsets, np.int64)[np.maximum(owners, 0)]
    wide = values.astype(np.int64) + shift
    bad = (owners >= 0) & (values != special) & ((wide < low) | (wide > high))
    if bad.any():
        where = np.argwhere(bad)[0]
        q = int(owners[tuple(where)])
        value = int(values[tuple(where)])
        what = f"token {value}" if name == "stream" else f"code {value} (as token {value + offsets[q]})"
        raise ValueError(
            f"`{name}` holds {what} of codebook {q} at {where.tolist()}, outside the codebook's tokens "
            f"[{ranges[q][0]}, {ranges[q][1]}] (`offsets`[{q}]={offsets[q]}; codes are >= 0, below `card` if given)"
        )


def _lead(table: np.ndarray, ndim: int) -> jax.Array:
    """A static table with leading unit axes up to `ndim` (explicit broadcasting)."""
    return jnp.asarray(table.reshape((1,) * (ndim - table.ndim) + table.shape))


@functools.partial(jax.jit, static_argnames=("pattern", "offsets", "ranges", "token", "keep_only_valid_steps"))
def _to_stream(seq, *, pattern: Pattern, offsets: tuple, ranges: tuple, token: Token, keep_only_valid_steps: bool):
    owners = _indices.step_owners(pattern, keep_only_valid_steps)
    dtype = _stream_dtype(seq.dtype, "seq")
    where = np.maximum(owners, 0)
    add = np.asarray(offsets, np.int64)[where]
    top = np.asarray([high for _, high in ranges], np.int64)[where] - add  # the largest code each step may hold
    special = token_fill(token, dtype)
    picked = seq[..., where, np.arange(owners.size)].astype(dtype)  # [..., S]: the owning codebook's value
    fits = (picked >= 0) & (picked <= _lead(top, picked.ndim).astype(dtype))  # no wrap-around, no stray code
    keep = _lead(owners >= 0, picked.ndim) & (picked != special) & fits
    return jnp.where(keep, picked + _lead(add, picked.ndim).astype(dtype), special)


@functools.partial(jax.jit, static_argnames=("pattern", "offsets", "ranges", "token", "keep_only_valid_steps"))
def _from_stream(stream, *, pattern: Pattern, offsets: tuple, ranges: tuple, token: Token, keep_only_valid_steps: bool):
    owners = _indices.step_owners(pattern, keep_only_valid_steps)
    where = np.maximum(owners, 0)
    add = np.asarray(offsets, np.int64)[where]
    low = np.asarray([r[0] for r in ranges], np.int64)[where]
    high = np.asarray([r[1] for r in ranges], np.int64)[where]
    special = token_fill(token, stream.dtype)
    mine = np.arange(pattern.n_q)[:, None] == owners[None, :]  # [K, S]
    spread = stream[..., None, :]  # [..., 1, S]
    inside = (spread >= _lead(low, spread.ndim).astype(stream.dtype)) & (
        spread <= _lead(high, spread.ndim).astype(stream.dtype)
    )
    value = spread - _lead(add, spread.ndim).astype(stream.dtype)
    return jnp.where(_lead(mine, spread.ndim) & (spread != special) & inside, value, special)


def to_stream(
    pattern: Pattern,
    seq: tp.Any,
    offsets: tp.Any,
    special_token: tp.Any,
    keep_only_valid_steps: bool,
    card: tp.Any = None,
):
    """See `Pattern.to_stream`."""
    seq = _as_array("seq", seq)
    kovs = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    owners = _indices.step_owners(pattern, kovs)
    if seq.ndim < 2 or tuple(seq.shape[-2:]) != (pattern.n_q, owners.size):
        raise ValueError(f"`seq` has shape {tuple(seq.shape)}; expected [..., K={pattern.n_q}, S={owners.size}]")
    dtype = _stream_dtype(_dtype(seq), "seq")
    token = _token(special_token, seq, "seq")
    offsets = _stream_offsets(pattern, offsets)
    ranges = _stream_ranges(offsets, card, token, dtype)
    if isinstance(seq, np.ndarray):  # host values are checked here; device values write the special token
        picked = seq[..., np.maximum(owners, 0), np.arange(owners.size)]
        _host_codes_fit("seq", picked, np.broadcast_to(owners, picked.shape), ranges, offsets, token[1])
    return _to_stream(
        jnp.asarray(seq), pattern=pattern, offsets=offsets, ranges=ranges, token=token, keep_only_valid_steps=kovs
    )


def from_stream(
    pattern: Pattern,
    stream: tp.Any,
    offsets: tp.Any,
    special_token: tp.Any,
    keep_only_valid_steps: bool,
    card: tp.Any = None,
):
    """See `Pattern.from_stream`."""
    stream = _as_array("stream", stream)
    kovs = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    owners = _indices.step_owners(pattern, kovs)
    if stream.ndim < 1 or stream.shape[-1] != owners.size:
        raise ValueError(f"`stream` has shape {tuple(stream.shape)}; expected [..., S={owners.size}]")
    _stream_dtype(_dtype(stream), "stream")
    dtype = np.dtype(_dtype(stream))  # the stream's own: the codes come back in it
    token = _token(special_token, stream, "stream")
    offsets = _stream_offsets(pattern, offsets)
    ranges = _stream_ranges(offsets, card, token, dtype)
    if isinstance(stream, np.ndarray):
        _host_codes_fit("stream", stream, np.broadcast_to(owners, stream.shape), ranges, offsets, token[1])
    return _from_stream(
        jnp.asarray(stream), pattern=pattern, offsets=offsets, ranges=ranges, token=token, keep_only_valid_steps=kovs
    )
