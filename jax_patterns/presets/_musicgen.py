"""MusicGen (and MusicGen Melody), as transformers' `MusicgenForCausalLM` runs it."""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import check_codes, check_int
from jax_patterns.presets._common import IGNORE, check_ids, check_logits, check_sequence_ids


@dataclasses.dataclass(frozen=True)
class MusicGen:
    """transformers' `MusicgenForCausalLM` convention (MusicGen, MusicGen Melody, mono or stereo).

    - Delayed pattern: codebook `k` is delayed by `k` steps (stereo,
      `audio_channels=2`, interleaves left/right codebooks with delays `k // 2`),
      with a leading step of `pad_token_id`, which is both bos and pad (= card).
    - Model inputs: the delayed sequence of `T + max_delay + 1` steps without
      its last step; labels: the sequence from step 1 on, `[B, S - 1, K]`, pad
      replaced by -100; loss: per-codebook cross entropy over the labels, the
      mean over codebooks (audiocraft's).
    - Generation: `build_delay_pattern_mask` then `apply_delay_pattern_mask`
      is `provider.get_pattern(T)` filled with pad; the output drops the pads,
      which is the pattern's revert.

    Quirks of transformers met on the way: `build_delay_pattern_mask` returns
    the ids undelayed when `max_length < 2K - 1`; `generate` masks the bos step
    out of attention (`attention_mask = ids != pad`) where audiocraft attends
    to it (the step function decides: `tests/test_presets.py` reproduces both).

    Example:
      >>> import numpy as np
      >>> preset = MusicGen(num_codebooks=2, pad_token_id=8)
      >>> preset.sequence(np.array([[[1, 2, 3], [4, 5, 6]]])).tolist()
      [[[8, 1, 2, 3, 8], [8, 8, 4, 5, 6]]]
    """

    num_codebooks: int
    pad_token_id: int
    audio_channels: int = 1

    def __post_init__(self):
        check_ids(self, "num_codebooks", "pad_token_id")
        check_int("audio_channels", self.audio_channels)
        if self.audio_channels not in (1, 2):
            raise ValueError(f"`audio_channels` must be 1 or 2, got {self.audio_channels}")
        if self.audio_channels == 2 and self.num_codebooks % 2:
            raise ValueError(f"stereo needs an even `num_codebooks`, got {self.num_codebooks}")

    @property
    def provider(self) -> jp.DelayedPatternProvider:
        """The pattern: `get_pattern(T)` is the model's layout for `T` frames (`max_length = T + max_delay + 1`)."""
        delays = [k // self.audio_channels for k in range(self.num_codebooks)]
        return jp.DelayedPatternProvider(self.num_codebooks, delays)

    def sequence(self, codes: tp.Any, lengths: tp.Any = None) -> tp.Any:
        """The delayed sequence `[B, K, S]` of codes `[B, K, T]`: transformers' `delay_pattern_mask`, filled."""
        codes = check_codes(codes, "codes", n_q=self.num_codebooks, below=self.pad_token_id)
        pattern = self.provider.get_pattern(codes.shape[-1])
        return pattern.build_pattern_sequence(codes, self.pad_token_id, lengths=lengths)[0]

    def input_ids(self, codes: tp.Any, lengths: tp.Any = None) -> tp.Any:
        """The model's training inputs `[B, K, S - 1]` (`.reshape(B * K, S - 1)` for transformers)."""
        return self.sequence(codes, lengths)[..., :-1]

    def labels(self, codes: tp.Any, lengths: tp.Any = None) -> tp.Any:
        """The model's training labels `[B, S - 1, K]` (transformers' layout), -100 where ignored (pad)."""
        import jax.numpy as jnp

        target = self.sequence(codes, lengths)[..., 1:]
        return jnp.swapaxes(jnp.where(target == self.pad_token_id, IGNORE, target), 1, 2)

    def loss(self, logits: tp.Any, codes: tp.Any, lengths: tp.Any = None) -> tuple[tp.Any, tp.Any]:
        """transformers' MusicGen loss from its logits `[B, K, S - 1, card]` on `input_ids`: `(loss, per_codebook)`.

        `lm.pattern_cross_entropy` of the codes: each code reads the logits of
        the step before its own, the mean per codebook, then over codebooks
        (audiocraft's averaging, and transformers'); no reverted logits, no copy.

        Raises:
          TypeError: logits that are not floating point, codes that are not integers.
          ValueError: logits whose K or S do not fit the codes' layout (naming both), codes out of range, bad
            `lengths`.
        """
        from jax_patterns import lm

        codes = check_codes(codes, "codes", n_q=self.num_codebooks, below=self.pad_token_id)
        pattern = self.provider.get_pattern(np.shape(codes)[-1])
        check_logits(logits, "logits", pattern, keep_only_valid_steps=False)
        return lm.pattern_cross_entropy(logits, codes, pattern, keep_only_valid_steps=False, lengths=lengths)

    def decode(self, ids: tp.Any, timesteps: int, lengths: tp.Any = None) -> tp.Any:
        """Codes `[B, K, T]` from the model's delayed ids `[B, K, S]` (what `generate` returns, pads dropped).

        Raises:
          TypeError: ids that are not integers, `timesteps` not an int.
          ValueError: ids of another rank or K, more steps than the layout of `timesteps` frames has (exactly as
            many with `lengths`), bad `lengths`.
        """
        timesteps = check_int("timesteps", timesteps, minimum=0)
        pattern = self.provider.get_pattern(timesteps)
        ids = check_sequence_ids(ids, "ids", pattern, timesteps, exact=lengths is not None)
        return pattern.revert_pattern_sequence(ids, self.pad_token_id, lengths=lengths)[0]
