"""`from_transformers`: the preset of a transformers config, read by its attributes."""

from __future__ import annotations

import typing as tp

from jax_patterns.presets._csm import CSM
from jax_patterns.presets._dia import Dia
from jax_patterns.presets._higgs_audio import HiggsAudio
from jax_patterns.presets._kyutai_stt import KyutaiSTT
from jax_patterns.presets._moshi import Moshi
from jax_patterns.presets._musicgen import MusicGen
from jax_patterns.presets._parler_tts import ParlerTTS
from jax_patterns.presets._qwen3_omni import Qwen3OmniTalker

PRESETS: dict[str, type] = {
    "csm": CSM,
    "dia": Dia,
    "higgs_audio_v2": HiggsAudio,
    "kyutai_speech_to_text": KyutaiSTT,
    "moshi": Moshi,
    "musicgen": MusicGen,
    "musicgen_decoder": MusicGen,
    "musicgen_melody": MusicGen,
    "musicgen_melody_decoder": MusicGen,
    "parler_tts": ParlerTTS,
    "parler_tts_decoder": ParlerTTS,
    "qwen3_omni_moe": Qwen3OmniTalker,
}
"""transformers `model_type` -> preset class."""


def _get(config: tp.Any, name: str) -> tp.Any:
    """A config's field, from a config object (attributes) or a mapping (a loaded config.json); None if absent."""
    if isinstance(config, tp.Mapping):
        return config.get(name)
    return getattr(config, name, None)


def _field(config: tp.Any, name: str, model_type: str, *fallbacks: tuple[str, ...]) -> tp.Any:
    """A field the preset needs, or its documented fallback (a path of sub-config names), else a clear error."""
    value = _get(config, name)
    for path in fallbacks:
        if value is not None:
            break
        value = config
        for part in path:
            value = None if value is None else _get(value, part)
    if value is None:
        tried = "".join(f" nor `{'.'.join(path)}`" for path in fallbacks)
        raise ValueError(f"the {model_type} config has no `{name}`{tried}; a preset needs it")
    return value


def _csm(config: tp.Any, model_type: str) -> CSM:
    names = ("num_codebooks", "vocab_size", "audio_token_id", "audio_eos_token_id", "codebook_eos_token_id")
    return CSM(**{name: _field(config, name, model_type) for name in (*names, "codebook_pad_token_id")})


def _dia(config: tp.Any, model_type: str) -> Dia:
    decoder = _get(config, "decoder_config") or config
    return Dia(
        delay_pattern=tuple(_field(config, "delay_pattern", model_type)),
        bos_token_id=_field(decoder, "bos_token_id", model_type),
        pad_token_id=_field(decoder, "pad_token_id", model_type),
        eos_token_id=_field(decoder, "eos_token_id", model_type),
    )


def _kyutai_stt(config: tp.Any, model_type: str) -> KyutaiSTT:
    names = ("num_codebooks", "codebook_vocab_size", "vocab_size", "audio_bos_token_id", "audio_pad_token_id")
    return KyutaiSTT(**{name: _field(config, name, model_type) for name in names})


def _higgs_audio(config: tp.Any, model_type: str) -> HiggsAudio:
    names = ("num_codebooks", "audio_stream_bos_id", "audio_stream_eos_id")
    return HiggsAudio(**{name: _field(config, name, model_type) for name in names})


def _moshi(config: tp.Any, model_type: str) -> Moshi:
    return Moshi(
        num_codebooks=_field(config, "num_codebooks", model_type),
        audio_vocab_size=_field(config, "audio_vocab_size", model_type, ("audio_encoder_config", "codebook_size")),
    )


def _musicgen(config: tp.Any, model_type: str) -> MusicGen:
    decoder = _get(config, "decoder")
    source = decoder if decoder is not None and _get(decoder, "num_codebooks") is not None else config
    channels = _get(source, "audio_channels")  # unset: mono, as transformers' default; any other value is checked
    return MusicGen(
        num_codebooks=_field(source, "num_codebooks", model_type),
        pad_token_id=_field(source, "pad_token_id", model_type),
        audio_channels=1 if channels is None else channels,
    )


def _parler_tts(config: tp.Any, model_type: str) -> ParlerTTS:
    decoder = _get(config, "decoder") or config  # `parler_tts`'s composite config holds its decoder's
    names = ("num_codebooks", "bos_token_id", "eos_token_id", "pad_token_id")
    return ParlerTTS(**{name: _field(decoder, name, model_type) for name in names})


def _qwen3_omni(config: tp.Any, model_type: str) -> Qwen3OmniTalker:
    talker = _field(config, "talker_config", model_type)
    return Qwen3OmniTalker(
        num_code_groups=_field(talker, "num_code_groups", model_type),
        vocab_size=_field(talker, "vocab_size", model_type, ("text_config", "vocab_size")),
        code_vocab_size=_field(talker, "code_vocab_size", model_type, ("code_predictor_config", "vocab_size")),
        codec_eos_token_id=_field(talker, "codec_eos_token_id", model_type),
        codec_pad_id=_get(talker, "codec_pad_id"),
    )


_READERS: dict[type, tp.Callable[[tp.Any, str], tp.Any]] = {
    CSM: _csm,
    Dia: _dia,
    HiggsAudio: _higgs_audio,
    KyutaiSTT: _kyutai_stt,
    Moshi: _moshi,
    MusicGen: _musicgen,
    ParlerTTS: _parler_tts,
    Qwen3OmniTalker: _qwen3_omni,
}
"""Preset class -> the function that reads its fields from a config (and its documented fallbacks)."""


def from_transformers(config: tp.Any) -> tp.Any:
    """The preset of a transformers config, read by its attributes or keys (no transformers import).

    `config` is a transformers config object or a mapping with the same fields
    (a loaded `config.json`, `config.to_dict()`). A composite config
    (`MusicgenConfig`) is read through its `decoder`, Dia's through its
    `decoder_config`. Parler-TTS's config comes from the `parler_tts` package
    (transformers has no Parler-TTS class); it is read the same way, object or
    mapping, through its `decoder`. Moshi's `audio_vocab_size`, when unset (a
    freshly built `MoshiConfig`), falls back to its audio encoder's
    `codebook_size`, as `MoshiConfig` documents and does itself once an encoder
    config is given. Qwen3-Omni's talker is read from the composite
    `Qwen3OmniMoeConfig`'s `talker_config` (its own config class has an empty
    `model_type` in transformers 5.24: pass the composite, or build
    `Qwen3OmniTalker` from the talker config's fields).

    Raises:
      ValueError: an unknown `model_type`, or a config missing a field the preset needs.
      TypeError: a field of the wrong type (through the preset's checks).
    """
    model_type = _get(config, "model_type")
    if not isinstance(model_type, str) or model_type not in PRESETS:
        known = ", ".join(sorted(PRESETS))
        raise ValueError(
            f"no preset for model_type={model_type!r}; known: {known} "
            "(pass a transformers config, or a mapping such as a loaded config.json)"
        )
    return _READERS[PRESETS[model_type]](config, model_type)
