"""Tensor exchange between torch and jax: zero-copy through DLPack where possible."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch


def to_torch(x: jax.typing.ArrayLike) -> torch.Tensor:
    """A torch tensor viewing the jax array's buffer (DLPack), or a copy where DLPack refuses."""
    if isinstance(x, jax.Array):
        try:
            return torch.from_dlpack(x)
        except (RuntimeError, TypeError, BufferError):
            pass
    return torch.from_numpy(np.array(x))


def to_jax(t: torch.Tensor) -> jax.Array:
    """A jax array sharing the tensor's buffer (DLPack), or a copy where DLPack refuses.

    Non-contiguous tensors, and CPU buffers jax cannot adopt (alignment), are copied.
    """
    t = t.detach()
    if t.is_contiguous():
        try:
            return jnp.from_dlpack(t)
        except (RuntimeError, TypeError, BufferError, ValueError):
            pass
    return jnp.asarray(t.contiguous().cpu().numpy())
