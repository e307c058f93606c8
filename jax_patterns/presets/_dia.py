"""Dia, as transformers' `DiaProcessor` and `DiaForConditionalGeneration` run it."""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import N_Q_MAX, check_codes, check_flag, check_int
from jax_patterns.presets._common import IGNORE, check_ids, check_logits, example_lengths, ids_in_our_layout


@dataclasses.dataclass(frozen=True)
class Dia:
    """transformers' Dia convention (`DiaProcessor.__call__`, `build_indices` / `apply_audio_delay`, `batch_decode`).

    - Channel `c` is delayed by `delay_pattern[c]` steps, in any order (Dia's
      `[0, 8, 9, ..., 15]`; its tests use `[1, 3, 2]`). The processor frames each
      example as `[bos, codes, eos]` (no eos for generation) and delays it: bos
      before a channel's first code, pad after its last. Here the bos frame is
      the pattern's leading special step: `provider.get_pattern(T)` lays out `T`
      frames (the codes, then the eos frame when training) after one all-bos
      step, `T + max(delay_pattern) + 1` steps, and the logits at step `s`
      predict step `s + 1`, as the model's labels (`ids[:, 1:]`) say.
    - Batches are **left**-padded with bos: example `b` ends the row
      (`padding_side="left"`), its `decoder_attention_mask` zero before it.
    - Training (`inputs`): the decoder inputs are the ids without their last
      step; the labels, `[B * C, S - 1]`, are the ids from step 1 on with bos and
      pad replaced by -100; the loss (`loss`) is the mean over labelled tokens,
      `lm.pattern_cross_entropy(..., average="tokens")`.
    - `decode` is `batch_decode`'s undo, as codes: each example's frames from
      the first after channel 0's bos steps (or `audio_prompt_len`) up to its eos.
    - Generation with `lm.generate`: `prompt, _ = frames(codes, lengths,
      generation=True)` (left-padded with bos, one length for all), on
      `provider.get_pattern(T + new)` with `special_token=bos_token_id`,
      `fill_after=pad_token_id` (and `eos_token=eos_token_id`); the sequence it
      decodes from is the processor's generation ids (tested).

    Our arrays are `[B, C, S]`; transformers' decoder ids are `[B, S, C]`
    (`jnp.swapaxes(ids, 1, 2)`) and its logits `[B * C, S - 1, V]`
    (`.reshape(B, C, S - 1, V)` gives ours). `inputs` returns transformers'
    layouts (it is the processor's output); `decode` reads ours, or
    transformers' ids (`inputs`, `generate`) with `codebooks_last=True`.

    Example:
      >>> import numpy as np
      >>> preset = Dia((1, 0), bos_token_id=8, pad_token_id=9, eos_token_id=7)
      >>> preset.sequence(np.array([[[1, 2], [3, 4]], [[5, 0], [6, 0]]]), lengths=[2, 1]).tolist()
      [[[8, 8, 1, 2, 7], [8, 3, 4, 7, 9]], [[8, 8, 8, 5, 7], [8, 8, 6, 7, 9]]]
    """

    delay_pattern: tuple[int, ...]
    bos_token_id: int
    pad_token_id: int
    eos_token_id: int

    def __post_init__(self):
        if isinstance(self.delay_pattern, (str, bytes)) or not hasattr(self.delay_pattern, "__len__"):
            raise TypeError(f"`delay_pattern` must be a sequence of ints, got {self.delay_pattern!r}")
        delays = tuple(check_int(f"delay_pattern[{c}]", d, minimum=0) for c, d in enumerate(self.delay_pattern))
        if not 1 <= len(delays) <= N_Q_MAX:
            raise ValueError(
                f"`delay_pattern` has {len(delays)} channels; Dia needs one delay per channel, 1 to {N_Q_MAX}"
            )
        object.__setattr__(self, "delay_pattern", delays)
        check_ids(self, "bos_token_id", "pad_token_id", "eos_token_id")
        if len({self.bos_token_id, self.pad_token_id, self.eos_token_id}) < 3:
            raise ValueError(
                f"`bos_token_id`={self.bos_token_id}, `pad_token_id`={self.pad_token_id} and "
                f"`eos_token_id`={self.eos_token_id} must be three different ids"
            )

    @property
    def provider(self) -> jp.DelayedPatternProvider:
        """The pattern: `get_pattern(T)` lays out `T` frames after one bos step, `T + max(delay_pattern) + 1` steps."""
        return jp.DelayedPatternProvider(len(self.delay_pattern), list(self.delay_pattern), any_order=True)

    def frames(self, codes: tp.Any, lengths: tp.Any = None, *, generation: bool = False) -> tuple[tp.Any, tp.Any]:
        """`(frames [B, C, T'], frame_lengths [B])`: each example's codes, then eos (training), left-padded.

        `codes` are `[B, C, T]`, example `b` being `codes[b, :, :lengths[b]]`
        (every example when `lengths` is None); `T' = T + 1` for training and `T`
        for generation. The padding before an example holds bos, as the
        processor's does (no operation reads it).
        """
        import jax.numpy as jnp

        low = min(self.bos_token_id, self.pad_token_id, self.eos_token_id)
        codes = jnp.asarray(check_codes(codes, "codes", n_q=len(self.delay_pattern), below=low))
        batch, channels, timesteps = codes.shape
        lengths = example_lengths(np.shape(codes), lengths)
        check_flag("generation", generation)
        width = timesteps + (0 if generation else 1)
        framed = lengths + (0 if generation else 1)
        j = jnp.arange(width)[None, None, :] - (width - framed)[:, None, None]  # the frame within its example
        source = jnp.broadcast_to(jnp.clip(j, 0, max(timesteps - 1, 0)), (batch, channels, width))
        picked = jnp.take_along_axis(jnp.pad(codes, ((0, 0), (0, 0), (0, 1))), source, axis=2)
        frames = jnp.where(j < lengths[:, None, None], picked, self.eos_token_id)
        return jnp.where(j < 0, self.bos_token_id, frames).astype(codes.dtype), framed

    def sequence(self, codes: tp.Any, lengths: tp.Any = None, *, generation: bool = False) -> tp.Any:
        """The delayed ids `[B, C, S]` of codes `[B, C, T]`: the processor's decoder ids before the training cut.

        `S = T + max(delay_pattern) + 2` for training (`+ 1` for generation); the
        processor's batch is as wide as its longest example, so with `T =
        max(lengths)` the two are equal.
        """
        frames, framed = self.frames(codes, lengths, generation=generation)
        pattern = self.provider.get_pattern(frames.shape[-1])
        built, _, _ = pattern.build_pattern_sequence(
            frames, self.bos_token_id, lengths=framed, fill_after=self.pad_token_id, padding_side="left"
        )
        return built

    def inputs(self, codes: tp.Any, lengths: tp.Any = None, *, generation: bool = False) -> dict[str, tp.Any]:
        """The processor's decoder outputs, in its layouts.

        Training: `decoder_input_ids [B, S - 1, C]`, `decoder_attention_mask
        [B, S - 1]` and `labels [B * C, S - 1]`; generation: the ids `[B, S, C]`
        and the mask `[B, S]`.
        """
        import jax.numpy as jnp

        seq = self.sequence(codes, lengths, generation=generation)
        batch, channels, steps = seq.shape
        framed = example_lengths(np.shape(codes), lengths) + (0 if generation else 1)
        own = framed + max(self.delay_pattern) + 1  # the example's steps, at the end of the row
        mask = (jnp.arange(steps)[None, :] >= steps - own[:, None]).astype(jnp.int32)
        ids = jnp.swapaxes(seq, 1, 2)
        if generation:
            return {"decoder_input_ids": ids, "decoder_attention_mask": mask}
        target = seq[..., 1:]
        ignored = (target == self.pad_token_id) | (target == self.bos_token_id)
        labels = jnp.where(ignored, IGNORE, target).reshape(batch * channels, steps - 1)
        return {"decoder_input_ids": ids[:, :-1], "decoder_attention_mask": mask[:, :-1], "labels": labels}

    def loss(self, logits: tp.Any, codes: tp.Any, lengths: tp.Any = None) -> tuple[tp.Any, tp.Any]:
        """The model's loss from its logits `[B, C, S - 1, V]` on the training inputs: `(loss, per_channel)`.

        `lm.pattern_cross_entropy` of the framed codes (codes and eos) on their
        left-padded pattern, averaged over every labelled token (`ForMaskedLMLoss`):
        no reverted logits, no copy of them.

        Raises:
          TypeError: logits that are not floating point, codes that are not integers.
          ValueError: logits whose K or S do not fit the codes' layout (naming both), codes out of range, bad
            `lengths`.
        """
        from jax_patterns import lm

        frames, framed = self.frames(codes, lengths)
        pattern = self.provider.get_pattern(frames.shape[-1])
        check_logits(logits, "logits", pattern, keep_only_valid_steps=False)
        return lm.pattern_cross_entropy(
            logits, frames, pattern, keep_only_valid_steps=False, lengths=framed, padding_side="left", average="tokens"
        )

    def decode(
        self, ids: tp.Any, audio_prompt_len: int | None = None, *, codebooks_last: bool = False
    ) -> tuple[tp.Any, tp.Any]:
        """`(codes [B, C, T], lengths [B])` from generated ids (`T = S - max_delay - 1`), as `batch_decode`.

        Example `b`'s codes are its frames from the first after channel 0's bos
        steps (or from `audio_prompt_len`, counted as transformers counts it,
        the bos frame included) up to the one before its eos (channel 0's pad
        steps, less one), read with the pattern's revert. They start the row,
        pad after.

        Args:
          ids: `[B, C, S]` (ours: `sequence`, what `lm.generate` decodes from),
            or with `codebooks_last=True` transformers' `[B, S, C]`: what its
            `generate` returns and what `inputs(...)["decoder_input_ids"]` is
            (training inputs come back as their codes and lengths).
          audio_prompt_len: where each example's codes start, as transformers'
            `batch_decode` counts it (None: after channel 0's bos steps).
          codebooks_last: whether `ids` are `[B, S, C]`.

        Returns:
          `(codes, lengths)`: each example's codes at the start of its row, pad
          after them.

        Raises:
          ValueError: ids of another rank or channel count (naming the other
            layout when the ids are in it), or too few steps for the delays.
          TypeError: ids that are not integers, a flag that is not a bool.
        """
        import jax.numpy as jnp

        ids = jnp.asarray(ids_in_our_layout(ids, len(self.delay_pattern), codebooks_last))
        steps = ids.shape[-1]
        timesteps = steps - max(self.delay_pattern) - 1
        if timesteps < 1:
            raise ValueError(f"`ids` has S={steps} steps; Dia's layout needs at least {max(self.delay_pattern) + 2}")
        frames, _, _ = self.provider.get_pattern(timesteps).revert_pattern_sequence(ids, self.pad_token_id)
        start, length = self._window(ids[:, 0, :], audio_prompt_len, timesteps)
        j = jnp.arange(timesteps)[None, None, :]
        source = jnp.broadcast_to(jnp.clip(j + start[:, None, None], 0, timesteps - 1), frames.shape)
        moved = jnp.take_along_axis(frames, source, axis=2)
        return jnp.where(j < length[:, None, None], moved, self.pad_token_id), length

    def _window(self, first: tp.Any, audio_prompt_len: tp.Any, timesteps: int) -> tuple[tp.Any, tp.Any]:
        """`batch_decode`'s window of each example, `(first frame, number of frames)`, from channel 0's ids `[B, S]`."""
        import jax.numpy as jnp

        if audio_prompt_len is None:
            start = jnp.sum(first == self.bos_token_id, axis=-1)
        else:
            start = jnp.full((first.shape[0],), check_int("audio_prompt_len", audio_prompt_len, minimum=0))
        end = first.shape[-1] - jnp.sum(first == self.pad_token_id, axis=-1) - 1
        start, end = jnp.maximum(start - 1, 0), end - 1  # transformers' frame 0 is the bos step
        return start, jnp.clip(end - start, 0, timesteps).astype(jnp.int32)
