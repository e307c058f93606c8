"""The strategies the decode core is built from: guidance around a call, and what makes tokens of an output.

- Guidance (classifier-free): the batch is doubled before the call
  (conditional rows first, then the same rows for the null condition) and the
  two halves are mixed after it, `uncond + (cond - uncond) * coef`. One
  implementation for `generate`, `stream`, `Engine` and MAGNeT.
- A token policy turns the step function's output into the step's tokens:
  `SampledTokens` samples from logits `[B, K, card]` (`sample_next_token`);
  `ModelTokens` takes the int tokens `[B, K]` a two-level (depth) decoder
  returns. `generate(step_returns=...)` names one of them.
"""

from __future__ import annotations

import dataclasses
import typing as tp

import jax
import jax.numpy as jnp

from jax_patterns.lm._sampling import Sampling, sample_next_token


def doubled(x: tp.Any) -> tp.Any:
    """`x` twice along the batch axis (conditional rows, then the null condition's)."""
    return jnp.concatenate([x, x], axis=0)


def mix(out: jax.Array, coef: tp.Any) -> jax.Array:
    """Classifier-free guidance on a doubled batch: `uncond + (cond - uncond) * coef`, in `out`'s dtype.

    `out [2B, ...]` holds the conditional rows first; `coef` is a scalar or `[B]`.
    """
    batch = out.shape[0] // 2
    cond, uncond = out[:batch], out[batch:]
    coef = jnp.broadcast_to(jnp.asarray(coef), (batch,)).astype(out.dtype).reshape((batch,) + (1,) * (out.ndim - 1))
    return uncond + (cond - uncond) * coef


def doubled_info(info: tp.Any) -> tp.Any:
    """A `StepInfo` for a doubled batch: every per-example field twice (scalars kept)."""
    return type(info)(*(None if v is None or jnp.ndim(v) == 0 else doubled(v) for v in info))


@dataclasses.dataclass(frozen=True)
class SampledTokens:
    """The step function returns logits `[B, K, card]`; the step's tokens are sampled from them."""

    name: tp.ClassVar[str] = "logits"
    guidance: tp.ClassVar[bool] = True

    def check(self, out: tp.Any, batch: int, n_q: int, eos_token: int | None) -> None:
        shape = getattr(out, "shape", None)
        if shape is None or len(shape) != 3 or tuple(shape[:2]) != (batch, n_q):
            raise ValueError(f"the step function must return logits [B={batch}, K={n_q}, card]; got shape {shape}")
        if eos_token is not None and not eos_token < shape[2]:
            raise ValueError(f"`eos_token`={eos_token} is not a code the model can sample (card={shape[2]})")

    def tokens(self, out: jax.Array, key: jax.Array, sampling: Sampling, use_sampling: bool) -> jax.Array:
        return sample_next_token(out, key, use_sampling, sampling.temp, sampling.top_k, sampling.top_p)


@dataclasses.dataclass(frozen=True)
class ModelTokens:
    """The step function returns int tokens `[B, K]` (a two-level decoder samples them itself)."""

    name: tp.ClassVar[str] = "tokens"
    guidance: tp.ClassVar[bool] = False

    def check(self, out: tp.Any, batch: int, n_q: int, eos_token: int | None) -> None:
        shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
        if shape != (batch, n_q) or dtype is None or not jnp.issubdtype(dtype, jnp.integer):
            raise ValueError(
                f"with step_returns='tokens' the step function must return int tokens [B={batch}, K={n_q}]; "
                f"got shape {shape}, dtype {dtype}"
            )

    def tokens(self, out: jax.Array, key: jax.Array, sampling: Sampling, use_sampling: bool) -> jax.Array:
        return out.astype(jnp.int32)


TokenPolicy = SampledTokens | ModelTokens
POLICIES: dict[str, TokenPolicy] = {"logits": SampledTokens(), "tokens": ModelTokens()}
"""`step_returns` names its policy."""
