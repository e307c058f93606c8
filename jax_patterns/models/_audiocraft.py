"""Loading audiocraft's own checkpoints (`state_dict.bin`: `best_state` and `xp.cfg`), MusicGen and MAGNeT.

audiocraft's names -> ours (`LMModel`'s own names: our modules are named after them):

| audiocraft (`best_state`) | ours | transform |
| --- | --- | --- |
| `emb.{k}.weight` | `emb.embedding` | stacked over k |
| `transformer.layers.{i}.self_attn.in_proj_weight` (`_bias`) | `layers.{i}.self_attn.in_proj` | transposed |
| `transformer.layers.{i}.self_attn.out_proj` | `layers.{i}.self_attn.out_proj` | transposed |
| `transformer.layers.{i}.norm1`, `norm_cross`, `norm2` | the same names | |
| `transformer.layers.{i}.cross_attention.in_proj_weight` | `...q_proj` (rows `[:D]`), `kv_proj` (`[D:]`) | transposed |
| `transformer.layers.{i}.cross_attention.out_proj` | `layers.{i}.cross_attention.out_proj` | transposed |
| `transformer.layers.{i}.linear1`, `linear2` | the same names | transposed |
| `out_norm` | `out_norm` | |
| `linears.{k}.weight` (`.bias`) | `linears.kernel` (`.bias`) | transposed, stacked over k |
| `condition_provider.conditioners.{name}.output_proj` | `enc_proj` | transposed |

A model built with torch's `nn.MultiheadAttention` (`custom: false`, `memory_efficient: false`)
names its attention tensors `...self_attn.mha.in_proj_weight`: the `.mha.` is dropped before the
table is read. A fine-tuned T5 (`...conditioners.{name}.t5.*`) stays in torch.

What the two formats differ in (besides names): audiocraft fuses q/k/v in one `in_proj`, has
optional biases everywhere (`bias_attn`, `bias_ff`, `bias_proj`; MusicGen sets them off), zeroes
the projected condition at the padding and attends to it unmasked, attends to the bos step while
generating, and rounds its sinusoids as `p / 10000 ** (i / (half - 1))`.
"""

from __future__ import annotations

import typing as tp

from flax import nnx

import jax_patterns as jp
from jax_patterns.models._convert import Rule, as_numpy, linear, load, norm, rows, stacked, stacked_transposed

OVERRIDES = ("max_len", "hide_special", "mask_condition", "param_dtype", "dtype")
PROVIDERS: dict[str, type[jp.CodebooksPatternProvider]] = {  # audiocraft's `get_codebooks_pattern_provider`
    "parallel": jp.ParallelPatternProvider,
    "delay": jp.DelayedPatternProvider,
    "unroll": jp.UnrolledPatternProvider,
    "coarse_first": jp.CoarseFirstPattern,
    "musiclm": jp.MusicLMPattern,
}
# transformer options the port implements only at these values (audiocraft's defaults where absent)
FIXED: dict[str, tuple[tp.Any, tp.Any]] = {
    "norm_first": (False, True),
    "norm": ("layer_norm", "layer_norm"),
    "activation": ("relu", "gelu"),
    "layer_scale": (None, None),
    "positional_embedding": ("sin", "sin"),
    "positional_scale": (1.0, 1.0),
    "max_period": (10000, 10000),
    "qk_layer_norm": (False, False),
    "qk_layer_norm_cross": (False, False),
    "kv_repeat": (1, 1),
    "past_context": (None, None),
}

if tp.TYPE_CHECKING:
    from jax_patterns.models._musicgen import MusicGen


def plain(cfg: tp.Any) -> tp.Any:
    """An OmegaConf config (or any nesting of mappings and lists) as plain dicts and lists."""
    if isinstance(cfg, tp.Mapping):
        return {str(k): plain(v) for k, v in cfg.items()}
    if isinstance(cfg, tp.Sequence) and not isinstance(cfg, (str, bytes)):
        return [plain(v) for v in cfg]
    return cfg


def rules(
    n_q: int, num_layers: int, dim: int, *, bias_attn: bool, bias_ff: bool, bias_proj: bool, condition: str | None
) -> list[Rule]:
    """The table of an `LMModel` / `MagnetLMModel`; `condition` names the cross-attention conditioner (or None)."""
    table = [Rule("emb.embedding", tuple(f"emb.{k}.weight" for k in range(n_q)), stacked, "stacked")]
    for i in range(num_layers):
        theirs, ours = f"transformer.layers.{i}.", f"layers.{i}."
        table += [
            Rule(
                f"{ours}self_attn.in_proj.kernel",
                (f"{theirs}self_attn.in_proj_weight",),
                rows(0, None, True),
                "transposed",
            ),
            *linear(f"{ours}self_attn.out_proj", f"{theirs}self_attn.out_proj", bias_attn),
            *norm(f"{ours}norm1", f"{theirs}norm1"),
            *linear(f"{ours}linear1", f"{theirs}linear1", bias_ff),
            *linear(f"{ours}linear2", f"{theirs}linear2", bias_ff),
            *norm(f"{ours}norm2", f"{theirs}norm2"),
        ]
        if bias_attn:
            in_bias = (f"{theirs}self_attn.in_proj_bias",)
            table.append(Rule(f"{ours}self_attn.in_proj.bias", in_bias, rows(0, None, False), "as is"))
        if condition is not None:
            weight, bias = (f"{theirs}cross_attention.in_proj_weight",), (f"{theirs}cross_attention.in_proj_bias",)
            table += [
                Rule(f"{ours}cross_attention.q_proj.kernel", weight, rows(0, dim, True), "rows [:D], transposed"),
                Rule(f"{ours}cross_attention.kv_proj.kernel", weight, rows(dim, None, True), "rows [D:], transposed"),
                *linear(f"{ours}cross_attention.out_proj", f"{theirs}cross_attention.out_proj", bias_attn),
                *norm(f"{ours}norm_cross", f"{theirs}norm_cross"),
            ]
            if bias_attn:
                table += [
                    Rule(f"{ours}cross_attention.q_proj.bias", bias, rows(0, dim, False), "rows [:D]"),
                    Rule(f"{ours}cross_attention.kv_proj.bias", bias, rows(dim, None, False), "rows [D:]"),
                ]
    table += norm("out_norm", "out_norm")
    table.append(
        Rule("linears.kernel", tuple(f"linears.{k}.weight" for k in range(n_q)), stacked_transposed, "transposed")
    )
    if bias_proj:
        table.append(Rule("linears.bias", tuple(f"linears.{k}.bias" for k in range(n_q)), stacked, "stacked"))
    if condition is not None:
        table += linear("enc_proj", f"condition_provider.conditioners.{condition}.output_proj", bias=True)
    return table


def _section(cfg: dict, name: str) -> dict:
    value = cfg.get(name)
    if not isinstance(value, dict):
        raise ValueError(f"the audiocraft config has no `{name}` section")
    return value


def _condition(cfg: dict) -> str | None:
    """The name of the one condition fused by cross-attention (None: an unconditional model)."""
    fuser = cfg.get("fuser") or {}
    for op in ("sum", "prepend", "input_interpolate"):
        if fuser.get(op):
            raise ValueError(
                f"the config fuses {fuser[op]} by `{op}`: only cross-attention conditions are supported "
                "(MusicGen Melody's chroma is prepended)"
            )
    if fuser.get("cross_attention_pos_emb"):
        raise ValueError("`fuser.cross_attention_pos_emb: true` is not supported")
    cross = list(fuser.get("cross") or [])
    if len(cross) > 1:
        raise ValueError(f"the config cross-attends to {cross}; one condition is supported")
    return cross[0] if cross else None


def _provider(cfg: dict, n_q: int) -> jp.CodebooksPatternProvider:
    pattern = _section(cfg, "codebooks_pattern")
    name = pattern.get("modeling")
    if name not in PROVIDERS:
        raise ValueError(f"`codebooks_pattern.modeling`={name!r}; expected one of {sorted(PROVIDERS)}")
    kwargs = pattern.get(name) or {}
    return PROVIDERS[name](n_q, **kwargs)


def from_audiocraft(cls: type[MusicGen], state_dict: tp.Any, cfg: tp.Any = None, **overrides: tp.Any) -> MusicGen:
    """A `MusicGen` with the weights of an audiocraft `LMModel` or `MagnetLMModel`.

    Args:
      state_dict: the checkpoint's `best_state` (names to tensors), or the whole
        checkpoint (`{"best_state": ..., "xp.cfg": ...}`, as `torch.load` gives it).
      cfg: its `xp.cfg` (an OmegaConf config or a plain dict); taken from the
        checkpoint when None.
      **overrides: `max_len` (default 2048), `hide_special` (False: audiocraft
        attends to the bos step), `mask_condition` (False: audiocraft attends to
        the zeroed padding of its condition), `param_dtype`, `dtype` (float32).

    Returns:
      the model, with the config's pattern (`model.provider`), audiocraft's
      sinusoids, and for MAGNeT (`lm_model: transformer_lm_magnet`)
      `causal=False` and `subcodes_context`.

    Raises:
      ValueError: a config of another model or an option the port does not
        implement (naming it), a tensor missing, extra or of the wrong shape (naming it).
      TypeError: a `state_dict` that is not a mapping, no config, an unknown override.
    """
    unknown = set(overrides) - set(OVERRIDES)
    if unknown:
        raise TypeError(f"unknown arguments {sorted(unknown)}; from_audiocraft takes {OVERRIDES}")
    if not isinstance(state_dict, tp.Mapping):
        raise TypeError(
            f"`state_dict` must be a mapping of tensor names to tensors (audiocraft's `best_state`, or the whole "
            f"checkpoint), got {type(state_dict).__name__}"
        )
    if "best_state" in state_dict:
        cfg = state_dict.get("xp.cfg") if cfg is None else cfg
        state_dict = state_dict["best_state"]
    if cfg is None:
        raise TypeError("`cfg` is None: the checkpoint's config is needed (`xp.cfg` of audiocraft's state_dict.bin)")
    cfg = plain(cfg)
    if not isinstance(cfg, dict):
        raise TypeError(f"`cfg` must be a mapping (audiocraft's xp.cfg), got {type(cfg).__name__}")
    lm_model = cfg.get("lm_model")
    if lm_model not in ("transformer_lm", "transformer_lm_magnet"):
        raise ValueError(f"`lm_model`={lm_model!r}: not an audiocraft MusicGen / MAGNeT language model config")
    t = _section(cfg, "transformer_lm")
    for name, (default, supported) in FIXED.items():
        if t.get(name, default) != supported:
            raise ValueError(
                f"`transformer_lm.{name}`={t.get(name, default)!r} is not supported (expected {supported!r})"
            )
    n_q, card, dim = int(t.get("n_q", 8)), int(t.get("card", 1024)), int(t.get("dim", 128))
    num_layers = int(t["num_layers"])
    biases = {name: bool(t.get(name, True)) for name in ("bias_attn", "bias_ff", "bias_proj")}
    condition = _condition(cfg)
    encoder_dim = None
    if condition is not None:
        key = f"condition_provider.conditioners.{condition}.output_proj.weight"
        if not isinstance(state_dict, tp.Mapping) or key not in state_dict:
            raise ValueError(
                f"the audiocraft checkpoint has no `{key}` (the projection of its `{condition}` condition)"
            )
        encoder_dim = int(as_numpy(state_dict[key], key).shape[1])
    magnet = lm_model == "transformer_lm_magnet"
    kwargs = {"max_len": 2048, "hide_special": False, "mask_condition": False, **overrides}
    abstract = nnx.eval_shape(
        lambda: cls(
            n_q,
            card,
            dim,
            int(t.get("num_heads", 8)),
            num_layers,
            int(float(t.get("hidden_scale", 4)) * dim),
            cross_attention=condition is not None,
            encoder_dim=encoder_dim,
            causal=bool(t.get("causal", False)),
            subcodes_context=int(t.get("subcodes_context", 5)) if magnet else -1,
            provider=_provider(cfg, n_q),
            audio_channels=int(cfg.get("channels", 1)),
            positions="audiocraft",
            rngs=nnx.Rngs(0),
            **biases,
            **kwargs,
        )
    )
    table = rules(n_q, num_layers, dim, condition=condition, **biases)
    if isinstance(state_dict, tp.Mapping):
        state_dict = {name.replace(".mha.", "."): value for name, value in state_dict.items()}
    text_encoder = f"condition_provider.conditioners.{condition}.t5."
    return load(abstract, state_dict, table, source="audiocraft", ignored=lambda name: name.startswith(text_encoder))
