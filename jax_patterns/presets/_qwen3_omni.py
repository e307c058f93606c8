"""Qwen3-Omni's talker and code predictor, as transformers' `Qwen3OmniMoeTalkerForConditionalGeneration` runs them."""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import INT32_MAX, check_codes, check_int, is_host
from jax_patterns.presets._common import check_ids, check_rows, first_true, ids_in_our_layout, int_ids

SUPPRESSED = 1024
"""transformers suppresses the talker's last 1024 ids (but eos) when it generates audio."""


@dataclasses.dataclass(frozen=True)
class Qwen3OmniTalker:
    """transformers' Qwen3-Omni talker convention (`Qwen3OmniMoeTalkerForConditionalGeneration` and its code
    predictor, driven by `Qwen3OmniMoeForConditionalGeneration.generate`).

    - A two-level decoder over `num_code_groups` (G) codebooks: at each step
      the talker predicts group 0 of a frame from its codec vocabulary
      (`vocab_size` ids: the codes, then its special ids), the code predictor
      then groups 1..G-1, one at a time (`code_vocab_size` codes each). A
      parallel pattern after one special step: `provider`, with
      `lm.generate(..., special_token=codec_pad_id, eos_token=codec_eos_token_id,
      step_returns="tokens")` and a step function that runs both levels
      (`lm.two_level_step`: the talker as `backbone_fn`, the code predictor as
      `depth_init`, a new cache per frame with the talker's hidden state at its
      position 0, and `depth_fn`).
    - The talker's input for frame `t` is the sum of its G codes' embeddings
      (group 0 in the talker's table, group `g` in the code predictor's table
      `g - 1`; `embedding_ids` gives rows of the tables concatenated in that
      order) plus the thinker's text: `trailing_text_hidden[:, t]` while there
      is some, then `tts_pad_embed` (`text_positions` gives which).
    - Generation suppresses the talker's last 1024 ids but eos
      (`suppress_tokens`); an example ends at its first frame whose group 0 is
      `codec_eos_token_id`, and `decode` zeroes the codes from there (what the
      composite model hands code2wav). transformers returns the codes of
      `max_new_tokens - 1` frames: the last step's group 0 gets no residual
      codes (the code predictor runs when the next step is prepared).

    Example:
      >>> import numpy as np
      >>> talker = Qwen3OmniTalker(3, vocab_size=1032, code_vocab_size=8, codec_eos_token_id=1030)
      >>> codes, lengths = talker.decode(np.array([[[5, 1030, 3], [1, 2, 3], [4, 5, 6]]]))
      >>> np.asarray(codes).tolist(), np.asarray(lengths).tolist()
      ([[[5, 0, 0], [1, 0, 0], [4, 0, 0]]], [1])
      >>> np.asarray(talker.embedding_ids(np.array([5, 1, 4]))).tolist()
      [5, 1033, 1044]
    """

    num_code_groups: int
    vocab_size: int
    code_vocab_size: int
    codec_eos_token_id: int
    codec_pad_id: int | None = None

    def __post_init__(self):
        check_ids(self, "num_code_groups", "codec_eos_token_id")
        check_int("vocab_size", self.vocab_size, minimum=1)
        check_int("code_vocab_size", self.code_vocab_size, minimum=1)
        if self.codec_pad_id is not None:
            check_int("codec_pad_id", self.codec_pad_id, minimum=0)
        for name in ("codec_eos_token_id", "codec_pad_id"):
            value = getattr(self, name)
            if value is not None and not self.code_vocab_size <= value < self.vocab_size:
                raise ValueError(
                    f"`{name}`={value} must be a special id of the talker's vocabulary, in "
                    f"[`code_vocab_size`={self.code_vocab_size}, `vocab_size`={self.vocab_size})"
                )
        check_rows(
            self.vocab_size + (self.num_code_groups - 1) * self.code_vocab_size,
            "`vocab_size` + (`num_code_groups` - 1) * `code_vocab_size`",
        )

    @property
    def provider(self) -> jp.ParallelPatternProvider:
        """The pattern: `get_pattern(N)` is one special step, then frame `t` at step `t + 1`."""
        return jp.ParallelPatternProvider(self.num_code_groups)

    @property
    def suppress_tokens(self) -> tuple[int, ...]:
        """The talker ids generation never samples (transformers' `suppress_tokens`): the last 1024 but eos."""
        return tuple(
            i for i in range(max(self.vocab_size - SUPPRESSED, 0), self.vocab_size) if i != self.codec_eos_token_id
        )

    @property
    def offsets(self) -> list[int]:
        """Each group's first row in the tables concatenated: the talker's, then the code predictor's G - 1."""
        return [0] + [self.vocab_size + g * self.code_vocab_size for g in range(self.num_code_groups - 1)]

    def embedding_ids(self, frames: tp.Any) -> tp.Any:
        """Frames `[..., G]` as rows of the concatenated tables (`offsets`): a frame's input is their sum.

        Raises:
          ValueError: frames whose last axis is not G, or a host code of groups 1..G-1 outside
            `[0, code_vocab_size)` or of group 0 outside `[0, vocab_size)`.
        """
        import jax.numpy as jnp

        g = self.num_code_groups
        if frames is None or np.ndim(frames) < 1 or np.shape(frames)[-1] != g:
            raise ValueError(
                f"`frames` must be [..., G={g}], got shape {np.shape(frames) if frames is not None else None}"
            )
        flat = np.reshape(frames, (-1, 1, g)) if is_host(frames) else jnp.reshape(frames, (-1, 1, g))
        check_codes(flat[..., :1], "frames", n_q=1, below=self.vocab_size)
        check_codes(flat[..., 1:], "frames", n_q=1, below=self.code_vocab_size)
        frames = jnp.asarray(frames)
        return frames + jnp.asarray(self.offsets, frames.dtype).reshape((1,) * (frames.ndim - 1) + (-1,))

    def text_positions(self, steps: int, text_length: tp.Any) -> tp.Any:
        """`[B, N]` int32: the index into `trailing_text_hidden` each frame's input adds, or -1 for `tts_pad_embed`.

        Frame `t` (fed at step `t + 1`) adds the thinker's text `t` while
        `t < text_length[b]` (`trailing_text_hidden.shape[1]` in transformers,
        one length for the batch), `tts_pad_embed` after.

        Raises:
          TypeError: `steps` not an int, `text_length` not integers.
          ValueError: `text_length` not `[B]`, or a host value outside `[0, 2**31)` (device values are not read
            back; they are read as they compare with the frame index).
        """
        import jax.numpy as jnp

        steps = check_int("steps", steps, minimum=0)
        length = int_ids(text_length, "text_length", ranks=(1,))  # host values in [0, 2**31)
        if not is_host(length) and length.dtype == jnp.uint32:  # device values are not read back: no int32 wrap
            length = jnp.minimum(length, jnp.asarray(INT32_MAX, jnp.uint32))
        length = jnp.asarray(length).astype(jnp.int32)
        t = jnp.arange(steps, dtype=jnp.int32)[None, :]
        return jnp.where(t < length[:, None], t, -1).astype(jnp.int32)

    def decode(self, frames: tp.Any, *, codebooks_last: bool = False) -> tuple[tp.Any, tp.Any]:
        """`(codes [B, G, N], lengths [B])` from generated frames, as the composite model hands them to code2wav:
        each example ends at its first frame whose group 0 is `codec_eos_token_id`; its codes from there are 0.

        Args:
          frames: `[B, G, N]` (what `lm.generate` returns, transformers' `talker_codes`), or `[B, N, G]` with
            `codebooks_last=True`.
          codebooks_last: whether `frames` are `[B, N, G]`.

        Raises:
          ValueError: frames of another rank or G (naming the other layout when they are in it), a host id
            outside `[0, vocab_size)`.
          TypeError: frames that are not integers, a flag that is not a bool.
        """
        import jax.numpy as jnp

        codes = ids_in_our_layout(frames, self.num_code_groups, codebooks_last, "frames", below=self.vocab_size)
        codes = jnp.asarray(codes)
        lengths = first_true(codes[:, 0] == self.codec_eos_token_id)
        kept = jnp.arange(codes.shape[-1])[None, None, :] < lengths[:, None, None]
        return jnp.where(kept, codes, jnp.zeros((), codes.dtype)), lengths
