"""`MusicGen`: transformers' `MusicgenForCausalLM` and audiocraft's `LMModel` / `MagnetLMModel` as one NNX module.

The network: K summed codebook embeddings (`card + 1` rows each, the special
token is `card`), sinusoidal positions, pre-norm decoder layers (self-attention,
cross-attention to the condition, exact-GELU feed-forward), a final norm, K
heads. The condition is the text encoder's states, projected to the model's
width when the widths differ (`enc_proj`: transformers' `enc_to_dec_proj`,
audiocraft's conditioner `output_proj`) and zeroed at the padding.

The two references differ in three behaviours, each a model attribute set by
the loader (see `MusicGen`): `hide_special`, `mask_condition` and `positions`.
"""

from __future__ import annotations

import math
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jax_patterns as jp
from jax_patterns._checks import INT32_MAX, N_Q_MAX, check_codes, check_flag, check_int, is_host
from jax_patterns.models._layers import (
    POSITION_FORMULAS,
    DecoderLayer,
    Embeddings,
    Heads,
    layer_norm,
    sinusoid,
)

Cache = dict[str, tp.Any]
DTYPES = (jnp.float32, jnp.bfloat16)
MAX_LAYERS = 1024
"""The most decoder layers a model may have: each is unrolled in every trace (MusicGen large has 48)."""
CACHE_KEYS = ("keys", "values", "visible", "index", "cross_keys", "cross_values", "condition_mask")


def _dtype(name: str, value: tp.Any) -> tp.Any:
    """float32 or bfloat16 (a dtype, a scalar type or its name) as jax's scalar type.

    Raises:
      TypeError: not a dtype (a bool, a number, an array...).
      ValueError: another dtype.
    """
    try:
        given = np.dtype(value) if isinstance(value, (str, type, np.dtype)) else None
    except (TypeError, ValueError, SyntaxError):  # numpy parses a string as a format ("01": a SyntaxError)
        given = None
    if given is None:
        raise TypeError(f"`{name}` must be a dtype, float32 or bfloat16, got {value!r}")
    for dtype in DTYPES:
        if given == np.dtype(dtype):
            return dtype
    raise ValueError(f"`{name}` must be float32 or bfloat16, got {value!r}")


def _check_sizes(sizes: tp.Mapping[str, tuple[int, ...]]) -> None:
    """Raises unless every array named in `sizes` (by its shape) has at most `2**31 - 1` elements, before any is
    allocated: an index into it, and its size, stay int32."""
    for name, shape in sizes.items():
        if math.prod(shape) > INT32_MAX:
            raise ValueError(
                f"{name} would have shape {shape}, {math.prod(shape)} elements: more than 2**31 - 1 (int32)"
            )


def _array(name: str, value: tp.Any) -> tp.Any:
    """`value` as an array (host values: numpy, converted here; device or traced values as they are)."""
    if value is None:
        raise TypeError(f"`{name}` is None; expected an array")
    if not is_host(value):
        return value
    try:
        return np.asarray(value)
    except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
        raise TypeError(f"`{name}` must be an array, got {type(value).__name__}") from err


def _shape(name: str, value: tp.Any) -> tuple[int, ...]:
    """A shape given as a sequence of ints, checked."""
    if value is None or isinstance(value, (str, bytes)) or not isinstance(value, tp.Iterable):
        raise TypeError(f"`{name}` must be a shape (a sequence of ints), got {value!r}")
    items = list(value)
    return tuple(check_int(f"{name}[{i}]", n, minimum=0) for i, n in enumerate(items))


class MusicGen(nnx.Module):
    """MusicGen (and MAGNeT) in Flax NNX: `codes_seq [B, K, S]` -> logits `[B, K, S, card]`.

    Build it with `MusicGen.from_transformers(model)` or
    `MusicGen.from_audiocraft(state_dict, cfg)`; the constructor makes a
    randomly initialised model of any size.

    Behaviours where the references differ (set by each loader, overridable):

    - `hide_special`: `decode` hides the steps whose K tokens are all the special
      token (the bos step) from self-attention, as `MusicgenForCausalLM.generate`
      does (`attention_mask = ids != pad`); `MusicgenForConditionalGeneration.generate`
      and audiocraft attend to it. A query always sees itself. `__call__` attends
      to every step, as both references' forward passes do.
    - `mask_condition`: cross-attention masks the condition's padding
      (transformers) or attends to the zeroed padding (audiocraft). Both zero the
      projected states where the mask is 0, so a row with a zero mask (the null
      condition of classifier-free guidance) attends uniformly to equal keys.
    - `positions`: the float32 formula of the sinusoids ("transformers" or "audiocraft").

    Args:
      n_q: codebooks K.
      card: codebook size (the special token is `card`).
      dim: model width.
      num_heads: attention heads.
      num_layers: decoder layers.
      ffn_dim: feed-forward width (default `4 * dim`).
      max_len: the longest sequence `decode` and `generate` handle (cache size).
      cross_attention: layers attend to a condition.
      encoder_dim: the width of `encoder_hidden_states` when it differs from
        `dim` (then `enc_proj` projects them); None: states are `dim` wide.
      causal: causal self-attention (MusicGen); False for MAGNeT.
      subcodes_context: MAGNeT's band: with `causal=False` and a `stage >= 1`,
        position `i` attends only to `|i - j| <= subcodes_context` (-1: no band).
      bias_attn: biases of the attention projections (an audiocraft option;
        MusicGen has none).
      bias_ff: biases of the feed-forward (an audiocraft option).
      bias_proj: biases of the heads (an audiocraft option).
      provider: the codebook pattern (default: MusicGen's delays, `k // audio_channels`).
      audio_channels: 1 (mono) or 2 (stereo: left and right codebooks interleaved).
      hide_special: see above.
      mask_condition: see above.
      positions: see above.
      param_dtype: the parameters' dtype, float32 or bfloat16.
      dtype: the computation's dtype, float32 or bfloat16.
      rngs: NNX random streams (initialisation).

    Raises:
      TypeError: a size that is not an int, a flag that is not a bool, a dtype other than float32 / bfloat16,
        `rngs` that are not an `nnx.Rngs`.
      ValueError: a size out of range: `n_q` above 46340 (the patterns' bound), `num_layers` above 1024 (the
        layers are unrolled in every trace), a parameter array of 2**31 elements or more; `dim` not even or not
        a multiple of `num_heads`; a provider of another `n_q`.

    Attributes:
      max_len: the longest sequence `decode` handles.
      special_token: `card`, the bos / pad / mask id.

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> model = MusicGen(2, 8, 16, 2, 1, max_len=16, rngs=nnx.Rngs(0))
      >>> model(jnp.zeros((3, 2, 5), jnp.int32), encoder_hidden_states=jnp.ones((3, 4, 16))).shape
      (3, 2, 5, 8)
    """

    def __init__(
        self,
        n_q: int,
        card: int,
        dim: int,
        num_heads: int,
        num_layers: int,
        ffn_dim: int | None = None,
        *,
        max_len: int = 2048,
        cross_attention: bool = True,
        encoder_dim: int | None = None,
        causal: bool = True,
        subcodes_context: int = -1,
        bias_attn: bool = False,
        bias_ff: bool = False,
        bias_proj: bool = False,
        provider: jp.CodebooksPatternProvider | None = None,
        audio_channels: int = 1,
        hide_special: bool = False,
        mask_condition: bool = True,
        positions: str = "transformers",
        param_dtype: tp.Any = jnp.float32,
        dtype: tp.Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        n_q = self.n_q = check_int("n_q", n_q, minimum=1, maximum=N_Q_MAX)
        card = self.card = check_int("card", card, minimum=1)
        dim = self.dim = check_int("dim", dim, minimum=2)
        num_heads = self.num_heads = check_int("num_heads", num_heads, minimum=1)
        num_layers = self.num_layers = check_int("num_layers", num_layers, minimum=1, maximum=MAX_LAYERS)
        self.ffn_dim = 4 * dim if ffn_dim is None else check_int("ffn_dim", ffn_dim, minimum=1)
        if dim % 2 or dim % num_heads:
            raise ValueError(f"`dim`={dim} must be even and a multiple of `num_heads`={num_heads}")
        self.max_len = check_int("max_len", max_len, minimum=1)
        self.cross_attention = check_flag("cross_attention", cross_attention)
        self.encoder_dim = None if encoder_dim is None else check_int("encoder_dim", encoder_dim, minimum=1)
        _check_sizes(
            {
                "`emb` (`n_q`, `card` + 1, `dim`)": (n_q, card + 1, dim),
                "`linears` (`n_q`, `dim`, `card`)": (n_q, dim, card),
                "`in_proj` (`dim`, 3 * `dim`)": (dim, 3 * dim),
                "`linear1` (`dim`, `ffn_dim`)": (dim, self.ffn_dim),
                "`enc_proj` (`encoder_dim`, `dim`)": (self.encoder_dim or 1, dim),
            }
        )
        if not isinstance(rngs, nnx.Rngs):
            raise TypeError(f"`rngs` must be an nnx.Rngs (the initialisation's random streams), got {rngs!r}")
        if self.encoder_dim is not None and not self.cross_attention:
            raise ValueError("`encoder_dim` needs `cross_attention=True`")
        self.causal = check_flag("causal", causal)
        self.subcodes_context = check_int("subcodes_context", subcodes_context, minimum=-1)
        self.audio_channels = check_int("audio_channels", audio_channels, minimum=1)
        if self.audio_channels not in (1, 2) or n_q % self.audio_channels:
            raise ValueError(f"`audio_channels` must be 1 or 2 and divide n_q={n_q}, got {audio_channels}")
        if provider is None:
            provider = jp.DelayedPatternProvider(n_q, [k // self.audio_channels for k in range(n_q)])
        if not isinstance(provider, jp.CodebooksPatternProvider) or provider.n_q != n_q:
            raise ValueError(f"`provider` must be a pattern provider of n_q={n_q} codebooks, got {provider!r}")
        self.provider = provider
        self.hide_special = check_flag("hide_special", hide_special)
        self.mask_condition = check_flag("mask_condition", mask_condition)
        if positions not in POSITION_FORMULAS:
            raise ValueError(f"`positions` must be one of {POSITION_FORMULAS}, got {positions!r}")
        self.positions = positions
        self.param_dtype = _dtype("param_dtype", param_dtype)
        self.dtype = _dtype("dtype", dtype)
        self.special_token = self.card
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype, rngs=rngs)
        self.emb = Embeddings(n_q, card, dim, self.dtype, self.param_dtype, rngs)
        self.layers = nnx.List(
            [
                DecoderLayer(
                    dim,
                    num_heads,
                    self.ffn_dim,
                    cross_attention=self.cross_attention,
                    bias_attn=check_flag("bias_attn", bias_attn),
                    bias_ff=check_flag("bias_ff", bias_ff),
                    **kw,
                )
                for _ in range(num_layers)
            ]
        )
        self.out_norm = layer_norm(dim, self.dtype, self.param_dtype, rngs)
        self.linears = Heads(n_q, dim, card, check_flag("bias_proj", bias_proj), self.param_dtype, rngs)
        self.enc_proj = None if self.encoder_dim is None else nnx.Linear(self.encoder_dim, dim, **kw)

    # ------------------------------------------------------------------
    # loading (in `_transformers.py` and `_audiocraft.py`)
    # ------------------------------------------------------------------
    @classmethod
    def from_transformers(cls, model_or_state_dict: tp.Any, config: tp.Any = None, **overrides: tp.Any) -> MusicGen:
        """A transformers `MusicgenForCausalLM` / `MusicgenForConditionalGeneration` (or its `state_dict` and config).

        See `jax_patterns.models._transformers.from_transformers` for the arguments.
        """
        from jax_patterns.models._transformers import from_transformers

        return from_transformers(cls, model_or_state_dict, config, **overrides)

    @classmethod
    def from_audiocraft(cls, state_dict: tp.Any, cfg: tp.Any = None, **overrides: tp.Any) -> MusicGen:
        """audiocraft's checkpoint (`best_state` and its `xp.cfg`), MusicGen or MAGNeT.

        See `jax_patterns.models._audiocraft.from_audiocraft` for the arguments.
        """
        from jax_patterns.models._audiocraft import from_audiocraft

        return from_audiocraft(cls, state_dict, cfg, **overrides)

    # ------------------------------------------------------------------
    # inputs
    # ------------------------------------------------------------------
    def _tokens(self, tokens: tp.Any, name: str) -> jax.Array:
        return jnp.asarray(check_codes(tokens, name, n_q=self.n_q, below=self.card + 1))

    def _condition_arrays(self, states: tp.Any, mask: tp.Any, batch: int | None) -> tuple[tp.Any, tp.Any]:
        """`encoder_hidden_states` (floats) and `encoder_attention_mask` (bool, int or float; or None) as arrays,
        their kinds and shapes checked (`batch=None`: any batch). Host values become numpy, nothing is cast."""
        states = _array("encoder_hidden_states", states)
        if states.dtype == np.bool_ or not jnp.issubdtype(states.dtype, jnp.floating):
            raise TypeError(f"`encoder_hidden_states` must be floats, got dtype {states.dtype}")
        if mask is not None:
            mask = _array("encoder_attention_mask", mask)
            if not (mask.dtype == np.bool_ or jnp.issubdtype(mask.dtype, jnp.number)):
                raise TypeError(
                    f"`encoder_attention_mask` must be 1 (token) / 0 (padding) numbers or bools, got dtype {mask.dtype}"
                )
        shape = tuple(states.shape)
        if batch is None:
            batch = shape[0] if shape else 0
        self._check_condition(shape, None if mask is None else tuple(mask.shape), batch)
        return states, mask

    @staticmethod
    def _visible_mask(mask: tp.Any) -> jax.Array:
        """A checked `encoder_attention_mask` as bools (`!= 0`; host values compared on the host, in their dtype)."""
        if is_host(mask):
            return jnp.asarray(np.asarray(mask) != 0)
        return mask if mask.dtype == jnp.bool_ else mask != jnp.zeros((), mask.dtype)

    def _condition(self, states: tp.Any, mask: tp.Any, batch: int) -> tuple[jax.Array, jax.Array | None]:
        """The condition `[B, C, D]` the layers attend to (projected, zeroed at the padding) and its mask `[B, C]`."""
        states, mask = self._condition_arrays(states, mask, batch)
        x = jnp.asarray(states).astype(self.dtype)
        if self.enc_proj is not None:
            x = self.enc_proj(x)
        if mask is None:
            return x, None
        mask = self._visible_mask(mask)
        return x * mask[..., None].astype(x.dtype), mask

    def check_condition(self, states_shape: tp.Sequence[int], mask_shape: tp.Sequence[int] | None, batch: int) -> None:
        """Raises unless states `[batch, S_enc, encoder_dim]` (and a mask `[batch, S_enc]`) fit this model.

        Raises:
          ValueError: a model without cross-attention, or shapes that do not fit.
          TypeError: a shape that is not a sequence of ints, a `batch` that is not an int.
        """
        batch = check_int("batch", batch, minimum=0)
        states_shape = _shape("states_shape", states_shape)
        mask_shape = None if mask_shape is None else _shape("mask_shape", mask_shape)
        self._check_condition(states_shape, mask_shape, batch, ("states_shape", "mask_shape", "batch"))

    def _check_condition(
        self,
        shape: tuple[int, ...],
        mask_shape: tuple[int, ...] | None,
        batch: int,
        names: tuple[str, ...] = ("encoder_hidden_states", "encoder_attention_mask"),
    ) -> None:
        if not self.cross_attention:
            raise ValueError(f"`{names[0]}` given to a model without cross-attention")
        width = self.dim if self.encoder_dim is None else self.encoder_dim
        if len(shape) != 3 or shape[0] != batch or shape[2] != width:
            given = f" (`{names[2]}`={batch})" if len(names) > 2 else ""
            raise ValueError(f"`{names[0]}` must be [B={batch}, S_enc, {width}]{given}, got shape {shape}")
        if mask_shape is not None and tuple(mask_shape) != shape[:2]:
            raise ValueError(f"`{names[1]}` must be [B, S_enc] = {shape[:2]}, got {tuple(mask_shape)}")

    def _cross(self, states: tp.Any, mask: tp.Any, batch: int) -> tuple[list | None, jax.Array | None]:
        """Every layer's condition keys and values, and the cross-attention visibility `[B, 1, C]` (None: all)."""
        if states is None:
            if mask is not None:
                raise ValueError("`encoder_attention_mask` given without `encoder_hidden_states`")
            return None, None
        x, mask = self._condition(states, mask, batch)
        kv = [layer.cross_attention.kv(x) for layer in self.layers]  # type: ignore[union-attr]
        visible = mask[:, None, :] if (self.mask_condition and mask is not None) else None
        return kv, visible

    def _stage(self, stage: tp.Any) -> tp.Any:
        """MAGNeT's `stage` checked: None, or a codebook index in `[0, n_q)` (host values; a device or traced int
        scalar is not read back)."""
        if stage is None:
            return None
        if isinstance(stage, np.ndarray) and stage.ndim == 0 and jnp.issubdtype(stage.dtype, jnp.integer):
            stage = stage.item()
        if is_host(stage):
            return check_int("stage", stage, minimum=0, maximum=self.n_q - 1)
        if stage.ndim or stage.dtype == jnp.bool_ or not jnp.issubdtype(stage.dtype, jnp.integer):
            raise TypeError(f"`stage` must be an int scalar, got shape {stage.shape} {stage.dtype}")
        return stage

    def _cache(self, cache: tp.Any) -> Cache:
        """Raises unless `cache` is a decode state of `init_cache` (a mapping with its keys)."""
        if not isinstance(cache, tp.Mapping) or any(key not in cache for key in CACHE_KEYS):
            raise TypeError(f"`cache` must be the mapping `init_cache` returns (keys {CACHE_KEYS}), got {cache!r:.80}")
        return dict(cache)

    def _band(self, n: int, stage: tp.Any) -> jax.Array | None:
        """Self-attention visibility `[1, n, n]` of a whole sequence (None: everything)."""
        pos = jnp.arange(n)
        if self.causal:
            return (pos[None, :] <= pos[:, None])[None]
        if stage is None or self.subcodes_context < 0:
            return None
        band = jnp.abs(pos[:, None] - pos[None, :]) <= self.subcodes_context
        return (band | (jnp.asarray(stage) <= 0))[None]

    # ------------------------------------------------------------------
    # whole sequences
    # ------------------------------------------------------------------
    def hidden(
        self,
        codes_seq: tp.Any,
        *,
        encoder_hidden_states: tp.Any = None,
        encoder_attention_mask: tp.Any = None,
        stage: tp.Any = None,
    ) -> jax.Array:
        """The trunk's output `[B, S, dim]` (after the final norm): what the heads read.

        `model.hidden(seq) @ heads (+ bias)` per codebook is `model(seq)`;
        `lm.fused_pattern_cross_entropy(model.hidden(seq), *model.head_weights()...)`
        takes the two without making the logits. Arguments as for `__call__`.
        """
        tokens = self._tokens(codes_seq, "codes_seq")
        stage = self._stage(stage)
        batch, _, n = tokens.shape
        cross, cross_visible = self._cross(encoder_hidden_states, encoder_attention_mask, batch)
        x = self.emb(tokens) + sinusoid(jnp.arange(n), self.dim, self.positions).astype(self.dtype)[None]
        visible = self._band(n, stage)
        for i, layer in enumerate(self.layers):
            kv = None if cross is None else (*cross[i], cross_visible)
            x, _, _ = layer(x, None, None, None, visible, kv)
        return self.out_norm(x)

    def __call__(
        self,
        codes_seq: tp.Any,
        *,
        encoder_hidden_states: tp.Any = None,
        encoder_attention_mask: tp.Any = None,
        stage: tp.Any = None,
    ) -> jax.Array:
        """Float32 logits `[B, K, S, card]` of a whole sequence (step s predicts step s + 1 for MusicGen).

        Args:
          codes_seq: `[B, K, S]` tokens in `[0, card]` (the pattern's sequence).
          encoder_hidden_states: the text encoder's states `[B, S_enc, encoder_dim]`
            (or `[B, S_enc, dim]` without `enc_proj`); None: no cross-attention
            (transformers' `MusicgenForCausalLM` without states). Without attention
            biases (every released MusicGen and MAGNeT) that equals the null
            condition, zero states with a zero mask, which is the references'
            unconditional generation (transformers' `get_unconditional_inputs`).
          encoder_attention_mask: `[B, S_enc]`, 1 for tokens, 0 for padding.
          stage: MAGNeT's codebook stage, an int in `[0, n_q)` (or a traced int32
            scalar, not range-checked): stages >= 1 attend within `subcodes_context` steps.

        Raises:
          ValueError: codes of the wrong shape or outside `[0, card]`, states or a
            mask of the wrong shape, a mask without states, states for a model
            without cross-attention, a `stage` outside `[0, n_q)`.
          TypeError: non-integer codes, states that are not floats, a mask that is
            not numbers or bools, a `stage` that is not an int.
        """
        hidden = self.hidden(
            codes_seq,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            stage=stage,
        )
        return self.linears(hidden)

    def head_weights(self) -> tuple[jax.Array, jax.Array | None]:
        """The K heads `(heads [K, dim, card], bias [K, card] or None)`: `lm.fused_pattern_cross_entropy`'s layout."""
        bias = None if self.linears.bias is None else self.linears.bias[...]
        return self.linears.kernel[...], bias

    # ------------------------------------------------------------------
    # the decode protocol: a KV cache, conditioned once, stepped
    # ------------------------------------------------------------------
    def init_cache(
        self,
        batch: int,
        *,
        per_row: bool = False,
        condition_len: int = 0,
        dtype: tp.Any = None,
        length: int | None = None,
    ) -> Cache:
        """An empty KV cache for `batch` rows, holding the null condition.

        Leaves: `keys` / `values` (one `[B, L, H, Dh]` per layer, `L = length or
        max_len`), `visible [B, L]` (which written steps self-attention may see),
        `index` (the next position: a scalar, or `[B]` with `per_row=True`, one
        per row as `lm.Engine`'s slots need), `cross_keys` / `cross_values` (one
        `[B, condition_len, H, Dh]` per layer) and `condition_mask [B,
        condition_len]`. The condition is the null one (zero states, zero mask)
        until `condition` writes a real one; `condition_len=0` means no
        cross-attention at all. Every leaf has the batch axis first.

        Raises:
          ValueError: bad sizes (a cache array of 2**31 elements or more); `condition_len > 0` for a model without
            cross-attention.
          TypeError: sizes that are not ints, a `dtype` other than float32 / bfloat16.
        """
        batch = check_int("batch", batch, minimum=0)
        condition_len = check_int("condition_len", condition_len, minimum=0)
        length = self.max_len if length is None else check_int("length", length, minimum=1)
        if condition_len and not self.cross_attention:
            raise ValueError(f"`condition_len`={condition_len} for a model without cross-attention")
        dtype = self.dtype if dtype is None else _dtype("dtype", dtype)
        _check_sizes(
            {
                "the cache (`batch`, `length`, `dim`)": (batch, length, self.dim),
                "the condition (`batch`, `condition_len`, `dim`)": (batch, condition_len, self.dim),
            }
        )
        head_dim = self.dim // self.num_heads
        shape = (batch, length, self.num_heads, head_dim)
        cross_keys, cross_values = [], []
        for layer in self.layers:
            if layer.cross_attention is None:
                continue
            k, v = layer.cross_attention.kv(jnp.zeros((1, 1, self.dim), self.dtype))  # projections of a zero state
            size = (batch, condition_len, self.num_heads, head_dim)
            cross_keys.append(jnp.broadcast_to(k.astype(dtype), size))
            cross_values.append(jnp.broadcast_to(v.astype(dtype), size))
        return {
            "keys": [jnp.zeros(shape, dtype) for _ in self.layers],
            "values": [jnp.zeros(shape, dtype) for _ in self.layers],
            "visible": jnp.zeros((batch, length), bool),
            "index": jnp.zeros((batch,) if check_flag("per_row", per_row) else (), jnp.int32),
            "cross_keys": cross_keys,
            "cross_values": cross_values,
            "condition_mask": jnp.zeros((batch, condition_len), bool),
        }

    def condition(self, cache: Cache, conditions: tp.Mapping[str, tp.Any]) -> Cache:
        """Writes the condition into the cache: the projection and every layer's cross keys/values, once.

        Args:
          cache: from `init_cache(B, condition_len=S_enc)`.
          conditions: `{"encoder_hidden_states": [B, S_enc, encoder_dim], "encoder_attention_mask": [B, S_enc]}`
            (the mask may be left out: every token visible). The null condition of
            classifier-free guidance is zeros of the same structure.

        Returns:
          the cache with its `cross_keys`, `cross_values` and `condition_mask` replaced.

        Raises:
          ValueError: states whose `[B, S_enc]` differ from the cache's, a missing
            `encoder_hidden_states`, unknown keys.
          TypeError: a `cache` that is not `init_cache`'s mapping, states that are not floats.
        """
        cache = self._cache(cache)
        if not isinstance(conditions, tp.Mapping) or "encoder_hidden_states" not in conditions:
            raise ValueError(
                "`conditions` must be a mapping with 'encoder_hidden_states' (and 'encoder_attention_mask')"
            )
        unknown = set(conditions) - {"encoder_hidden_states", "encoder_attention_mask"}
        if unknown:
            raise ValueError(f"`conditions` has unknown keys {sorted(unknown)}")
        rows, length = cache["condition_mask"].shape
        states = conditions["encoder_hidden_states"]
        if tuple(np.shape(states))[:2] != (rows, length):
            raise ValueError(
                f"`encoder_hidden_states` has shape {tuple(np.shape(states))}; the cache holds [B, S_enc] = "
                f"{(rows, length)} (init_cache(batch, condition_len=S_enc))"
            )
        mask = conditions.get("encoder_attention_mask")
        x, given = self._condition(states, mask, rows)
        dtype = cache["keys"][0].dtype
        cross = [layer.cross_attention.kv(x) for layer in self.layers]  # type: ignore[union-attr]
        return {
            **cache,
            "cross_keys": [k.astype(dtype) for k, _ in cross],
            "cross_values": [v.astype(dtype) for _, v in cross],
            "condition_mask": jnp.ones((rows, length), bool) if given is None else given,
        }

    @property
    def input_vocab(self) -> int:
        """Token ids embedded per codebook: the `card` codes and the special (bos / pad / mask) token `card`."""
        return self.card + 1

    def guided_conditions(self, conditions: tp.Mapping[str, tp.Any]) -> dict[str, jax.Array]:
        """`[conditions; null]` for classifier-free guidance, as transformers builds it: the request's states and
        mask (ones where it gave none), then zero states under a zero mask (`lm.Engine` and `lm.magnet_fn_of`
        call it; zeros of a condition without its mask would leave the null rows seeing every position)."""
        if not isinstance(conditions, tp.Mapping) or "encoder_hidden_states" not in conditions:
            raise ValueError(
                "`conditions` must be a mapping with 'encoder_hidden_states' (and 'encoder_attention_mask')"
            )
        unknown = set(conditions) - {"encoder_hidden_states", "encoder_attention_mask"}
        if unknown:
            raise ValueError(f"`conditions` has unknown keys {sorted(unknown)}")
        states, mask = self._condition_arrays(
            conditions["encoder_hidden_states"], conditions.get("encoder_attention_mask"), None
        )
        states = jnp.asarray(states)
        shape = states.shape[:2]
        mask = jnp.ones(shape, jnp.int32) if mask is None else self._visible_mask(mask).astype(jnp.int32)
        return {
            "encoder_hidden_states": jnp.concatenate([states, jnp.zeros_like(states)], axis=0),
            "encoder_attention_mask": jnp.concatenate([mask, jnp.zeros_like(mask)], axis=0),
        }

    def decode(self, cache: Cache, tokens: tp.Any, info: tp.Any = None) -> tuple[jax.Array, Cache]:
        """Runs `tokens [B, K, n]` against the cache at each row's position; returns the last step's logits.

        The logits `[B, K, card]` (float32) predict the step after `tokens`. With
        `hide_special`, a step whose K tokens are all the special token is hidden
        from later queries. `info` (an `lm.StepInfo`) is not needed and ignored.
        Positions past the cache give NaN logits, never a plausible number (the
        position is never read back to the host, eager or traced).

        Raises:
          ValueError: a MAGNeT model (not causal), tokens of the wrong shape or without a step, more steps than the
            cache holds.
          TypeError: a `cache` that is not `init_cache`'s mapping, non-integer tokens.
        """
        del info
        if not self.causal:
            raise ValueError("`decode` runs a causal model step by step; this model has causal=False (MAGNeT)")
        cache = self._cache(cache)
        tokens = self._tokens(tokens, "tokens")
        batch, _, n = tokens.shape
        if n == 0:
            raise ValueError("`tokens` holds no step ([B, K, 0]); `decode` runs at least one")
        index, flags = cache["index"], cache["visible"]
        length = flags.shape[1]
        if n > length:
            raise ValueError(f"{n} steps given; the cache holds {length} positions (max_len)")
        positions = index.reshape(-1, 1) + jnp.arange(n)[None, :]  # [1 or B, n]
        x = self.emb(tokens) + sinusoid(positions, self.dim, self.positions).astype(self.dtype)
        shown = ~jnp.all(tokens == self.special_token, axis=1) if self.hide_special else jnp.ones((batch, n), bool)
        if index.ndim == 0:
            flags = jax.lax.dynamic_update_slice_in_dim(flags, shown, index, axis=1)
        else:
            flags = jax.vmap(lambda row, new, at: jax.lax.dynamic_update_slice_in_dim(row, new, at, axis=0))(
                flags, shown, index
            )
        key_pos = jnp.arange(length)[None, None, :]
        query_pos = positions[:, :, None]
        visible = (key_pos <= query_pos) & (flags[:, None, :] | (key_pos == query_pos))  # [B, n, L]
        condition_len = cache["condition_mask"].shape[1]
        cross_visible = cache["condition_mask"][:, None, :] if self.mask_condition else None
        keys, values = [], []
        for i, layer in enumerate(self.layers):
            cross = None
            if condition_len and layer.cross_attention is not None:
                cross = (cache["cross_keys"][i], cache["cross_values"][i], cross_visible)
            x, k, v = layer(x, cache["keys"][i], cache["values"][i], index, visible, cross)
            keys.append(k)
            values.append(v)
        logits = self.linears(self.out_norm(x[:, -1:]))[:, :, 0]  # [B, K, card]
        inside = (index + n <= length).reshape(-1, 1, 1)
        logits = jnp.where(inside, logits, jnp.nan)
        return logits, {**cache, "keys": keys, "values": values, "visible": flags, "index": index + n}

    # ------------------------------------------------------------------
    # generation (in `_generate.py`)
    # ------------------------------------------------------------------
    def generate(self, **kwargs: tp.Any) -> jax.Array:
        """Codes `[B, K, T]`: see `jax_patterns.models._generate.generate` for the arguments."""
        from jax_patterns.models._generate import generate

        return generate(self, **kwargs)

    def step_fn(self) -> jax.tree_util.Partial:
        """The model as `lm.generate` / `lm.stream` / `lm.Engine`'s step function: `lm.step_fn_of(model)`."""
        from jax_patterns import lm

        return lm.step_fn_of(self)

    def magnet_fn(self, encoder_hidden_states: tp.Any = None, encoder_attention_mask: tp.Any = None) -> tp.Any:
        """`lm.magnet_generate`'s `model_fn(tokens, stage)` for this (MAGNeT) model and condition.

        See `jax_patterns.models._generate.magnet_fn_of`.
        """
        from jax_patterns.models._generate import magnet_fn_of

        return magnet_fn_of(self, encoder_hidden_states, encoder_attention_mask)

    def engine(self, **kwargs: tp.Any) -> tp.Any:
        """An `lm.Engine` serving this model, each request with its own condition: see
        `jax_patterns.models._generate.engine` for the arguments."""
        from jax_patterns.models._generate import engine

        return engine(self, **kwargs)
