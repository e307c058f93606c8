"""The grid of the golden fixtures, and their deterministic inputs.

Shared by `tools/make_goldens.py` (which runs audiocraft 1.3.0 over it) and the
tests (which run jax_patterns and the torch reference over the same cases).
No jax or torch here.
"""

from __future__ import annotations

import json
import pathlib
import typing as tp

import numpy as np

AUDIOCRAFT_VERSION = "1.3.0"
GOLDEN_PATH = pathlib.Path(__file__).resolve().parent / "goldens" / "audiocraft_1_3_0.npz"
N_Q = (1, 2, 4, 8)
TIMESTEPS = (1, 2, 5, 16, 72)
BATCH = 2
CARD = 3
SPECIAL = -1


def _configs(n_q: int) -> tp.Iterator[tuple[str, dict]]:
    ramp = list(range(n_q))
    rest = [1] * (n_q - 1)
    yield "DelayedPatternProvider", {}
    yield "DelayedPatternProvider", {"delays": [2 * q for q in ramp]}
    yield "DelayedPatternProvider", {"delays": [q // 2 for q in ramp]}
    yield "DelayedPatternProvider", {"delays": [q + 1 for q in ramp]}
    yield "DelayedPatternProvider", {"flatten_first": 2}
    yield "DelayedPatternProvider", {"empty_initial": 2}
    yield "DelayedPatternProvider", {"empty_initial": -1}
    yield "DelayedPatternProvider", {"delays": [q + 1 for q in ramp], "empty_initial": -1}
    yield "DelayedPatternProvider", {"delays": [2 * q for q in ramp], "flatten_first": 1, "empty_initial": 1}
    yield "ParallelPatternProvider", {}
    yield "ParallelPatternProvider", {"empty_initial": 1}
    yield "ParallelPatternProvider", {"empty_initial": -1}
    yield "UnrolledPatternProvider", {}
    yield "UnrolledPatternProvider", {"flattening": [0] + rest}
    yield "UnrolledPatternProvider", {"flattening": [0] + rest, "delays": [0] + [3] * (n_q - 1)}
    yield "UnrolledPatternProvider", {"delays": ramp}
    yield "UnrolledPatternProvider", {"flattening": [2 * q for q in ramp]}
    yield "UnrolledPatternProvider", {"flattening": [q // 2 for q in ramp], "delays": [q // 2 for q in ramp]}
    if n_q >= 2:  # audiocraft's CoarseFirstPattern fails on n_q=1 (max of no delays)
        yield "CoarseFirstPattern", {}
        yield "CoarseFirstPattern", {"delays": list(range(n_q - 1))}
        yield "CoarseFirstPattern", {"delays": [1] * (n_q - 1)}
    for group_by in (1, 2, 4, 8):
        if n_q % group_by == 0:
            yield "MusicLMPattern", {"group_by": group_by}


def providers() -> tp.Iterator[tuple[str, dict, int]]:
    """Every `(provider class name, kwargs, n_q)` of the grid, without repeats."""
    seen = set()
    for n_q in N_Q:
        for name, kwargs in _configs(n_q):
            key = (name, json.dumps(kwargs, sort_keys=True), n_q)
            if key not in seen:
                seen.add(key)
                yield name, kwargs, n_q


def ops_for(timesteps: int, layout_steps: int, valid_steps: int) -> list[dict[str, tp.Any]]:
    """The operations run on one pattern: op name, keep_only_valid_steps, input length."""
    ops: list[dict[str, tp.Any]] = [
        {"op": "build", "keep_only_valid_steps": False, "size": timesteps},
        {"op": "build", "keep_only_valid_steps": True, "size": timesteps},
        {"op": "build", "keep_only_valid_steps": False, "size": timesteps // 2},
        {"op": "revert", "keep_only_valid_steps": False, "size": layout_steps},
        {"op": "revert", "keep_only_valid_steps": True, "size": valid_steps},
        {"op": "revert", "keep_only_valid_steps": False, "size": layout_steps // 2 + 1},
        {"op": "logits", "keep_only_valid_steps": False, "size": layout_steps},
        {"op": "logits", "keep_only_valid_steps": True, "size": valid_steps},
    ]
    # audiocraft cannot flatten an empty input (view(B, -1) of zero elements): no such case.
    unique = {(o["op"], o["keep_only_valid_steps"], o["size"]): o for o in ops if o["size"] > 0}
    return list(unique.values())


def codes(n_q: int, timesteps: int) -> np.ndarray:
    """Codes `[B, K, T]` (int64), all distinct and positive."""
    return (np.arange(BATCH * n_q * timesteps, dtype=np.int64) + 1).reshape(BATCH, n_q, timesteps)


def sequence(n_q: int, steps: int) -> np.ndarray:
    """An interleaved sequence `[B, K, S]` (int64), all distinct and positive."""
    return (np.arange(BATCH * n_q * steps, dtype=np.int64) + 1).reshape(BATCH, n_q, steps)


def logits(n_q: int, steps: int) -> np.ndarray:
    """Logits `[B, card, K, S]` (float32), all distinct and exact."""
    return (np.arange(BATCH * CARD * n_q * steps, dtype=np.float32) * 0.5).reshape(BATCH, CARD, n_q, steps)


class Goldens:
    """The committed golden file: `manifest` (one entry per pattern) and `array(ref)`."""

    def __init__(self, path: pathlib.Path = GOLDEN_PATH) -> None:
        with np.load(path) as data:
            self.buffers = {name: data[name] for name in data.files}
        self.manifest: list[dict] = json.loads(self.buffers.pop("manifest").tobytes().decode())

    def array(self, ref: list) -> np.ndarray:
        """The array behind a `[buffer, offset, shape]` reference of the manifest."""
        name, offset, shape = ref
        size = int(np.prod(shape))
        return self.buffers[name][offset : offset + size].reshape(shape)
