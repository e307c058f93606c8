"""Checkpoint conversion: a table of rules from a reference's tensor names to our parameters, and one loop.

A `Rule` names one of our parameters (a dotted path into the NNX state, e.g.
`layers.0.self_attn.in_proj.kernel`), the reference tensors it is made of, and
the transform between them (a transpose, a stack of K tensors, q/k/v stacked,
rows of a fused projection). `load` applies a table to an abstract model
(`nnx.eval_shape`, so nothing is initialised twice) and fails naming the key it
cannot place: a tensor missing from the checkpoint, one of the wrong shape, one
the table has no place for. Tensors are read through `.detach().cpu().numpy()`
when they are torch tensors (torch is never imported here).
"""

from __future__ import annotations

import dataclasses
import typing as tp

import jax.numpy as jnp
import numpy as np
from flax import nnx


@dataclasses.dataclass(frozen=True)
class Rule:
    """Our parameter `ours` is `transform(*tensors named theirs)`; `how` says what the transform does."""

    ours: str
    theirs: tuple[str, ...]
    transform: tp.Callable[..., np.ndarray]
    how: str


def same(x: np.ndarray) -> np.ndarray:
    return x


def transposed(x: np.ndarray) -> np.ndarray:
    """torch's `Linear.weight [out, in]` -> our `kernel [in, out]`."""
    return x.T


def stacked(*xs: np.ndarray) -> np.ndarray:
    return np.stack(xs)


def stacked_transposed(*xs: np.ndarray) -> np.ndarray:
    """K heads `[card, D]` -> `[K, D, card]`."""
    return np.stack([x.T for x in xs])


def joined(*xs: np.ndarray) -> np.ndarray:
    """Separate projections (q, k, v) -> one fused one (rows concatenated)."""
    return np.concatenate(xs, axis=0)


def joined_transposed(*xs: np.ndarray) -> np.ndarray:
    return np.concatenate(xs, axis=0).T


def rows(start: int, stop: int | None, transpose: bool) -> tp.Callable[[np.ndarray], np.ndarray]:
    """The rows `[start:stop]` of a fused projection (audiocraft's cross-attention `in_proj`: q, then k and v)."""

    def take(x: np.ndarray) -> np.ndarray:
        part = x[start:stop]
        return part.T if transpose else part

    return take


def linear(ours: str, theirs: str, bias: bool) -> list[Rule]:
    """A torch `Linear` named `theirs` -> our `nnx.Linear` named `ours`."""
    rules = [Rule(f"{ours}.kernel", (f"{theirs}.weight",), transposed, "transposed")]
    if bias:
        rules.append(Rule(f"{ours}.bias", (f"{theirs}.bias",), same, "as is"))
    return rules


def norm(ours: str, theirs: str) -> list[Rule]:
    """A torch `LayerNorm` -> our `nnx.LayerNorm`."""
    return [
        Rule(f"{ours}.scale", (f"{theirs}.weight",), same, "as is"),
        Rule(f"{ours}.bias", (f"{theirs}.bias",), same, "as is"),
    ]


def as_numpy(value: tp.Any, name: str) -> np.ndarray:
    """A checkpoint tensor as numpy: torch through `.detach().cpu()` (bfloat16 through float32), arrays as they are.

    Raises:
      TypeError: a value that is not an array or a tensor.
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        if "bfloat16" in str(value.dtype):
            value = value.float()
        return value.numpy()
    array = np.asarray(value)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"the checkpoint's `{name}` is not a tensor (got {type(value).__name__})")
    return array


def load(
    model: tp.Any,
    state_dict: tp.Mapping[str, tp.Any],
    rules: tp.Sequence[Rule],
    *,
    source: str,
    ignored: tp.Callable[[str], bool] = lambda name: False,
) -> tp.Any:
    """Places the checkpoint's tensors into `model`'s parameters (in place; returns the model).

    Args:
      model: a `MusicGen`, abstract (`nnx.eval_shape`) or not.
      state_dict: the reference's tensors by name.
      rules: the table: every parameter of `model` is made by exactly one rule.
      source: the reference, for the messages ("transformers", "audiocraft").
      ignored: names that belong to modules we do not port (a text encoder, a codec).

    Raises:
      ValueError: a tensor the table needs is missing (a checkpoint of another
        model or configuration), a tensor's shape does not give our parameter's,
        or the checkpoint holds a tensor the table has no place for; each names the key.
      TypeError: a value that is not a tensor.
    """
    if not isinstance(state_dict, tp.Mapping):
        raise TypeError(
            f"the {source} state dict must be a mapping of names to tensors, got {type(state_dict).__name__}"
        )
    params = {".".join(str(p) for p in path): var for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    used: set[str] = set()
    placed: set[str] = set()
    for rule in rules:
        for name in rule.theirs:
            if name not in state_dict:
                raise ValueError(
                    f"the {source} checkpoint has no `{name}` (our `{rule.ours}` is made from it): a checkpoint of "
                    "another model, or of another configuration than the one given"
                )
        values = [as_numpy(state_dict[name], name) for name in rule.theirs]
        shapes = ", ".join(f"`{n}` {tuple(v.shape)}" for n, v in zip(rule.theirs, values))
        try:
            value = rule.transform(*values)
        except (ValueError, IndexError) as err:
            raise ValueError(f"{shapes} cannot be {rule.how} into our `{rule.ours}`: {err}") from err
        if rule.ours not in params:
            raise ValueError(f"the {source} table names our `{rule.ours}`, which this model does not have")
        target = params[rule.ours]
        expected = tuple(target.get_value().shape)
        if tuple(value.shape) != expected or not np.issubdtype(value.dtype, np.floating):
            raise ValueError(
                f"{shapes}: {rule.how}, it gives {tuple(value.shape)} {value.dtype} for our `{rule.ours}`, which "
                f"needs {expected} floats in this configuration"
            )
        target.set_value(jnp.asarray(value.astype(np.float32), dtype=target.get_value().dtype))
        used.update(rule.theirs)
        placed.add(rule.ours)
    extra = sorted(name for name in state_dict if name not in used and not ignored(name))
    if extra:
        shown = ", ".join(f"`{name}`" for name in extra[:5])
        raise ValueError(
            f"the {source} checkpoint holds {len(extra)} tensor(s) this model has no place for: {shown}"
            f"{', ...' if len(extra) > 5 else ''} (a checkpoint of another model or configuration)"
        )
    unplaced = sorted(set(params) - placed)
    if unplaced:
        raise ValueError(f"the {source} table does not make our {unplaced[:5]}: the table and the model disagree")
    return model
