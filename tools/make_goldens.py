"""Writes tests/goldens/audiocraft_1_3_0.npz from the genuine audiocraft 1.3.0 release.

Runs audiocraft's own `audiocraft/modules/codebooks_patterns.py` (loaded by file
path, so none of audiocraft's heavy dependencies are needed; only torch) over the
grid of `tests/golden_grid.py`, and stores, per case, the layout, the pattern's
properties and the `(values, indexes, mask)` of each operation. The tests read
the file offline. audiocraft's source itself is never committed.

Usage:
  python tools/make_goldens.py                      # downloads the sdist with pip
  python tools/make_goldens.py --source path/to/codebooks_patterns.py
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import golden_grid  # noqa: E402

from torch_compat import load_audiocraft_file  # noqa: E402

MODULE_PATH = "audiocraft/modules/codebooks_patterns.py"


def fetch_sdist_files(workdir: pathlib.Path, paths: tuple[str, ...]) -> pathlib.Path:
    """Downloads the audiocraft 1.3.0 sdist and extracts `paths` (as `audiocraft/...`) under `workdir / "src"`.

    The one download of the genuine release for every golden script; returns the extracted tree's root.
    """
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            str(workdir),
            f"audiocraft=={golden_grid.AUDIOCRAFT_VERSION}",
        ],
        check=True,
    )
    (sdist,) = workdir.glob("audiocraft-*.tar.gz")
    with tarfile.open(sdist) as tar:
        for path in paths:
            member = next(m for m in tar.getmembers() if m.name.endswith(path))
            target = workdir / "src" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    return workdir / "src"


def fetch_source(workdir: pathlib.Path) -> pathlib.Path:
    """The patterns module of the audiocraft 1.3.0 sdist, extracted alone."""
    return fetch_sdist_files(workdir, (MODULE_PATH,)) / MODULE_PATH


def layout_arrays(layout) -> np.ndarray:
    rows = [(s, c.t, c.q) for s, step in enumerate(layout) for c in step]
    return np.asarray(rows, dtype=np.int32).reshape(-1, 3)


def first_steps(pattern, n_q: int) -> np.ndarray:
    """`get_first_step_with_timesteps(t, q)` for t in [0, T], q in [None, 0..K-1]; -1 for None."""
    out = np.full((pattern.timesteps + 1, n_q + 1), -1, dtype=np.int32)
    for t in range(pattern.timesteps + 1):
        for j, q in enumerate([None, *range(n_q)]):
            step = pattern.get_first_step_with_timesteps(t, q)
            out[t, j] = -1 if step is None else step
    return out


class Packer:
    """Concatenates arrays of one dtype into flat buffers; hands out `[buffer, offset, shape]` refs."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}
        self.sizes: dict[str, int] = {}

    def add(self, array: np.ndarray) -> list:
        name = array.dtype.name
        offset = self.sizes.get(name, 0)
        self.parts.setdefault(name, []).append(array.reshape(-1))
        self.sizes[name] = offset + array.size
        return [name, offset, list(array.shape)]

    def buffers(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(parts) for name, parts in self.parts.items()}


def run_case(module, provider_name: str, kwargs: dict, n_q: int, timesteps: int, pack: Packer, manifest: list) -> None:
    provider = getattr(module, provider_name)(n_q, **kwargs)
    pattern = provider.get_pattern(timesteps)
    pid = len(manifest)
    entry = {
        "id": pid,
        "provider": provider_name,
        "kwargs": kwargs,
        "n_q": n_q,
        "timesteps": timesteps,
        "num_sequence_steps": pattern.num_sequence_steps,
        "max_delay": pattern.max_delay,
        "valid_steps": len(pattern.valid_layout),
        "starts_with_special_token": pattern.starts_with_special_token(),
        "layout": pack.add(layout_arrays(pattern.layout)),
        "first_steps": pack.add(first_steps(pattern, n_q)),
        "ops": [],
    }
    for op in golden_grid.ops_for(pattern.timesteps, len(pattern.layout), len(pattern.valid_layout)):
        name, kovs, size = op["op"], op["keep_only_valid_steps"], op["size"]
        if name == "build":
            z = torch.from_numpy(golden_grid.codes(n_q, size))
            values, indexes, mask = pattern.build_pattern_sequence(z, golden_grid.SPECIAL, kovs)
        elif name == "revert":
            s = torch.from_numpy(golden_grid.sequence(n_q, size))
            values, indexes, mask = pattern.revert_pattern_sequence(s, golden_grid.SPECIAL, kovs)
        else:
            logits = torch.from_numpy(golden_grid.logits(n_q, size))
            values, indexes, mask = pattern.revert_pattern_logits(logits, float("nan"), kovs)
        values = values.numpy()
        entry["ops"].append(
            {
                "op": name,
                "keep_only_valid_steps": kovs,
                "size": size,
                "values": pack.add(values.astype(np.int32) if values.dtype == np.int64 else values),
                "indexes": pack.add(indexes.numpy().astype(np.int32)),
                "mask": pack.add(mask.numpy()),
            }
        )
    manifest.append(entry)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=pathlib.Path, help="audiocraft's codebooks_patterns.py (else downloaded)")
    parser.add_argument("--out", type=pathlib.Path, default=golden_grid.GOLDEN_PATH)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or fetch_source(pathlib.Path(tmp))
        module = load_audiocraft_file(str(source))
    pack = Packer()
    manifest: list = []
    for provider_name, kwargs, n_q in golden_grid.providers():
        for timesteps in golden_grid.TIMESTEPS:
            run_case(module, provider_name, kwargs, n_q, timesteps, pack, manifest)
    store = pack.buffers()
    store["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **store)
    n_ops = sum(len(e["ops"]) for e in manifest)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {len(manifest)} patterns, {n_ops} op cases")


if __name__ == "__main__":
    main()
