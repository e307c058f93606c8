"""The step-model protocol: what a model implements to be decoded, streamed, served and MAGNeT-decoded.

`generate`, `stream` and `Engine` drive a *step function*
`step_fn(state, tokens [B, K, n], info) -> (logits [B, K, card], state)`. Any
function of that shape works (with `step_info=False` it is called without
`info`). A model gives one through the protocol below, and the adapters here
turn it into a pure function of its parameters (a `jax.tree_util.Partial`:
the parameters stay traced arrays of the compiled decode, and two models of
one structure share a program):

- `lm.step_fn_of(model)`: `(cache, tokens, info) -> (logits, cache)` from
  `model.decode`; its `max_len` tells `generate` how long a pattern fits.
- `lm.condition_fn_of(model)`: `(cache, conditions) -> cache` from
  `model.condition`, for per-request conditions (`Engine(condition_fn=...)`:
  run once per request, at its prefill).
- `lm.magnet_fn_of(model, conditions=None)`: `(tokens, stage) -> logits` from
  `model(tokens, stage=stage, **conditions)`, for `lm.magnet_generate`.
"""

from __future__ import annotations

import dataclasses
import typing as tp

import jax
import jax.numpy as jnp
from flax import nnx

from jax_patterns._checks import check_int


@tp.runtime_checkable
class StepModel(tp.Protocol):
    """A model that can be decoded step by step (`lm.CodecLM`, `models.MusicGen`).

    - `max_len`: the longest sequence it decodes.
    - `init_cache(batch, *, per_row=False)`: an empty state for `batch` rows;
      with `per_row=True` every leaf has the batch axis first and each row
      keeps its own position (what `lm.Engine` needs to refill one row).
    - `decode(cache, tokens [B, K, n], info=None) -> (logits [B, K, card], cache)`:
      runs `n` new steps at each row's position and returns the last step's
      logits; `info` is the decode's `lm.StepInfo` (or None).

    A model with per-request conditions (cross-attention states) also has
    `condition(cache, conditions) -> cache`, which writes each row's
    conditions into the cache (`ConditionedStepModel`).
    """

    max_len: int

    def init_cache(self, batch: int, *, per_row: bool = False) -> tp.Any:
        """An empty decode state for `batch` rows; with `per_row=True` every leaf is batch-first."""

    def decode(self, cache: tp.Any, tokens: jax.Array, info: tp.Any = None) -> tuple[jax.Array, tp.Any]:
        """Runs the `n` steps of `tokens [B, K, n]`; returns the last step's logits `[B, K, card]`, and the cache."""


@tp.runtime_checkable
class ConditionedStepModel(StepModel, tp.Protocol):
    """A `StepModel` with per-row conditions: `condition(cache, conditions) -> cache`.

    `conditions` is a pytree whose leaves have the batch axis first; the null
    condition of classifier-free guidance is zeros of the same structure, unless
    the model defines `guided_conditions(conditions) -> [conditions; null]` (its
    own rule: MusicGen's null is zero states under a zero mask, also when the
    request left its mask out), which `lm.Engine` and `lm.magnet_fn_of` then use.
    """

    def condition(self, cache: tp.Any, conditions: tp.Any) -> tp.Any:
        """Writes each row's `conditions` (a batch-first pytree) into the cache and returns it."""


def _split(model: tp.Any, needs: str, name: str = "model") -> tuple[tp.Any, tp.Any]:
    if model is None or not isinstance(model, nnx.Module):
        raise TypeError(f"`{name}` must be a Flax NNX module with `{needs}`, got {type(model).__name__}")
    if not callable(getattr(model, needs, None)):
        raise TypeError(f"`{name}` ({type(model).__name__}) has no `{needs}` method")
    return nnx.split(model)


@dataclasses.dataclass(frozen=True)
class ModelStep:
    """A model's `decode` as a step function of `(params, cache, tokens, info)`.

    Equal for models of equal structure, so `generate` reuses its compiled
    program across `step_fn_of` calls and parameter updates. `max_len` tells
    `generate` the longest sequence the model can decode; `input_vocab` the
    token ids it embeds per codebook (prompts are checked against it).

    Args:
      graphdef: the model's `nnx.GraphDef` (`nnx.split(model)[0]`).
      max_len: the longest sequence the model decodes (an int >= 1), or None.
      input_vocab: the token ids the model embeds per codebook (an int >= 1), or None.

    Raises:
      TypeError: `graphdef` not an `nnx.GraphDef`, `max_len` or `input_vocab` not an int (or None).
      ValueError: `max_len` or `input_vocab` < 1.
    """

    graphdef: tp.Any
    max_len: int | None = None
    input_vocab: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.graphdef, nnx.GraphDef):
            raise TypeError(
                f"`graphdef` must be a model's nnx.GraphDef (`nnx.split(model)[0]`), got {type(self.graphdef).__name__}"
            )
        if self.max_len is not None:  # a plain int: equal steps hash equal (np.int64(16) is 16)
            object.__setattr__(self, "max_len", check_int("max_len", self.max_len, minimum=1))
        if self.input_vocab is not None:
            object.__setattr__(self, "input_vocab", check_int("input_vocab", self.input_vocab, minimum=1))

    def __call__(self, params: tp.Any, cache: tp.Any, tokens: jax.Array, info: tp.Any = None) -> tuple:
        """The model (`graphdef` merged with `params`) decoding `tokens` against `cache`: `(logits, cache)`.

        Raises:
          TypeError: `params` that do not fit the graph (the model's `decode` checks `cache` and `tokens`).
        """
        try:
            model = nnx.merge(self.graphdef, params)
        except (ValueError, TypeError, AttributeError, KeyError) as err:
            raise TypeError(f"`params` do not fit the model's graph (`nnx.split(model)[1]`): {err}") from err
        return model.decode(cache, tokens) if info is None else model.decode(cache, tokens, info)


def step_fn_of(model: tp.Any) -> jax.tree_util.Partial:
    """The model as a pure `(cache, tokens, info=None) -> (logits, cache)` step function (`StepModel.decode`).

    A `jax.tree_util.Partial` of `ModelStep` and the parameters: the parameters
    are traced arrays of the compiled decode, not constants baked into it, and
    two models of the same structure share one compiled program.

    Raises:
      TypeError: `model` is not an NNX module with a `decode` method.
    """
    graphdef, params = _split(model, "decode")
    limit, vocab = getattr(model, "max_len", None), getattr(model, "input_vocab", None)
    declared = isinstance(limit, int) and not isinstance(limit, bool)
    vocab = vocab if isinstance(vocab, int) and not isinstance(vocab, bool) else None
    return jax.tree_util.Partial(ModelStep(graphdef, limit if declared else None, vocab), params)


@dataclasses.dataclass(frozen=True)
class ModelCondition:
    """A model's `condition` as `(params, cache, conditions) -> cache`."""

    graphdef: tp.Any

    def __call__(self, params: tp.Any, cache: tp.Any, conditions: tp.Any) -> tp.Any:
        return nnx.merge(self.graphdef, params).condition(cache, conditions)

    def guided(self, params: tp.Any, conditions: tp.Any) -> tp.Any:
        """`[conditions; null]` by the model's own rule (`guided_conditions`)."""
        return guided_conditions(nnx.merge(self.graphdef, params), conditions)


def guided_conditions(model: tp.Any, conditions: tp.Any) -> tp.Any:
    """`[conditions; null]` along the batch axis, for classifier-free guidance: the model's
    `guided_conditions(conditions)` where it defines one, else the conditions then zeros of the same structure."""
    own = getattr(model, "guided_conditions", None)
    if callable(own):
        return own(conditions)
    return jax.tree.map(lambda c: jnp.concatenate([c, jnp.zeros_like(c)]), conditions)


def guided_conditions_of(condition_fn: jax.tree_util.Partial, conditions: tp.Any) -> tp.Any:
    """`guided_conditions` for an engine's `condition_fn`: the model's rule when it comes from `condition_fn_of`."""
    holder: tp.Any = condition_fn.func
    if isinstance(holder, ModelCondition):
        return holder.guided(condition_fn.args[0], conditions)  # the Partial holds (params,)
    return guided_conditions(None, conditions)


def condition_fn_of(model: tp.Any) -> jax.tree_util.Partial:
    """The model's `condition(cache, conditions) -> cache` as a pure function of its parameters.

    `lm.Engine(..., condition_fn=lm.condition_fn_of(model))` runs it once per
    request, at its prefill (the cross-attention keys and values of that
    request's conditions, written into its rows).

    Raises:
      TypeError: `model` is not an NNX module with a `condition` method.
    """
    graphdef, params = _split(model, "condition")
    return jax.tree_util.Partial(ModelCondition(graphdef), params)


@dataclasses.dataclass(frozen=True)
class MagnetStep:
    """A bidirectional model as `(params, conditions, tokens, stage) -> logits`: `magnet_generate`'s `model_fn`.

    `input_vocab` is the number of token ids the model embeds per codebook
    (`card + 1` for `CodecLM`: the codes and the mask token), which
    `magnet_generate` checks its `mask_token` against.
    """

    graphdef: tp.Any
    input_vocab: int | None = None

    def __call__(self, params: tp.Any, conditions: tp.Any, tokens: jax.Array, stage: jax.Array) -> jax.Array:
        model = nnx.merge(self.graphdef, params)
        if conditions is None:
            return model(tokens, stage=stage)
        batch = jax.tree.leaves(conditions)[0].shape[0]
        if tokens.shape[0] == 2 * batch:  # guidance: the null condition for the second half
            conditions = guided_conditions(model, conditions)
        return model(tokens, stage=stage, **conditions)


def magnet_fn_of(model: tp.Any, conditions: tp.Mapping[str, tp.Any] | None = None) -> jax.tree_util.Partial:
    """A bidirectional model as `lm.magnet_generate`'s `model_fn(tokens, stage)`.

    A `jax.tree_util.Partial` of the graph, the parameters and the conditions,
    as `step_fn_of`: the parameters stay traced, and models of one structure
    share a program. `conditions` (keyword arguments of the model's call, each
    `[B, ...]`, e.g. `encoder_hidden_states`) are passed to every call; under
    guidance (`model_fn` called on `[2B, K, T]`) the second half gets the null
    condition (zeros, or the model's `guided_conditions`: see
    `ConditionedStepModel`).

    Raises:
      TypeError: `model` is not an NNX module; `conditions` not a mapping.
      ValueError: the model is causal (MAGNeT attends both ways).
    """
    if model is None or not isinstance(model, nnx.Module):
        raise TypeError(f"`model` must be a Flax NNX module (a MAGNeT model), got {type(model).__name__}")
    if getattr(model, "causal", False):
        raise ValueError("MAGNeT decodes with a bidirectional model: build it with causal=False")
    if conditions is not None and not isinstance(conditions, tp.Mapping):
        raise TypeError(f"`conditions` must be a mapping of the model's keyword arguments, got {conditions!r}")
    graphdef, params = nnx.split(model)
    vocab = getattr(model, "input_vocab", None)
    step = MagnetStep(graphdef, vocab if isinstance(vocab, int) else None)
    return jax.tree_util.Partial(step, params, None if conditions is None else dict(conditions))


def max_len_of(step_fn: jax.tree_util.Partial) -> int | None:
    """The longest input a step function declares (`max_len` on it or on a `Partial`'s function), if any."""
    for holder in (step_fn.func, step_fn):
        limit = getattr(holder, "max_len", None)
        if isinstance(limit, int) and not isinstance(limit, bool):
            return limit
    return None


def samples_of(fn: jax.tree_util.Partial) -> bool:
    """Whether a step function declares that it samples itself (`samples` on it or on a `Partial`'s function)."""
    return any(getattr(holder, "samples", False) is True for holder in (fn.func, fn))


def input_vocab_of(fn: jax.tree_util.Partial) -> int | None:
    """The number of token ids a model function declares it embeds (`input_vocab`), if any."""
    for holder in (fn.func, fn):
        vocab = getattr(holder, "input_vocab", None)
        if isinstance(vocab, int) and not isinstance(vocab, bool):
            return vocab
    return None


def as_pytree(fn: tp.Any, name: str) -> jax.tree_util.Partial:
    """A function as a pytree argument: a `Partial` keeps its arrays traced, a plain function is its own key.

    Raises:
      TypeError: `fn` is not callable.
    """
    if not callable(fn):
        raise TypeError(f"`{name}` must be callable, got {type(fn).__name__}")
    return fn if isinstance(fn, jax.tree_util.Partial) else jax.tree_util.Partial(fn)


def _without_info(step_fn: tp.Callable, state: tp.Any, tokens: jax.Array, info: tp.Any) -> tuple:
    return step_fn(state, tokens)


def as_step(step_fn: tp.Any, step_info: bool) -> jax.tree_util.Partial:
    """The step function normalised once, at the boundary: always called as `(state, tokens, info)`.

    Raises:
      TypeError: `step_fn` is not callable.
    """
    fn = as_pytree(step_fn, "step_fn")
    return fn if step_info else jax.tree_util.Partial(_without_info, fn)
