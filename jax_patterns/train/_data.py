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
import math
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import N_Q_MAX, check_flag, check_int, check_int_token, check_provider

SEED_MAX = 2**32 - 1
"""Seeds are 32-bit (grain's shuffle seeds)."""

CARD_MAX = 2**16
"""The largest `card` of the synthetic corpus (its transition tables hold `n_q * card` entries)."""

CELLS_MAX = 2**24
"""The most codes (`n_q * card`, `n_q * max_len`) a corpus table or example may hold: it is built in Python."""

PREFETCH_MAX = 1024
"""The most batches `input_pipeline` prepares ahead (each one is held in memory)."""

PACKER_CELLS_MAX = 2**28
"""The most int32 cells the packer's bins may hold (`bins * row_steps * n_q`, 1 GiB)."""


def check_seed(name: str, seed: tp.Any) -> int:
    """A seed in `[0, 2**32)`, as an int."""
    return check_int(name, seed, minimum=0, maximum=SEED_MAX)


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
        """Checks every field (ints as Python ints, `noise` a probability).

        Raises:
          TypeError: a field of the wrong kind (None, a float count, a bool).
          ValueError: a field out of range, `min_len > max_len`, or a corpus too large to build in Python.
        """
        n_q = check_int("n_q", self.n_q, minimum=1, maximum=N_Q_MAX)
        card = check_int("card", self.card, minimum=1, maximum=CARD_MAX)
        min_len = check_int("min_len", self.min_len, minimum=1)
        max_len = check_int("max_len", self.max_len, minimum=1)
        if min_len > max_len:
            raise ValueError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
        for name, count in (("card", card), ("max_len", max_len)):
            if n_q * count > CELLS_MAX:
                raise ValueError(
                    f"`n_q`={n_q} * `{name}`={count} is over {CELLS_MAX} (2**24); the synthetic corpus is built in "
                    "Python"
                )
        size = check_int("size", self.size, minimum=1, maximum=2**63 - 1)  # lazy: any size len() can return
        seed = check_seed("seed", self.seed)
        given: tp.Any = self.noise
        if isinstance(given, (bool, np.bool_)) or not isinstance(given, (int, float, np.integer, np.floating)):
            raise TypeError(f"`noise` must be a float in [0, 1], got {given!r}")
        noise = float(given)
        if not (math.isfinite(noise) and 0.0 <= noise <= 1.0):
            raise ValueError(f"`noise` must be a probability in [0, 1], got {noise}")
        checked = dict(n_q=n_q, card=card, min_len=min_len, max_len=max_len, size=size, seed=seed, noise=noise)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

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

    def __init__(self, provider: tp.Any, special_token: int, row_steps: int):
        self.provider, self.special_token, self.row_steps = provider, special_token, row_steps

    def __call__(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        tokens, targets = jp.segment(codes, self.provider, self.special_token)
        if tokens.shape[1] > self.row_steps:  # grain's packer would refuse it without naming the argument
            raise ValueError(
                f"`row_steps`={self.row_steps} is shorter than an example of {np.shape(codes)[-1]} timesteps, "
                f"which takes {tokens.shape[1]} steps (`jax_patterns.segment_steps`)"
            )
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

    Raises:
      TypeError: an argument of the wrong kind (None, a float count, a non-bool `pack`), a source without
        `len` and indexing, or not a provider.
      ValueError: a count out of range, an empty source, a `prefetch` over 1024, or bins of over 2**28 cells
        (`bins * row_steps * n_q`). An example longer than `row_steps` raises, naming it, when it is reached.
    """
    if isinstance(source, (str, bytes)) or not (hasattr(source, "__len__") and hasattr(source, "__getitem__")):
        raise TypeError(f"`source` must be a random-access source (`len` and indexing), got {type(source).__name__}")
    if len(source) == 0:
        raise ValueError("`source` is empty; there is nothing to train on")
    n_q = check_provider(provider)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    row_steps = check_int("row_steps", row_steps, minimum=1)
    special_token = check_int_token("special_token", special_token)
    seed = check_seed("seed", seed)
    pack = check_flag("pack", pack)
    if packing_bins is not None:
        packing_bins = check_int("packing_bins", packing_bins, minimum=1)
    prefetch = check_int("prefetch", prefetch, minimum=0, maximum=PREFETCH_MAX)  # before grain sees it
    bins = (packing_bins or 8 * batch_size) if pack else batch_size
    if bins * row_steps * n_q > PACKER_CELLS_MAX:
        raise ValueError(
            f"`row_steps`={row_steps} with {bins} bins (`batch_size`={batch_size}, `packing_bins`={packing_bins}) "
            f"and n_q={n_q}: the packer would hold {bins * row_steps * n_q} cells, over 2**28"
        )
    import grain
    import grain.experimental

    segment = _Segment(provider, special_token, row_steps)
    dataset = grain.MapDataset.source(source).shuffle(seed=seed).repeat(None).map(segment)
    packed = grain.experimental.BestFitPackIterDataset(
        dataset.to_iter_dataset(),
        length_struct={"tokens": row_steps, "targets": row_steps},
        num_packing_bins=bins,
        shuffle_bins=False,
        padding_struct={"tokens": special_token, "targets": -1},
        max_sequences_per_bin=None if pack else 1,
    )
    batches = packed.batch(batch_size, drop_remainder=True).map(_to_batch)
    if prefetch:
        batches = grain.experimental.ThreadPrefetchIterDataset(batches, prefetch_buffer_size=prefetch)
    return batches
