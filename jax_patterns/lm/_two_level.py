"""A two-level (depth) decoder as one compiled step: a backbone call per frame, then the K-1 depth steps in a loop.

CSM and Qwen3-Omni's talker decode a frame in two levels: the backbone reads the
frames so far and predicts codebook 0 (its logits, and a hidden state); a small
depth model, its cache reset, then predicts codebooks 1..K-1 one at a time from
that hidden state and the codes just chosen. transformers runs the depth model
as a nested `generate` per frame, in Python. `two_level_step` builds the step
function `lm.generate` / `lm.stream` / `lm.Engine` call (`step_info=True`,
`step_returns="tokens"`): one backbone call, codebook 0 sampled, then a
`lax.fori_loop` over levels 1..K-1 inside the step, each level sampled with its
own settings and its own key. `two_level_step_of(model)` is the same for an NNX
model implementing `TwoLevelModel`.
"""

from __future__ import annotations

import dataclasses
import math
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jax_patterns._checks import check_flag, check_int, is_host
from jax_patterns.lm._protocol import as_pytree, max_len_of
from jax_patterns.lm._sampling import Sampling, sample_next_token, setting

DEFAULT = Sampling()
"""Each level's default settings: temperature 1, no top-k or top-p (used when `use_sampling=True`)."""


@tp.runtime_checkable
class TwoLevelModel(tp.Protocol):
    """A two-level decoder that `lm.two_level_step_of` turns into a step function (an NNX module).

    - `n_q`: codebooks K (codebook 0 from the backbone, 1..K-1 from the depth model).
    - `max_len`: the longest sequence the backbone decodes.
    - `init_cache(batch, *, per_row=False)`: the backbone's empty cache (the
      decode's state); `per_row=True` for `lm.Engine` (every leaf with the
      batch axis first).
    - `backbone(cache, tokens [B, K, n], info) -> (logits [B, card], hidden, cache)`:
      the frames `tokens` run at each row's position; the last one's codebook-0
      logits, and the hidden state the depth model reads (any pytree).
    - `depth_init(hidden) -> depth_cache`: the depth model's state for a new
      frame, its cache empty (a model whose first depth position is the
      hidden state, as CSM's and Qwen3-Omni's code predictor, writes it here).
    - `depth(depth_cache, token [B], level) -> (logits [B, card], depth_cache)`:
      fed codebook `level - 1`'s code just chosen, the logits of codebook
      `level` (`level` a traced int32 scalar in `[1, K)`).
    """

    n_q: int
    max_len: int

    def init_cache(self, batch: int, *, per_row: bool = False) -> tp.Any:
        """The backbone's empty cache for `batch` rows (the decode's state)."""
        ...

    def backbone(self, cache: tp.Any, tokens: jax.Array, info: tp.Any) -> tuple[jax.Array, tp.Any, tp.Any]:
        """Runs frames `tokens [B, K, n]`; returns codebook 0's logits `[B, card]`, the hidden state, the cache."""
        ...

    def depth_init(self, hidden: tp.Any) -> tp.Any:
        """The depth model's state for a new frame (its cache empty, the hidden state written if it reads it)."""
        ...

    def depth(self, depth_cache: tp.Any, token: jax.Array, level: jax.Array) -> tuple[jax.Array, tp.Any]:
        """Codebook `level`'s logits `[B, card]` from codebook `level - 1`'s code `token [B]`, and the state."""
        ...


def level_key(key: jax.Array, level: tp.Any) -> jax.Array:
    """The key level `level` samples with: `fold_in(key, level)`, per example when `key` is `[B]` keys."""
    if key.ndim == 0:
        return jax.random.fold_in(key, level)
    return jax.vmap(jax.random.fold_in)(key, jnp.broadcast_to(level, key.shape))


def _sample(logits: tp.Any, key: jax.Array, use_sampling: bool, sampling: Sampling, what: str, batch: int) -> tp.Any:
    """One level's tokens `[B]` from its logits `[B, card]` (checked), as `lm.sample_next_token` draws them."""
    shape = getattr(logits, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != batch:
        raise ValueError(f"{what} must return logits [B={batch}, card] for one codebook; got shape {shape}")
    token = sample_next_token(logits[:, None, :], key, use_sampling, sampling.temp, sampling.top_k, sampling.top_p)
    return token[:, 0]


@dataclasses.dataclass(frozen=True)
class TwoLevelStep:
    """The two-level step as a function of `(backbone_fn, depth_fn, depth_init, levels, state, tokens, info)`.

    Its static part (hashed: the decode's compiled program is keyed on it): K,
    greedy vs sampling, and the backbone's `max_len` (which `generate` checks
    the pattern against). The functions and the sampling settings are the
    `Partial`'s arguments: their arrays are traced.
    """

    n_q: int
    use_sampling: bool = False
    max_len: int | None = None

    @property
    def samples(self) -> bool:
        """Whether the step draws random numbers (then `generate` and `stream` need a `key`)."""
        return self.use_sampling

    def __call__(
        self,
        backbone_fn: tp.Callable,
        depth_fn: tp.Callable,
        depth_init: tp.Callable,
        levels: tuple[Sampling, Sampling],
        state: tp.Any,
        tokens: jax.Array,
        info: tp.Any = None,
    ) -> tuple[jax.Array, tp.Any]:
        if info is None:
            raise ValueError(
                "a two-level step samples with the decode's keys: call lm.generate / lm.stream / lm.Engine with "
                "step_info=True and step_returns='tokens'"
            )
        batch, n_q = tokens.shape[:2]
        if n_q != self.n_q:
            raise ValueError(f"the decode feeds {n_q} codebooks; the two-level step has n_q={self.n_q}")
        first_level, depth_levels = levels
        logits, hidden, state = _results(
            backbone_fn(state, tokens, info), 3, "`backbone_fn`", "(logits, hidden, state)"
        )
        first = _sample(logits, level_key(info.key, 0), self.use_sampling, first_level, "`backbone_fn`", batch)
        out = jnp.zeros((batch, n_q), jnp.int32).at[:, 0].set(first)
        if n_q == 1:
            return out, state

        def level(j: jax.Array, carry: tuple) -> tuple:
            depth_state, out, previous = carry
            logits, depth_state = _results(depth_fn(depth_state, previous, j), 2, "`depth_fn`", "(logits, depth_state)")
            token = _sample(logits, level_key(info.key, j), self.use_sampling, depth_levels, "`depth_fn`", batch)
            return depth_state, jax.lax.dynamic_update_index_in_dim(out, token, j, axis=1), token

        _, out, _ = jax.lax.fori_loop(1, n_q, level, (depth_init(hidden), out, first))
        return out, state


def _results(result: tp.Any, n: int, what: str, expected: str) -> tuple:
    """A user function's tuple of `n` results, or a TypeError naming the function (at trace time)."""
    if not (isinstance(result, (tuple, list)) and len(result) == n):
        raise TypeError(f"{what} must return a tuple {expected}, got {type(result).__name__}")
    return tuple(result)


def _level_settings(name: str, sampling: tp.Any) -> Sampling:
    """One level's sampling settings: scalars (host values range-checked, then on the device), no guidance.

    Raises:
      TypeError: not an `lm.Sampling`; a setting of the wrong type.
      ValueError: a setting that is not a scalar or out of range; a guidance coefficient.
    """
    if not isinstance(sampling, Sampling):
        raise TypeError(f"`{name}` must be an lm.Sampling, got {type(sampling).__name__}")
    if sampling.cfg_coef is not None:
        raise ValueError(f"`{name}.cfg_coef`={sampling.cfg_coef!r}: a two-level step has no guidance; leave it None")
    checked = []
    for field, integer, low, high in (("temp", False, 0.0, math.inf), ("top_k", True, 0, 2**31 - 1),
                                      ("top_p", False, 0.0, 1.0)):  # fmt: skip
        value = getattr(sampling, field)
        if value is not None and np.ndim(value) != 0:
            raise ValueError(
                f"`{name}.{field}` must be a scalar (one setting for every example), got shape {np.shape(value)}"
            )
        array = setting(f"{name}.{field}", value, 1, integer, low, high)[0]
        checked.append(jax.device_put(array) if is_host(array) else array)  # moved once, not at every call
    return Sampling(*checked)


def two_level_step(
    backbone_fn: tp.Callable,
    depth_fn: tp.Callable,
    *,
    n_q: int,
    depth_init: tp.Callable,
    use_sampling: bool = False,
    sampling: Sampling = DEFAULT,
    depth_sampling: Sampling = DEFAULT,
) -> jax.tree_util.Partial:
    """A two-level decoder's step function: one backbone call per frame, then the K-1 depth steps in a loop.

    The returned function decodes one frame `[B, K]` per call, for
    `lm.generate`, `lm.stream` and `lm.Engine` with `step_info=True,
    step_returns="tokens"` and a parallel pattern (`ParallelPatternProvider(K)`:
    one step is one frame; `presets.CSM` and `presets.Qwen3OmniTalker` give
    theirs). Per call:

    1. `backbone_fn(state, tokens [B, K, n], info) -> (logits [B, card], hidden, state)`:
       the frames so far (the whole prefix on the first call, then one frame)
       run at each row's position; `logits` predict codebook 0 of the next
       frame, `hidden` (any pytree) is what the depth model reads. `info` is
       the decode's `lm.StepInfo` (`info.step` per row and `info.reset` under
       `lm.Engine`).
    2. Codebook 0 is sampled from `logits` with `sampling`.
    3. `depth_init(hidden) -> depth_state`: the depth model's state for this
       frame, its cache empty: the cache is reset per frame, as transformers'
       nested `generate` does. A model whose first depth position is the hidden
       state (CSM, Qwen3-Omni's code predictor) runs that position here.
    4. For `level` in `1..K-1`, in a `lax.fori_loop` inside the step:
       `depth_fn(depth_state, token [B], level) -> (logits [B, card], depth_state)`,
       fed codebook `level - 1`'s code just chosen; codebook `level` is sampled
       from `logits` with `depth_sampling`. `level` is a traced int32 scalar.

    Keys: level `j` (0 for the backbone's codebook) samples with
    `jax.random.fold_in(info.key, j)`, drawn as `lm.sample_next_token` draws:
    with per-example keys (`generate(key=[B] keys)`, and always under
    `lm.Engine`) each row with its own key, so each example equals itself
    decoded alone with its key. With `use_sampling=True`, `generate` and
    `stream` refuse to run without a `key` (the step declares `samples`).

    One compiled program per shape: the result is a `jax.tree_util.Partial`
    whose arrays (the functions' own parameters when they are `Partial`s, and
    the sampling settings) are traced arguments of the decode; new parameter or
    setting values compile nothing. Its state is the backbone's alone (the
    depth state lives inside a step), so `lm.Engine`'s slots hold only the
    backbone's cache. Tokens the decode keeps (the prompt's, special
    positions) replace the sampled ones after the step; the depth levels read
    the codes they chose (with a parallel pattern a frame is known whole).

    Args:
      backbone_fn: `(state, tokens, info) -> (logits [B, card], hidden, state)` (above).
      depth_fn: `(depth_state, token [B], level) -> (logits [B, card], depth_state)` (above).
      n_q: codebooks K (>= 1; K = 1 runs no depth step).
      depth_init: `hidden -> depth_state` (above).
      use_sampling: sample (static) rather than take the argmax at every level (greedy, the default).
      sampling: codebook 0's temperature, top-k and top-p (an `lm.Sampling` of scalars, host or traced;
        `temp <= 0` is greedy; no `cfg_coef`).
      depth_sampling: the same for codebooks 1..K-1 (CSM's `depth_decoder_temperature`, `..._top_k`).

    Returns:
      the step function `(state, tokens [B, K, n], info) -> (tokens [B, K] int32, state)`, with the
      backbone's `max_len` (if it declares one) for `generate` to check the pattern against.

    Raises:
      TypeError: a function that is not callable, a flag or setting of the wrong type.
      ValueError: `n_q` < 1; a setting out of range, not a scalar, or with guidance. At trace time: a
        decode of another K, logits of the wrong shape, a call without `step_info=True`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import jax_patterns as jp
      >>> from jax_patterns import lm
      >>> def backbone(state, tokens, info):  # codebook 0: the frame count; hidden: codebook 0's code
      ...     state = state + tokens.shape[-1]
      ...     logits = jax.nn.one_hot(state % 5, 5) * 9.0
      ...     return logits, state % 5, state
      >>> def depth(previous, token, level):  # codebook j: (code of j - 1) + 1
      ...     return jax.nn.one_hot((token + 1) % 5, 5) * 9.0, previous
      >>> step = lm.two_level_step(backbone, depth, n_q=3, depth_init=lambda hidden: hidden)
      >>> pattern = jp.ParallelPatternProvider(3).get_pattern(2)
      >>> prompt = jnp.zeros((1, 3, 0), jnp.int32)
      >>> lm.generate(step, jnp.zeros(1, jnp.int32), pattern, prompt, special_token=5, step_info=True,
      ...             step_returns="tokens").codes[0].tolist()
      [[1, 2], [2, 3], [3, 4]]
    """
    n_q = check_int("n_q", n_q, minimum=1)
    use_sampling = check_flag("use_sampling", use_sampling)
    backbone = as_pytree(backbone_fn, "backbone_fn")
    depth = as_pytree(depth_fn, "depth_fn")
    init = as_pytree(depth_init, "depth_init")
    levels = (_level_settings("sampling", sampling), _level_settings("depth_sampling", depth_sampling))
    step = TwoLevelStep(n_q, use_sampling, max_len_of(backbone))
    return jax.tree_util.Partial(step, backbone, depth, init, levels)


@dataclasses.dataclass(frozen=True)
class ModelMethod:
    """One method of an NNX model as a pure function of `(params, *args)` (equal for models of one structure)."""

    graphdef: tp.Any
    method: str
    max_len: int | None = None

    def __call__(self, params: tp.Any, *args: tp.Any) -> tp.Any:
        return getattr(nnx.merge(self.graphdef, params), self.method)(*args)


def two_level_step_of(
    model: tp.Any,
    *,
    use_sampling: bool = False,
    sampling: Sampling = DEFAULT,
    depth_sampling: Sampling = DEFAULT,
) -> jax.tree_util.Partial:
    """`two_level_step` of an NNX model implementing `TwoLevelModel` (`backbone`, `depth_init`, `depth`, `n_q`).

    Its parameters stay traced (models of one structure share a program, as
    `lm.step_fn_of`); its state is `model.init_cache(batch)` (`per_row=True`
    for `lm.Engine`).

    ```python
    step = lm.two_level_step_of(model, use_sampling=True, sampling=lm.Sampling(temp=0.9, top_k=50),
                                depth_sampling=lm.Sampling(temp=0.9, top_k=50))
    codes, lengths = lm.generate(step, model.init_cache(B), jp.ParallelPatternProvider(K).get_pattern(T), prompt,
                                 special_token=pad, step_info=True, step_returns="tokens", key=keys)
    ```

    Args:
      model: the NNX module.
      use_sampling: as for `two_level_step`.
      sampling: as for `two_level_step`.
      depth_sampling: as for `two_level_step`.

    Raises:
      TypeError: `model` is not an NNX module with those methods and an int `n_q`; bad settings.
    """
    if model is None or not isinstance(model, nnx.Module):
        raise TypeError(f"`model` must be a Flax NNX module (a two-level model), got {type(model).__name__}")
    for method in ("backbone", "depth_init", "depth"):
        if not callable(getattr(model, method, None)):
            raise TypeError(f"`model` ({type(model).__name__}) has no `{method}` method (lm.TwoLevelModel)")
    n_q = getattr(model, "n_q", None)
    if isinstance(n_q, bool) or not isinstance(n_q, int):
        raise TypeError(f"`model` ({type(model).__name__}) has no int `n_q` (its codebooks K), got {n_q!r}")
    graphdef, params = nnx.split(model)
    limit = getattr(model, "max_len", None)
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    return two_level_step(
        jax.tree_util.Partial(ModelMethod(graphdef, "backbone", limit), params),
        jax.tree_util.Partial(ModelMethod(graphdef, "depth"), params),
        n_q=n_q,
        depth_init=jax.tree_util.Partial(ModelMethod(graphdef, "depth_init"), params),
        use_sampling=use_sampling,
        sampling=sampling,
        depth_sampling=depth_sampling,
    )
