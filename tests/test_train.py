"""Training at scale: the grain pipeline, the data-parallel loop, checkpoints that resume exactly, many processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import grain
import numpy as np
import pytest

import jax_patterns as jp
from jax_patterns.train import MarkovCodes, Options, input_pipeline, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_corpus_is_deterministic_and_learnable():
    corpus = MarkovCodes(n_q=3, card=16, min_len=5, max_len=20, size=50, seed=3)
    again = MarkovCodes(n_q=3, card=16, min_len=5, max_len=20, size=50, seed=3)
    assert all((corpus[i] == again[i]).all() for i in range(50))
    lengths = [corpus[i].shape[1] for i in range(50)]
    assert min(lengths) >= 5 and max(lengths) <= 20 and len(set(lengths)) > 5
    other = MarkovCodes(n_q=3, card=16, min_len=5, max_len=20, size=50, seed=4)
    assert [other[i].shape for i in range(50)] != [corpus[i].shape for i in range(50)]
    with pytest.raises(IndexError):
        corpus[50]
    with pytest.raises(ValueError, match=r"need 1 <= min_len <= max_len"):
        MarkovCodes(min_len=9, max_len=3)


def pipeline(pack: bool, seed: int = 0, batch_size: int = 4):
    provider = jp.DelayedPatternProvider(3)
    corpus = MarkovCodes(n_q=3, card=16, min_len=2, max_len=12, size=40, seed=1)
    row_steps = jp.segment_steps(provider, 12)
    dataset = input_pipeline(
        corpus, provider, batch_size=batch_size, row_steps=row_steps, special_token=16, seed=seed, pack=pack
    )
    return dataset, corpus, provider, row_steps


@pytest.mark.parametrize("pack", [True, False])
def test_the_pipeline_is_deterministic_and_its_state_resumes_it(pack):
    dataset, _, _, _ = pipeline(pack)
    first = iter(dataset)
    batches = [next(first) for _ in range(6)]
    again = iter(pipeline(pack)[0])
    for a in batches:
        b = next(again)
        assert all((a[k] == b[k]).all() for k in a)
    state = first.get_state()
    expected = [next(first) for _ in range(3)]
    resumed = iter(pipeline(pack)[0])
    resumed.set_state(state)
    for a in expected:
        b = next(resumed)
        assert all((a[k] == b[k]).all() for k in a)
    other = next(iter(pipeline(pack, seed=1)[0]))
    assert not (other["tokens"] == batches[0]["tokens"]).all()


@pytest.mark.parametrize("pack", [True, False])
def test_the_pipeline_rows_hold_the_corpus_examples_each_with_its_own_pattern(pack):
    dataset, corpus, provider, row_steps = pipeline(pack)
    order = grain.MapDataset.source(corpus).shuffle(seed=0)
    expected = [jp.segment(order[i], provider, 16) for i in range(len(corpus))]
    found = []
    for batch in [next(iter(dataset))] + [b for _, b in zip(range(3), iter(dataset))]:
        assert batch["tokens"].shape == (4, 3, row_steps)
        for r in range(4):
            ids = batch["segment_ids"][r]
            assert (batch["tokens"][r][:, ids == 0] == 16).all() and (batch["targets"][r][:, ids == 0] == -1).all()
            for s in range(1, ids.max() + 1):
                span = np.flatnonzero(ids == s)
                assert (batch["positions"][r, span] == np.arange(span.size)).all()
                tokens, targets = batch["tokens"][r][:, span], batch["targets"][r][:, span]
                match = [i for i, (t, g) in enumerate(expected) if t.shape == tokens.shape and (t == tokens).all()]
                assert match and (expected[match[0]][1] == targets).all()
                found.append(match[0])
            assert ids.max() == 1 or pack
    assert len(found) > 4


def run_train(**kw) -> list[dict]:
    options = dict(steps=12, batch_size=8, seed=0, log_every=4, save_every=4, max_frames=16)
    return train(Options(**{**options, **kw}))


def test_training_lowers_the_loss_and_packing_wastes_less():
    packed = run_train(pack=True, steps=60, log_every=20, batch_size=8)
    padded = run_train(pack=False, steps=60, log_every=20, batch_size=8)
    for records in (packed, padded):
        assert [r["step"] for r in records] == [20, 40, 60]
        assert set(records[0]) == {"step", "loss", "tokens_per_s", "padding_fraction"}
        assert records[-1]["loss"] < records[0]["loss"], records
    assert packed[-1]["loss"] < packed[0]["loss"] - 0.2, packed  # the loss visibly falls
    assert packed[-1]["padding_fraction"] < 0.5 * padded[-1]["padding_fraction"]


def test_stopping_and_resuming_gives_the_straight_runs_losses(tmp_path):
    straight = run_train(pack=True)
    first = run_train(pack=True, checkpoint_dir=str(tmp_path), stop_after=6)
    assert [r["step"] for r in first] == [4, 6]
    second = run_train(pack=True, checkpoint_dir=str(tmp_path))
    assert [r["step"] for r in second] == [8, 12]
    assert [r["loss"] for r in first[:1] + second] == [r["loss"] for r in straight]
    assert sorted(int(p) for p in os.listdir(tmp_path) if p.isdigit())[-1] == 12


def test_option_errors():
    with pytest.raises(ValueError, match=r"`stop_after` must be <= 12, got 20"):
        run_train(stop_after=20)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (dict(steps=None), TypeError, r"`steps` must be an int, got None"),
        (dict(batch_size=True), TypeError, r"`batch_size` must be an int, got True"),
        (dict(log_every=2.5), TypeError, r"`log_every` must be an int, got 2.5"),
        (dict(pack=None), TypeError, r"`pack` must be a bool, got None"),
        (dict(seed=2**32), ValueError, r"`seed` must be <= 4294967295, got 4294967296"),
        (dict(dim=6), ValueError, r"`dim`=6 must be a multiple of the model's 4 attention heads"),
        (dict(num_processes=2), ValueError, r"`num_processes`=2 needs a `coordinator`"),
        (dict(process_id=1), ValueError, r"`process_id`=1 must lie in \[0, num_processes=1\)"),
        (dict(coordinator="foo"), ValueError, r"`coordinator` must be HOST:PORT"),
        (dict(min_frames=9, max_frames=8), ValueError, r"`min_frames` must be <= 8, got 9"),
        (dict(learning_rate=float("nan")), ValueError, r"`learning_rate` must be finite and >= 0, got nan"),
        (dict(loss=None), ValueError, r"`loss` must be \"fused\" or \"unfused\", got None"),
        (dict(checkpoint_dir=" "), ValueError, r"`checkpoint_dir` must name a directory, got ' '"),
    ],
)
def test_options_check_every_field_when_built(change, error, message):
    """Issue 25: Options took None, bools and floats for its ints (the run failed later, or wrapped them)."""
    with pytest.raises(error, match=message):
        Options(**{**dict(steps=2, batch_size=2), **change})


def test_train_names_its_arguments():
    with pytest.raises(TypeError, match=r"`options` must be a jax_patterns.train.Options, got NoneType"):
        train(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`emit` must be a callable taking a record, or None, got True"):
        train(Options(steps=1, batch_size=1), emit=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (dict(n_q=None), TypeError, r"`n_q` must be an int, got None"),
        (dict(card=0), ValueError, r"`card` must be >= 1, got 0"),
        (dict(card=2**31 - 1), ValueError, r"`card` must be <= 65536"),  # was a 64 GiB table
        (dict(max_len=2**24), ValueError, r"`n_q`=4 \* `max_len`=16777216 is over 16777216"),
        (dict(size=0), ValueError, r"`size` must be >= 1, got 0"),
        (dict(seed=-1), ValueError, r"`seed` must be >= 0, got -1"),
        (dict(noise=float("nan")), ValueError, r"`noise` must be a probability in \[0, 1\], got nan"),
        (dict(noise=None), TypeError, r"`noise` must be a float in \[0, 1\], got None"),
        (dict(min_len=5, max_len=4), ValueError, r"need 1 <= min_len <= max_len, got min_len=5, max_len=4"),
    ],
)
def test_the_corpus_checks_its_fields(change, error, message):
    with pytest.raises(error, match=message):
        MarkovCodes(**change)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (dict(source=None), TypeError, r"`source` must be a random-access source"),
        (dict(provider=None), TypeError, r"`provider` must be a pattern provider"),
        (dict(pack=None), TypeError, r"`pack` must be a bool, got None"),
        (dict(packing_bins=False), TypeError, r"`packing_bins` must be an int, got False"),
        (dict(prefetch=None), TypeError, r"`prefetch` must be an int, got None"),  # checked before grain sees it
        (dict(prefetch=-1), ValueError, r"`prefetch` must be >= 0, got -1"),
        (dict(row_steps=2**31 - 1), ValueError, r"`row_steps`=2147483647 with 16 bins"),  # was a MemoryError
        (dict(seed=2.5), TypeError, r"`seed` must be an int, got 2.5"),  # 2.5 was truncated to 2
    ],
)
def test_the_pipeline_checks_its_arguments_before_grain(change, error, message):
    arguments = dict(
        source=MarkovCodes(2, 4, 2, 3, size=4),
        provider=jp.DelayedPatternProvider(2),
        batch_size=2,
        row_steps=8,
        special_token=4,
        seed=0,
        pack=True,
    )
    with pytest.raises(error, match=message):
        input_pipeline(**{**arguments, **change})


def test_an_example_longer_than_a_row_is_named_when_it_is_reached():
    dataset = input_pipeline(
        MarkovCodes(2, 4, 3, 3, size=4), jp.DelayedPatternProvider(2), batch_size=1, row_steps=3, special_token=4,
        seed=0, pack=True, prefetch=0,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"`row_steps`=3 is shorter than an example of 3 timesteps, which takes 4"):
        next(iter(dataset))


def test_launch_checks_its_arguments_and_closes_its_childrens_pipes():
    import gc
    import warnings

    from jax_patterns.train import launch

    with pytest.raises(ValueError, match=r"`timeout` must be a finite number of seconds >= 0, got nan"):
        launch(1, ["--help"], timeout=float("nan"))
    with pytest.raises(TypeError, match=r"`argv` must be a list of str, got None"):
        launch(1, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`processes` must be an int, got None"):
        launch(None, ["--help"])  # type: ignore[arg-type]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert launch(1, ["--help"], timeout=60.0) == 0
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]


# --- subprocesses: many processes on 127.0.0.1, bounded in time ------------------------------------------------------
def command(*args: str, devices: int) -> tuple[list[str], dict]:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "PYTHONPATH": ROOT}
    return [sys.executable, "-m", "jax_patterns", "train", *args], env


def records_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


TRAIN = ("--steps", "6", "--batch-size", "8", "--pack", "--log-every", "2", "--max-frames", "16")


@pytest.mark.thorough
def test_two_processes_give_the_losses_of_one_process_with_all_devices_and_resume_exactly(tmp_path):
    argv, env = command(*TRAIN, devices=4)
    one = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = []
    for stop in (["--stop-after", "4"], []):  # preempted after step 4, then started again: it resumes
        argv, env = command(*TRAIN, "--local-processes", "2", "--checkpoint-dir", str(tmp_path), *stop, devices=2)
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        two += records_of(done.stdout)  # stdout: JSON lines only
    assert "[process 1] resumed from the checkpoint of step 4" in done.stderr
    single = records_of(one.stdout)
    assert [r["step"] for r in two] == [2, 4, 6] == [r["step"] for r in single]
    np.testing.assert_allclose([r["loss"] for r in two], [r["loss"] for r in single], rtol=1e-5)


@pytest.mark.thorough
def test_a_crashed_worker_stops_the_run_with_its_error():
    argv, env = command(
        "--steps", "100000", "--batch-size", "4", "--log-every", "1000", "--local-processes", "2", devices=2
    )
    launcher = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = None
        began = time.monotonic()
        while pid is None and time.monotonic() - began < 120:
            assert launcher.stderr is not None
            line = launcher.stderr.readline()
            if "process 1 started (pid" in line:
                pid = int(line.split("pid ")[1].rstrip(")\n"))
        assert pid is not None, "the launcher did not start process 1"
        time.sleep(3)
        os.kill(pid, signal.SIGKILL)  # a worker dies mid-run
        _, err = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 128 + 9  # the worker's signal, as a shell reports it
    assert "process 1 exited with code -9; stopping the others" in err


def test_bad_flags_exit_with_a_message():
    argv, env = command("--steps", "0", "--batch-size", "4", devices=1)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "`--steps` must be >= 1, got 0" in done.stderr
    argv, env = command("--steps", "2", "--batch-size", "3", devices=2)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "`--batch-size`=3 must be a multiple of the 2 devices" in done.stderr


# --- issue 17: every valid command line trains on a finite loss; user errors are one line, exit 2 -------------------
@pytest.mark.parametrize("max_frames", [8, 4])
def test_batches_with_an_empty_codebook_train_on_a_finite_loss(max_frames):
    records = train(Options(steps=6, batch_size=2, dim=8, max_frames=max_frames, log_every=1))
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(r["loss"]) for r in records), records
    json.loads(json.dumps(records, allow_nan=False))  # strict JSON


def test_the_skip_empty_loss_is_the_mean_over_codebooks_with_targets_and_its_gradient_is_finite():
    import jax
    import jax.numpy as jnp

    from jax_patterns import lm

    logits = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 4, 5)), jnp.float32)
    targets = np.full((2, 3, 4), -1, np.int32)
    targets[0, 0, :2] = [1, 2]
    targets[1, 2, 3] = 4  # codebook 1 has no target
    plain, per = lm.packed_cross_entropy(logits, targets)
    assert np.isnan(float(plain)) and np.isnan(float(per[1]))
    loss, per = lm.packed_cross_entropy(logits, targets, skip_empty=True)
    np.testing.assert_allclose(float(loss), (float(per[0]) + float(per[2])) / 2, rtol=1e-6)
    grad = jax.grad(lambda x: lm.packed_cross_entropy(x, targets, skip_empty=True)[0])(logits)
    assert np.isfinite(np.asarray(grad)).all()
    none = np.full((2, 3, 4), -1, np.int32)
    assert float(lm.packed_cross_entropy(logits, none, skip_empty=True)[0]) == 0.0


def test_a_checkpoint_dir_that_is_a_file_is_refused_before_training(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("")
    for extra in ([], ["--local-processes", "2"]):
        argv, env = command("--steps", "2", "--batch-size", "2", "--checkpoint-dir", str(path), *extra, devices=1)
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr[-2000:]
        assert done.stderr.strip().splitlines() == [
            f"python -m jax_patterns: error: `--checkpoint-dir` {str(path)!r} is a file; expected a directory "
            "(it is created if missing)"
        ]


def test_a_failing_checkpoint_write_ends_promptly_with_an_error():
    """orbax logs a worker thread's failure and may leave `save` waiting: the guard raises instead of hanging."""
    import logging
    import threading

    from jax_patterns.train import _loop

    def save_that_hangs():
        def worker():
            logging.getLogger("absl").error("_SignalingThread.run() raised an exception: [Errno 20] Not a directory")

        threading.Thread(target=worker).start()
        threading.Event().wait()  # what CheckpointManager.save does after such a failure: wait forever

    began = time.monotonic()
    with pytest.raises(_loop.CheckpointError, match=r"saving step 3 failed: .*Not a directory"):
        _loop._guarded("saving step 3", save_that_hangs)
    assert time.monotonic() - began < 30
    with pytest.raises(_loop.CheckpointError, match=r"restoring failed: OSError: disk full"):
        _loop._guarded("restoring", lambda: (_ for _ in ()).throw(OSError("disk full")))


def test_resuming_with_other_model_flags_names_them(tmp_path):
    run_train(checkpoint_dir=str(tmp_path), steps=4, dim=8)
    with pytest.raises(ValueError, match=r"holds a run made with --dim 8 \(now 16\); resume with the same flags"):
        run_train(checkpoint_dir=str(tmp_path), steps=8, dim=16)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--coordinator", "foo"], "`--coordinator` must be HOST:PORT with a port in [1, 65535], got 'foo'"),
        (["--coordinator", "host:0"], "`--coordinator` must be HOST:PORT"),
        (["--dim", "6"], "`--dim`=6 must be a multiple of the model's 4 attention heads"),
        (["--seed", "-1"], "`--seed` must be >= 0, got -1"),
        (["--seed", str(2**64)], "`--seed` must be below 2**32 (grain's shuffle seeds are 32-bit), got 1844674"),
        (["--coordinator-timeout", "0"], "`--coordinator-timeout` must be >= 1, got 0"),
        (["--stop-after", "9"], "`--stop-after`=9 must lie in [1, --steps=2]"),
        (["--local-processes", "2", "--dim", "6"], "`--dim`=6 must be a multiple"),
        (["--local-processes", "1025"], "`--local-processes` must be <= 1024, got 1025"),
    ],
)
def test_bad_train_flags_are_one_line_before_anything_runs(flags, message, capsys):
    from jax_patterns import _cli

    assert _cli.main(["train", "--steps", "2", "--batch-size", "2", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_the_fused_and_unfused_training_losses_agree():
    fused = run_train(pack=True, steps=8, log_every=2, loss="fused")
    unfused = run_train(pack=True, steps=8, log_every=2, loss="unfused")
    np.testing.assert_allclose([r["loss"] for r in fused], [r["loss"] for r in unfused], rtol=2e-4)
    with pytest.raises(ValueError, match=r'`loss` must be "fused" or "unfused", got \'other\''):
        run_train(loss="other")


# --- issue 25 item 18: train says where it saves, once, and what it waits for (bounded, 127.0.0.1 only) -------------
def test_train_says_once_where_it_saves_checkpoints(tmp_path, capsys):
    from jax_patterns import _cli

    flags = ["--steps", "3", "--batch-size", "2", "--dim", "8", "--max-frames", "8", "--save-every", "1"]
    assert _cli.main(["train", *flags, "--checkpoint-dir", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err.splitlines()
    said = [line for line in err if "checkpoint" in line]
    assert said == [f"saving checkpoints to {tmp_path / 'run'} (every 1 steps and step 3; the 2 latest are kept)"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("process", "waits_for", "hint"),
    [
        ("1", "the coordinator (process 0)", "is process 0 running there?"),
        ("0", "every process to join", "is HOST this machine, and did every process start?"),
    ],
)
@pytest.mark.thorough
def test_a_process_that_cannot_join_says_what_it_waits_for_and_gives_up(process, waits_for, hint):
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there (process 1), or process 1 never comes (process 0)
    flags = ["--coordinator", address, "--num-processes", "2", "--process-id", process, "--coordinator-timeout", "3"]
    argv, env = command("--steps", "2", "--batch-size", "2", *flags, devices=1)
    began = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - began < 60  # jax alone would wait the 3 s and 60 more, then abort with a stack dump
    assert done.returncode == 1, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    said = f"process {process} of 2: waiting for {waits_for} at {address} (up to 3 s, --coordinator-timeout)"
    assert lines[0] == said
    assert lines[-1] == (
        f"python -m jax_patterns train: error: process {process} could not join the run at {address} within 3 s "
        f"(--coordinator-timeout): {hint}"
    )
    assert "Traceback" not in done.stderr and "Check failure" not in done.stderr
