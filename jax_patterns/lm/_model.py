"""A minimal Flax NNX codec LM: an example of use for the tests and the notebook, not a model zoo.

Summed per-codebook embeddings (card + 1 entries each: the codes and the special
token), a small pre-norm transformer (causal, or bidirectional with MAGNeT's
restricted-context band) with an explicit KV cache (one position for the batch,
or one per row for `Engine`'s slots), and one output head per codebook.
`__call__` runs a whole sequence; `decode` runs a few new steps against the
cache, which is what `generate`'s `step_fn` needs.
"""

from __future__ import annotations

import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jax_patterns._checks import INT32_LIMIT, N_Q_MAX, check_codes, check_flag, check_int, is_host

Cache = dict[str, tp.Any]

"""46340, the pattern providers' bound on `n_q`: a pattern of K codebooks holds at least K * K int32 indexes, so none
has more codebooks, and no model of more is decoded."""


class Block(nnx.Module):
    """Pre-norm causal self-attention and MLP, reading and writing a KV cache."""

    def __init__(self, dim: int, num_heads: int, *, rngs: nnx.Rngs):
        self.num_heads = num_heads
        self.norm1 = nnx.LayerNorm(dim, rngs=rngs)
        self.qkv = nnx.Linear(dim, 3 * dim, rngs=rngs)
        self.out = nnx.Linear(dim, dim, rngs=rngs)
        self.norm2 = nnx.LayerNorm(dim, rngs=rngs)
        self.up = nnx.Linear(dim, 4 * dim, rngs=rngs)
        self.down = nnx.Linear(4 * dim, dim, rngs=rngs)

    def __call__(
        self,
        x: jax.Array,
        keys: jax.Array,
        values: jax.Array,
        index: jax.Array,
        segments: jax.Array | None = None,
        causal: bool = True,
        context: jax.Array | None = None,
    ):
        batch, n, dim = x.shape
        heads = self.num_heads
        q, k, v = jnp.split(self.qkv(self.norm1(x)).reshape(batch, n, 3 * heads, dim // heads), 3, axis=2)
        if index.ndim == 0:
            keys = jax.lax.dynamic_update_slice_in_dim(keys, k, index, axis=1)
            values = jax.lax.dynamic_update_slice_in_dim(values, v, index, axis=1)
        else:  # one position per row (a served batch: each slot at its own step)
            write = jax.vmap(lambda cache, new, at: jax.lax.dynamic_update_slice_in_dim(cache, new, at, axis=0))
            keys, values = write(keys, k, index), write(values, v, index)
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, keys) / jnp.sqrt(dim // heads).astype(x.dtype)
        row_index = index.reshape(-1, 1, 1)  # [1 or B, 1, 1]
        query_pos = row_index + jnp.arange(n)[None, :, None]  # [1 or B, n, 1]
        key_pos = jnp.arange(keys.shape[1])[None, None, :]
        visible = key_pos <= query_pos if causal else key_pos < row_index + n  # [1 or B, n, max_len]
        if context is not None:  # MAGNeT's restricted context: |i - j| <= context (context < 0: everything)
            visible = visible & ((context < 0) | (jnp.abs(query_pos - key_pos) <= context))
        visible = visible[:, None]  # [1 or B, 1, n, max_len]
        if segments is not None:  # packed rows (a call from position 0): a query sees its own segment only
            key_segments = jnp.pad(segments, ((0, 0), (0, keys.shape[1] - n)), constant_values=-1)
            visible = visible & (segments[:, :, None] == key_segments[:, None, :])[:, None]  # [B, 1, n, max_len]
        scores = jnp.where(visible, scores, jnp.finfo(scores.dtype).min)
        attended = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), values)
        x = x + self.out(attended.reshape(batch, n, dim))
        x = x + self.down(jax.nn.gelu(self.up(self.norm2(x))))
        return x, keys, values


class CodecLM(nnx.Module):
    """`seq [B, K, S]` (codes in `[0, card]`, `card` = special) -> logits `[B, K, S, card]`.

    Implements the step-model protocol (`lm.StepModel`: `max_len`,
    `init_cache`, `decode`), so `lm.step_fn_of(model)` decodes it with
    `generate`, `stream` and `Engine`, and `lm.magnet_fn_of(model)` with
    `magnet_generate` when `causal=False`.

    Args:
      n_q: number of codebooks K.
      card: codebook size.
      dim: model width.
      num_layers: transformer blocks.
      num_heads: attention heads (`dim` must be a multiple).
      max_len: longest sequence (positions and cache size).
      causal: causal attention (autoregressive LMs); `False` attends both ways, as a MAGNeT model does.
      subcodes_context: with `causal=False` and a `stage >= 1` passed to `__call__`, position `i` attends
        only to `|i - j| <= subcodes_context` (audiocraft's MAGNeT band, default 5; -1: no band). Stage 0
        attends everywhere.
      rngs: NNX random streams for initialisation.

    Raises:
      TypeError / ValueError: sizes that are not positive ints (`n_q` at most 46340, as the pattern providers:
        no pattern has more codebooks), `dim` not a multiple of `num_heads`, `rngs` not an `nnx.Rngs`.

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> model = CodecLM(n_q=2, card=8, dim=16, num_layers=1, num_heads=2, max_len=10, rngs=nnx.Rngs(0))
      >>> model(jnp.zeros((3, 2, 5), jnp.int32)).shape
      (3, 2, 5, 8)
    """

    def __init__(
        self,
        n_q: int,
        card: int,
        dim: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        max_len: int = 512,
        *,
        causal: bool = True,
        subcodes_context: int = 5,
        rngs: nnx.Rngs,
    ):
        self.n_q = check_int("n_q", n_q, minimum=1, maximum=N_Q_MAX)
        self.card = check_int("card", card, minimum=1)
        self.dim = check_int("dim", dim, minimum=1)
        self.max_len = check_int("max_len", max_len, minimum=1)
        num_layers = check_int("num_layers", num_layers, minimum=0)
        num_heads = check_int("num_heads", num_heads, minimum=1)
        if self.dim % num_heads:
            raise ValueError(f"`dim`={self.dim} must be a multiple of `num_heads`={num_heads}")
        if self.n_q * (self.card + 1) >= 2**31:
            raise ValueError(f"`n_q` * (`card` + 1) = {self.n_q * (self.card + 1)} embedding rows do not fit int32")
        self.causal = check_flag("causal", causal)
        self.subcodes_context = check_int("subcodes_context", subcodes_context, minimum=-1)
        if not isinstance(rngs, nnx.Rngs):
            raise TypeError(f"`rngs` must be an nnx.Rngs (e.g. nnx.Rngs(0)), got {type(rngs).__name__}")
        self.embed = nnx.Embed(self.n_q * (self.card + 1), dim, rngs=rngs)  # one table of card + 1 rows per codebook
        self.position = nnx.Embed(self.max_len, dim, rngs=rngs)
        self.blocks = nnx.List([Block(dim, num_heads, rngs=rngs) for _ in range(num_layers)])
        self.norm = nnx.LayerNorm(dim, rngs=rngs)
        self.heads = nnx.Linear(dim, self.n_q * self.card, rngs=rngs)
        self.num_heads = num_heads

    @property
    def input_vocab(self) -> int:
        """Token ids embedded per codebook: the `card` codes and the special (or mask) token `card`."""
        return self.card + 1

    def init_cache(self, batch: int, dtype: tp.Any = jnp.float32, per_row: bool = False) -> Cache:
        """An empty KV cache for `batch` sequences of up to `max_len` steps.

        `per_row=True` keeps one position per row (`index [B]`): each row writes
        and attends at its own step, so rows can be refilled independently, as
        `lm.Engine`'s slots are (every leaf then has the batch axis first).

        Raises:
          TypeError: `batch` not an int, `dtype` not a floating dtype (jax's: float64 only under x64), `per_row`
            not a bool.
          ValueError: `batch < 1`.
        """
        batch = check_int("batch", batch, minimum=1)
        dtype = _float_dtype(dtype)
        per_row = check_flag("per_row", per_row)
        shape = (batch, self.max_len, self.num_heads, self.dim // self.num_heads)
        return {
            "keys": [jnp.zeros(shape, dtype) for _ in self.blocks],
            "values": [jnp.zeros(shape, dtype) for _ in self.blocks],
            "index": jnp.zeros((batch,) if per_row else (), jnp.int32),
        }

    def _trunk(self, tokens: jax.Array, cache: Cache, rows: Rows) -> tuple[jax.Array, Cache]:
        """The normed hidden state `[B, n, dim]` the heads read, and the cache."""
        batch, n_q, n = tokens.shape
        index = cache["index"]
        offsets = (jnp.arange(n_q) * (self.card + 1))[None, :, None]
        x = self.embed(tokens + offsets).sum(axis=1)  # [B, n, dim]
        positions = rows.positions
        if positions is None:  # a position past max_len reads the last row; its logits are NaN (`_logits`)
            positions = jnp.minimum(index.reshape(-1, 1) + jnp.arange(n)[None, :], self.max_len - 1)  # [1 or B, n]
        x = x + self.position(positions)
        context = None
        if rows.stage is not None and not self.causal and self.subcodes_context >= 0:
            context = jnp.where(jnp.asarray(rows.stage) > 0, self.subcodes_context, -1)
        keys, values = [], []
        for block, k, v in zip(self.blocks, cache["keys"], cache["values"]):
            x, k, v = block(x, k, v, index, rows.segments, self.causal, context)
            keys.append(k)
            values.append(v)
        return self.norm(x), {"keys": keys, "values": values, "index": index + n}

    def _logits(self, hidden: jax.Array, index: jax.Array) -> jax.Array:
        """The K heads on `hidden [B, n, dim]` -> `[B, K, n, card]`; NaN at positions past `max_len`."""
        batch, n, _ = hidden.shape
        logits = self.heads(hidden).reshape(batch, n, self.n_q, self.card).transpose(0, 2, 1, 3)
        # a position past max_len cannot raise (traced, or not read back): its logits are NaN, never a plausible number
        inside = (index.reshape(-1, 1) + jnp.arange(n)[None, :]) < self.max_len  # [1 or B, n]
        return jnp.where(inside[:, None, :, None], logits, jnp.nan)

    def __call__(
        self,
        seq: jax.Array,
        segment_ids: jax.Array | None = None,
        positions: jax.Array | None = None,
        *,
        stage: tp.Any = None,
    ) -> jax.Array:
        """Logits `[B, K, S, card]` for a whole sequence (step s predicts step s + 1).

        A MAGNeT model (`causal=False`) takes the decoded codebook `stage` (an
        int or a traced int32 scalar): stages >= 1 attend within
        `subcodes_context` steps. `lm.magnet_fn_of(model)` hands it to
        `lm.magnet_generate`.

        For packed rows (`jax_patterns.pack`), pass `segment_ids` and `positions`
        `[B, S]`: attention is causal within each segment only and positions
        restart at each segment, so every segment's logits are those of its
        example run alone.

        Host `seq` and `positions` are range-checked (`[0, card]`, `[0, max_len)`); device or traced ones are not
        read back (no sync), only their shapes and dtypes checked.

        Raises:
          TypeError: `seq`, `segment_ids` or `positions` not integer arrays; `stage` not an int (or an integer
            0-d array).
          ValueError: `seq` not `[B, K, S]` codes with `K = n_q`, `S <= max_len`, host codes in `[0, card]`;
            `segment_ids` or `positions` not of shape `[B, S]`, or one without the other; a host `stage`
            outside `[0, n_q)`.
        """
        seq = self._tokens("seq", seq)
        rows = self._rows(seq, segment_ids, positions, stage)
        cache = self.init_cache(seq.shape[0])
        hidden, _ = self._trunk(seq, cache, rows)
        return self._logits(hidden, cache["index"])

    def hidden(
        self, seq: jax.Array, segment_ids: jax.Array | None = None, positions: jax.Array | None = None
    ) -> jax.Array:
        """The trunk's output `[B, S, dim]`: what the heads read, for `lm.fused_pattern_cross_entropy`.

        `einsum("bsd,kdc->bksc", model.hidden(seq), *model.head_weights())` (plus
        the bias) is `model(seq)`; the fused loss takes the two without making
        the logits. Arguments (and errors) as for `__call__`.
        """
        seq = self._tokens("seq", seq)
        return self._trunk(seq, self.init_cache(seq.shape[0]), self._rows(seq, segment_ids, positions, None))[0]

    def head_weights(self) -> tuple[jax.Array, jax.Array]:
        """The K output heads as `(heads [K, dim, card], bias [K, card])`, the fused loss's layout.

        `self.heads` is one `Linear(dim, K * card)`; this is its kernel and bias
        split per codebook (a view for the loss: gradients flow back to them).
        """
        if self.heads.bias is None:  # the model builds its heads with a bias; a changed model must keep it
            raise ValueError("the model's heads have no bias")
        kernel = self.heads.kernel[...].reshape(self.dim, self.n_q, self.card).transpose(1, 0, 2)
        return kernel, self.heads.bias[...].reshape(self.n_q, self.card)

    def _tokens(self, name: str, tokens: tp.Any) -> jax.Array:
        """`tokens [B, K, n]` checked (`K = n_q`, `n <= max_len`, host ids in `[0, card]`), as int32."""
        tokens = check_codes(tokens, name, n_q=self.n_q, below=self.card + 1)
        if tokens.shape[-1] > self.max_len:
            raise ValueError(
                f"`{name}` has {tokens.shape[-1]} steps; the model holds at most max_len={self.max_len} positions"
            )
        return jnp.asarray(tokens, jnp.int32)

    def _rows(self, seq: jax.Array, segment_ids: tp.Any, positions: tp.Any, stage: tp.Any) -> Rows:
        """The per-row options of a whole-sequence call, checked."""
        if (segment_ids is None) != (positions is None):
            raise ValueError("packed rows need both `segment_ids` and `positions` (`Packed.segment_ids`, `.positions`)")
        rows = (seq.shape[0], seq.shape[-1])
        if segment_ids is not None:
            segment_ids = _int_rows("segment_ids", segment_ids, rows, -INT32_LIMIT, INT32_LIMIT)
            positions = _int_rows("positions", positions, rows, 0, self.max_len)
        return Rows(segment_ids, positions, None if stage is None else self._stage(stage))

    def _stage(self, stage: tp.Any) -> tp.Any:
        """MAGNeT's `stage`: a host int in `[0, n_q)`, or a traced (device) integer scalar, not read back."""
        if isinstance(stage, (jax.Array, jax.core.Tracer)):
            if stage.ndim != 0 or stage.dtype == jnp.bool_ or not jnp.issubdtype(stage.dtype, jnp.integer):
                raise TypeError(f"`stage` must be an integer scalar, got {stage.dtype}{list(stage.shape)}")
            return stage
        if isinstance(stage, np.ndarray) and stage.ndim == 0 and np.issubdtype(stage.dtype, np.integer):
            stage = stage.item()  # a host integer 0-d array is its int
        return check_int("stage", stage, minimum=0, maximum=self.n_q - 1)

    def decode(self, cache: Cache, tokens: jax.Array, info: tp.Any = None) -> tuple[jax.Array, Cache]:
        """Runs new steps `tokens [B, K, n]` against the cache; returns the last step's logits `[B, K, card]`.

        Steps past `max_len` give NaN logits (nothing is read back to check them). `info` (an
        `lm.StepInfo`) is accepted for the step-model protocol and not used.

        Raises:
          TypeError: `cache` not this model's cache (`init_cache`), `tokens` not integer codes.
          ValueError: `tokens` not `[B, K, n]` with `K = n_q`, `1 <= n <= max_len`, host ids in `[0, card]`, or of
            another batch than the cache; a causal=False model.
        """
        if not self.causal:
            raise ValueError("`decode` runs a causal model step by step; this model has causal=False (MAGNeT)")
        tokens = self._tokens("tokens", tokens)
        if tokens.shape[-1] == 0:
            raise ValueError(f"`tokens` has shape {tuple(tokens.shape)}: no step to decode; expected [B, K, n >= 1]")
        self._check_cache(cache, tokens.shape[0])
        index = cache["index"]
        hidden, cache = self._trunk(tokens, cache, Rows())
        return self._logits(hidden[:, -1:], index + tokens.shape[-1] - 1)[:, :, 0], cache

    def _check_cache(self, cache: tp.Any, batch: int) -> None:
        """`cache` has this model's structure (`init_cache(batch)`): shapes only, nothing read back."""
        layers, heads = len(self.blocks), self.num_heads
        shape = (batch, self.max_len, heads, self.dim // heads)
        what = f"this model's cache (`init_cache({batch})`: keys and values {layers} x {list(shape)}, an int32 index)"
        if not isinstance(cache, tp.Mapping) or set(cache) != {"keys", "values", "index"}:
            raise TypeError(f"`cache` must be {what}; got {type(cache).__name__}")
        for name in ("keys", "values"):
            leaves = cache[name]
            if not isinstance(leaves, tp.Sequence) or len(leaves) != layers:
                raise TypeError(f"`cache[{name!r}]` must be {layers} arrays, one per layer; got {leaves!r}"[:300])
            for layer in leaves:
                if tuple(getattr(layer, "shape", ())) != shape or not jnp.issubdtype(layer.dtype, jnp.floating):
                    raise ValueError(f"`cache[{name!r}]` holds {_described(layer)}; expected float {list(shape)}")
        index = cache["index"]
        dtype = getattr(index, "dtype", None)
        integer = dtype is not None and dtype != np.bool_ and jnp.issubdtype(dtype, jnp.integer)
        if not integer or index.shape not in ((), (batch,)):
            raise ValueError(f"`cache['index']` holds {_described(index)}; expected int32 [] or [{batch}]")


def _described(x: tp.Any) -> str:
    """An array's dtype and shape, or an object's type, for a message."""
    shape = getattr(x, "shape", None)
    return f"{getattr(x, 'dtype', '')}{list(shape)}" if shape is not None else type(x).__name__


def _float_dtype(dtype: tp.Any) -> tp.Any:
    """`dtype` as a floating numpy dtype jax holds as it is (float64 needs x64), or a TypeError naming `dtype`."""
    try:
        checked = None if dtype is None or isinstance(dtype, (bool, int, float)) else jnp.dtype(dtype)
    except TypeError:
        checked = None
    if checked is None or not jnp.issubdtype(checked, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype (jnp.float32, jnp.bfloat16, ...), got {dtype!r}")
    if jax.dtypes.canonicalize_dtype(checked) != checked:
        raise TypeError(f"`dtype` {checked} is not available without jax_enable_x64")
    return checked


def _int_rows(name: str, value: tp.Any, shape: tuple[int, int], low: int, high: int) -> tp.Any:
    """Integer `[B, S]` rows (`segment_ids`, `positions`), host values in `[low, high)`; as int32."""
    if is_host(value):
        try:
            value = np.asarray(value)
        except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
            raise TypeError(f"`{name}` must be an integer array [B, S], got {type(value).__name__}") from err
    if value.dtype == np.bool_ or not jnp.issubdtype(value.dtype, jnp.integer):
        raise TypeError(f"`{name}` must be an integer array [B, S], got dtype {value.dtype}")
    if tuple(value.shape) != shape:
        raise ValueError(f"`{name}` has shape {tuple(value.shape)}; expected [B, S] = {shape}, as `seq`'s")
    if isinstance(value, np.ndarray) and value.size and (value.min() < low or value.max() >= high):
        bad = int(value.min()) if value.min() < low else int(value.max())
        raise ValueError(f"`{name}` holds {bad}; expected values in [{low}, {high})")
    return jnp.asarray(value, jnp.int32)


class Rows(tp.NamedTuple):
    """Options of a call that vary per row: packed segments and positions, and MAGNeT's stage."""

    segments: tp.Any = None
    positions: tp.Any = None
    stage: tp.Any = None
