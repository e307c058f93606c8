"""Presets: the interleaving conventions of codec LMs as transformers runs them, exact.

A preset knows a model family's pattern (`provider`), its special tokens and
its tensor layouts, and gives what the model's own code gives: the input ids
from codes, the training labels, the loss (through
`lm.pattern_cross_entropy`: no reverted logits), and the undo of generated ids.
Our arrays are `[B, K, S]`; transformers' MusicGen takes `[B * K, S]`, one
reshape away (`ids.reshape(B * K, S)`), and its labels are `[B, S, K]`.

`from_transformers(config)` reads a transformers config by its attributes
(`model_type`, `num_codebooks`, `audio_channels`, token ids); jax_patterns never
imports transformers.

This release has MusicGen (and MusicGen Melody), Moshi, Higgs Audio v2, Dia,
Kyutai speech-to-text and Bark's coarse model.
"""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import check_flag, check_int, clip_lengths, validate_lengths

IGNORE = -100
"""transformers' ignored label."""


def _codes(codes: tp.Any, num_codebooks: int, below: int, name: str = "codes") -> tp.Any:
    """Codes `[B, K, T]` checked: rank, K, an integer dtype, and (host values) every code in `[0, below)`.

    `below` is the smallest special id of the preset (its ids sit above the
    codes): a code equal to one would be read back as that id. Device values
    are not read back (no sync), as for `lengths`.
    """
    import jax

    if codes is None:
        raise TypeError(f"`{name}` is None; expected codes [B, K, T]")
    host = not isinstance(codes, (jax.Array, jax.core.Tracer))
    array = np.asarray(codes) if host else codes
    if array.ndim != 3 or array.shape[1] != num_codebooks:
        raise ValueError(f"`{name}` must be codes [B, K={num_codebooks}, T], got shape {tuple(array.shape)}")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"`{name}` must hold integer codes, got dtype {array.dtype}")
    if host and array.size and (array.min() < 0 or array.max() >= below):
        bad = int(array.min()) if array.min() < 0 else int(array.max())
        raise ValueError(
            f"`{name}` holds the code {bad}; codes must lie in [0, {below}) (the preset's special ids start at {below})"
        )
    return array


def _lengths(shape: tuple[int, ...], lengths: tp.Any) -> tp.Any:
    """Each example's number of frames, int32 `[B]`: `lengths` (checked, the library's policy), or `T` for all.

    Host values outside `[0, T]` raise; device or traced values are clipped.
    """
    import jax.numpy as jnp

    batch, _, timesteps = shape
    if lengths is None:
        return jnp.full((batch,), timesteps, jnp.int32)
    return clip_lengths(validate_lengths(lengths, (batch,), timesteps), timesteps)


def _ids(preset: tp.Any, *names: str) -> None:
    """The preset's sizes and token ids checked: ints >= 0 (sizes >= 1), ids distinct where the convention needs it."""
    for name in names:
        check_int(name, getattr(preset, name), minimum=1 if name.startswith("num_") else 0)


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
        _ids(self, "num_codebooks", "pad_token_id")
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
        codes = _codes(codes, self.num_codebooks, self.pad_token_id)
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
        """
        from jax_patterns import lm

        codes = _codes(codes, self.num_codebooks, self.pad_token_id)
        pattern = self.provider.get_pattern(np.shape(codes)[-1])
        return lm.pattern_cross_entropy(logits, codes, pattern, keep_only_valid_steps=False, lengths=lengths)

    def decode(self, ids: tp.Any, timesteps: int, lengths: tp.Any = None) -> tp.Any:
        """Codes `[B, K, T]` from the model's delayed ids `[B, K, S]` (what `generate` returns, pads dropped)."""
        pattern = self.provider.get_pattern(check_int("timesteps", timesteps, minimum=0))
        return pattern.revert_pattern_sequence(ids, self.pad_token_id, lengths=lengths)[0]


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
        _ids(self, "num_codebooks", "audio_vocab_size")

    @property
    def provider(self) -> jp.DelayedPatternProvider:
        """The pattern: `get_pattern(T)` has `T + 1` steps."""
        return jp.DelayedPatternProvider(self.num_codebooks, [0] + [1] * (self.num_codebooks - 1), empty_initial=-1)

    def sequence(self, codes: tp.Any, timesteps: int | None = None, lengths: tp.Any = None) -> tp.Any:
        """The delayed sequence `[B, K, T' + 1]` of codes `[B, K, T]` (`T' = timesteps`, default `T`; -1 past `T`)."""
        import jax.numpy as jnp

        codes = jnp.asarray(_codes(codes, self.num_codebooks, self.audio_vocab_size))
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
        past = jnp.arange(labels.shape[-1])[None, None, :] >= _lengths(np.shape(codes), lengths)[:, None, None]
        return jnp.where(past, jnp.asarray(self.audio_vocab_size, labels.dtype), labels)

    def loss(self, audio_logits: tp.Any, codes: tp.Any, lengths: tp.Any = None) -> tuple[tp.Any, tp.Any]:
        """Moshi's depth loss from the depth decoder's logits `[B, K, T, V]`: `(loss, per_codebook)`.

        transformers' `audio_logits` are `[B * T, K, V]`
        (`.reshape(B, T, K, V).transpose(0, 2, 1, 3)` gives ours). The logits at
        step `t` predict the delayed labels' step `t` (no shift: the depth
        decoder reads step `t`'s hidden state), over the labels' `T` steps, so
        the acoustic codes of the last frame are not scored; the mean is over
        every scored code (`average="tokens"`, a `CrossEntropyLoss`).
        """
        from jax_patterns import lm

        codes = _codes(codes, self.num_codebooks, self.audio_vocab_size)
        pattern = self.provider.get_pattern(np.shape(codes)[-1])
        return lm.pattern_cross_entropy(
            audio_logits, codes, pattern, keep_only_valid_steps=True, lengths=lengths, average="tokens"
        )

    def decode(self, ids: tp.Any, timesteps: int, lengths: tp.Any = None) -> tp.Any:
        """Codes `[B, K, T]` from delayed ids `[B, K, T + 1]`."""
        pattern = self.provider.get_pattern(check_int("timesteps", timesteps, minimum=0))
        return pattern.revert_pattern_sequence(ids, self.audio_vocab_size, lengths=lengths)[0]


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
        _ids(self, "num_codebooks", "audio_stream_bos_id", "audio_stream_eos_id")
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
        codes = jnp.asarray(_codes(codes, self.num_codebooks, low))
        timesteps = codes.shape[-1]
        lengths = _lengths(np.shape(codes), lengths)
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
        steps = _lengths(np.shape(codes), lengths) + 1 + self.num_codebooks  # codes, eos, then K steps of delay and bos
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
        """
        import jax.numpy as jnp

        from jax_patterns import lm

        framed, framed_lengths, lengths = self._framed(codes, lengths)
        pattern = self.provider.get_pattern(framed.shape[-1])
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

    def decode(self, ids: tp.Any, timesteps: int, lengths: tp.Any = None) -> tp.Any:
        """Codes `[B, K, T]` from framed examples' delayed ids `[B, K, T + K + 1]` (bos and eos frames dropped).

        With `lengths`, example `b` has `lengths[b]` frames (eos past them).
        """

        timesteps = check_int("timesteps", timesteps, minimum=0)
        batch = np.shape(ids)[:-2]
        framed = None if lengths is None else _lengths((*batch, 0, timesteps), lengths) + 1
        pattern = self.provider.get_pattern(timesteps + 1)
        return pattern.revert_pattern_sequence(ids, self.audio_stream_eos_id, lengths=framed)[0][..., :timesteps]


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
    (`.reshape(B, C, S - 1, V)` gives ours).

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
        if not delays:
            raise ValueError("`delay_pattern` is empty; Dia needs one delay per channel")
        object.__setattr__(self, "delay_pattern", delays)
        _ids(self, "bos_token_id", "pad_token_id", "eos_token_id")
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
        codes = jnp.asarray(_codes(codes, len(self.delay_pattern), low))
        batch, channels, timesteps = codes.shape
        lengths = _lengths(np.shape(codes), lengths)
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
        framed = _lengths(np.shape(codes), lengths) + (0 if generation else 1)
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
        """
        from jax_patterns import lm

        frames, framed = self.frames(codes, lengths)
        pattern = self.provider.get_pattern(frames.shape[-1])
        return lm.pattern_cross_entropy(
            logits, frames, pattern, keep_only_valid_steps=False, lengths=framed, padding_side="left", average="tokens"
        )

    def decode(self, ids: tp.Any, audio_prompt_len: int | None = None) -> tuple[tp.Any, tp.Any]:
        """`(codes [B, C, T], lengths [B])` from generated ids `[B, C, S]` (`T = S - max_delay - 1`), as `batch_decode`.

        Example `b`'s codes are its frames from the first after channel 0's bos
        steps (or from `audio_prompt_len`, counted as transformers counts it,
        the bos frame included) up to the one before its eos (channel 0's pad
        steps, less one), read with the pattern's revert. They start the row,
        pad after.
        """
        import jax.numpy as jnp

        ids = jnp.asarray(ids)
        batch, _, steps = ids.shape
        timesteps = steps - max(self.delay_pattern) - 1
        if timesteps < 1:
            raise ValueError(f"`ids` has S={steps} steps; Dia's layout needs at least {max(self.delay_pattern) + 2}")
        frames, _, _ = self.provider.get_pattern(timesteps).revert_pattern_sequence(ids, self.pad_token_id)
        first = ids[:, 0, :]
        if audio_prompt_len is None:
            start = jnp.sum(first == self.bos_token_id, axis=-1)
        else:
            start = jnp.full((batch,), check_int("audio_prompt_len", audio_prompt_len, minimum=0))
        end = steps - jnp.sum(first == self.pad_token_id, axis=-1) - 1
        start, end = jnp.maximum(start - 1, 0), end - 1  # transformers' frame 0 is the bos step
        length = jnp.clip(end - start, 0, timesteps).astype(jnp.int32)
        j = jnp.arange(timesteps)[None, None, :]
        source = jnp.broadcast_to(jnp.clip(j + start[:, None, None], 0, timesteps - 1), frames.shape)
        moved = jnp.take_along_axis(frames, source, axis=2)
        return jnp.where(j < length[:, None, None], moved, self.pad_token_id), length


@dataclasses.dataclass(frozen=True)
class BarkCoarse:
    """transformers' Bark coarse convention (`BarkCoarseModel.preprocess_histories` and its generation).

    The coarse codebooks are flattened one per step, frame after frame, into one
    vocabulary: codebook `q`'s code `c` is the token `semantic_vocab_size + q *
    codebook_size + c` (`Pattern.to_stream` on a fully flattened delayed layout; the
    same shape as SNAC / Orpheus' 7 tokens per frame). Bark's numbers live in its
    generation configs, so this preset is built directly (defaults: Bark's).

    Example:
      >>> import numpy as np
      >>> BarkCoarse(codebook_size=8, semantic_vocab_size=100).stream(np.array([[[1, 2], [3, 4]]])).tolist()
      [[101, 111, 102, 112]]
    """

    n_coarse_codebooks: int = 2
    codebook_size: int = 1024
    semantic_vocab_size: int = 10_000

    def __post_init__(self):
        check_int("n_coarse_codebooks", self.n_coarse_codebooks, minimum=1)
        check_int("codebook_size", self.codebook_size, minimum=1)
        check_int("semantic_vocab_size", self.semantic_vocab_size, minimum=0)

    @property
    def provider(self) -> jp.DelayedPatternProvider:
        """Every frame flattened, one codebook per step, no special step: `get_pattern(T)` has `K * T` steps."""
        k = self.n_coarse_codebooks
        return jp.DelayedPatternProvider(k, [0] * k, flatten_first=1 << 30, empty_initial=-1)

    @property
    def offsets(self) -> list[int]:
        return [self.semantic_vocab_size + q * self.codebook_size for q in range(self.n_coarse_codebooks)]

    def stream(self, codes: tp.Any) -> tp.Any:
        """Codes `[B, K, T]` as Bark's coarse token stream `[B, K * T]`."""
        codes = _codes(codes, self.n_coarse_codebooks, self.codebook_size)
        pattern = self.provider.get_pattern(codes.shape[-1])
        seq, _, _ = pattern.build_pattern_sequence(codes, -1)
        return pattern.to_stream(seq, self.offsets, -1, card=self.codebook_size)

    def codes(self, stream: tp.Any) -> tp.Any:
        """Bark's coarse token stream `[B, K * T]` back to codes `[B, K, T]`."""
        timesteps = np.shape(stream)[-1] // self.n_coarse_codebooks
        pattern = self.provider.get_pattern(timesteps)
        stream = pattern.from_stream(stream, self.offsets, -1, card=self.codebook_size)
        return pattern.revert_pattern_sequence(stream, -1)[0]

    def history(
        self, coarse_prompt: tp.Any, semantic_length: int, max_coarse_history: int, semantic_to_coarse_ratio: float
    ) -> tp.Any:
        """A speaker prompt's coarse history `[n]`, as `preprocess_histories` makes it for one example.

        The prompt's stream, trimmed to the history that matches the semantic
        prompt it is paired with, minus its last two tokens (Bark's alignment).
        """
        stream = self.stream(np.asarray(coarse_prompt)[None])[0]
        semantic = min(
            int(np.floor(max_coarse_history / semantic_to_coarse_ratio)),
            semantic_length - semantic_length % 2,
            int(np.floor(stream.shape[0] / semantic_to_coarse_ratio)),
        )
        keep = int(round(semantic * semantic_to_coarse_ratio))
        return stream[-keep:][:-2]  # `[-0:]` keeps everything, as transformers' slicing does


@dataclasses.dataclass(frozen=True)
class KyutaiSTT:
    """transformers' Kyutai speech-to-text convention (`KyutaiSpeechToTextForConditionalGeneration`).

    - Each position feeds the model `[text, audio codebook 0, ..., K - 1]`:
      position 0 holds the audio bos in every codebook, position `t + 1` frame
      `t` of every codebook (`prepare_inputs_for_generation`): a parallel
      pattern with a leading special step, `provider.get_pattern(T)`, `T + 1`
      steps.
    - One embedding table: codebook `k`'s code `c` is row `vocab_size + k *
      codebook_vocab_size + c`, the text token its own row, and
      `audio_pad_token_id` (the table's padding row) is never offset
      (`KyutaiSpeechToTextEmbeddings`): `embedding_ids`.
    - With `lengths=`, positions past an example's frames hold
      `audio_pad_token_id` (a zero embedding). transformers has no per-example
      lengths here (its generate reads the batch's longest clip); this is ours.

    Example:
      >>> import numpy as np
      >>> preset = KyutaiSTT(2, codebook_vocab_size=9, vocab_size=5, audio_bos_token_id=8, audio_pad_token_id=23)
      >>> preset.audio_ids(np.array([[[1, 2], [3, 4]]])).tolist()
      [[[8, 1, 2], [8, 3, 4]]]
      >>> preset.embedding_ids(preset.input_ids(np.array([[0, 1, 2]]), np.array([[[1, 2], [3, 4]]]))).tolist()
      [[[0, 13, 22], [1, 6, 17], [2, 7, 18]]]
    """

    num_codebooks: int
    codebook_vocab_size: int
    vocab_size: int
    audio_bos_token_id: int
    audio_pad_token_id: int

    def __post_init__(self):
        _ids(self, "num_codebooks", "codebook_vocab_size", "vocab_size", "audio_bos_token_id", "audio_pad_token_id")
        if self.audio_bos_token_id == self.audio_pad_token_id:
            raise ValueError(f"`audio_bos_token_id` and `audio_pad_token_id` are both {self.audio_pad_token_id}")

    @property
    def provider(self) -> jp.ParallelPatternProvider:
        """The pattern: `get_pattern(T)` is an all-bos step, then frame `t` at step `t + 1`."""
        return jp.ParallelPatternProvider(self.num_codebooks)

    @property
    def offsets(self) -> list[int]:
        """Each input column's offset into the embedding table: 0 for the text, then one per codebook."""
        return [0] + [self.vocab_size + k * self.codebook_vocab_size for k in range(self.num_codebooks)]

    def audio_ids(self, codes: tp.Any, lengths: tp.Any = None) -> tp.Any:
        """The audio inputs `[B, K, T + 1]` of codes `[B, K, T]`: bos, then the frames (`audio_pad` past `lengths`)."""
        low = min(self.audio_bos_token_id, self.audio_pad_token_id)
        codes = _codes(codes, self.num_codebooks, low)
        pattern = self.provider.get_pattern(codes.shape[-1])
        ids, _, _ = pattern.build_pattern_sequence(codes, self.audio_bos_token_id, lengths=lengths)
        if lengths is None:
            return ids
        import jax.numpy as jnp

        past = (
            jnp.arange(ids.shape[-1])[None, None, :] > _lengths(np.shape(codes), lengths)[:, None, None]
        )  # steps after L
        return jnp.where(past, self.audio_pad_token_id, ids)

    def input_ids(self, text: tp.Any, codes: tp.Any, lengths: tp.Any = None) -> tp.Any:
        """The model's `input_ids` `[B, S, 1 + K]`: text tokens `[B, S]` beside the audio inputs' first `S` steps.

        `S <= T + 1`. transformers' `generate` on a clip of `T` frames feeds
        `S = T` positions (it stops after `T` new tokens), so frame `T - 1`
        is never seen by the model.
        """
        import jax.numpy as jnp

        text = jnp.asarray(text)
        audio = self.audio_ids(codes, lengths)
        steps = text.shape[-1]
        if steps > audio.shape[-1]:
            raise ValueError(
                f"`text` has S={steps} positions; codes of T={audio.shape[-1] - 1} frames give at most T + 1"
            )
        return jnp.concatenate([text[..., None], jnp.swapaxes(audio[..., :steps], 1, 2).astype(text.dtype)], axis=-1)

    def embedding_ids(self, input_ids: tp.Any) -> tp.Any:
        """`input_ids` `[..., 1 + K]` as rows of the one embedding table (`audio_pad_token_id` kept)."""
        import jax.numpy as jnp

        ids = jnp.asarray(input_ids)
        offsets = jnp.asarray(self.offsets, ids.dtype).reshape((1,) * (ids.ndim - 1) + (-1,))
        return jnp.where(ids == self.audio_pad_token_id, ids, ids + offsets)


PRESETS: dict[str, type] = {
    "dia": Dia,
    "higgs_audio_v2": HiggsAudio,
    "kyutai_speech_to_text": KyutaiSTT,
    "moshi": Moshi,
    "musicgen": MusicGen,
    "musicgen_decoder": MusicGen,
    "musicgen_melody": MusicGen,
    "musicgen_melody_decoder": MusicGen,
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


def from_transformers(config: tp.Any) -> MusicGen | Moshi | HiggsAudio | Dia | KyutaiSTT:
    """The preset of a transformers config, read by its attributes or keys (no transformers import).

    `config` is a transformers config object or a mapping with the same fields
    (a loaded `config.json`, `config.to_dict()`). A composite config
    (`MusicgenConfig`) is read through its `decoder`, Dia's through its
    `decoder_config`. Moshi's `audio_vocab_size`, when unset (a freshly built
    `MoshiConfig`), falls back to its audio encoder's `codebook_size`, as
    `MoshiConfig` documents and does itself once an encoder config is given.

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
    if PRESETS[model_type] is Dia:
        decoder = _get(config, "decoder_config") or config
        return Dia(
            delay_pattern=tuple(_field(config, "delay_pattern", model_type)),
            bos_token_id=_field(decoder, "bos_token_id", model_type),
            pad_token_id=_field(decoder, "pad_token_id", model_type),
            eos_token_id=_field(decoder, "eos_token_id", model_type),
        )
    if PRESETS[model_type] is KyutaiSTT:
        return KyutaiSTT(
            num_codebooks=_field(config, "num_codebooks", model_type),
            codebook_vocab_size=_field(config, "codebook_vocab_size", model_type),
            vocab_size=_field(config, "vocab_size", model_type),
            audio_bos_token_id=_field(config, "audio_bos_token_id", model_type),
            audio_pad_token_id=_field(config, "audio_pad_token_id", model_type),
        )
    if PRESETS[model_type] is HiggsAudio:
        return HiggsAudio(
            num_codebooks=_field(config, "num_codebooks", model_type),
            audio_stream_bos_id=_field(config, "audio_stream_bos_id", model_type),
            audio_stream_eos_id=_field(config, "audio_stream_eos_id", model_type),
        )
    if PRESETS[model_type] is Moshi:
        return Moshi(
            num_codebooks=_field(config, "num_codebooks", model_type),
            audio_vocab_size=_field(config, "audio_vocab_size", model_type, ("audio_encoder_config", "codebook_size")),
        )
    decoder = _get(config, "decoder")
    source = decoder if decoder is not None and _get(decoder, "num_codebooks") is not None else config
    return MusicGen(
        num_codebooks=_field(source, "num_codebooks", model_type),
        pad_token_id=_field(source, "pad_token_id", model_type),
        audio_channels=_get(source, "audio_channels") or 1,
    )
