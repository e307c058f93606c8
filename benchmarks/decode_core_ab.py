"""The decode core against the commit before it (issue 28), side by side in one run: A, B, A, B, ... per part.

Usage: `python benchmarks/decode_core_ab.py BEFORE_TREE [AFTER_TREE] [--rounds 2]`, where each tree is a checkout
of jax_patterns (`git worktree add --detach /tmp/before 8ce87fa`; AFTER defaults to this checkout). Every
measurement runs in its own subprocess on one tree, the two trees alternating, so both see the same machine; the
printed figure per tree is the best of the rounds. Parts:

- `generate` and `serving`: the bench's own rows (a counting step function: the loop's bookkeeping against a bare
  compiled loop; per-example prompts and EOS; `stream` at 16 / 64 / 256 steps per chunk against `generate`);
- `engine`: the bench's continuous-batching row (64 requests, EOS over 10-100% of 200 frames, 16 slots);
- `sampling`: one `lm.sample_next_token` call, jitted, on `[4, 4, 2048]` (a decode step) and `[4, 150, 2048]`
  logits, greedy-temperature (neither top-k nor top-p), top-k 250 and top-p 0.9.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parents[1]

PARTS = {
    "generate": """
rows = bench_generation(1000, 15)
out = {r.op: {"jax_ms": r.jax_ms, **{k: v for k, v in r.extra.items() if isinstance(v, (int, float))}} for r in rows}
""",
    "serving": """
rows = bench_serving(1000, 15)
out = {r.op: {"jax_ms": r.jax_ms, **{k: v for k, v in r.extra.items() if isinstance(v, (int, float))}} for r in rows}
""",
    "engine": """
rows = bench_engine()
out = {r.op: {"jax_ms": r.jax_ms, **{k: v for k, v in r.extra.items() if isinstance(v, (int, float))}} for r in rows}
""",
    "sampling": """
import time
import jax, jax.numpy as jnp
from jax_patterns import lm
out = {}
for shape in ((4, 4, 2048), (4, 150, 2048)):
    logits = jax.random.normal(jax.random.key(0), shape)
    for name, (k, p) in {"neither": (0, 0.0), "top_k 250": (250, 0.0), "top_p 0.9": (0, 0.9)}.items():
        fn = jax.jit(lambda x, key, k=k, p=p: lm.sample_next_token(x, key, True, 1.0, k, p))
        key = jax.random.key(1)
        fn(logits, key).block_until_ready()
        times = []
        for i in range(30 if shape[1] == 4 else 5):
            t0 = time.perf_counter()
            fn(logits, key).block_until_ready()
            times.append(time.perf_counter() - t0)
        out[f"{'x'.join(map(str, shape))} {name}"] = {"jax_ms": sorted(times)[len(times) // 2] * 1e3}
""",
}

IMPORTS = """
try:
    from jax_patterns.bench._engine import bench_engine
    from jax_patterns.bench._generation import bench_generation, bench_serving
except ImportError:  # the tree before the bench package
    from jax_patterns._bench import bench_engine, bench_generation, bench_serving
"""


def measure(tree: pathlib.Path, part: str) -> dict:
    code = IMPORTS + PARTS[part] + "\nimport json; print('RESULT' + json.dumps(out))\n"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError(f"{tree} {part}: {done.stderr[-2000:]}")
    return json.loads(line[len("RESULT") :])


def best(runs: list[dict]) -> dict:
    """Per row, the run with the smallest `jax_ms` (its other fields come with it)."""
    out: dict = {}
    for run in runs:
        for op, fields in run.items():
            if op not in out or fields["jax_ms"] < out[op]["jax_ms"]:
                out[op] = fields
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=pathlib.Path)
    parser.add_argument("after", type=pathlib.Path, nargs="?", default=HERE)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    args = parser.parse_args()
    results: dict = {}
    for part in args.parts:
        runs: dict[str, list] = {"before": [], "after": []}
        for _ in range(args.rounds):
            for name in ("before", "after"):
                runs[name].append(measure(getattr(args, name), part))
        results[part] = {name: best(r) for name, r in runs.items()}
        before, after = results[part]["before"], results[part]["after"]
        for op in after:
            if op not in before:
                continue
            b, a = before[op], after[op]
            extra = ""
            for field in ("baseline_ms", "static_frames_per_s", "frames_per_s", "ttff_ms"):
                if field in a and field in b:
                    extra += f"  {field}: {b[field]:.4g} -> {a[field]:.4g}"
            ratio = b["jax_ms"] / a["jax_ms"]
            print(f"{part:8s} {op[:70]:70s} {b['jax_ms']:10.3f} ms -> {a['jax_ms']:10.3f} ms ({ratio:.2f}x){extra}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
