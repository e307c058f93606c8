"""Parler-TTS, as `parler_tts` builds and reverts its delay pattern (training labels and generation)."""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import check_codes
from jax_patterns.presets._common import IGNORE, check_ids, example_lengths


@dataclasses.dataclass(frozen=True)
class ParlerTTS:
    """Parler-TTS's decoder convention (`parler_tts` 0.2.3: `build_delay_pattern_mask`, its training labels, the
    revert in `generate`), over DAC's 9 codebooks by default (Parler-TTS Mini / Large v1).

    - Delayed pattern: codebook `k` is delayed by `k` steps after one all-bos
      step (`bos_token_id`, also the decoder start), with `pad_token_id` after
      each codebook's last code: `provider.get_pattern(T)`, `T + K` steps
      (`build_delay_pattern_mask` of the codes after their bos column, with
      `max_length = T + K`). Our arrays are `[B, K, S]`; `parler_tts` takes
      `[B * K, S]` (`ids.reshape(B * K, S)`).
    - Training (`labels`): each example's codes, then one eos frame, delayed
      (bos before, eos after every codebook's last code), the all-bos first
      step dropped: `[B, T + K, K]`, -100 past each example's own `T_b + K`
      steps (the collator's padding). The decoder's inputs (`input_ids`) are
      those labels shifted right behind the decoder start, -100 read as pad.
    - Generation (`decode`): the generated ids `[B, K, S]` reverted (the bos
      and pad positions of the pattern dropped, `T = S - K` frames); an
      example ends at its first frame holding an id of `min(eos, pad, bos)` or
      above (Parler decodes the frames free of such ids, which is the same
      frames when, as its logits processor makes them, a codebook's eos
      follows the one before it). With `lm.generate`: `special_token=bos`,
      `fill_after=pad`, `eos_token=eos`.

    Example:
      >>> import numpy as np
      >>> preset = ParlerTTS(num_codebooks=2, bos_token_id=9, eos_token_id=8, pad_token_id=8)
      >>> preset.sequence(np.array([[[1, 2], [3, 4]]])).tolist()
      [[[9, 1, 2, 8], [9, 9, 3, 4]]]
    """

    num_codebooks: int = 9
    bos_token_id: int = 1025
    eos_token_id: int = 1024
    pad_token_id: int = 1024

    def __post_init__(self):
        check_ids(self, "num_codebooks", "bos_token_id", "eos_token_id", "pad_token_id")
        if self.bos_token_id in (self.eos_token_id, self.pad_token_id):
            raise ValueError(
                f"`bos_token_id`={self.bos_token_id} must differ from `eos_token_id`={self.eos_token_id} and "
                f"`pad_token_id`={self.pad_token_id}"
            )

    @property
    def provider(self) -> jp.DelayedPatternProvider:
        """The pattern: `get_pattern(T)` lays out `T` frames after one bos step, `T + K` steps."""
        return jp.DelayedPatternProvider(self.num_codebooks)

    @property
    def _below(self) -> int:
        return min(self.bos_token_id, self.eos_token_id, self.pad_token_id)

    def sequence(self, codes: tp.Any, lengths: tp.Any = None) -> tp.Any:
        """The delayed ids `[B, K, T + K]` of codes `[B, K, T]`: `build_delay_pattern_mask`'s mask, filled.

        With `lengths`, example `b` has `lengths[b]` frames, pad after them.
        """
        codes = check_codes(codes, "codes", n_q=self.num_codebooks, below=self._below)
        pattern = self.provider.get_pattern(np.shape(codes)[-1])
        seq, _, _ = pattern.build_pattern_sequence(
            codes, self.bos_token_id, lengths=lengths, fill_after=self.pad_token_id
        )
        return seq

    def labels(self, codes: tp.Any, lengths: tp.Any = None) -> tp.Any:
        """The training labels `[B, T + K, K]` of codes `[B, K, T]` (example `b`: its first `lengths[b]` frames).

        Each example's codes and one eos frame, delayed (bos before, eos after),
        without the all-bos first step; -100 past the example's `lengths[b] + K`
        steps, as the training collator pads.
        """
        import jax.numpy as jnp

        codes = jnp.asarray(check_codes(codes, "codes", n_q=self.num_codebooks, below=self._below))
        timesteps = codes.shape[-1]
        lengths = example_lengths(codes.shape, lengths)
        t = jnp.arange(timesteps + 1)[None, None, :]
        framed = jnp.where(t == lengths[:, None, None], self.eos_token_id, jnp.pad(codes, ((0, 0), (0, 0), (0, 1))))
        pattern = self.provider.get_pattern(timesteps + 1)
        seq, _, _ = pattern.build_pattern_sequence(
            framed, self.bos_token_id, lengths=lengths + 1, fill_after=self.eos_token_id
        )
        steps = jnp.arange(seq.shape[-1] - 1)[None, :, None]
        labels = jnp.swapaxes(seq[..., 1:], 1, 2)
        return jnp.where(steps < (lengths + self.num_codebooks)[:, None, None], labels, IGNORE)

    def input_ids(self, codes: tp.Any, lengths: tp.Any = None) -> tp.Any:
        """The decoder's training inputs `[B, K, T + K]`: the labels shifted right behind the decoder start (bos),
        -100 read as pad (`shift_tokens_right`, then `[B, K, S]`)."""
        import jax.numpy as jnp

        labels = self.labels(codes, lengths)
        start = jnp.full((labels.shape[0], 1, self.num_codebooks), self.bos_token_id, labels.dtype)
        shifted = jnp.concatenate([start, labels[:, :-1]], axis=1)
        return jnp.swapaxes(jnp.where(shifted == IGNORE, self.pad_token_id, shifted), 1, 2)

    def decode(self, ids: tp.Any) -> tuple[tp.Any, tp.Any]:
        """`(codes [B, K, T], lengths [B])` from generated ids `[B, K, S]`, `T = S - K`: `generate`'s revert.

        `codes` holds every frame of the pattern (eos and what follows it
        included, as `parler_tts` reverts them); `lengths[b]` is the number of
        frames before example `b`'s first frame holding an id of
        `min(eos, pad, bos)` or above.

        Raises:
          ValueError: ids of another rank or K, or fewer than `K` steps.
          TypeError: ids that are not integers.
        """
        import jax.numpy as jnp

        ids = jnp.asarray(check_codes(ids, "ids", n_q=self.num_codebooks, below=None))
        timesteps = ids.shape[-1] - self.num_codebooks
        if timesteps < 0:
            raise ValueError(
                f"`ids` has S={ids.shape[-1]} steps; Parler-TTS's layout has at least K={self.num_codebooks}"
            )
        codes, _, _ = self.provider.get_pattern(timesteps).revert_pattern_sequence(ids, self.bos_token_id)
        special = jnp.any(codes >= self._below, axis=1)  # [B, T]
        lengths = jnp.where(jnp.any(special, axis=-1), jnp.argmax(special, axis=-1), timesteps)
        return codes, lengths.astype(jnp.int32)
