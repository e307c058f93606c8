"""`python -m jax_patterns`: show, PNG, check, help, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jax_patterns import _cli


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
