"""What every preset shares: transformers' ignored label, the examples' lengths, the checks of a preset's fields
and of the arrays its methods take (ids, logits, embedding tables' sizes), naming the preset's own arguments.

Codes are checked by the library's one check, `jax_patterns._checks.check_codes`.
"""

from __future__ import annotations

import typing as tp

import numpy as np

from jax_patterns._checks import (
    INT32_MAX,
    N_Q_MAX,
    check_codes,
    check_flag,
    check_int,
    clip_lengths,
    is_host,
    validate_lengths,
)

IGNORE = -100
"""transformers' ignored label."""


def example_lengths(shape: tuple[int, ...], lengths: tp.Any) -> tp.Any:
    """Each example's number of frames, int32 `[B]`: `lengths` (checked, the library's policy), or `T` for all.

    Host values outside `[0, T]` raise; device or traced values are clipped.
    """
    import jax.numpy as jnp

    batch, _, timesteps = shape
    if lengths is None:
        return jnp.full((batch,), timesteps, jnp.int32)
    return clip_lengths(validate_lengths(lengths, (batch,), timesteps), timesteps)


def check_ids(preset: tp.Any, *names: str) -> None:
    """The preset's fields `names` checked as ints: codebook counts (`num_*`) in `[1, N_Q_MAX]` (a pattern of K
    codebooks holds K * K int32 indexes), vocabulary sizes (`*_size`) >= 1, token ids >= 0; all within int32."""
    for name in names:
        value = getattr(preset, name)
        if name.startswith("num_"):
            check_int(name, value, minimum=1, maximum=N_Q_MAX)
        else:
            check_int(name, value, minimum=1 if name.endswith("_size") else 0)


def check_rows(total: int, formula: str) -> None:
    """Raises unless `total` rows (or token ids) of an embedding table, `formula` spelt with the fields' names, fit
    int32: the ids a preset computes (`offset + code`) are int32 arrays.

    Raises:
      ValueError: `total` is above 2**31 - 1 + 1 (its last row would not be an int32).
    """
    if total > INT32_MAX + 1:
        raise ValueError(f"{formula} = {total} rows do not fit int32 ids (at most 2**31)")


def int_ids(ids: tp.Any, name: str, *, ranks: tuple[int, ...] | None = None, below: int | None = None) -> tp.Any:
    """Integer ids of any shape (`ranks`: the ranks allowed, None: at least 1): host values checked in their own
    dtype to lie in `[0, below)` (None: int32), through `check_codes`; device or traced ids are not read back.

    Returns:
      the ids as numpy (host values) or as they were (device or traced).

    Raises:
      TypeError: None, ids that are not integers (floats, bools, strings).
      ValueError: another rank, or a host id outside `[0, below)`.
    """
    if ids is None:
        raise TypeError(f"`{name}` is None; expected an integer array")
    if is_host(ids):
        try:
            ids = np.asarray(ids)
        except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
            raise TypeError(f"`{name}` must be an integer array, got {type(ids).__name__}") from err
    if (ranks is None and ids.ndim < 1) or (ranks is not None and ids.ndim not in ranks):
        wanted = "at least 1" if ranks is None else " or ".join(map(str, ranks))
        raise ValueError(f"`{name}` must have rank {wanted}, got shape {tuple(ids.shape)}")
    check_codes(ids.reshape(1, 1, -1), name, n_q=1, below=below)
    return ids


def check_sequence_ids(
    ids: tp.Any, name: str, pattern: tp.Any, timesteps: int, *, exact: bool = False, below: int | None = None
) -> tp.Any:
    """Delayed ids `[B, K, S]` checked against the layout a preset's `decode` reverts them with: `S` at most its
    steps (exactly, `exact`, when per-example lengths read the `T_max` layout), naming `name` and `timesteps`.

    Raises:
      TypeError: ids that are not integers.
      ValueError: another rank or K, a host id outside `[0, below)`, or `S` that does not fit the layout.
    """
    ids = check_codes(ids, name, n_q=pattern.n_q, below=below)
    steps, layout = ids.shape[-1], len(pattern)
    if steps > layout or (exact and steps != layout):
        need = f"exactly {layout} (with `lengths`)" if exact else f"at most {layout}"
        raise ValueError(f"`{name}` has S={steps} steps; the layout of `timesteps`={timesteps} frames has {need}")
    return ids


def check_logits(logits: tp.Any, name: str, pattern: tp.Any, keep_only_valid_steps: bool) -> None:
    """A preset loss's logits `[B, K, S, V]` checked against the pattern of its codes (`codes`), naming `name`.

    Raises:
      TypeError: None, or logits that are not floating point.
      ValueError: another rank, K or S than the codes' pattern takes, or no class (`V = 0`).
    """
    import jax.numpy as jnp

    from jax_patterns.lm._targets import dtype_of, expected_steps, steps_hint

    if logits is None:
        raise TypeError(f"`{name}` is None; expected logits [B, K, S, V]")
    shape = tuple(np.shape(logits))
    if len(shape) != 4:
        raise ValueError(f"`{name}` must be logits [B, K, S, V], got shape {shape}")
    if shape[1] != pattern.n_q or shape[2] not in expected_steps(pattern, keep_only_valid_steps):
        raise ValueError(
            f"`{name}` has K={shape[1]}, S={shape[2]}; the layout of `codes` ({pattern.timesteps} frames) needs "
            f"K={pattern.n_q}, {steps_hint(pattern, keep_only_valid_steps)}"
        )
    dtype = dtype_of(logits)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`{name}` must be floating point logits, got dtype {dtype}")
    if shape[3] == 0:
        raise ValueError(f"`{name}` has no class (V=0), shape {shape}")


def ids_in_our_layout(
    ids: tp.Any, n_q: int, codebooks_last: tp.Any, name: str = "ids", below: int | None = None
) -> tp.Any:
    """Generated or input ids `[B, K, S]` (or transformers' `[B, S, K]` with `codebooks_last`), checked, as `[B, K, S]`.

    The ids a preset's undo reads: rank 3, `n_q` codebooks on the axis the
    layout says, integers (host values in `[0, below)`, by default `[0, 2**31)`, through `check_codes`).
    Ids in the other layout get an error that says which flag reads them.

    Raises:
      TypeError: `codebooks_last` is not a bool; ids that are not integers.
      ValueError: another rank, or no axis of `n_q` codebooks where the layout puts it.
    """
    import jax.numpy as jnp

    codebooks_last = check_flag("codebooks_last", codebooks_last)
    shape = tuple(np.shape(ids)) if ids is not None else ()
    axis, other = (2, 1) if codebooks_last else (1, 2)
    if len(shape) == 3 and shape[axis] != n_q:
        layouts = ("[B, K, S]", "transformers' [B, S, K]")
        layout, flipped = layouts[::-1] if codebooks_last else layouts
        hint = f"; these look like {flipped} ids: pass `codebooks_last={not codebooks_last}`"
        raise ValueError(
            f"`{name}` has shape {shape}; with `codebooks_last={codebooks_last}` they are read as {layout} with "
            f"K={n_q}{hint if shape[other] == n_q else ''}"
        )
    if codebooks_last and len(shape) == 3:
        ids = np.swapaxes(ids, 1, 2) if is_host(ids) else jnp.swapaxes(ids, 1, 2)
    return check_codes(ids, name, n_q=n_q, below=below)


def first_true(flags: tp.Any) -> tp.Any:
    """`[B]` int32: the index of each row's first True of `flags [B, N]`, or `N` where none (N = 0 included)."""
    import jax.numpy as jnp

    n = flags.shape[-1]
    return jnp.min(jnp.where(flags, jnp.arange(n, dtype=jnp.int32), n), axis=-1, initial=n).astype(jnp.int32)


def masked_cross_entropy(logits: tp.Any, labels: tp.Any) -> tp.Any:
    """The mean cross entropy of `logits [..., V]` over the `labels [...]` that are not -100 (float32).

    transformers' `CrossEntropyLoss` with `ignore_index=-100` and mean
    reduction: NaN when no label is scored, as there.
    """
    import jax
    import jax.numpy as jnp

    scored = labels != IGNORE
    logp = jax.nn.log_softmax(jnp.asarray(logits).astype(jnp.float32), axis=-1)
    picked = jnp.take_along_axis(logp, jnp.where(scored, labels, 0)[..., None], axis=-1)[..., 0]
    return -jnp.sum(jnp.where(scored, picked, 0.0)) / jnp.sum(scored).astype(jnp.float32)
