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
