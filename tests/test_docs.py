"""The documentation: every example of README.md and of the site runs, the site builds with --strict, every public
name has a docstring, and the example runner refuses what it should."""

from __future__ import annotations

import glob
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap

import markdown_fences
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "tests", "markdown_fences.py")
PAGES = sorted(
    os.path.relpath(path, ROOT)
    for path in [
        os.path.join(ROOT, "README.md"),
        os.path.join(ROOT, "benchmarks", "RESULTS.md"),
        *glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True),
    ]
)


def _skipped() -> list:
    """A `test_marked_blocks` case per block marked skip (a page that does not parse fails `test_examples_run`)."""
    cases = []
    for page in PAGES:
        try:
            blocks = markdown_fences.parse(os.path.join(ROOT, page))
        except ValueError:
            continue
        cases += [pytest.param(b.skip, id=f"{page}:{b.line}") for b in blocks if b.skip is not None]
    return cases


SKIPPED = _skipped()


def _run_page(path: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, RUNNER, path], cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("page", PAGES)
def test_examples_run(page):
    done = _run_page(os.path.join(ROOT, page))
    assert done.returncode == 0, f"{page}:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("reason", SKIPPED)
def test_marked_blocks(reason):
    pytest.skip(reason)  # a block marked `<!-- skip: REASON -->`: it needs the network or a GPU, or runs long


def test_site_builds_strict(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    for page in ("api/lm/index.html", "api/torch_compat/index.html", "benchmarks/results.png"):
        assert (tmp_path / "site" / page).exists(), page
    reference = (tmp_path / "site" / "api" / "lm" / "index.html").read_text()
    assert 'id="jax_patterns.lm.Engine"' in reference and 'id="jax_patterns.lm.generate"' in reference


def test_a_broken_reference_fails_the_build(tmp_path):
    for name in ("mkdocs.yml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), tmp_path / name)
    for name in ("docs", "benchmarks"):
        shutil.copytree(os.path.join(ROOT, name), tmp_path / name)
    for name in ("jax_patterns", "torch_compat"):
        os.symlink(os.path.join(ROOT, name), tmp_path / name)
    with open(tmp_path / "docs" / "design.md", "a") as f:
        f.write("\nSee [the pattern][jax_patterns.NoSuchName] and [this](lm.md#no-such-anchor).\n")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=tmp_path,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0
    assert "jax_patterns.NoSuchName" in done.stderr and "no-such-anchor" in done.stderr


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", os.path.join(ROOT, "docs", "hooks.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_public_name_has_a_docstring():
    hooks = _hooks()
    modules = hooks.load_packages()
    for package, module in modules.items():  # the reference reads `__all__` statically: it must be the real one
        assert hooks.exports(module) == list(importlib.import_module(package).__all__), package
    assert hooks.undocumented(modules) == []


def test_a_missing_docstring_is_found(tmp_path):
    import griffe

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent('''
            """A package."""

            from pkg._impl import Documented as Documented
            from pkg._impl import bare as bare

            __all__ = ("Documented", "bare")
            ''')
    )
    (package / "_impl.py").write_text(
        textwrap.dedent('''
            class Documented:
                """Has one."""

                def method(self):
                    return 1

                def _private(self):
                    return 2


            def bare():
                return 3
            ''')
    )
    loader = griffe.GriffeLoader(search_paths=[str(tmp_path)])
    loader.load("pkg")
    loader.resolve_aliases(implicit=True, external=False)
    hooks = _hooks()
    assert hooks.undocumented({"pkg": loader.modules_collection.get_member("pkg")}) == [
        "pkg.Documented.method",
        "pkg.bare",
    ]


def _page(tmp_path, text: str) -> str:
    path = tmp_path / "page.md"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_runner_runs_a_page_as_a_notebook(tmp_path):
    page = _page(
        tmp_path,
        """
        ```python
        x = 40
        ```

        - in a list item:

            ```python
            x += 2
            print(x)
            ```

        <!-- output -->
        ```text
        42
        ```

        ```bash
        echo "shell $(python -c 'import jax_patterns; print(jax_patterns.__name__)')" > out.txt
        ```

        ```python
        assert open("out.txt").read() == "shell jax_patterns\\n"
        ```

        <!-- skip: never run -->
        ```python
        raise SystemExit(3)
        ```
        """,
    )
    done = _run_page(page, cwd=str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped" in done.stdout and "never run" in done.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```python\nx = 1\nassert x == 2\n```\n", 'page.md", line 3'),  # the failing line of the page
        ("```bash\nfalse\n```\n", "exit 1"),
        ("```python\nprint(1)\n```\n<!-- output -->\n```text\n2\n```\n", "lacks '2'"),
    ],
    ids=["python", "bash", "output"],
)
def test_runner_fails_a_failing_block(tmp_path, text, message):
    done = _run_page(_page(tmp_path, text), cwd=str(tmp_path))
    assert done.returncode == 1
    assert "FAILED" in done.stdout and message in done.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```\nx = 1\n```\n", "must name its language"),
        ("```rust\nfn main() {}\n```\n", "must name its language"),
        ("<!-- skip: -->\n```python\nx = 1\n```\n", "needs a reason"),
        ("<!-- skip: slow -->\n\nsome text\n\n```python\nx = 1\n```\n", "on the line before a fence"),
        ("<!-- output -->\n```python\nx = 1\n```\n", "before a text block"),
        ("```python\nx = 1\n", "never closed"),
        ("<!-- skip slow -->\n```python\nx = 1\n```\n", "malformed marker"),
    ],
    ids=["no-language", "unknown-language", "no-reason", "stray-marker", "output-on-code", "unclosed", "malformed"],
)
def test_runner_refuses_a_bad_page(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        markdown_fences.parse(_page(tmp_path, text))
