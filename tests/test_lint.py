"""Lint, format and type checks, run as part of the suite (ruff and mypy come with the test extra)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_lint_and_format():
    lint = run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.thorough
def test_mypy_package_and_tests():
    package = run("mypy")
    assert package.returncode == 0, package.stdout + package.stderr
    # tests pass loosely typed layouts and deliberately wrong arguments
    tests = run(
        "mypy", "tests", "tools", "benchmarks", "--disable-error-code", "arg-type", "--disable-error-code", "list-item"
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
