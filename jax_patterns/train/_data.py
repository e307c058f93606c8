"""The training data: a deterministic synthetic code corpus, and the grain pipeline that packs it.

`MarkovCodes` is a random-access source (what `grain.MapDataset.source` takes):
example `i` is a function of `(seed, i)` alone, with a length drawn uniformly
between `min_len` and `max_len`. Its codes follow a small Markov chain (each
code is a fixed permutation of the codebook's previous code, shifted by the
coarser codebook's code at the same timestep, and replaced by a random code
with probability `noise`), so a model can learn it and the loss falls.

`input_pipeline` is grain end to end: shuffle and repeat the source, interleave
each example with its own pattern (`jax_patterns.segment`, numpy), pack the
segments into rows with grain's best-fit packer (or one per row when not
packing), batch, and prefetch in a background thread. Its iterator's state (`get_state` / `set_state`) is what
a checkpoint saves.
"""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

import jax_patterns as jp


@dataclasses.dataclass(frozen=True)
class MarkovCodes:
    """A synthetic corpus of variable-length codes `[K, L]`, deterministic for a seed (a grain source).

    Example:
      >>> corpus = MarkovCodes(n_q=2, card=8, min_len=3, max_len=6, size=10, seed=0)
      >>> [corpus[i].shape for i in range(3)]
      [(2, 6), (2, 5), (2, 6)]
    """

    n_q: int = 4
    card: int = 32
    min_len: int = 8
    max_len: int = 64
    size: int = 100_000
    seed: int = 0
    noise: float = 0.1

    def __post_init__(self):
        if not 1 <= self.min_len <= self.max_len:
            raise ValueError(f"need 1 <= min_len <= max_len, got min_len={self.min_len}, max_len={self.max_len}")

    def _tables(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 2**31 - 1])
        return rng.permutation(np.tile(np.arange(self.card), (self.n_q, 1)), axis=1)  # [q, previous] -> next

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for a corpus of {self.size} examples")
        tables = self._tables()
        rng = np.random.default_rng([self.seed, int(index)])
        length = int(rng.integers(self.min_len, self.max_len + 1))
        codes = np.zeros((self.n_q, length), np.int32)
        start = rng.integers(0, self.card, self.n_q)
        flips = rng.random((self.n_q, length)) < self.noise
        noise = rng.integers(0, self.card, (self.n_q, length))
        for t in range(length):
            for q in range(self.n_q):
                previous = codes[q, t - 1] if t else start[q]
                coarser = codes[q - 1, t] if q else 0
                codes[q, t] = noise[q, t] if flips[q, t] else (tables[q, previous] + coarser) % self.card
        return codes


class _Segment:
    """grain map: codes `[K, L]` -> `{"tokens", "targets"}` `[S, K]` (grain packs along the first axis)."""

    def __init__(self, provider: tp.Any, special_token: int):
        self.provider, self.special_token = provider, special_token

    def __call__(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        tokens, targets = jp.segment(codes, self.provider, self.special_token)
        return {"tokens": tokens.T, "targets": targets.T}


def _to_batch(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Packed rows `[B, S, K]` -> the model's layout: tokens and targets `[B, K, S]`, segment ids and positions."""
    return {
        "tokens": np.ascontiguousarray(rows["tokens"].transpose(0, 2, 1)),
        "targets": np.ascontiguousarray(rows["targets"].transpose(0, 2, 1)),
        "segment_ids": rows["tokens_segment_ids"].astype(np.int32),
        "positions": rows["tokens_positions"].astype(np.int32),
    }


def input_pipeline(
    source: tp.Any,
    provider: tp.Any,
    *,
    batch_size: int,
    row_steps: int,
    special_token: int,
    seed: int,
    pack: bool,
    packing_bins: int | None = None,
    prefetch: int = 2,
) -> tp.Any:
    """A grain `IterDataset` of batches `{"tokens", "targets", "segment_ids", "positions"}` (numpy).

    Args:
      source: a random-access source of codes `[K, L]` (e.g. `MarkovCodes`).
      provider: the pattern provider (each example gets `get_pattern(L)`).
      batch_size: rows per batch.
      row_steps: sequence steps per row (the longest example's valid steps at least).
      special_token: the padding and empty-position token.
      seed: the shuffle seed; the batches are a function of it alone.
      pack: several examples per row (grain's best-fit packer); otherwise one
        example per row, padded.
      packing_bins: rows the packer fills at once (default `8 * batch_size`):
        more bins, less padding (on lengths uniform over 10-100% of a row:
        15% with 8 bins, 9% with 64).
      prefetch: batches prepared ahead in a background thread (0: none), so
        that host work overlaps the device's.

    Returns:
      an infinite `grain.IterDataset`; `iter()` of it has `get_state` / `set_state`.
    """
    import grain
    import grain.experimental

    dataset = grain.MapDataset.source(source).shuffle(seed=seed).repeat(None).map(_Segment(provider, special_token))
    packed = grain.experimental.BestFitPackIterDataset(
        dataset.to_iter_dataset(),
        length_struct={"tokens": row_steps, "targets": row_steps},
        num_packing_bins=(packing_bins or 8 * batch_size) if pack else batch_size,
        shuffle_bins=False,
        padding_struct={"tokens": special_token, "targets": -1},
        max_sequences_per_bin=None if pack else 1,
    )
    batches = packed.batch(batch_size, drop_remainder=True).map(_to_batch)
    if prefetch:
        batches = grain.experimental.ThreadPrefetchIterDataset(batches, prefetch_buffer_size=prefetch)
    return batches
