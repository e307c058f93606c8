"""Bark's coarse model, as transformers' `BarkCoarseModel` runs it."""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import check_codes, check_int


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
        codes = check_codes(codes, "codes", n_q=self.n_coarse_codebooks, below=self.codebook_size)
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
