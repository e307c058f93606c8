"""Moshi's audio codebooks, as transformers' `MoshiForConditionalGeneration` runs them."""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import check_codes, check_int
from jax_patterns.presets._common import check_ids, check_logits, check_sequence_ids, example_lengths


@dataclasses.dataclass(frozen=True)
class Moshi:
    """transformers' `MoshiForConditionalGeneration` convention for its audio codebooks.

    - The semantic codebook (0) is not delayed, the acoustic codebooks are
      delayed by one step, and there is no leading special step; bos = pad =
      `audio_vocab_size` (cb 0 ends with pad, the others start with bos).
    - `build_delay_pattern_mask(codes, max_length)` is `provider.get_pattern(max_length - 1)`
      built from the codes (unknown steps -1); the training audio labels are its
      first `T` steps (`labels`).

    Example:
      >>> import numpy as np
      >>> Moshi(num_codebooks=2, audio_vocab_size=8).sequence(np.array([[[1, 2], [3, 4]]])).tolist()
      [[[1, 2, 8], [8, 3, 4]]]
    """

    num_codebooks: int
    audio_vocab_size: int

    def __post_init__(self):
        check_ids(self, "num_codebooks", "audio_vocab_size")

    @property
    def provider(self) -> jp.DelayedPatternProvider:
        """The pattern: `get_pattern(T)` has `T + 1` steps."""
        return jp.DelayedPatternProvider(self.num_codebooks, [0] + [1] * (self.num_codebooks - 1), empty_initial=-1)

    def sequence(self, codes: tp.Any, timesteps: int | None = None, lengths: tp.Any = None) -> tp.Any:
        """The delayed sequence `[B, K, T' + 1]` of codes `[B, K, T]` (`T' = timesteps`, default `T`; -1 past `T`)."""
        import jax.numpy as jnp

        codes = jnp.asarray(check_codes(codes, "codes", n_q=self.num_codebooks, below=self.audio_vocab_size))
        total = codes.shape[-1] if timesteps is None else check_int("timesteps", timesteps, minimum=0)
        if total < codes.shape[-1]:
            raise ValueError(f"`timesteps`={total} is shorter than the codes' T={codes.shape[-1]}")
        unknown = jnp.full((*codes.shape[:-1], total - codes.shape[-1]), -1, codes.dtype)
        pattern = self.provider.get_pattern(total)
        filled = jnp.concatenate([codes, unknown], axis=-1)
        return pattern.build_pattern_sequence(filled, self.audio_vocab_size, lengths=lengths)[0]

    def labels(self, codes: tp.Any, lengths: tp.Any = None) -> tp.Any:
        """The delayed audio labels `[B, K, T]` Moshi's forward builds from `audio_labels` (the first T steps).

        With `lengths`, example `b`'s labels are its own first `lengths[b]`
        steps, then pad (`audio_vocab_size`): the acoustic codes of its last
        frame, at step `lengths[b]`, are not labels, as for the example alone
        (and `loss` does not score them).
        """
        import jax.numpy as jnp

        labels = self.sequence(codes, lengths=lengths)[..., : np.shape(codes)[-1]]
        if lengths is None:
            return labels
        past = jnp.arange(labels.shape[-1])[None, None, :] >= example_lengths(np.shape(codes), lengths)[:, None, None]
        return jnp.where(past, jnp.asarray(self.audio_vocab_size, labels.dtype), labels)

    def loss(self, audio_logits: tp.Any, codes: tp.Any, lengths: tp.Any = None) -> tuple[tp.Any, tp.Any]:
        """Moshi's depth loss from the depth decoder's logits `[B, K, T, V]`: `(loss, per_codebook)`.

        transformers' `audio_logits` are `[B * T, K, V]`
        (`.reshape(B, T, K, V).transpose(0, 2, 1, 3)` gives ours). The logits at
        step `t` predict the delayed labels' step `t` (no shift: the depth
        decoder reads step `t`'s hidden state), over the labels' `T` steps, so
        the acoustic codes of the last frame are not scored; the mean is over
        every scored code (`average="tokens"`, a `CrossEntropyLoss`).

        Raises:
          TypeError: logits that are not floating point, codes that are not integers.
          ValueError: logits whose K or S do not fit the codes' layout (naming both), codes out of range, bad
            `lengths`.
        """
        from jax_patterns import lm

        codes = check_codes(codes, "codes", n_q=self.num_codebooks, below=self.audio_vocab_size)
        pattern = self.provider.get_pattern(np.shape(codes)[-1])
        check_logits(audio_logits, "audio_logits", pattern, keep_only_valid_steps=True)
        return lm.pattern_cross_entropy(
            audio_logits, codes, pattern, keep_only_valid_steps=True, lengths=lengths, average="tokens"
        )

    def decode(self, ids: tp.Any, timesteps: int, lengths: tp.Any = None) -> tp.Any:
        """Codes `[B, K, T]` from delayed ids `[B, K, T + 1]`.

        Raises:
          TypeError: ids that are not integers, `timesteps` not an int.
          ValueError: ids of another rank or K, more steps than the layout of `timesteps` frames has (exactly as
            many with `lengths`), bad `lengths`.
        """
        timesteps = check_int("timesteps", timesteps, minimum=0)
        pattern = self.provider.get_pattern(timesteps)
        ids = check_sequence_ids(ids, "ids", pattern, timesteps, exact=lengths is not None)
        return pattern.revert_pattern_sequence(ids, self.audio_vocab_size, lengths=lengths)[0]
