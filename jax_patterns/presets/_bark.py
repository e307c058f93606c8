"""Bark's coarse model, as transformers' `BarkCoarseModel` runs it."""

from __future__ import annotations

import dataclasses
import math
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import N_Q_MAX, check_codes, check_int
from jax_patterns.presets._common import check_rows, int_ids


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
        check_int("n_coarse_codebooks", self.n_coarse_codebooks, minimum=1, maximum=N_Q_MAX)
        check_int("codebook_size", self.codebook_size, minimum=1)
        check_int("semantic_vocab_size", self.semantic_vocab_size, minimum=0)
        check_rows(
            self.semantic_vocab_size + self.n_coarse_codebooks * self.codebook_size,
            "`semantic_vocab_size` + `n_coarse_codebooks` * `codebook_size`",
        )

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
        codes = check_codes(codes, "codes", n_q=self.n_coarse_codebooks, below=self.codebook_size)
        pattern = self.provider.get_pattern(codes.shape[-1])
        seq, _, _ = pattern.build_pattern_sequence(codes, -1)
        return pattern.to_stream(seq, self.offsets, -1, card=self.codebook_size)

    def codes(self, stream: tp.Any) -> tp.Any:
        """Bark's coarse token stream `[..., K * T]` back to codes `[..., K, T]`.

        Raises:
          TypeError: a stream that is not integers.
          ValueError: a scalar, a stream that is not whole frames (`K` tokens each), a host token outside its
            codebook's range.
        """
        stream = int_ids(stream, "stream")
        k = self.n_coarse_codebooks
        if stream.shape[-1] % k:
            raise ValueError(f"`stream` has {stream.shape[-1]} tokens, not a whole number of frames ({k} tokens each)")
        timesteps = stream.shape[-1] // k
        pattern = self.provider.get_pattern(timesteps)
        stream = pattern.from_stream(stream, self.offsets, -1, card=self.codebook_size)
        return pattern.revert_pattern_sequence(stream, -1)[0]

    def history(
        self, coarse_prompt: tp.Any, semantic_length: int, max_coarse_history: int, semantic_to_coarse_ratio: float
    ) -> tp.Any:
        """A speaker prompt's coarse history `[n]`, as `preprocess_histories` makes it for one example.

        The prompt's stream, trimmed to the history that matches the semantic
        prompt it is paired with, minus its last two tokens (Bark's alignment).

        Args:
          coarse_prompt: the speaker prompt's coarse codes `[K, T]`.
          semantic_length: the length of the semantic prompt it is paired with.
          max_coarse_history: the generation config's `max_coarse_history`.
          semantic_to_coarse_ratio: the coarse tokens per semantic token, finite and positive.

        Raises:
          TypeError: codes that are not integers, a length that is not an int, a ratio that is not a real number.
          ValueError: codes of another shape or out of range, a negative length, a ratio that is not finite and
            positive.
        """
        prompt = check_codes(
            coarse_prompt, "coarse_prompt", n_q=self.n_coarse_codebooks, below=self.codebook_size, ndim=2
        )
        semantic_length = check_int("semantic_length", semantic_length, minimum=0)
        max_coarse_history = check_int("max_coarse_history", max_coarse_history, minimum=0)
        ratio = semantic_to_coarse_ratio
        if isinstance(ratio, (bool, np.bool_)) or not isinstance(ratio, (int, float, np.integer, np.floating)):
            raise TypeError(f"`semantic_to_coarse_ratio` must be a real number, got {ratio!r}")
        try:
            semantic_to_coarse_ratio = float(ratio)
        except OverflowError:  # an int beyond float64
            semantic_to_coarse_ratio = math.inf
        if not (math.isfinite(semantic_to_coarse_ratio) and semantic_to_coarse_ratio > 0):
            raise ValueError(f"`semantic_to_coarse_ratio` must be finite and positive, got {ratio!r}")
        stream = self.stream(prompt[None])[0]
        semantic = int(  # the min in floats: a tiny ratio makes the quotients infinite, the even length never is
            min(
                np.floor(max_coarse_history / semantic_to_coarse_ratio),
                semantic_length - semantic_length % 2,
                np.floor(stream.shape[0] / semantic_to_coarse_ratio),
            )
        )
        keep = int(round(semantic * semantic_to_coarse_ratio))
        return stream[-keep:][:-2]  # `[-0:]` keeps everything, as transformers' slicing does
