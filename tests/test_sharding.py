"""Batch sharding over 8 host devices (a subprocess), and no host transfer in steady state."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_patterns as jp

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def report() -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(HERE / "sharding_check.py")], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_op_keeps_batch_sharding_without_collectives(report):
    ops = {k: v for k, v in report.items() if not k.endswith("shard_map")}
    assert len(ops) == 3 * 4 * 2
    for key, result in ops.items():
        assert result["values_batch_sharded"], key
        assert result["mask_batch_sharded"] in (None, True), key
        assert result["collectives"] == [], key


def test_shard_map_usage(report):
    for key in (k for k in report if k.endswith("shard_map")):
        assert report[key] == {"equal": True, "collectives": []}, key


def test_ops_run_under_transfer_guard_disallow():
    pattern = jp.UnrolledPatternProvider(3, [0, 1, 1], [0, 2, 2]).get_pattern(10)
    z = jnp.asarray(np.arange(2 * 3 * 10).reshape(2, 3, 10), jnp.int32)
    lengths = jnp.asarray([10, 4])
    logits = jnp.zeros((2, 3, len(pattern), 5), jnp.float32)

    def run_all(n):
        seq, _, _ = pattern.build_pattern_sequence(z, -1, lengths=n)
        out, _, _ = pattern.revert_pattern_sequence(seq, -1, lengths=n)
        pattern.revert_pattern_logits(logits, float("nan"), card_axis=-1, lengths=n)[0].block_until_ready()
        return out

    for n in (None, lengths):
        run_all(n)  # compile outside the guard
        with jax.transfer_guard("disallow"):
            out = run_all(n)
        expected = np.asarray(z) if n is None else np.where(np.arange(10) < np.asarray(n)[:, None, None], z, -1)
        np.testing.assert_array_equal(np.asarray(out), expected)
