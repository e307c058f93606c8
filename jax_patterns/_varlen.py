"""Layer 3 for variable lengths: jitted per-example gathers (`lengths=` on the three operations).

Example `b` of a batch padded to `T_max` is interleaved (or reverted) with its own
pattern `provider.get_pattern(lengths[b])`, exactly as audiocraft would do for that
example alone, and right-padded with the special token to the `T_max` shape.
`lengths` may be traced: per-example indexes are computed in the graph from the
`LengthRule` maps (built-in providers, O(K * T_max) constants) or read from
per-length tables (custom providers, O(T_max^2 * K) constants), then one gather
and one `where`, as for fixed lengths.

Traced or device-resident lengths cannot raise without a host sync: values
outside `[0, T_max]` are clipped into it. Wrap the call with
`jax.experimental.checkify` and `jax_patterns.check_lengths` to turn them into
errors; host lengths (numpy, Python) are checked eagerly.
"""

from __future__ import annotations

import functools
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns import _indices, _lengths
from jax_patterns._layout import Pattern

if tp.TYPE_CHECKING:  # pragma: no cover
    from jax_patterns._ops import Token


def validate_lengths(lengths: tp.Any, batch_shape: tuple[int, ...], timesteps: int) -> tp.Any:
    """Checks `lengths` against the batch shape and, for host values, the range `[0, timesteps]`.

    Host lengths (numpy arrays, Python ints and lists) are range-checked here.
    Lengths that live on a device (`jax.Array`) or are traced are not read back:
    that would be a blocking device-to-host copy on every call. They are clipped
    into `[0, timesteps]` in the graph; `check_lengths` under checkify makes
    out-of-range values errors.

    Raises:
      TypeError: `lengths` is not an integer array.
      ValueError: wrong shape, or a host value outside `[0, timesteps]`.
    """
    array: tp.Any
    if isinstance(lengths, (jax.core.Tracer, jax.Array)):
        array = lengths
    else:
        try:
            array = np.asarray(lengths)
        except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
            raise TypeError(f"`lengths` must be an integer array, got {type(lengths).__name__}") from err
    if array.dtype == np.bool_ or not jnp.issubdtype(array.dtype, jnp.integer):
        raise TypeError(f"`lengths` must be an integer array, got dtype {array.dtype}")
    if tuple(array.shape) != tuple(batch_shape):
        raise ValueError(
            f"`lengths` has shape {tuple(array.shape)}; expected the batch shape {tuple(batch_shape)} "
            "(one length per example; a scalar for an unbatched call)"
        )
    if isinstance(array, np.ndarray):  # host values only: never read a device array back
        values = array
        bad = np.flatnonzero((values < 0) | (values > timesteps))
        if bad.size:
            where = np.unravel_index(bad[0], values.shape) if values.ndim else ()
            raise ValueError(
                f"`lengths` must lie in [0, T_max={timesteps}]; lengths{list(map(int, where))} = "
                f"{int(values.reshape(-1)[bad[0]])}"
            )
    return array


def prepare_lengths(pattern: Pattern, lengths: tp.Any, batch_shape: tuple[int, ...]) -> tp.Any:
    """`validate_lengths`, and a check that the pattern has a provider to take shorter patterns from.

    Raises:
      TypeError, ValueError: as `validate_lengths`; ValueError for a hand-written pattern.
    """
    array = validate_lengths(lengths, batch_shape, pattern.timesteps)
    _rule_or_generic(pattern)
    return array


def _expand(x: jax.Array, ndim: int) -> jax.Array:
    """`x` `[...batch]` -> `[...batch, 1, 1]`, then the rank is `ndim`."""
    return x.reshape(x.shape + (1,) * (ndim - x.ndim))


def _grid(n_batch: int, size: int, axis: int) -> jax.Array:
    """`arange(size)` shaped to broadcast along axis -2 (axis=0) or -1 (axis=1) of `[...batch, A, B]`."""
    shape = [1] * (n_batch + 2)
    shape[n_batch + axis] = size
    return jnp.arange(size, dtype=jnp.int32).reshape(shape)


def _lookup(table: np.ndarray, lengths: jax.Array) -> jax.Array:
    return jnp.asarray(table)[lengths]


def _rule_or_generic(pattern: Pattern) -> _lengths.LengthRule | None:
    if pattern.provider is None:
        raise ValueError(
            "lengths= needs a pattern made by a provider's get_pattern (it interleaves example b with "
            "get_pattern(lengths[b])); a hand-written Pattern has no pattern for shorter lengths"
        )
    return _lengths.rule_for(pattern.provider, pattern.timesteps)


def build_sources(pattern: Pattern, lengths: jax.Array, kovs: bool) -> tuple[jax.Array, jax.Array]:
    """Per example: `t` of each output cell `[...batch, K, S]` (-1 if special) and `S(L)` `[...batch]`."""
    rule = _rule_or_generic(pattern)
    n_batch, out_steps = lengths.ndim, _indices.layout_length(pattern, kovs)
    if rule is None:
        tables = _lengths.generic_tables(pattern, kovs, False)
        return _lookup(tables["t_src"], lengths), _lookup(tables["ref_steps"], lengths)
    ref = _lookup(rule.ref_steps(np.arange(pattern.timesteps + 1), kovs).astype(np.int32), lengths)
    t_at, _ = _lengths.full_tables(pattern)
    L = _expand(lengths, n_batch + 2)
    steps = _grid(n_batch, out_steps, 1)
    full_steps = jnp.clip(rule.to_full(jnp, L, steps), 0, max(len(pattern) - 1, 0))
    codebooks = _grid(n_batch, pattern.n_q, 0)
    t = jnp.asarray(t_at.reshape(-1))[codebooks * len(pattern) + full_steps]
    return jnp.where((steps < _expand(ref, n_batch + 2)) & (t < L), t, -1), ref


def revert_positions(pattern: Pattern, lengths: jax.Array, kovs: bool, model_output: bool):
    """Per example: the step of each code in its own sequence `[...batch, K, T]` (-1 if none), and `S(L)`."""
    rule = _rule_or_generic(pattern)
    n_batch = lengths.ndim
    if rule is None:
        tables = _lengths.generic_tables(pattern, kovs, model_output)
        return _lookup(tables["pos"], lengths), _lookup(tables["ref_steps"], lengths)
    all_lengths = np.arange(pattern.timesteps + 1)
    ref = _lookup(rule.ref_steps(all_lengths, kovs).astype(np.int32), lengths)
    shift = _lookup(rule.starts_with_special(all_lengths).astype(np.int32), lengths) if model_output else None
    _, step_of = _lengths.full_tables(pattern)
    L = _expand(lengths, n_batch + 2)
    full_step = jnp.asarray(step_of).reshape((1,) * n_batch + step_of.shape)
    step = rule.from_full(jnp, L, full_step)  # in layout(L); must lie within its (valid) steps
    position = step - _expand(shift, n_batch + 2) if shift is not None else step  # in the input sequence
    ok = (_grid(n_batch, pattern.timesteps, 1) < L) & (full_step >= 0) & (position >= 0)
    ok &= step < _expand(ref, n_batch + 2)
    return jnp.where(ok, position, -1), ref


def _fill(token: Token, dtype) -> jax.Array:
    from jax_patterns._ops import _token_fill

    return _token_fill(token, dtype)


@functools.partial(jax.jit, static_argnames=("pattern", "token", "keep_only_valid_steps"), inline=True)
def build(z: jax.Array, lengths: jax.Array, *, pattern: Pattern, token: Token, keep_only_valid_steps: bool):
    z = jnp.asarray(z)
    lengths = jnp.clip(jnp.asarray(lengths, dtype=jnp.int32), 0, pattern.timesteps)
    *lead, n_q, timesteps = z.shape
    t_src, _ = build_sources(pattern, lengths, keep_only_valid_steps)
    valid = t_src >= 0
    codebooks = _grid(len(lead), n_q, 0)
    fill = _fill(token, z.dtype)
    if timesteps == 0:
        values = jnp.full(t_src.shape, fill, dtype=z.dtype)
    else:
        src = (codebooks * timesteps + jnp.maximum(t_src, 0)).reshape(*lead, -1)
        gathered = jnp.take_along_axis(z.reshape(*lead, -1), src, axis=-1, mode="promise_in_bounds")
        values = jnp.where(valid, gathered.reshape(t_src.shape), fill)
    L = _expand(lengths, len(lead) + 2)
    indexes = jnp.where(valid, codebooks * L + t_src, n_q * L)
    return values, indexes, valid


@functools.partial(
    jax.jit,
    static_argnames=("pattern", "token", "keep_only_valid_steps", "model_output", "card_axis"),
    inline=True,
)
def revert(
    s: jax.Array,
    lengths: jax.Array,
    *,
    pattern: Pattern,
    token: Token,
    keep_only_valid_steps: bool,
    model_output: bool,
    card_axis: int | None,
):
    """`card_axis`: None (no card axis), -1 (last) or the card axis's index among the leading axes."""
    s = jnp.asarray(s)
    lengths = jnp.clip(jnp.asarray(lengths, dtype=jnp.int32), 0, pattern.timesteps)
    n_batch, n_q, timesteps = lengths.ndim, pattern.n_q, pattern.timesteps
    steps = s.shape[-2] if card_axis == -1 else s.shape[-1]
    pos, ref = revert_positions(pattern, lengths, keep_only_valid_steps, model_output)
    valid = pos >= 0
    codebooks = _grid(n_batch, n_q, 0)
    src = (codebooks * steps + jnp.maximum(pos, 0)).reshape(*lengths.shape, -1)  # [...batch, K*T]
    fill = _fill(token, s.dtype)
    if card_axis == -1:
        *lead, _, _, card = s.shape
        flat = s.reshape(*lead, n_q * steps, card)
        gathered = jnp.take_along_axis(flat, src[..., None], axis=-2, mode="promise_in_bounds")
        values = jnp.where(valid[..., None], gathered.reshape(*valid.shape, card), fill)
    elif card_axis is None:
        flat = s.reshape(*lengths.shape, n_q * steps)
        gathered = jnp.take_along_axis(flat, src, axis=-1, mode="promise_in_bounds")
        values = jnp.where(valid, gathered.reshape(valid.shape), fill)
    else:
        *lead, _, _ = s.shape
        flat = s.reshape(*lead, n_q * steps)
        src = jnp.expand_dims(src, card_axis)
        gathered = jnp.take_along_axis(flat, src, axis=-1, mode="promise_in_bounds")
        keep = jnp.expand_dims(valid, card_axis)
        values = jnp.where(keep, gathered.reshape(*lead, n_q, timesteps), fill)
    R = _expand(ref, n_batch + 2)
    indexes = jnp.where(valid, pos + codebooks * R, n_q * R)
    return values, indexes, valid
