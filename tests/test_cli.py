"""`python -m jax_patterns`: show, PNG, check, help, errors."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import typing as tp

import pytest

from jax_patterns import _cli

HERE = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[1])}
"""The environment of a subprocess started in another folder: it imports this checkout's jax_patterns."""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jax_patterns", *args], capture_output=True, text=True, timeout=300)


def test_show_prints_the_docstring_grid():
    done = run("show", "delayed", "--n-q", "3", "--timesteps", "4")
    assert done.returncode == 0, done.stderr
    assert "[[S, 0, 1, 2, 3, S, S],\n [S, S, 0, 1, 2, 3, S],\n [S, S, S, 0, 1, 2, 3]]" in done.stdout


def test_show_options_and_valid_only(capsys):
    assert (
        _cli.main(
            [
                "show",
                "unrolled",
                "--n-q",
                "3",
                "--timesteps",
                "2",
                "--flattening",
                "0",
                "1",
                "1",
                "--delays",
                "0",
                "1",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "[[S, 0, S, 1, S, S],\n [S, S, 0, S, 1, S],\n [S, S, 0, S, 1, S]]" in out
    assert _cli.main(["show", "delayed", "--n-q", "2", "--timesteps", "3", "--valid-only"]) == 0
    assert "[[S, 0, 1, 2],\n [S, S, 0, 1]]" in capsys.readouterr().out


def test_show_writes_a_png(tmp_path):
    target = tmp_path / "grid.png"
    assert (
        _cli.main(["show", "musiclm", "--n-q", "4", "--timesteps", "3", "--group-by", "2", "--png", str(target)]) == 0
    )
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_prints_a_passing_table():
    done = run("check", "coarse-first", "--n-q", "3", "--delays", "0", "1", "--timesteps", "0", "3")
    assert done.returncode == 0, done.stderr
    assert "torch reference" in done.stdout and "PASS" in done.stdout and "FAIL" not in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "16 passed, 0 failed"


@pytest.mark.parametrize("command", [[], ["show"], ["check"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _cli.main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: python -m jax_patterns" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "musiclm", "--delays", "0", "1"], "musiclm takes no --delays"),
        (["show", "musiclm", "--n-q", "4", "--group-by", "3"], "`group_by`=3 must divide n_q=4"),
        (["show", "delayed", "--n-q", "0"], "`n_q` must be >= 1, got 0"),
        (["show", "delayed", "--timesteps", "-2"], "`timesteps` must be >= 0, got -2"),
        (["show", "zigzag"], "invalid choice: 'zigzag'"),
    ],
)
def test_bad_options_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


FAKE_AUDIOCRAFT = """
class Pattern:
    def starts_with_special_token(self):
        return True


class CoarseFirstPattern:
    def __init__(self, n_q, delays):
        self.n_q, self.delays = n_q, delays
        self.max_delay = max(delays)  # audiocraft 1.3.0 fails here for n_q=1: max([])
"""


def test_check_reports_what_audiocraft_cannot_build_as_a_row(tmp_path):
    source = tmp_path / "codebooks_patterns.py"
    source.write_text(FAKE_AUDIOCRAFT)
    done = run("check", "coarse-first", "--n-q", "1", "--timesteps", "2", "--audiocraft-source", str(source))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "N/A (audiocraft cannot build this configuration: ValueError: max() arg is an empty sequence)" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "8 passed, 0 failed, 8 skipped"


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "delayed", "--png", "missing/dir/x.png"], "cannot write the PNG 'missing/dir/x.png'"),
        (["check", "delayed", "--audiocraft-source", "missing.py"], "--audiocraft-source 'missing.py': no such file"),
    ],
)
def test_bad_paths_are_one_line_errors(args, message, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "jax_patterns", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=HERE,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("extra", [[], ["--all-steps"]])
def test_a_closed_pipe_ends_quietly(extra):
    show = subprocess.Popen(
        [sys.executable, "-m", "jax_patterns", "show", "delayed", "--n-q", "8", "--timesteps", "3000", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert show.stdout is not None and show.stderr is not None
    show.stdout.readline()
    show.stdout.close()  # what `| head -1` does
    error = show.stderr.read().decode()
    show.stderr.close()
    show.wait(timeout=300)
    assert "Traceback" not in error and "BrokenPipe" not in error, error


def test_check_output_has_one_header_per_provider_and_a_summary(capsys):
    assert _cli.main(["check", "delayed", "--n-q", "2", "--timesteps", "1", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0] == repr(_cli.make_provider("delayed", 2)) and sum("DelayedPatternProvider" in line for line in out) == 1
    )
    assert [line.split()[:3] for line in out[1:3]] == [["T=1", "vs", "torch"], ["T=3", "vs", "torch"]]
    assert out[-1] == "16 passed, 0 failed"
    assert _cli.main(["check", "delayed", "--n-q", "2", "--timesteps", "1", "--verbose"]) == 0
    verbose = capsys.readouterr().out.splitlines()
    assert len(verbose) == 1 + 8 + 1 and all("PASS" in line for line in verbose[1:-1])


def test_long_grids_are_cut_with_a_note(capsys):
    assert _cli.main(["show", "delayed", "--n-q", "2", "--timesteps", "200"]) == 0
    out = capsys.readouterr().out
    assert "(first 80 of 202 steps; --all-steps prints them all)" in out and ", ...]" in out


# --- issue 17: bench and train user errors, extras, N/A rows, the show header ----------------------------------------
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--repeats", "0"], "`--repeats` must be >= 1, got 0"),
        (["--k", "0"], "`--k` values must be >= 1, got 0"),
        (["--t", "4", "-3"], "`--t` values must be >= 1, got -3"),
        (["--max-gb", "nan"], "`--max-gb` must be a positive number, got nan"),
        (["--json-out", "/nonexistent/x.json"], "`--json-out` '/nonexistent/x.json': the folder '/nonexistent'"),
        (["--audiocraft-source", "missing.py"], "`--audiocraft-source` 'missing.py': no such file"),
    ],
)
def test_bad_bench_flags_are_one_line_before_anything_is_timed(flags, message, capsys):
    assert _cli.main(["bench", *flags]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before the device line: nothing was run
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


BLOCK = "import sys; sys.modules.update({{m: None for m in {modules}}}); from jax_patterns._cli import main; "


@pytest.mark.parametrize(
    ("modules", "argv", "message"),
    [
        (["grain"], ["train", "--steps", "1", "--batch-size", "1"], "pip install 'jax_patterns[train]'"),
        (["torch"], ["bench"], "`bench` needs torch; install them with: pip install 'jax_patterns[bench]'"),
        (["torch"], ["check", "delayed"], "pip install 'jax_patterns[torch]'"),
    ],
)
def test_each_command_names_the_extra_it_needs(modules, argv, message):
    code = BLOCK.format(modules=modules) + f"raise SystemExit(main({argv!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_check_reports_audiocrafts_t0_as_not_applicable(tmp_path):
    source = tmp_path / "codebooks_patterns.py"
    source.write_text(FAKE_AUDIOCRAFT)
    done = run("check", "coarse-first", "--n-q", "2", "--timesteps", "0", "--audiocraft-source", str(source))
    assert done.returncode == 0, done.stderr
    assert "T=0  vs audiocraft       N/A (audiocraft crashes on T=0)" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "8 passed, 0 failed, 8 skipped"


def test_show_header_says_which_step_count_is_which(capsys):
    assert _cli.main(["show", "delayed", "--n-q", "4", "--timesteps", "8"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "K=4 codebooks x 12 steps (num_sequence_steps=11, audiocraft's count, leaves out step 0)" in header


# --- issue 25 items 10, 16, 18: one line and exit 2 for every bad flag; what the CLI says -------------------------
def test_a_png_name_that_is_not_png_is_one_line_before_the_grid(tmp_path, capsys):
    assert _cli.main(["show", "delayed", "--png", str(tmp_path / "grid.foo")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not (tmp_path / "grid.foo").exists()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "`--png`" in err[0] and "must name a .png file" in err[0], err


def test_show_png_without_matplotlib_names_the_extra_before_the_grid(tmp_path):
    code = BLOCK.format(modules=["matplotlib"]) + "raise SystemExit(main(['show', 'delayed', '--png', 'x.png']))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=HERE
    )
    assert done.returncode == 2 and done.stdout == "", done.stderr
    message = "`show --png` needs matplotlib; install it with: pip install 'jax_patterns[plot]'"
    assert done.stderr.strip().splitlines() == [f"python -m jax_patterns: error: {message}"]


def test_unsorted_delays_name_the_any_order_flag_which_exists(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(["show", "delayed", "--n-q", "3", "--delays", "0", "2", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "`--any-order` allows any order" in err[0] and "any_order=True" not in err[0], err
    unsorted = ["--n-q", "3", "--timesteps", "2", "--delays", "0", "2", "1"]
    assert _cli.main(["show", "delayed", *unsorted, "--any-order"]) == 0
    out = capsys.readouterr().out
    assert "any_order=True" in out and "[[S, 0, 1, S, S],\n [S, S, S, 0, 1],\n [S, S, 0, 1, S]]" in out
    with pytest.raises(SystemExit):
        _cli.main(["show", "unrolled", "--any-order"])
    assert "unrolled takes no --any-order" in capsys.readouterr().err


def test_the_top_level_help_names_every_command(capsys):
    with pytest.raises(SystemExit):
        _cli.main(["--help"])
    summary = capsys.readouterr().out.split("\n\n")[1]  # the description, after the usage line
    assert all(command in summary for command in ("show", "check", "bench", "train")), summary


def test_a_checkify_error_prints_the_bound_as_a_number():
    import jax.numpy as jnp
    from jax.experimental import checkify

    import jax_patterns as jp

    for wrap in (lambda f: f, jax_jit):  # eager checkify formatted the static bound as TypedInt(20000, dtype=int32)
        err, _ = checkify.checkify(wrap(lambda n: jp.check_lengths(n, 20000)))(jnp.array([3, 90000]))
        assert err.get() == "lengths must lie in [0, 20000]; got min 3 and max 90000 (`check` failed)"


def jax_jit(f):
    import jax

    return jax.jit(f)


INT = ["", "1.5", "junk", str(2**64), str(-(2**64))]  # not ints, or beyond int32 (and int64)
NATURAL = [*INT, "-1"]  # >= 0 wanted
POSITIVE = [*NATURAL, "0"]  # >= 1 wanted
SWITCH = ["=yes"]  # `--flag=yes` for a flag that takes no value
THIS_FILE = __file__

BAD_VALUES: dict[str, dict[str, list[str]]] = {
    "show": {
        "kind": ["", "junk"],
        "--n-q": POSITIVE,
        "--timesteps": NATURAL,
        "--delays": NATURAL,
        "--any-order": SWITCH,
        "--flatten-first": NATURAL,
        "--empty-initial": INT,  # negative drops the special-token step: valid
        "--flattening": NATURAL,
        "--group-by": POSITIVE,
        "--valid-only": SWITCH,
        "--png": ["", "grid.foo", "missing/dir/x.png"],
        "--all-steps": SWITCH,
    },
    "check": {
        "kind": ["", "junk"],
        "--n-q": POSITIVE,
        "--timesteps": NATURAL,
        "--delays": NATURAL,
        "--any-order": SWITCH,
        "--flatten-first": NATURAL,
        "--empty-initial": INT,
        "--flattening": NATURAL,
        "--group-by": POSITIVE,
        "--audiocraft-source": ["", "missing.py"],
        "--verbose": SWITCH,
    },
    "bench": {
        "--k": POSITIVE,
        "--t": POSITIVE,
        "--batch": POSITIVE,
        "--card": POSITIVE,
        "--dtype": ["", "float16"],
        "--lengths": SWITCH,
        "--repeats": POSITIVE,
        "--max-gb": ["", "junk", "0", "-1", "nan", "inf"],
        "--construct-t": POSITIVE,
        "--audiocraft-source": ["", "missing.py"],
        "--skip-lm": SWITCH,
        "--generate-steps": POSITIVE,
        "--train-steps": POSITIVE,
        "--fused-only": SWITCH,
        "--magnet-only": SWITCH,
        "--engine-only": SWITCH,
        "--musicgen-only": SWITCH,
        "--two-level-only": SWITCH,
        "--audiocraft-tree": ["", "missing_dir"],
        "--json": SWITCH,
        "--json-out": ["", "/nonexistent/x.json", "."],
    },
    "train": {
        "--steps": POSITIVE,
        "--batch-size": POSITIVE,
        "--seed": INT[:4] + ["-1", str(2**32)],
        "--pack": SWITCH,
        "--checkpoint-dir": ["", THIS_FILE],
        "--stop-after": [*POSITIVE, "3"],  # beyond --steps 2
        "--log-every": POSITIVE,
        "--save-every": POSITIVE,
        "--max-frames": POSITIVE,
        "--loss": ["", "junk"],
        "--dim": [*POSITIVE, "6"],  # not a multiple of the 4 heads
        "--local-processes": POSITIVE,
        "--coordinator": ["", "junk", "host:0", "host:99999", f"host:{2**64}", ":80"],
        "--num-processes": POSITIVE,
        "--process-id": [*NATURAL, "1"],  # beyond --num-processes 1
        "--coordinator-timeout": POSITIVE,
    },
}
LISTS = {
    "--delays": ["0", "1", "2"],
    "--flattening": ["0", "1", "2"],
    "--k": ["2"],
    "--t": ["8"],
    "--dtype": ["float32"],
}
KIND_OF = {"--group-by": "musiclm", "--flattening": "unrolled"}  # the family that takes the flag (default: delayed)


def _command_line(command: str, flag: str, value: str) -> list[str]:
    """The command with every other flag valid, and `flag` given `value` (last in a list flag's values)."""
    if command in ("show", "check"):
        base = [command, KIND_OF.get(flag, "delayed")] + (["--timesteps", "1"] if command == "check" else [])
        if flag == "kind":
            return [command, value]
    else:
        base = [command] + (["--steps", "2", "--batch-size", "2"] if command == "train" else [])
        if flag in ("--num-processes", "--process-id", "--coordinator-timeout"):
            base += ["--coordinator", "127.0.0.1:1"]
    if value.startswith("="):
        return [*base, flag + value]
    return [*base, flag, *LISTS.get(flag, []), value]


CASES = [(c, f, v) for c, flags in BAD_VALUES.items() for f, values in flags.items() for v in values]


def test_the_bad_value_table_covers_every_flag_of_every_command():
    _, commands = _cli.make_parser()
    for name, parser in commands.items():
        flags = {a.option_strings[-1] if a.option_strings else a.dest for a in parser._actions if a.dest != "help"}
        assert flags == set(BAD_VALUES[name]), (name, flags ^ set(BAD_VALUES[name]))


@pytest.mark.parametrize(("command", "flag", "value"), CASES, ids=[f"{c} {f} {v!r}" for c, f, v in CASES])
def test_every_flag_refuses_bad_values_in_one_line(command, flag, value, monkeypatch, capsys, tmp_path):
    from jax_patterns.bench import _command as bench_command
    from jax_patterns.train import _command as train_command

    def ran(*args, **kwargs):
        raise AssertionError(f"{command} ran with {flag} {value!r}")

    monkeypatch.setattr(bench_command, "plan", ran)
    monkeypatch.setattr(train_command, "train", ran)
    monkeypatch.setattr(train_command, "launch", ran)
    monkeypatch.chdir(tmp_path)
    code: tp.Any
    try:
        code = _cli.main(_command_line(command, flag, value))
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0], (code, err)
