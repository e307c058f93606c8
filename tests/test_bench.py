"""`python -m jax_patterns bench` runs and reports every row (tiny shapes: speed is never asserted)."""

from __future__ import annotations

import json
import typing as tp

import pytest

import jax_patterns as jp
from jax_patterns import _cli, bench


@pytest.mark.thorough
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


@pytest.mark.thorough
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


@pytest.mark.thorough
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


@pytest.mark.thorough
def test_training_rows():
    rows = bench.bench_training(3, batch=8, max_frames=8, dim=16)
    assert len(rows) == 2
    assert rows[0].extra["packed_padding_fraction"] < rows[0].extra["padded_padding_fraction"]
    assert rows[1].extra["same_loss"] == 1.0 and rows[1].extra["two_processes_tokens_per_s"] > 0


@pytest.mark.thorough
def test_fused_rows():
    rows = bench.bench_fused(batch=2, ks=(2,), t=12, dims=(8,), card=16, dtypes=("float32",), repeats=1,
                              budget_bytes=2**20)  # fmt: skip
    (row,) = rows
    assert row.jax_ms > 0 and row.extra["baseline_ms"] > 0
    # tiny shapes: no memory ordering is claimed here (test_fused checks it at a real size)
    assert row.extra["temp_MB"] > 0 and row.extra["baseline_temp_MB"] > 0
    assert row.extra["largest_batch_in_budget"] >= 1 and row.extra["baseline_largest_batch_in_budget"] >= 1


@pytest.mark.thorough
def test_engine_row():
    (row,) = bench.bench_engine(requests=6, slots=2, timesteps=12, chunk_steps=4, dim=16, layers=1)
    extra = row.extra
    assert row.jax_ms > 0 and extra["baseline_ms"] > 0 and extra["frames_per_s"] > 0
    assert 0 < extra["engine_steps"] and 0 < extra["static_steps"] and extra["chunks"] >= 1
    assert extra["first_frame_p50_ms"] <= extra["first_frame_p99_ms"]


@pytest.mark.thorough
def test_two_level_row():
    rows = bench.bench_two_level(1, frames=3, batches=(2,), n_q=3, card=8, dim=16, layers=1, depth_dim=8,
                                 depth_layers=1, heads=2)  # fmt: skip
    (row,) = rows
    assert row.jax_ms > 0 and row.torch_ms and row.torch_ms > 0 and row.extra["baseline_ms"] == row.torch_ms
    assert row.extra["frames_per_s"] == pytest.approx(2 * 3 / row.jax_ms * 1e3)
    assert "B=2 K=3" in row.shape


# --- issue 25 items 11 and 17: every `--*-only` flag selects exactly its rows; the bar counts every row -------------
# the rows each real builder makes for the arguments `run` gives it (their own tests check it)
ROWS_MADE: dict[str, tp.Callable[..., int]] = {
    "bench_ops": lambda *args, **kwargs: len(args[7]),  # one per operation asked
    "bench_construction": lambda t, repeats, source=None: 1 + bool(source),
    "bench_cross_entropy": lambda *args: 2,
    "bench_generation": lambda *args: 3,
    "bench_serving": lambda *args, chunks=(16, 64, 256), **kwargs: 2 + len(chunks),
    "bench_training": lambda *args, **kwargs: 2,
    "bench_fused": lambda ks=(4, 8), dims=(512, 1024), dtypes=("float32", "bfloat16"), **kwargs: (
        len(ks) * len(dims) * len(dtypes)
    ),
    "bench_magnet": lambda repeats, tree=None: 4 + bool(tree),
    "bench_engine": lambda **kwargs: 1,
    "bench_two_level": lambda repeats=3, batches=(1, 8), **kwargs: len(batches),
    "bench_musicgen": lambda repeats=3, shapes=("tiny", "small"), audiocraft_tree=None, **kwargs: (
        len(shapes) * 2 * (2 + bool(audiocraft_tree))  # batches 1 and 8; float32, bfloat16 and audiocraft's
    ),
}


class FakeBar:
    def __init__(self, total: int):
        self.planned = self.total = total
        self.n = 0
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_description(self, text: str) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def stubbed(monkeypatch):
    """Every row builder replaced by one that returns its rows at once (op = the builder's name), and the bar."""
    from jax_patterns.bench import _command

    made: list[str] = []
    bars: list[FakeBar] = []
    counts: list[int] = []

    def fake(name: str) -> tp.Callable:
        def build(*args, **kwargs):
            made.append(name)
            count = ROWS_MADE[name](*args, **kwargs)
            counts.append(count)
            return [bench.Row(name, "1", "int32", 1.0, None, None, None, 0, {"baseline_ms": 2.0})] * count

        return build

    for name in ROWS_MADE:
        monkeypatch.setattr(_command, name, fake(name))

    def progress(total: int) -> FakeBar:
        bars.append(FakeBar(total))
        return bars[-1]

    monkeypatch.setattr(_command, "progress", progress)
    return made, bars, counts


SMALL = ["--k", "2", "--t", "8", "--dtype", "float32"]
EVERY_BUILDER = set(ROWS_MADE)


@pytest.mark.parametrize(
    ("flags", "builders"),
    [
        ([], EVERY_BUILDER),
        (["--skip-lm"], {"bench_ops", "bench_construction"}),
        (["--fused-only"], {"bench_fused"}),
        (["--magnet-only"], {"bench_magnet"}),
        (["--engine-only"], {"bench_engine"}),
        (["--two-level-only"], {"bench_two_level"}),
        (["--musicgen-only"], {"bench_musicgen"}),
    ],
)
def test_each_only_flag_selects_exactly_its_rows(stubbed, flags, builders, capsys):
    made, _, _ = stubbed
    assert _cli.main(["bench", *SMALL, *flags, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {row["op"] for row in rows} == set(made) == builders
    if flags in (["--fused-only"], []):  # the fused rows: every shape
        assert [r["op"] for r in rows].count("bench_fused") == 8


@pytest.mark.parametrize(
    "flags",
    [[], ["--lengths", "--dtype", "float32", "bfloat16"], ["--engine-only"], ["--musicgen-only"], ["--two-level-only"]],
)
def test_the_progress_bar_counts_every_row(stubbed, flags, capsys):
    _, bars, counts = stubbed
    assert _cli.main(["bench", *SMALL, *flags]) == 0
    (bar,) = bars
    assert bar.planned == bar.total == bar.n == sum(counts) and bar.closed  # planned right; complete at the end
    out = capsys.readouterr().out
    assert out.count("jax/baseline") == sum(counts)  # the extras line of every row was printed


def test_the_frame_tables_read_the_pattern_layout():
    from jax_patterns.bench._engine import frame_tables

    for provider in (
        jp.DelayedPatternProvider(3, delays=[0, 2, 1], any_order=True),
        jp.UnrolledPatternProvider(3),
        jp.CoarseFirstPattern(2),
        jp.ParallelPatternProvider(2, empty_initial=-1),
    ):
        pattern = provider.get_pattern(5)
        first, last = frame_tables(pattern)
        expected_first = [next((c.t for c in step if c.q == 0 and c.t < 5), -1) for step in pattern.layout]
        expected_last = [max(s for s, step in enumerate(pattern.layout) for c in step if c.t == t) for t in range(5)]
        assert first.tolist() == expected_first and last.tolist() == expected_last, provider


@pytest.mark.parametrize(
    "flags",
    [["--engine-only", "--fused-only"], ["--skip-lm", "--engine-only"], ["--two-level-only", "--musicgen-only"],
     ["--skip-lm", "--two-level-only"]],
)  # fmt: skip
def test_contradicting_row_flags_are_refused(stubbed, flags, capsys):
    made, _, _ = stubbed
    assert _cli.main(["bench", *flags]) == 2 and made == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pick" in err[0], err
