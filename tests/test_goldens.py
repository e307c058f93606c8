"""jax_patterns against the genuine audiocraft 1.3.0 outputs (tests/goldens, made by tools/make_goldens.py)."""

from __future__ import annotations

import golden_grid
import numpy as np
import pytest
from helpers import assert_same, provider_from

GOLDENS = golden_grid.Goldens()
CASES = GOLDENS.manifest


def _case_id(entry: dict) -> str:
    args = ",".join(f"{k}={v}" for k, v in entry["kwargs"].items())
    return f"{entry['provider']}({entry['n_q']}{',' if args else ''}{args})-T{entry['timesteps']}"


def run_op(pattern, op: dict):
    """Runs one golden op on jax_patterns with the golden inputs."""
    n_q, size, kovs = pattern.n_q, op["size"], op["keep_only_valid_steps"]
    if op["op"] == "build":
        return pattern.build_pattern_sequence(golden_grid.codes(n_q, size).astype(np.int32), golden_grid.SPECIAL, kovs)
    if op["op"] == "revert":
        seq = golden_grid.sequence(n_q, size).astype(np.int32)
        return pattern.revert_pattern_sequence(seq, golden_grid.SPECIAL, kovs)
    return pattern.revert_pattern_logits(golden_grid.logits(n_q, size), float("nan"), kovs)


def test_grid_covers_the_issue():
    kinds = {e["provider"] for e in CASES}
    assert kinds == {
        "DelayedPatternProvider",
        "ParallelPatternProvider",
        "UnrolledPatternProvider",
        "CoarseFirstPattern",
        "MusicLMPattern",
    }
    assert {e["n_q"] for e in CASES} == set(golden_grid.N_Q)
    assert {e["timesteps"] for e in CASES} == set(golden_grid.TIMESTEPS)
    ops = {(o["op"], o["keep_only_valid_steps"]) for e in CASES for o in e["ops"]}
    assert ops == {(op, kovs) for op in ("build", "revert", "logits") for kovs in (False, True)}


@pytest.mark.parametrize("entry", CASES, ids=_case_id)
def test_layout_matches_audiocraft(entry):
    pattern = provider_from(entry["provider"], entry["kwargs"], entry["n_q"]).get_pattern(entry["timesteps"])
    rows = [(s, c.t, c.q) for s, step in enumerate(pattern.layout) for c in step]
    assert_same(np.asarray(rows, dtype=np.int32).reshape(-1, 3), GOLDENS.array(entry["layout"]), "layout")
    assert pattern.num_sequence_steps == entry["num_sequence_steps"]
    assert pattern.max_delay == entry["max_delay"]
    assert len(pattern.valid_layout) == entry["valid_steps"]
    assert pattern.starts_with_special_token() == entry["starts_with_special_token"]
    first = GOLDENS.array(entry["first_steps"])
    for t in range(pattern.timesteps + 1):
        for j, q in enumerate([None, *range(pattern.n_q)]):
            step = pattern.get_first_step_with_timesteps(t, q)
            assert (-1 if step is None else step) == first[t, j], (t, q)


@pytest.mark.parametrize("entry", CASES, ids=_case_id)
def test_ops_match_audiocraft(entry):
    pattern = provider_from(entry["provider"], entry["kwargs"], entry["n_q"]).get_pattern(entry["timesteps"])
    for op in entry["ops"]:
        values, indexes, mask = run_op(pattern, op)
        what = f"{op['op']} valid={op['keep_only_valid_steps']} size={op['size']}"
        assert values.dtype == (np.float32 if op["op"] == "logits" else np.int32)
        assert indexes.dtype == np.int32
        assert_same(values, GOLDENS.array(op["values"]), what + " values")
        assert_same(indexes, GOLDENS.array(op["indexes"]), what + " indexes")
        assert_same(mask, GOLDENS.array(op["mask"]), what + " mask")
