"""Orpheus TTS: SNAC 24 kHz codes, three rates, flattened seven tokens a frame into a Llama vocabulary."""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import INT32_LIMIT, check_codes, check_int, is_host
from jax_patterns.presets._common import int_ids

FRAME = 7
"""Tokens per SNAC frame: 1 code of level 0, 2 of level 1, 4 of level 2."""
ORDER = ((0, 0), (1, 0), (2, 0), (2, 1), (1, 1), (2, 2), (2, 3))
"""Position in a frame -> (SNAC level, index within the frame at that level), Orpheus's order."""
RATES = (1, 2, 4)
"""Codes per frame at each SNAC level (`vq_strides` 4, 2, 1 of the 24 kHz model)."""


@dataclasses.dataclass(frozen=True)
class Orpheus:
    """Orpheus's audio tokens: SNAC 24 kHz codes as one stream of Llama token ids, seven per frame.

    SNAC 24 kHz encodes a clip as three levels, `l0 [B, T]`, `l1 [B, 2T]` and
    `l2 [B, 4T]` (1, 2 and 4 codes per coarse frame, `codebook_size` codes
    each). Orpheus flattens frame `t` into seven tokens, in the order
    `l0[t], l1[2t], l2[4t], l2[4t+1], l1[2t+1], l2[4t+2], l2[4t+3]`, and the
    token at position `p` of a frame (0-6) with code `c` is the id
    `offset + p * codebook_size + c` of its Llama vocabulary (`offset` =
    128266: `<custom_token_10>`). The seven positions are seven virtual
    codebooks at one rate, flattened one per step (`provider`, as Bark's coarse
    model is).

    `tokens(levels)` gives the LM's ids, `codes(ids)` SNAC's levels back; a
    stream that is not a whole number of frames, an id outside its position's
    range, and levels whose lengths are not in the 1:2:4 ratio are errors. For
    streaming, `split(ids)` cuts a growing stream at its last whole frame.

    Orpheus's released decoder (`orpheus_tts/decoder.py`) differs at two
    codes: it drops code 0 (`if token > 0`, which shifts every later token
    into the wrong position) and accepts 4096 (`> 4096`, one past SNAC's
    codebook: the id of the next position's code 0). This preset keeps code 0
    and refuses `codebook_size` (tested against that decoder).

    Example:
      >>> import numpy as np
      >>> orpheus = Orpheus()
      >>> ids = orpheus.tokens((np.array([[1]]), np.array([[2, 3]]), np.array([[4, 5, 6, 7]])))
      >>> (np.asarray(ids) - 128266).tolist()
      [[1, 4098, 8196, 12293, 16387, 20486, 24583]]
      >>> [np.asarray(level).tolist() for level in orpheus.codes(ids)]
      [[[1]], [[2, 3]], [[4, 5, 6, 7]]]
    """

    offset: int = 128266
    codebook_size: int = 4096

    def __post_init__(self):
        check_int("offset", self.offset, minimum=0)
        check_int("codebook_size", self.codebook_size, minimum=1)
        if self.offset + FRAME * self.codebook_size > INT32_LIMIT:
            raise ValueError(
                f"`offset`={self.offset} + 7 * `codebook_size`={self.codebook_size} does not fit int32 token ids"
            )

    @property
    def provider(self) -> jp.DelayedPatternProvider:
        """The seven virtual codebooks flattened one per step, no special step: `get_pattern(T)` has `7 * T` steps."""
        return jp.DelayedPatternProvider(FRAME, [0] * FRAME, flatten_first=1 << 30, empty_initial=-1)

    @property
    def offsets(self) -> list[int]:
        """The token id of code 0 at each position of a frame."""
        return [self.offset + p * self.codebook_size for p in range(FRAME)]

    def virtual(self, levels: tp.Any) -> tp.Any:
        """SNAC's levels `(l0 [B, T], l1 [B, 2T], l2 [B, 4T])` as seven virtual codebooks `[B, 7, T]`, in Orpheus's
        order.

        Raises:
          TypeError: `levels` is not three integer arrays.
          ValueError: a level of another rank, lengths not in the 1:2:4 ratio, a code outside
            `[0, codebook_size)`.
        """
        import jax.numpy as jnp

        l0, l1, l2 = self._levels(levels)
        batch, frames = l0.shape
        split = [jnp.reshape(level, (batch, frames, rate)) for level, rate in zip((l0, l1, l2), RATES)]
        return jnp.stack([split[level][..., index] for level, index in ORDER], axis=1)

    def tokens(self, levels: tp.Any) -> tp.Any:
        """SNAC's levels `(l0 [B, T], l1 [B, 2T], l2 [B, 4T])` (what `SNAC.encode` returns) as the LM's ids `[B, 7T]`.

        Raises:
          TypeError: `levels` is not three integer arrays.
          ValueError: a level of another rank, lengths not in the 1:2:4 ratio, a code outside
            `[0, codebook_size)`.
        """
        codes = self.virtual(levels)
        pattern = self.provider.get_pattern(codes.shape[-1])
        seq, _, _ = pattern.build_pattern_sequence(codes, -1)
        return pattern.to_stream(seq, self.offsets, -1, card=self.codebook_size)

    def codes(self, ids: tp.Any) -> tuple[tp.Any, tp.Any, tp.Any]:
        """The LM's ids `[B, 7T]` (whole frames) back to SNAC's levels `(l0 [B, T], l1 [B, 2T], l2 [B, 4T])`.

        Host ids are range-checked per position: the token at position `p` of
        a frame must lie in `[offset + p * codebook_size, offset + (p + 1) *
        codebook_size)` (strip the LM's other tokens, its start and end of
        speech, first). Device ids are not read back (no sync).

        Raises:
          TypeError: ids that are not integers.
          ValueError: ids of another rank, a stream that is not a whole number of frames, an id outside its
            position's range.
        """
        import jax.numpy as jnp

        ids = self._ids(ids)
        batch, steps = ids.shape
        pattern = self.provider.get_pattern(steps // FRAME)
        seq = pattern.from_stream(ids, self.offsets, -1, card=self.codebook_size)
        virtual = pattern.revert_pattern_sequence(seq, -1)[0]  # [B, 7, T]
        levels = []
        for level in range(len(RATES)):
            rows = [p for p, (lvl, _) in enumerate(ORDER) if lvl == level]  # its positions, in index order
            picked = jnp.stack([virtual[:, p] for p in rows], axis=-1)  # [B, T, rate]
            levels.append(jnp.reshape(picked, (batch, -1)))
        return levels[0], levels[1], levels[2]

    def split(self, ids: tp.Any) -> tuple[tp.Any, tp.Any]:
        """A growing stream `[B, N]` cut at its last whole frame: `(whole [B, 7 * (N // 7)], rest [B, N % 7])`.

        Streaming: keep `rest`, prepend it to the next chunk of ids, and decode
        `whole` with `codes` (each frame once, as soon as its seven tokens are
        there).

        Raises:
          TypeError: ids that are not integers.
          ValueError: ids of another rank than 2, a host id outside int32's `[0, 2**31)`.
        """
        ids = int_ids(ids, "ids", ranks=(2,))  # a list comes back as numpy
        whole = ids.shape[1] - ids.shape[1] % FRAME
        return ids[:, :whole], ids[:, whole:]

    def _levels(self, levels: tp.Any) -> tuple[tp.Any, tp.Any, tp.Any]:
        """The three levels checked (rank 2, one batch, the 1:2:4 ratio, codes in range), as arrays."""
        import jax.numpy as jnp

        if isinstance(levels, (str, bytes)) or not isinstance(levels, tp.Sequence) or len(levels) != 3:
            raise TypeError(
                f"`levels` must be SNAC's three levels (l0 [B, T], l1 [B, 2T], l2 [B, 4T]), got {type(levels).__name__}"
            )
        checked = []
        for i, level in enumerate(levels):
            shape = tuple(np.shape(level)) if level is not None else None
            if shape is None or len(shape) != 2:
                raise ValueError(f"`levels[{i}]` must be codes [B, T] of SNAC level {i}, got shape {shape}")
            expanded = np.expand_dims(level, 1) if is_host(level) else jnp.expand_dims(level, 1)
            checked.append(check_codes(expanded, f"levels[{i}]", n_q=1, below=self.codebook_size)[:, 0])
        (b0, t0), (b1, t1), (b2, t2) = (np.shape(level) for level in checked)
        if not b0 == b1 == b2 or (t1, t2) != (2 * t0, 4 * t0):
            shapes = [tuple(np.shape(level)) for level in checked]
            raise ValueError(
                f"`levels` has levels of shapes {shapes}; SNAC's levels are [B, T], [B, 2T], [B, 4T] (ratio 1:2:4)"
            )
        return tuple(jnp.asarray(level) for level in checked)  # type: ignore[return-value]

    def _ids(self, ids: tp.Any) -> tp.Any:
        """The stream checked: rank 2, whole frames, integers, and (host ids) each in its position's range."""
        import jax.numpy as jnp

        shape = tuple(np.shape(ids)) if ids is not None else None
        if shape is None or len(shape) != 2:
            raise ValueError(f"`ids` must be a token stream [B, N], got shape {shape}")
        if shape[1] % FRAME:
            raise ValueError(
                f"`ids` has {shape[1]} tokens, not a whole number of frames ({FRAME} tokens each); "
                f"cut the stream at its last whole frame with `split`"
            )
        expanded = np.expand_dims(ids, 1) if is_host(ids) else jnp.expand_dims(ids, 1)
        array = check_codes(expanded, "ids", n_q=1, below=None)[:, 0]
        if is_host(array) and array.size:
            frames = array.reshape(shape[0], -1, FRAME).astype(np.int64)
            low = np.asarray(self.offsets, np.int64)
            bad = np.argwhere((frames < low) | (frames >= low + self.codebook_size))
            if bad.size:
                b, t, p = (int(x) for x in bad[0])
                raise ValueError(
                    f"`ids`[{b}, {t * FRAME + p}] = {int(frames[b, t, p])} is outside position {p}'s range "
                    f"[{low[p]}, {low[p] + self.codebook_size}) (id = {self.offset} + position * "
                    f"{self.codebook_size} + code)"
                )
        return jnp.asarray(array)
