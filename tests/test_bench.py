"""`python -m jax_patterns bench` runs and reports every row (tiny shapes: speed is never asserted)."""

from __future__ import annotations

import json

from jax_patterns import _cli, bench


def test_bench_json_has_every_operation(capsys):
    argv = [
        "bench",
        "--k",
        "2",
        "--t",
        "20",
        "--card",
        "16",
        "--dtype",
        "float32",
        "bfloat16",
        "--lengths",
        "--repeats",
        "1",
        "--construct-t",
        "40",
        "--skip-lm",
        "--json",
    ]
    assert _cli.main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    ops = {row["op"] for row in document["rows"]}
    assert {
        "build",
        "revert",
        "revert_logits[card_axis=-1]",
        "revert_logits[card_axis=1]",
        "build +lengths",
        "revert_logits[card_axis=1] +lengths",
        "build +lengths left",
        "revert_logits[card_axis=-1] +lengths left",
        "construct new T (delayed K=8)",
    } <= ops
    assert document["device"].startswith("device: cpu")
    for row in document["rows"]:
        assert row["jax_ms"] > 0
        if "+lengths" not in row["op"]:
            assert row["torch_ms"] > 0 and row["vs_torch"] > 0


def test_cross_entropy_and_generation_rows():
    ce = bench.bench_cross_entropy(2, 2, 20, 16, 1)
    assert ce[0].extra["baseline_ms"] > 0 and ce[0].extra["temp_MB"] <= ce[0].extra["baseline_temp_MB"]
    generation = bench.bench_generation(24, 1)
    assert [r.op.split(",")[1].strip() for r in generation] == [
        "counting model (vs bare loop)",
        "NNX CodecLM",
        "counting model (vs eager torch loop)",
    ]
    assert all(r.jax_ms > 0 for r in generation)


def test_serving_rows():
    rows = bench.bench_serving(24, 1, batch=2, chunks=(4,))
    assert [r.op.split(",")[0] for r in rows] == [
        "generate 24 steps",
        "generate 24 steps",
        "stream chunk_steps=4",
    ]
    stream = rows[-1].extra
    assert stream["steps_to_first_frame"] == 4 and stream["first_frame_ms"] > 0 and stream["first_frame_limit_ms"] > 0
    assert all(r.jax_ms > 0 and r.extra["baseline_ms"] > 0 for r in rows)


def test_training_rows():
    rows = bench.bench_training(3, batch=8, max_frames=8, dim=16)
    assert len(rows) == 2
    assert rows[0].extra["packed_padding_fraction"] < rows[0].extra["padded_padding_fraction"]
    assert rows[1].extra["same_loss"] == 1.0 and rows[1].extra["two_processes_tokens_per_s"] > 0


def test_fused_rows():
    rows = bench.bench_fused(batch=2, ks=(2,), t=12, dims=(8,), card=16, dtypes=("float32",), repeats=1,
                              budget_bytes=2**20)  # fmt: skip
    (row,) = rows
    assert row.jax_ms > 0 and row.extra["baseline_ms"] > 0
    # tiny shapes: no memory ordering is claimed here (test_fused checks it at a real size)
    assert row.extra["temp_MB"] > 0 and row.extra["baseline_temp_MB"] > 0
    assert row.extra["largest_batch_in_budget"] >= 1 and row.extra["baseline_largest_batch_in_budget"] >= 1


def test_engine_row():
    (row,) = bench.bench_engine(requests=6, slots=2, timesteps=12, chunk_steps=4, dim=16, layers=1)
    extra = row.extra
    assert row.jax_ms > 0 and extra["baseline_ms"] > 0 and extra["frames_per_s"] > 0
    assert 0 < extra["engine_steps"] and 0 < extra["static_steps"] and extra["chunks"] >= 1
    assert extra["first_frame_p50_ms"] <= extra["first_frame_p99_ms"]
