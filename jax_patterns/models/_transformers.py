"""Loading transformers' `MusicgenForCausalLM` / `MusicgenForConditionalGeneration`: the table and the config.

transformers' names -> ours (`MusicgenForConditionalGeneration` prefixes the
decoder's with `decoder.`; its `text_encoder.*` (T5) and `audio_encoder.*`
(EnCodec) stay in transformers, and `enc_to_dec_proj` is our `enc_proj`):

| transformers | ours | transform |
| --- | --- | --- |
| `model.decoder.embed_tokens.{k}.weight` | `emb.embedding` | stacked over k |
| `...layers.{i}.self_attn.{q,k,v}_proj.weight` | `layers.{i}.self_attn.in_proj.kernel` | joined, transposed |
| `...layers.{i}.self_attn.out_proj.weight` | `layers.{i}.self_attn.out_proj.kernel` | transposed |
| `...layers.{i}.self_attn_layer_norm` | `layers.{i}.norm1` | |
| `...layers.{i}.encoder_attn.q_proj.weight` | `layers.{i}.cross_attention.q_proj.kernel` | transposed |
| `...layers.{i}.encoder_attn.{k,v}_proj.weight` | `layers.{i}.cross_attention.kv_proj.kernel` | joined, transposed |
| `...layers.{i}.encoder_attn.out_proj.weight` | `layers.{i}.cross_attention.out_proj.kernel` | transposed |
| `...layers.{i}.encoder_attn_layer_norm` | `layers.{i}.norm_cross` | |
| `...layers.{i}.fc1`, `fc2` | `layers.{i}.linear1`, `linear2` | transposed |
| `...layers.{i}.final_layer_norm` | `layers.{i}.norm2` | |
| `model.decoder.layer_norm` | `out_norm` | |
| `lm_heads.{k}.weight` | `linears.kernel` | transposed, stacked over k |
| `enc_to_dec_proj` | `enc_proj` | transposed |
"""

from __future__ import annotations

import typing as tp

from flax import nnx

from jax_patterns.models._convert import Rule, joined_transposed, linear, load, norm, stacked, stacked_transposed

OVERRIDES = ("max_len", "hide_special", "mask_condition", "param_dtype", "dtype")

if tp.TYPE_CHECKING:
    from jax_patterns.models._musicgen import MusicGen


def _get(config: tp.Any, name: str, default: tp.Any = None) -> tp.Any:
    if isinstance(config, tp.Mapping):
        return config.get(name, default)
    return getattr(config, name, default)


def rules(n_q: int, num_layers: int, prefix: str, projection: bool) -> list[Rule]:
    """The table for a decoder under `prefix` ("" for `MusicgenForCausalLM`, "decoder." inside the composite)."""
    d = f"{prefix}model.decoder."
    table = [Rule("emb.embedding", tuple(f"{d}embed_tokens.{k}.weight" for k in range(n_q)), stacked, "stacked")]
    for i in range(num_layers):
        theirs, ours = f"{d}layers.{i}.", f"layers.{i}."
        qkv = tuple(f"{theirs}self_attn.{p}_proj.weight" for p in "qkv")
        kv = tuple(f"{theirs}encoder_attn.{p}_proj.weight" for p in "kv")
        table += [
            Rule(f"{ours}self_attn.in_proj.kernel", qkv, joined_transposed, "joined (q, k, v) and transposed"),
            *linear(f"{ours}self_attn.out_proj", f"{theirs}self_attn.out_proj", bias=False),
            *norm(f"{ours}norm1", f"{theirs}self_attn_layer_norm"),
            *linear(f"{ours}cross_attention.q_proj", f"{theirs}encoder_attn.q_proj", bias=False),
            Rule(f"{ours}cross_attention.kv_proj.kernel", kv, joined_transposed, "joined (k, v) and transposed"),
            *linear(f"{ours}cross_attention.out_proj", f"{theirs}encoder_attn.out_proj", bias=False),
            *norm(f"{ours}norm_cross", f"{theirs}encoder_attn_layer_norm"),
            *linear(f"{ours}linear1", f"{theirs}fc1", bias=False),
            *linear(f"{ours}linear2", f"{theirs}fc2", bias=False),
            *norm(f"{ours}norm2", f"{theirs}final_layer_norm"),
        ]
    heads = tuple(f"{prefix}lm_heads.{k}.weight" for k in range(n_q))
    table += [*norm("out_norm", f"{d}layer_norm"), Rule("linears.kernel", heads, stacked_transposed, "transposed")]
    if projection:
        table += linear("enc_proj", "enc_to_dec_proj", bias=True)
    return table


def _configs(config: tp.Any) -> tuple[tp.Any, tp.Any]:
    """`(decoder config, text encoder config or None)` of a MusicGen config; raises for any other model."""
    model_type = _get(config, "model_type")
    if model_type == "musicgen":
        return _get(config, "decoder"), _get(config, "text_encoder")
    if model_type == "musicgen_decoder":
        return config, None
    raise ValueError(
        f"`config` is not a MusicGen config: model_type={model_type!r}; expected 'musicgen' "
        "(MusicgenForConditionalGeneration) or 'musicgen_decoder' (MusicgenForCausalLM). MusicGen Melody prepends "
        "its condition and is not supported"
    )


def _field(config: tp.Any, name: str) -> tp.Any:
    value = _get(config, name)
    if value is None:
        raise ValueError(f"the MusicGen decoder config has no `{name}`")
    return value


def from_transformers(
    cls: type[MusicGen], model_or_state_dict: tp.Any, config: tp.Any = None, **overrides: tp.Any
) -> MusicGen:
    """A `MusicGen` with the weights of transformers' MusicGen, float32 logits equal to its forward.

    Args:
      model_or_state_dict: a `MusicgenForCausalLM` or `MusicgenForConditionalGeneration`
        (in memory), or its `state_dict()`.
      config: the model's config (`MusicgenDecoderConfig` or `MusicgenConfig`, or
        their `to_dict()`); read from the model when a model is given.
      **overrides: `max_len` (default the config's `max_position_embeddings`),
        `hide_special` (default True for `MusicgenForCausalLM`, whose `generate`
        hides the bos step from attention; False for the composite, whose
        `generate` does not), `mask_condition` (True), `param_dtype` and
        `dtype` (float32).

    Returns:
      the model, with transformers' delay pattern (stereo: `k // 2`) and sinusoids.

    Raises:
      ValueError: a config of another model, token ids other than MusicGen's
        (pad = bos = vocab_size), an activation other than GELU, a tensor missing,
        extra or of the wrong shape (naming it).
      TypeError: neither a model nor a state dict, a state dict without a config, an unknown override.
    """
    unknown = set(overrides) - set(OVERRIDES)
    if unknown:
        raise TypeError(f"unknown arguments {sorted(unknown)}; from_transformers takes {OVERRIDES}")
    if hasattr(model_or_state_dict, "state_dict") and hasattr(model_or_state_dict, "config"):
        config = model_or_state_dict.config if config is None else config
        state_dict = model_or_state_dict.state_dict()
    else:
        state_dict = model_or_state_dict
        if not isinstance(state_dict, tp.Mapping):
            raise TypeError(
                "`model_or_state_dict` must be a MusicgenForCausalLM / MusicgenForConditionalGeneration or its "
                f"state_dict (a mapping of names to tensors), got {type(state_dict).__name__}"
            )
        if config is None:
            raise TypeError(
                "`model_or_state_dict` is a state dict: it needs its `config` (the model's MusicgenDecoderConfig or "
                "MusicgenConfig)"
            )
    decoder, text = _configs(config)
    card = int(_field(decoder, "vocab_size"))
    for name in ("pad_token_id", "bos_token_id"):
        if _get(decoder, name) != card:
            raise ValueError(
                f"the decoder's `{name}`={_get(decoder, name)!r}; MusicGen's special token is vocab_size={card}"
            )
    if _get(decoder, "activation_function", "gelu") != "gelu":
        raise ValueError(f"`activation_function`={_get(decoder, 'activation_function')!r}; MusicGen uses 'gelu'")
    n_q, dim = int(_field(decoder, "num_codebooks")), int(_field(decoder, "hidden_size"))
    num_layers = int(_field(decoder, "num_hidden_layers"))
    encoder_dim = None
    if text is not None:
        text_dim = int(_get(text, "hidden_size") or _get(text, "d_model"))
        cross_size = _get(decoder, "cross_attention_hidden_size")
        if cross_size is not None and int(cross_size) != dim:
            raise ValueError(
                f"`cross_attention_hidden_size`={cross_size} differs from hidden_size={dim}: not supported"
            )
        if text_dim != dim and cross_size is None:
            encoder_dim = text_dim
    kwargs = {
        "max_len": int(_get(decoder, "max_position_embeddings", 2048)),
        "hide_special": text is None,
        "mask_condition": True,
        **overrides,
    }
    abstract = nnx.eval_shape(
        lambda: cls(
            n_q,
            card,
            dim,
            int(_field(decoder, "num_attention_heads")),
            num_layers,
            int(_field(decoder, "ffn_dim")),
            encoder_dim=encoder_dim,
            audio_channels=int(_get(decoder, "audio_channels", 1)),
            positions="transformers",
            rngs=nnx.Rngs(0),
            **kwargs,
        )
    )
    prefix = "" if text is None else "decoder."
    table = rules(n_q, num_layers, prefix, encoder_dim is not None)
    ported = ("text_encoder.", "audio_encoder.")  # T5 and EnCodec: they stay in transformers
    return load(abstract, state_dict, table, source="transformers", ignored=lambda name: name.startswith(ported))
