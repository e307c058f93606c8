"""Kyutai speech-to-text, as transformers' `KyutaiSpeechToTextForConditionalGeneration` runs it."""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import check_codes, is_host
from jax_patterns.presets._common import check_ids, check_rows, example_lengths, int_ids


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
        check_ids(
            self, "num_codebooks", "codebook_vocab_size", "vocab_size", "audio_bos_token_id", "audio_pad_token_id"
        )
        if self.audio_bos_token_id == self.audio_pad_token_id:
            raise ValueError(f"`audio_bos_token_id` and `audio_pad_token_id` are both {self.audio_pad_token_id}")
        check_rows(
            self.vocab_size + self.num_codebooks * self.codebook_vocab_size,
            "`vocab_size` + `num_codebooks` * `codebook_vocab_size`",
        )

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
        codes = check_codes(codes, "codes", n_q=self.num_codebooks, below=low)
        pattern = self.provider.get_pattern(codes.shape[-1])
        ids, _, _ = pattern.build_pattern_sequence(codes, self.audio_bos_token_id, lengths=lengths)
        if lengths is None:
            return ids
        import jax.numpy as jnp

        past = (
            jnp.arange(ids.shape[-1])[None, None, :] > example_lengths(np.shape(codes), lengths)[:, None, None]
        )  # steps after L
        return jnp.where(past, self.audio_pad_token_id, ids)

    def input_ids(self, text: tp.Any, codes: tp.Any, lengths: tp.Any = None) -> tp.Any:
        """The model's `input_ids` `[B, S, 1 + K]`: text tokens `[B, S]` beside the audio inputs' first `S` steps.

        `S <= T + 1`. transformers' `generate` on a clip of `T` frames feeds
        `S = T` positions (it stops after `T` new tokens), so frame `T - 1`
        is never seen by the model.
        """
        import jax.numpy as jnp

        text = int_ids(text, "text", ranks=(2,), below=self.vocab_size)
        audio = self.audio_ids(codes, lengths)
        if text.shape[0] != audio.shape[0]:
            raise ValueError(f"`text` has {text.shape[0]} examples; `codes` has {audio.shape[0]}")
        text = jnp.asarray(text)
        steps = text.shape[-1]
        if steps > audio.shape[-1]:
            raise ValueError(
                f"`text` has S={steps} positions; codes of T={audio.shape[-1] - 1} frames give at most T + 1"
            )
        return jnp.concatenate([text[..., None], jnp.swapaxes(audio[..., :steps], 1, 2).astype(text.dtype)], axis=-1)

    def embedding_ids(self, input_ids: tp.Any) -> tp.Any:
        """`input_ids` `[..., 1 + K]` as rows of the one embedding table (`audio_pad_token_id` kept).

        Raises:
          TypeError: ids that are not integers.
          ValueError: ids whose last axis is not `1 + K`; a host text id outside `[0, vocab_size)` or audio id
            outside `[0, codebook_vocab_size)` (`audio_pad_token_id` aside).
        """
        import jax.numpy as jnp

        ids = int_ids(input_ids, "input_ids")
        columns = 1 + self.num_codebooks
        if ids.shape[-1] != columns:
            raise ValueError(f"`input_ids` must be [..., 1 + K={columns}] (text, then K codebooks), got {ids.shape}")
        if is_host(ids) and ids.size:
            sizes = np.array([self.vocab_size] + [self.codebook_vocab_size] * self.num_codebooks)
            bad = np.argwhere((ids != self.audio_pad_token_id) & (ids >= sizes))  # negatives refused by `int_ids`
            if bad.size:
                where = tuple(int(i) for i in bad[0])
                what = "the text's [0, `vocab_size`)" if where[-1] == 0 else "a codebook's [0, `codebook_vocab_size`)"
                raise ValueError(f"`input_ids`{list(where)} = {int(ids[where])} is outside {what}")
        ids = jnp.asarray(ids)
        offsets = jnp.asarray(self.offsets, ids.dtype).reshape((1,) * (ids.ndim - 1) + (-1,))
        return jnp.where(ids == self.audio_pad_token_id, ids, ids + offsets)
