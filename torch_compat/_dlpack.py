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
    int64 tensors become int32 when JAX runs without x64, after a check that
    every value fits (a value outside int32 raises instead of wrapping).

    Raises:
      ValueError: int64 values outside int32 while x64 is disabled.
    """
    t = t.detach()
    if t.dtype in (torch.int64, torch.uint64) and not jax.config.read("jax_enable_x64"):
        info = np.iinfo(np.int32)
        if t.numel() and (int(t.min()) < info.min or int(t.max()) > info.max):
            raise ValueError(
                f"`t` has dtype {t.dtype} with values in [{int(t.min())}, {int(t.max())}], outside int32; JAX without "
                "x64 holds integers as int32 and would wrap them. Enable `jax.config.update('jax_enable_x64', True)` "
                "or keep the values within int32"
            )
        t = t.to(torch.int32)
    if t.is_contiguous():
        try:
            return jnp.from_dlpack(t)
        except (RuntimeError, TypeError, BufferError, ValueError):
            pass
    return jnp.asarray(t.contiguous().cpu().numpy())
