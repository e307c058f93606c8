"""Downloads a peer's released sdist with pip and extracts the files a golden script runs (never committed)."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
import tarfile
import types


def fetch_sdist_files(package: str, version: str, paths: tuple[str, ...], workdir: pathlib.Path) -> pathlib.Path:
    """`pip download --no-deps --no-binary :all: package==version` into `workdir`; extracts `paths` (relative to
    the sdist's top folder) under `workdir / "src"` and returns that folder."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", str(workdir),
         f"{package}=={version}"],
        check=True,
    )  # fmt: skip
    (sdist,) = workdir.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        for path in paths:
            member = next(m for m in tar.getmembers() if m.name.split("/", 1)[-1] == path)
            target = workdir / "src" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    return workdir / "src"


def load_module(name: str, path: pathlib.Path, stubs: dict[str, types.ModuleType] | None = None) -> types.ModuleType:
    """Imports the file at `path` as module `name`, with `stubs` standing in for imports it never runs."""
    sys.modules.update(stubs or {})
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_functions(path: pathlib.Path, names: tuple[str, ...], namespace: dict) -> dict:
    """The functions `names` of the file at `path`, compiled from their own source into `namespace` (which provides
    what they read), without running the rest of the file. A module-level function of that name comes first, else
    a method or nested function."""
    import ast

    tree = ast.parse(path.read_text(), filename=str(path))
    nested = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name in names]
    top = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names]
    found = {node.name: node for node in nested if node.name not in {n.name for n in top}} | {n.name: n for n in top}
    missing = set(names) - set(found)
    if missing:
        raise LookupError(f"{path} has no function {sorted(missing)}")
    for name in names:
        node = found[name]
        node.decorator_list = []
        module = ast.Module(body=[node], type_ignores=[])
        exec(compile(module, str(path), "exec"), namespace)  # noqa: S102 - the peer's own function, by design
    return namespace


def load_statements(path: pathlib.Path, first: str, last: str) -> object:
    """The statements of the file at `path` from the line starting with `first` to the one starting with `last`
    (stripped, inclusive), dedented and compiled: run them with `exec(code, namespace)`."""
    import textwrap

    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(first))
    end = next(i for i in range(start, len(lines)) if lines[i].strip().startswith(last))
    return compile(textwrap.dedent("\n".join(lines[start : end + 1])), str(path), "exec")
