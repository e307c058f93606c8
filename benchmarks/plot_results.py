"""Draws benchmarks/results.png from the JSON of `python -m jax_patterns bench --json`.

Usage:
  python -m jax_patterns bench --k 4 8 32 --t 500 1500 30000 --lengths --skip-lm --json > results.json
  python benchmarks/plot_results.py results.json benchmarks/results.png
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(source: str, target: str) -> None:
    with open(source) as f:
        data = json.load(f)
    rows = [r for r in data["rows"] if r["vs_torch"] or r["x_copy"]]
    labels = [f"{r['op']} {r['shape']} {r['dtype']}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(16, 0.28 * len(rows) + 2), sharey=True)
    axes[0].barh(labels, [r["vs_torch"] or 0 for r in rows], color="#3b7dd8")
    axes[0].axvline(1, color="black", lw=0.8)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("speed-up over the torch reference (higher is better)")
    axes[1].barh(labels, [r["x_copy"] or 0 for r in rows], color="#d8743b")
    axes[1].axvline(1, color="black", lw=0.8)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("time / fresh numpy copy of the output (lower is better)")
    axes[0].invert_yaxis()
    fig.suptitle(data["device"])
    fig.tight_layout()
    fig.savefig(target, dpi=100)


if __name__ == "__main__":
    main(*sys.argv[1:3])
