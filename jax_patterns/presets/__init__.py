"""Presets: the interleaving conventions of codec LMs as transformers runs them, exact.

A preset knows a model family's pattern (`provider`), its special tokens and
its tensor layouts, and gives what the model's own code gives: the input ids
from codes, the training labels, the loss (through
`lm.pattern_cross_entropy`: no reverted logits), and the undo of generated ids.
Our arrays are `[B, K, S]`; transformers' MusicGen takes `[B * K, S]`, one
reshape away (`ids.reshape(B * K, S)`), and its labels are `[B, S, K]`. A
method named after a transformers output (`Dia.inputs`, `HiggsAudio.inputs`)
returns transformers' layout, `[B, S, K]`; `decode` reads ours, or that layout
(and what transformers' `generate` returns) with `codebooks_last=True`.

`from_transformers(config)` reads a transformers config by its attributes
(`model_type`, `num_codebooks`, `audio_channels`, token ids); jax_patterns never
imports transformers.

This release has MusicGen (and MusicGen Melody), Moshi, Higgs Audio v2, Dia,
Kyutai speech-to-text and Bark's coarse model; CSM and Qwen3-Omni's talker
(two-level decoders: a parallel pattern with `lm.generate(...,
step_returns="tokens")`), Orpheus (SNAC's three rates as 7 tokens a frame) and
Parler-TTS (whose configs come from the `parler_tts` package). One module per
family; `_common` holds what they share, `_from_transformers` the config table.
"""

from jax_patterns.presets._bark import BarkCoarse as BarkCoarse
from jax_patterns.presets._common import IGNORE as IGNORE
from jax_patterns.presets._csm import CSM as CSM
from jax_patterns.presets._dia import Dia as Dia
from jax_patterns.presets._from_transformers import PRESETS as PRESETS
from jax_patterns.presets._from_transformers import from_transformers as from_transformers
from jax_patterns.presets._higgs_audio import HiggsAudio as HiggsAudio
from jax_patterns.presets._kyutai_stt import KyutaiSTT as KyutaiSTT
from jax_patterns.presets._moshi import Moshi as Moshi
from jax_patterns.presets._musicgen import MusicGen as MusicGen
from jax_patterns.presets._orpheus import Orpheus as Orpheus
from jax_patterns.presets._parler_tts import ParlerTTS as ParlerTTS
from jax_patterns.presets._qwen3_omni import Qwen3OmniTalker as Qwen3OmniTalker

__all__ = (
    "IGNORE",
    "PRESETS",
    "BarkCoarse",
    "CSM",
    "Dia",
    "HiggsAudio",
    "KyutaiSTT",
    "Moshi",
    "MusicGen",
    "Orpheus",
    "ParlerTTS",
    "Qwen3OmniTalker",
    "from_transformers",
)
