"""Higgs Audio v2, as transformers' processor and model run it."""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import check_codes, check_int, clip_lengths, validate_lengths
from jax_patterns.presets._common import (
    IGNORE,
    check_ids,
    check_logits,
    check_sequence_ids,
    example_lengths,
    ids_in_our_layout,
)


@dataclasses.dataclass(frozen=True)
class HiggsAudio:
    """transformers' Higgs Audio v2 convention (`HiggsAudioV2Processor`, `HiggsAudioV2ForConditionalGeneration`).

    - Each example's codes are framed as `[bos, codes, eos]` (`L + 2` frames),
      then delayed: codebook `k` by `k` steps; bos before a codebook's first
      code, eos after its last (`build_delay_pattern`). Here the bos frame is
      the pattern's leading special step: `provider.get_pattern(L + 1)` lays out
      the codes and the eos frame after one all-bos step, `L + K + 1` steps, and
      the logits at step `s` predict step `s + 1`, as the model's causal loss
      does.
    - A batch is `[B, S, K]`, each example right-padded with eos, with its mask;
      the audio labels are the ids with bos and eos replaced by -100.
    - The loss (`loss`) is each codebook's mean over its labels, summed over
      codebooks: `K` times `lm.pattern_cross_entropy`'s mean.

    Example:
      >>> import numpy as np
      >>> HiggsAudio(num_codebooks=2, audio_stream_bos_id=8, audio_stream_eos_id=9).sequence(
      ...     np.array([[[1, 2], [3, 4]]])).tolist()
      [[[8, 1, 2, 9, 9], [8, 8, 3, 4, 9]]]
    """

    num_codebooks: int
    audio_stream_bos_id: int
    audio_stream_eos_id: int

    def __post_init__(self):
        check_ids(self, "num_codebooks", "audio_stream_bos_id", "audio_stream_eos_id")
        if self.audio_stream_bos_id == self.audio_stream_eos_id:
            raise ValueError(f"`audio_stream_bos_id` and `audio_stream_eos_id` are both {self.audio_stream_eos_id}")

    @property
    def provider(self) -> jp.DelayedPatternProvider:
        """The pattern: `get_pattern(L + 1)` (codes, then eos) after one bos step has `L + K + 1` steps."""
        return jp.DelayedPatternProvider(self.num_codebooks, list(range(self.num_codebooks)))

    def _framed(self, codes: tp.Any, lengths: tp.Any) -> tuple[tp.Any, tp.Any, tp.Any]:
        """`(frames [B, K, T + 1], frame_lengths, lengths)`: each example's codes, then its eos frame."""
        import jax.numpy as jnp

        low = min(self.audio_stream_bos_id, self.audio_stream_eos_id)
        codes = jnp.asarray(check_codes(codes, "codes", n_q=self.num_codebooks, below=low))
        timesteps = codes.shape[-1]
        lengths = example_lengths(np.shape(codes), lengths)
        framed = jnp.pad(codes, ((0, 0), (0, 0), (0, 1)))
        framed = jnp.where(
            jnp.arange(timesteps + 1)[None, None, :] == lengths[:, None, None], self.audio_stream_eos_id, framed
        )
        return framed, lengths + 1, lengths

    def sequence(self, codes: tp.Any, lengths: tp.Any = None) -> tp.Any:
        """The delayed ids `[B, K, S]` of codes `[B, K, T]` (example `b` has `lengths[b]` frames), eos-padded."""
        framed, framed_lengths, _ = self._framed(codes, lengths)
        pattern = self.provider.get_pattern(framed.shape[-1])
        return pattern.build_pattern_sequence(
            framed, self.audio_stream_bos_id, lengths=framed_lengths, fill_after=self.audio_stream_eos_id
        )[0]

    def inputs(self, codes: tp.Any, lengths: tp.Any = None) -> tuple[tp.Any, tp.Any, tp.Any]:
        """`(audio_input_ids [B, S, K], audio_input_ids_mask [B, S], audio_labels [B, S, K])`, the processor's.

        `S` is the longest example's; each example is right-padded with eos.
        """
        import jax.numpy as jnp

        seq = self.sequence(codes, lengths)
        # each example's steps: its codes, eos, then K steps of delay and bos
        steps = example_lengths(np.shape(codes), lengths) + 1 + self.num_codebooks
        longest = int(jnp.max(steps)) if steps.size else 0
        ids = jnp.swapaxes(seq, 1, 2)[:, :longest]
        mask = jnp.arange(longest)[None, :] < steps[:, None]
        special = (ids == self.audio_stream_bos_id) | (ids == self.audio_stream_eos_id)
        return ids, mask, jnp.where(special, IGNORE, ids)

    def loss(self, audio_logits: tp.Any, codes: tp.Any, lengths: tp.Any = None) -> tuple[tp.Any, tp.Any]:
        """The model's audio loss from its logits at the audio positions, `[B, K, S, V]`: `(loss, per_codebook)`.

        `S = T + K + 1` (the whole delayed sequence; `S - 1` works too). The
        eos frame is not a label (-100), so it is masked out of
        `lm.pattern_cross_entropy`; the loss is the sum of the per-codebook means.

        Raises:
          TypeError: logits that are not floating point, codes that are not integers.
          ValueError: logits whose K or S do not fit the codes' layout (naming both), codes out of range, bad
            `lengths`.
        """
        import jax.numpy as jnp

        from jax_patterns import lm

        framed, framed_lengths, lengths = self._framed(codes, lengths)
        pattern = self.provider.get_pattern(framed.shape[-1])
        check_logits(audio_logits, "audio_logits", pattern, keep_only_valid_steps=False)
        codes_only = jnp.arange(framed.shape[-1])[None, None, :] < lengths[:, None, None]
        mean, per_codebook = lm.pattern_cross_entropy(
            audio_logits,
            framed,
            pattern,
            keep_only_valid_steps=False,
            mask=jnp.broadcast_to(codes_only, framed.shape),
            lengths=framed_lengths,
        )
        return mean * self.num_codebooks, per_codebook

    def decode(self, ids: tp.Any, timesteps: int, lengths: tp.Any = None, *, codebooks_last: bool = False) -> tp.Any:
        """Codes `[B, K, T]` from framed examples' delayed ids (bos and eos frames dropped).

        Args:
          ids: `[B, K, T + K + 1]` (ours: `sequence`), or with
            `codebooks_last=True` the processor's `[B, T + K + 1, K]` (what
            `inputs` returns as `audio_input_ids`).
          timesteps: `T`, the longest example's number of frames.
          lengths: example `b` has `lengths[b]` frames (eos past them); None:
            every example has `T`.
          codebooks_last: whether `ids` are `[B, S, K]`.

        Returns:
          the codes `[B, K, T]` (eos past each example's frames).

        Raises:
          ValueError: ids of another rank or K (naming the other layout when
            the ids are in it), more steps than the layout of `timesteps`
            frames has (exactly as many with `lengths`), `timesteps` < 0,
            `lengths` outside `[0, T]`.
          TypeError: ids that are not integers, a flag that is not a bool.
        """
        ids = ids_in_our_layout(ids, self.num_codebooks, codebooks_last)
        timesteps = check_int("timesteps", timesteps, minimum=0)
        framed = None
        if lengths is not None:  # T_max is `timesteps`: host lengths above it are refused naming both
            checked = validate_lengths(lengths, np.shape(ids)[:-2], timesteps, bound="`timesteps`")
            framed = clip_lengths(checked, timesteps) + 1
        pattern = self.provider.get_pattern(timesteps + 1)
        ids = check_sequence_ids(ids, "ids", pattern, timesteps, exact=lengths is not None)
        return pattern.revert_pattern_sequence(ids, self.audio_stream_eos_id, lengths=framed)[0][..., :timesteps]
