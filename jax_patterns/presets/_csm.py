"""CSM (Sesame's conversational speech model), as transformers' `CsmForConditionalGeneration` runs it."""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import check_codes, check_int, is_host
from jax_patterns.presets._common import (
    IGNORE,
    check_ids,
    check_rows,
    example_lengths,
    first_true,
    ids_in_our_layout,
    masked_cross_entropy,
)


@dataclasses.dataclass(frozen=True)
class CSM:
    """transformers' CSM convention (`CsmProcessor`, `CsmForConditionalGeneration`, its generation).

    - A two-level decoder: at each position the backbone reads one embedding
      (a text token's, or an audio frame's: the sum of its K codebooks' rows)
      and predicts codebook 0 of the next frame; a depth decoder then predicts
      codebooks 1..K-1 of that frame, one at a time. A parallel pattern (all K
      codebooks in one step, after one special step): `provider`, with
      `lm.generate(..., special_token=codebook_pad_token_id,
      step_returns="tokens")` and a step function that runs both levels.
      `lm.two_level_step` compiles one: the backbone as `backbone_fn`, the
      depth decoder as `depth_init` (a new cache per frame, the backbone's
      last hidden state at its position 0) and `depth_fn`; `depth_sampling`
      plays `generate`'s `depth_decoder_temperature` / `depth_decoder_top_k`.
    - Inputs: the text ids `[B, S]` hold `audio_token_id` where an audio frame
      goes (example `b`'s `j`-th placeholder takes its frame `j`: its clips'
      frames, in order) and `audio_eos_token_id` where a segment ends (the
      all-`codebook_eos_token_id` frame). `frames` gives the frame of every
      position, `audio_positions` which positions read audio, and
      `embedding_ids` the rows of the backbone's one audio table (K *
      `vocab_size` rows: codebook `k`'s code `c` is row `k * vocab_size + c`;
      the depth decoder's table, tied to it, has the same layout).
    - Training (`labels`): `[B, S, K]`, the frame at audio positions, -100
      elsewhere; a frame outside `depth` (the processor's -101 frames) keeps
      codebook 0 only. `loss`: the backbone's cross entropy of codebook 0
      (the logits at `s` predict position `s + 1`), plus the depth decoder's
      over codebooks 1..K-1 of every frame with depth labels, each a mean over
      its labelled tokens.
    - EOS: transformers' `generate` stops an example at the first frame whose
      codebooks 0..K-2 are all `codebook_eos_token_id`, and its audio
      (`output_audio=True`) ends before the first frame whose K codebooks all
      are: `decode` gives that cut.

    Example:
      >>> import numpy as np
      >>> csm = CSM(2, vocab_size=10, audio_token_id=6, audio_eos_token_id=7, codebook_pad_token_id=9)
      >>> frames = csm.frames(np.array([[1, 6, 6, 7]]), np.array([[[3, 4], [5, 8]]]))
      >>> np.asarray(frames).tolist()
      [[[9, 9], [3, 5], [4, 8], [0, 0]]]
      >>> np.asarray(csm.embedding_ids(frames)).tolist()
      [[[9, 19], [3, 15], [4, 18], [0, 10]]]
    """

    num_codebooks: int
    vocab_size: int
    audio_token_id: int
    audio_eos_token_id: int
    codebook_eos_token_id: int = 0
    codebook_pad_token_id: int = 2050

    def __post_init__(self):
        check_ids(self, "num_codebooks", "audio_token_id", "audio_eos_token_id", "codebook_eos_token_id")
        check_ids(self, "codebook_pad_token_id")
        check_int("vocab_size", self.vocab_size, minimum=1)
        if self.audio_token_id == self.audio_eos_token_id:
            raise ValueError(f"`audio_token_id` and `audio_eos_token_id` are both {self.audio_token_id}")
        for name in ("codebook_eos_token_id", "codebook_pad_token_id"):
            if getattr(self, name) >= self.vocab_size:
                raise ValueError(f"`{name}`={getattr(self, name)} is outside the codebook vocabulary `vocab_size`")
        if self.codebook_eos_token_id == self.codebook_pad_token_id:
            raise ValueError(
                f"`codebook_eos_token_id` and `codebook_pad_token_id` are both {self.codebook_pad_token_id}"
            )
        check_rows(self.num_codebooks * self.vocab_size, "`num_codebooks` * `vocab_size`")

    @property
    def provider(self) -> jp.ParallelPatternProvider:
        """The pattern: `get_pattern(N)` is one special step, then frame `t` at step `t + 1`."""
        return jp.ParallelPatternProvider(self.num_codebooks)

    @property
    def _below(self) -> int:
        return min(self.vocab_size, self.codebook_pad_token_id)

    def audio_positions(self, input_ids: tp.Any) -> tp.Any:
        """`[B, S]` bool: the positions whose embedding is an audio frame's (placeholders and audio eos)."""
        ids = _text_ids(input_ids)
        return (ids == self.audio_token_id) | (ids == self.audio_eos_token_id)

    def frames(self, input_ids: tp.Any, codes: tp.Any, lengths: tp.Any = None) -> tp.Any:
        """The audio frame of every position, `[B, S, K]`: example `b`'s frame `j` at its `j`-th `audio_token_id`,
        the eos frame at `audio_eos_token_id`, `codebook_pad_token_id` at text positions.

        Args:
          input_ids: the text ids `[B, S]` (the processor's, placeholders expanded).
          codes: `[B, K, T]` codes, example `b`'s frames (its clips, in order) first.
          lengths: example `b`'s number of frames (default `T`); host values must equal its number of
            placeholders.

        Raises:
          ValueError: ids or codes of another shape, codes out of range, a host count of placeholders that
            differs from the example's frames.
          TypeError: ids or codes that are not integers.
        """
        import jax.numpy as jnp

        ids = _text_ids(input_ids)
        codes = check_codes(codes, "codes", n_q=self.num_codebooks, below=self._below)
        if np.shape(codes)[0] != ids.shape[0]:
            raise ValueError(f"`codes` has {np.shape(codes)[0]} examples; `input_ids` has {ids.shape[0]}")
        frames = example_lengths(np.shape(codes), lengths)
        placeholder = ids == self.audio_token_id
        if is_host(input_ids) and (lengths is None or is_host(lengths)):
            _check_count(np.asarray(placeholder).sum(-1), np.asarray(frames))
        j = jnp.clip(jnp.cumsum(placeholder, axis=-1) - 1, 0, max(np.shape(codes)[-1] - 1, 0))  # [B, S]
        source = jnp.asarray(codes)
        if source.shape[-1] == 0:
            source = jnp.full((*source.shape[:2], 1), self.codebook_pad_token_id, source.dtype)
        picked = jnp.take_along_axis(jnp.swapaxes(source, 1, 2), j[..., None], axis=1)  # [B, S, K]
        fill = jnp.where(ids == self.audio_eos_token_id, self.codebook_eos_token_id, self.codebook_pad_token_id)
        return jnp.where(placeholder[..., None], picked, fill[..., None].astype(picked.dtype))

    def embedding_ids(self, frames: tp.Any) -> tp.Any:
        """Frames `[..., K]` as rows of the backbone's audio table: codebook `k`'s code `c` is `k * vocab_size + c`.

        An audio position's embedding is the sum of its K rows
        (`CsmBackboneModelEmbeddings`); text positions read the text table
        at their id instead (`audio_positions` says which).

        Raises:
          ValueError: frames whose last axis is not K, a host id outside `[0, vocab_size)`.
          TypeError: frames that are not integers.
        """
        import jax.numpy as jnp

        k = self.num_codebooks
        shape = None if frames is None else tuple(np.shape(frames))
        if shape is None or len(shape) < 1 or shape[-1] != k:
            raise ValueError(f"`frames` must be [..., K={k}], got shape {shape}")
        flat = np.reshape(frames, (-1, 1, k)) if is_host(frames) else jnp.reshape(frames, (-1, 1, k))
        check_codes(flat, "frames", n_q=1, below=self.vocab_size)
        frames = jnp.asarray(frames)
        offsets = jnp.arange(self.num_codebooks, dtype=frames.dtype) * self.vocab_size
        return frames + offsets.reshape((1,) * (frames.ndim - 1) + (-1,))

    def labels(self, input_ids: tp.Any, codes: tp.Any, lengths: tp.Any = None, depth: tp.Any = None) -> tp.Any:
        """The model's expanded labels `[B, S, K]`: the frame at audio positions, -100 elsewhere.

        `depth` (`[B, S]` bool, default: every position) marks the frames the
        depth decoder learns; elsewhere only codebook 0 is a label (the
        processor's -101 frames). The eos frames always are.

        Raises:
          ValueError: as `frames`, and a `depth` that is not bool `[B, S]`.
        """
        import jax.numpy as jnp

        frames = self.frames(input_ids, codes, lengths)
        audio = self.audio_positions(input_ids)
        labels = jnp.where(audio[..., None], frames, IGNORE)
        if depth is None:
            return labels
        if is_host(depth):
            try:
                depth = np.asarray(depth)
            except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
                raise TypeError(f"`depth` must be a bool array [B, S], got {type(depth).__name__}") from err
        if tuple(depth.shape) != tuple(audio.shape) or depth.dtype != np.bool_:
            raise ValueError(
                f"`depth` must be bool [B, S] = {tuple(audio.shape)}, got {tuple(depth.shape)} {depth.dtype}"
            )
        depth = jnp.asarray(depth)
        keep = depth | (jnp.asarray(_text_ids(input_ids)) == self.audio_eos_token_id)
        codebook = jnp.arange(self.num_codebooks)[None, None, :]
        return jnp.where((codebook > 0) & ~keep[..., None], IGNORE, labels)

    def loss(self, backbone_logits: tp.Any, depth_logits: tp.Any, labels: tp.Any) -> tuple[tp.Any, tp.Any, tp.Any]:
        """`(loss, backbone_loss, depth_loss)` as `CsmForConditionalGeneration(labels=...)` computes them.

        Args:
          backbone_logits: `[B, S, V]`, the backbone's logits at every position
            (position `s` predicts codebook 0 at `s + 1`).
          depth_logits: `[B, S, K - 1, V]`, the depth decoder's logits for the
            frame at position `s` (fed the backbone's hidden state at `s - 1`,
            then codebooks 0..K-2 of the frame): they predict codebooks 1..K-1.
            Read only at frames with depth labels.
          labels: `[B, S, K]`, from `labels`.

        Returns:
          the sum of the two losses, and each: the mean cross entropy over its
          labelled tokens (NaN where it has none, as transformers').

        Raises:
          TypeError: logits that are not floating point, labels that are not integers.
          ValueError: arrays of other shapes (or no class), a host label neither -100 nor in
            `[0, vocab_size)`.
        """
        import jax.numpy as jnp

        from jax_patterns.lm._targets import dtype_of

        labels = jnp.asarray(self._labels(labels))
        k = self.num_codebooks
        batch, steps, _ = labels.shape
        expected = {"backbone_logits": (batch, steps), "depth_logits": (batch, steps, k - 1)}
        spelt = {"backbone_logits": f"[B={batch}, S={steps}, V]", "depth_logits": f"[B, S, K - 1={k - 1}, V]"}
        for name, logits in (("backbone_logits", backbone_logits), ("depth_logits", depth_logits)):
            shape = tuple(np.shape(logits)) if logits is not None else None
            if shape is None or len(shape) != len(expected[name]) + 1 or shape[:-1] != expected[name] or not shape[-1]:
                raise ValueError(f"`{name}` must be {spelt[name]}, got shape {shape}")
            if not jnp.issubdtype(dtype_of(logits), jnp.floating):
                raise TypeError(f"`{name}` must be floating point logits, got dtype {dtype_of(logits)}")
        backbone = masked_cross_entropy(jnp.asarray(backbone_logits)[:, :-1], labels[:, 1:, 0])
        depth = masked_cross_entropy(jnp.asarray(depth_logits), labels[..., 1:])
        return backbone + depth, backbone, depth

    def _labels(self, labels: tp.Any) -> tp.Any:
        """`labels` `[B, S, K]` checked: integers, host values -100 or in `[0, vocab_size)`."""
        k = self.num_codebooks
        if labels is None:
            raise TypeError(f"`labels` is None; expected labels [B, S, K={k}]")
        if is_host(labels):
            try:
                labels = np.asarray(labels)
            except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
                raise TypeError(f"`labels` must be an integer array, got {type(labels).__name__}") from err
        if labels.ndim != 3 or labels.shape[-1] != k:
            raise ValueError(f"`labels` must be [B, S, K={k}], got shape {tuple(labels.shape)}")
        dtype = np.dtype(labels.dtype) if is_host(labels) else labels.dtype
        if dtype == np.bool_ or not np.issubdtype(dtype, np.integer):
            raise TypeError(f"`labels` must hold integer labels, got dtype {dtype}")
        if is_host(labels) and labels.size:
            scored = labels[labels != IGNORE]
            if scored.size and (scored.min() < 0 or scored.max() >= self.vocab_size):
                bad = int(scored.min()) if scored.min() < 0 else int(scored.max())
                raise ValueError(
                    f"`labels` holds {bad}; labels must be {IGNORE} or lie in [0, `vocab_size`={self.vocab_size})"
                )
        return labels

    def decode(self, frames: tp.Any, *, codebooks_last: bool = False) -> tuple[tp.Any, tp.Any]:
        """`(codes [B, K, N], lengths [B])` from generated frames: each example's audio ends before its first frame
        whose K codebooks are all `codebook_eos_token_id` (as `generate(output_audio=True)` cuts it).

        Args:
          frames: `[B, K, N]` (what `lm.generate` returns), or transformers' `[B, N, K]` (what its `generate`
            returns) with `codebooks_last=True`.
          codebooks_last: whether `frames` are `[B, N, K]`.

        Raises:
          ValueError: frames of another rank or K (naming the other layout when they are in it), a host code
            outside `[0, vocab_size)`.
          TypeError: frames that are not integers, a flag that is not a bool.
        """
        import jax.numpy as jnp

        codes = ids_in_our_layout(frames, self.num_codebooks, codebooks_last, "frames", below=self.vocab_size)
        codes = jnp.asarray(codes)
        eos = jnp.all(codes == self.codebook_eos_token_id, axis=1)  # [B, N]
        return codes, first_true(eos)


def _text_ids(input_ids: tp.Any) -> tp.Any:
    """The text ids `[B, S]` checked (rank 2, integers, host values in int32), as a jax array."""
    import jax.numpy as jnp

    if input_ids is None or len(np.shape(input_ids)) != 2:
        shape = None if input_ids is None else np.shape(input_ids)
        raise ValueError(f"`input_ids` must be text ids [B, S], got shape {shape}")
    expanded = np.expand_dims(input_ids, 1) if is_host(input_ids) else jnp.expand_dims(input_ids, 1)
    return jnp.asarray(check_codes(expanded, "input_ids", n_q=1, below=None)[:, 0])


def _check_count(placeholders: np.ndarray, frames: np.ndarray) -> None:
    """Each example's audio placeholders against its frames (host values only)."""
    bad = np.flatnonzero(placeholders != frames)
    if bad.size:
        b = int(bad[0])
        raise ValueError(
            f"`input_ids`[{b}] has {int(placeholders[b])} audio placeholders but example {b} has "
            f"{int(frames[b])} frames (`codes`, `lengths`); each placeholder takes one frame"
        )
