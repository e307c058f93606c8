"""jax_patterns.models: real codec LMs on the library's patterns, loss and decoding.

`MusicGen` is transformers' `MusicgenForCausalLM` and audiocraft's `LMModel` / `MagnetLMModel` in Flax NNX,
loaded from either format (`MusicGen.from_transformers`, `MusicGen.from_audiocraft`; torch is imported by
neither: tensors are read through `.detach().cpu().numpy()`). The text encoder (T5) and the codec (EnCodec)
stay in transformers / torch.
"""

from jax_patterns.models._musicgen import MusicGen as MusicGen

__all__ = ("MusicGen",)
