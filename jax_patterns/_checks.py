"""`check_lengths`: a checkify check for traced lengths (jax is imported on call, not with the package)."""

from __future__ import annotations

import typing as tp


def check_lengths(lengths: tp.Any, timesteps: int) -> None:
    """A `checkify` check that every length is in `[0, timesteps]` (works on traced lengths).

    Traced lengths outside the range cannot raise inside `jit`; the operations
    clip them. Call this inside a function wrapped with
    `jax.experimental.checkify.checkify` to turn them into errors.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jax.experimental import checkify
      >>> err, _ = checkify.checkify(jax.jit(lambda n: check_lengths(n, 8)))(jnp.array([3, 9]))
      >>> err.get() is not None
      True
    """
    import jax.numpy as jnp
    from jax.experimental import checkify

    lengths = jnp.asarray(lengths)
    checkify.check(
        jnp.all((lengths >= 0) & (lengths <= timesteps)),
        "lengths must lie in [0, {t}]; got min {lo} and max {hi}",
        t=jnp.asarray(timesteps),
        lo=jnp.min(lengths, initial=0),
        hi=jnp.max(lengths, initial=0),
    )
