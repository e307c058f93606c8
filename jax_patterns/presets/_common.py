"""What every preset shares: transformers' ignored label, the examples' lengths, the check of a preset's ids.

Codes are checked by the library's one check, `jax_patterns._checks.check_codes`.
"""

from __future__ import annotations

import typing as tp

from jax_patterns._checks import check_int, clip_lengths, validate_lengths

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
