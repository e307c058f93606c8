"""Runs the code blocks of a markdown page in order, like a notebook: README.md's and every docs page's examples.

Blocks of a page share one Python namespace, so a page can build up its example; `bash` blocks run in a shell in the
same working directory (a fresh temporary one), with this checkout first on `PYTHONPATH`. Markers are HTML comments on
the line before a fence (invisible on GitHub and on the site):

- `<!-- skip: REASON -->`: the block is not run (it needs the network, a GPU, or is long); the reason is required
  and the test suite reports it as a skip.
- `<!-- output -->` before a `text` block: the output of the last block run must contain these lines.

Every fence names its language; `python`, `bash` (`sh`, `shell`) run, the languages of `SHOWN` are only shown, any
other is an error, so no block is left unrun by accident. Any block that fails fails the page, naming its line.

`tests/test_docs.py` runs each page in its own process: `python tests/markdown_fences.py PAGE`. The examples run as a
reader pastes them, under JAX's default configuration (not the suite's strict promotion rules of `tests/conftest.py`:
optax, for one, mixes Python floats with int32 step counts), with warnings as errors, as in the suite, and with XLA's
backend optimisations off (`FAST_COMPILE`: the same results, compiled faster).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import types

FAST_COMPILE = "--xla_backend_optimization_level=0"
"""The examples are tiny: compiling is most of their time, and XLA's unoptimised CPU code compiles a third faster."""

RUN = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "shell": "bash"}
SHOWN = {"text", "json", "yaml", "toml"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>skip|output)\s*(?::\s*(?P<reason>.*?))?\s*-->\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced block: where it starts (1-based line of its first code line), its language, code and marker."""

    path: str
    line: int
    language: str
    code: str
    skip: str | None = None
    output: bool = False


def parse(path: str) -> list[Block]:
    """The fenced blocks of a markdown file, with their markers.

    Raises:
      ValueError: a fence without a language or with one the runner does not know, an unclosed fence, a marker that
        is malformed or stands before nothing it applies to.
    """
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    blocks: list[Block] = []
    marker: tuple[str, str | None, int] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        comment = _MARKER.match(line)
        if comment:
            if comment["kind"] == "skip" and not comment["reason"]:
                raise ValueError(f"{path}:{i + 1}: `<!-- skip: REASON -->` needs a reason")
            marker = (comment["kind"], comment["reason"], i + 1)
            i += 1
            continue
        if line.lstrip().startswith("<!--") and re.match(r"\s*<!--\s*(skip|output)\b", line):
            raise ValueError(f"{path}:{i + 1}: malformed marker {line.strip()!r}")
        fence = _FENCE.match(line)
        if not fence:
            if line.strip() and marker is not None:
                raise ValueError(f"{path}:{marker[2]}: a marker must stand on the line before a fence")
            i += 1
            continue
        indent, ticks = fence["indent"], fence["fence"]
        language = fence["info"].split()[0].lower() if fence["info"].strip() else ""
        body, j = [], i + 1
        while j < len(lines):
            close = _FENCE.match(lines[j])
            if close and close["fence"][0] == ticks[0] and len(close["fence"]) >= len(ticks) and not close["info"]:
                break
            body.append(lines[j])
            j += 1
        else:
            raise ValueError(f"{path}:{i + 1}: the fence opened here is never closed")
        if language not in RUN and language not in SHOWN:
            raise ValueError(
                f"{path}:{i + 1}: a fence must name its language, one of {sorted(RUN)} (run) or {sorted(SHOWN)} "
                f"(shown); got {language!r}"
            )
        code = textwrap.dedent("\n".join(b[len(indent) :] if b.startswith(indent) else b for b in body))
        kind, reason = (marker or (None, None, 0))[:2]
        if kind == "output" and language not in SHOWN:
            raise ValueError(f"{path}:{i + 1}: `<!-- output -->` goes before a text block, not a {language} one")
        if kind == "skip" and language not in RUN:
            raise ValueError(f"{path}:{i + 1}: `<!-- skip -->` before a {language} block, which is never run")
        blocks.append(
            Block(path, i + 2, language, code, skip=reason if kind == "skip" else None, output=kind == "output")
        )
        marker = None
        i = j + 1
    if marker is not None:
        raise ValueError(f"{path}:{marker[2]}: a marker must stand on the line before a fence")
    return blocks


def run(path: str, root: str) -> int:
    """Runs the page's blocks in order in a fresh temporary directory; 0 when every unmarked block passes."""
    import warnings

    blocks = parse(path)
    warnings.simplefilter("error")  # as the suite's `filterwarnings = ["error"]`
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    os.environ["XLA_FLAGS"] = env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()
    page = types.ModuleType("docs_page")  # a real module: dataclasses and pickle look classes up in sys.modules
    sys.modules[page.__name__] = page
    namespace = page.__dict__
    last_output = ""
    with tempfile.TemporaryDirectory() as cwd:
        os.chdir(cwd)
        for block in blocks:
            where = f"{path}:{block.line}"
            if block.skip is not None:
                print(f"skipped {where}: {block.skip}")
                continue
            if block.output:
                missing = [line for line in block.code.strip().splitlines() if line.strip() not in last_output]
                if missing:
                    print(f"FAILED {where}: the output above it lacks {missing[0]!r}\n--- output ---\n{last_output}")
                    return 1
                continue
            if block.language not in RUN:
                continue
            start = time.perf_counter()
            if RUN[block.language] == "bash":
                done = subprocess.run(
                    ["bash", "-e", "-o", "pipefail", "-c", block.code], env=env, capture_output=True, text=True
                )
                last_output = done.stdout + done.stderr
                if done.returncode:
                    print(f"FAILED {where}: exit {done.returncode}\n{last_output}")
                    return 1
                print(f"ran {where} (bash) in {time.perf_counter() - start:.1f} s", flush=True)
                continue
            source = "\n" * (block.line - 1) + block.code  # tracebacks name the page's own line numbers
            captured = io.StringIO()
            try:
                with contextlib.redirect_stdout(captured):
                    exec(compile(source, path, "exec"), namespace)
            except BaseException:
                print(f"FAILED {where}:\n{captured.getvalue()}{traceback.format_exc()}")
                return 1
            last_output = captured.getvalue()
            print(f"ran {where} (python) in {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[0] = root  # this checkout's packages, not the tests folder
    sys.exit(run(os.path.abspath(sys.argv[1]), root))
