"""The helpers every preset shares: transformers' ignored label, codes, lengths and id checks."""

from __future__ import annotations

import typing as tp

import numpy as np

from jax_patterns._checks import check_int, clip_lengths, validate_lengths

IGNORE = -100
"""transformers' ignored label."""


def _codes(codes: tp.Any, num_codebooks: int, below: int, name: str = "codes") -> tp.Any:
    """Codes `[B, K, T]` checked: rank, K, an integer dtype, and (host values) every code in `[0, below)`.

    `below` is the smallest special id of the preset (its ids sit above the
    codes): a code equal to one would be read back as that id. Device values
    are not read back (no sync), as for `lengths`.
    """
    import jax

    if codes is None:
        raise TypeError(f"`{name}` is None; expected codes [B, K, T]")
    host = not isinstance(codes, (jax.Array, jax.core.Tracer))
    array = np.asarray(codes) if host else codes
    if array.ndim != 3 or array.shape[1] != num_codebooks:
        raise ValueError(f"`{name}` must be codes [B, K={num_codebooks}, T], got shape {tuple(array.shape)}")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"`{name}` must hold integer codes, got dtype {array.dtype}")
    if host and array.size and (array.min() < 0 or array.max() >= below):
        bad = int(array.min()) if array.min() < 0 else int(array.max())
        raise ValueError(
            f"`{name}` holds the code {bad}; codes must lie in [0, {below}) (the preset's special ids start at {below})"
        )
    return array


def _lengths(shape: tuple[int, ...], lengths: tp.Any) -> tp.Any:
    """Each example's number of frames, int32 `[B]`: `lengths` (checked, the library's policy), or `T` for all.

    Host values outside `[0, T]` raise; device or traced values are clipped.
    """
    import jax.numpy as jnp

    batch, _, timesteps = shape
    if lengths is None:
        return jnp.full((batch,), timesteps, jnp.int32)
    return clip_lengths(validate_lengths(lengths, (batch,), timesteps), timesteps)


def _ids(preset: tp.Any, *names: str) -> None:
    """The preset's sizes and token ids checked: ints >= 0 (sizes >= 1), ids distinct where the convention needs it."""
    for name in names:
        check_int(name, getattr(preset, name), minimum=1 if name.startswith("num_") else 0)
