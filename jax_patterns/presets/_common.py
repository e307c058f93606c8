"""What every preset shares: transformers' ignored label, the examples' lengths, the check of a preset's ids.

Codes are checked by the library's one check, `jax_patterns._checks.check_codes`.
"""

from __future__ import annotations

import typing as tp

import numpy as np

from jax_patterns._checks import check_codes, check_flag, check_int, clip_lengths, is_host, validate_lengths

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
    """The preset's fields `names` checked as ints: sizes (`num_*`) >= 1, token ids >= 0."""
    for name in names:
        check_int(name, getattr(preset, name), minimum=1 if name.startswith("num_") else 0)


def ids_in_our_layout(ids: tp.Any, n_q: int, codebooks_last: tp.Any, name: str = "ids") -> tp.Any:
    """Generated or input ids `[B, K, S]` (or transformers' `[B, S, K]` with `codebooks_last`), checked, as `[B, K, S]`.

    The ids a preset's undo reads: rank 3, `n_q` codebooks on the axis the
    layout says, integers (host values in `[0, 2**31)`, through `check_codes`).
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
    return check_codes(ids, name, n_q=n_q, below=None)


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
