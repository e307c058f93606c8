"""`python -m jax_patterns bench`: every operation against the torch reference and a plain copy.

Each row times one operation on one shape, side by side in one run:
- `jax`: the jitted jax_patterns op (steady state: compiled, inputs on device);
- `torch`: the torch reference path (audiocraft's algorithm, `torch_compat.reference`,
  its index tables cached as audiocraft caches them);
- `np_copy`: a fresh-allocation numpy copy of the output's bytes, the CPU limit
  for a pure data move; `xla_copy`: XLA's own elementwise copy of those bytes.
Ratios: `vs_torch` = torch / jax (speed-up); `x_copy` = jax / np_copy. Times are
medians of `--repeats` runs after a warm-up. Needs torch (the reference path).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import typing as tp

import jax.numpy as jnp

from jax_patterns import _flags
from jax_patterns.bench._engine import bench_engine
from jax_patterns.bench._generation import bench_generation, bench_serving
from jax_patterns.bench._losses import FUSED_DIMS, FUSED_DTYPES, FUSED_KS, bench_cross_entropy, bench_fused
from jax_patterns.bench._magnet import bench_magnet
from jax_patterns.bench._models import bench_musicgen
from jax_patterns.bench._ops import bench_construction, bench_ops
from jax_patterns.bench._report import (
    Row,
    device_line,
    format_extras,
    format_rows,
    progress,
)
from jax_patterns.bench._training import bench_training
from jax_patterns.bench._two_level import bench_two_level


def check_arguments(args: tp.Any) -> None:
    """Every flag checked before anything is timed, the output folder included (a run takes minutes).

    Raises:
      ValueError: a size or count below 1, a non-positive `--max-gb`, an output
        file whose folder does not exist, a missing input file, flags that pick
        contradicting rows, or a missing `bench` extra.
    """
    import math
    import os

    from jax_patterns.train._command import importable

    missing = [m for m in ("torch", "tqdm") if not importable(m)]
    if missing:
        raise ValueError(f"`bench` needs {', '.join(missing)}; install them with: pip install 'jax_patterns[bench]'")
    for name in ("k", "t"):
        for value in getattr(args, name):
            if value < 1:
                raise ValueError(f"`--{name}` values must be >= 1, got {value}")
    for name in ("batch", "card", "repeats", "construct_t", "generate_steps", "train_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"`--{name.replace('_', '-')}` must be >= 1, got {getattr(args, name)}")
    if not (math.isfinite(args.max_gb) and args.max_gb > 0):
        raise ValueError(f"`--max-gb` must be a positive number, got {args.max_gb}")
    if args.json_out is not None:
        folder = os.path.dirname(os.path.abspath(args.json_out))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            raise ValueError(f"`--json-out` {args.json_out!r}: the folder {folder!r} does not exist or is not writable")
        if os.path.isdir(args.json_out):
            raise ValueError(f"`--json-out` {args.json_out!r} is a folder; expected a file name")
    if args.audiocraft_source is not None and not os.path.isfile(args.audiocraft_source):
        raise ValueError(f"`--audiocraft-source` {args.audiocraft_source!r}: no such file")
    if args.audiocraft_tree is not None and not os.path.isfile(
        os.path.join(args.audiocraft_tree, "audiocraft/models/lm_magnet.py")
    ):
        raise ValueError(
            f"`--audiocraft-tree` {args.audiocraft_tree!r}: no audiocraft/models/lm_magnet.py under it "
            "(an extracted audiocraft 1.3.0 sdist)"
        )
    only = args.fused_only + args.magnet_only + args.engine_only + args.musicgen_only + args.two_level_only
    if only > 1:
        raise ValueError(
            "`--fused-only`, `--magnet-only`, `--engine-only`, `--musicgen-only` and `--two-level-only` pick one "
            "group of rows each; pass one"
        )
    if only and args.skip_lm:
        raise ValueError(
            "`--skip-lm` leaves out the rows that `--fused-only`, `--magnet-only`, `--engine-only`, "
            "`--musicgen-only` or `--two-level-only` pick"
        )


@dataclasses.dataclass(frozen=True)
class Part:
    """A piece of a run: its name (shown on the bar), the rows it makes (the bar counts rows), how to make them,
    and whether its rows are printed as soon as they are measured (the operations)."""

    name: str
    rows: int
    make: tp.Callable[[], list[Row]]
    print_now: bool = False


def plan(args: tp.Any) -> list[Part]:
    """The parts a run measures, in order: exactly those a `--*-only` flag selects, else the operations, the
    construction and (unless `--skip-lm`) every LM row. Builds nothing: each part's rows are made when it runs."""
    fused_repeats = args.repeats if args.fused_only else max(1, min(args.repeats, 3))  # 3 at most in a full run
    fused = [
        Part(
            f"fused K={k} D={dim} {dtype}",
            1,
            functools.partial(bench_fused, ks=(k,), dims=(dim,), dtypes=(dtype,), repeats=fused_repeats),
        )
        for k in FUSED_KS
        for dim in FUSED_DIMS
        for dtype in FUSED_DTYPES
    ]
    magnet = Part("MAGNeT", 4 + bool(args.audiocraft_tree), lambda: bench_magnet(args.repeats, args.audiocraft_tree))
    engine = Part("engine", 1, bench_engine)
    two_level = Part("two-level", 2, lambda: bench_two_level(args.repeats))
    tree = args.audiocraft_tree
    if args.musicgen_only:  # musicgen-small's shape too: minutes per row on a 2-core CPU
        rows = 8 + 4 * bool(tree)
        return [Part("MusicGen", rows, lambda: bench_musicgen(args.repeats, audiocraft_tree=tree, torch_repeats=1))]
    musicgen = Part(
        "MusicGen tiny",
        4 + 2 * bool(tree),
        lambda: bench_musicgen(args.repeats, shapes=("tiny",), audiocraft_tree=tree),
    )
    if args.fused_only:
        return fused
    if args.magnet_only:
        return [magnet]
    if args.engine_only:
        return [engine]
    if args.two_level_only:
        return [two_level]
    parts = []
    variants = [(False, "right"), (True, "right"), (True, "left")] if args.lengths else [(False, "right")]
    for k in args.k:
        for t in args.t:
            for dtype in args.dtype:
                for with_lengths, side in variants:
                    ops = ["build", "revert"] if dtype == "float32" else []
                    if _logits_bytes(args, k, t, dtype) <= args.max_gb * 2**30:
                        ops += ["logits-1", "logits1"]
                    if ops:
                        make = functools.partial(
                            bench_ops, k, t, args.batch, args.card, dtype, args.repeats, with_lengths, ops, side
                        )
                        name = f"ops K={k} T={t} {dtype}" + (f" lengths {side}" if with_lengths else "")
                        parts.append(Part(name, len(ops), make, print_now=True))
    parts.append(
        Part(
            "construction",
            1 + bool(args.audiocraft_source),
            lambda: bench_construction(args.construct_t, args.repeats, args.audiocraft_source),
        )
    )
    if args.skip_lm:
        return parts
    repeats = max(args.repeats, 15)  # sub-ms loops: more runs
    return parts + [
        Part("cross entropy", 2, lambda: bench_cross_entropy(8, 4, 1500, args.card, args.repeats)),
        Part("generation", 3, lambda: bench_generation(args.generate_steps, repeats)),
        Part("serving", 5, lambda: bench_serving(args.generate_steps, repeats)),
        Part("training", 2, lambda: bench_training(args.train_steps)),
        *fused,
        magnet,
        engine,
        two_level,
        musicgen,
    ]


def _logits_bytes(args: tp.Any, k: int, t: int, dtype: str) -> int:
    return args.batch * k * t * args.card * jnp.dtype(dtype).itemsize


def run(args: tp.Any) -> int:
    """Runs `python -m jax_patterns bench`; returns the exit code.

    Raises:
      ValueError: a bad flag (see `check_arguments`), before anything is timed.
    """
    check_arguments(args)
    parts = plan(args)
    only = args.fused_only or args.magnet_only or args.engine_only or args.musicgen_only or args.two_level_only
    if not args.json:
        print(device_line(), flush=True)
        if not only:
            for k in args.k:
                for t in args.t:
                    for dtype in args.dtype:
                        size = _logits_bytes(args, k, t, dtype)
                        if size > args.max_gb * 2**30:
                            print(f"skip logits K={k} T={t} {dtype}: {size / 2**30:.1f} GiB > --max-gb")
    rows: list[Row] = []
    printed = 0  # rows already printed as they were measured: the closing table holds the others
    bar = progress(sum(part.rows for part in parts))
    for part in parts:
        if bar is not None:
            bar.set_description(f"bench: {part.name}")
        made = part.make()
        rows += made
        if part.print_now and not args.json:
            print(format_rows(made), flush=True)
            printed = len(rows)
        if bar is not None:
            bar.total += len(made) - part.rows  # a part that made another count of rows than planned
            bar.update(len(made))
    if bar is not None:
        bar.close()
    document = {"device": device_line(), "rows": [r.as_dict() for r in rows]}
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(document, f, indent=1)
    if args.json:
        print(json.dumps(document, indent=1))
    elif only:
        print(format_extras(rows))
    else:
        if len(rows) > printed:  # the rows measured after the operations (construction, loss, generation)
            print()
            print(format_rows(rows[printed:]))
        print(format_extras(rows))
    return 0


def add_arguments(parser: tp.Any) -> None:
    """The flags of `python -m jax_patterns bench`."""
    int32, path = _flags.int32, _flags.path
    parser.add_argument("--k", type=int32, nargs="+", default=[4, 8], help="codebooks (default 4 8)")
    parser.add_argument("--t", type=int32, nargs="+", default=[500, 1500], help="timesteps (default 500 1500)")
    parser.add_argument("--batch", type=int32, default=8, help="batch size (default 8)")
    parser.add_argument("--card", type=int32, default=2048, help="cardinality of the logits (default 2048)")
    parser.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    parser.add_argument(
        "--lengths", action="store_true", help="also time every op with lengths= (right and left padding)"
    )
    parser.add_argument("--repeats", type=int32, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--max-gb", type=float, default=1.0, help="skip logits tensors larger than this (GiB)")
    parser.add_argument("--construct-t", type=int32, default=30000, help="T of the construction benchmark")
    parser.add_argument(
        "--audiocraft-source", metavar="PATH", type=path, help="also time genuine audiocraft's construction"
    )
    parser.add_argument(
        "--skip-lm",
        action="store_true",
        help="only the operation and construction rows (no loss, generation, training, fused, MAGNeT or engine)",
    )
    parser.add_argument("--generate-steps", type=int32, default=1000, help="decoded steps of the generation row")
    parser.add_argument("--train-steps", type=int32, default=100, help="optimizer steps of the training rows")
    parser.add_argument(
        "--fused-only",
        action="store_true",
        help="only the fused heads+loss rows (B=8, K 4 and 8, T=1500, D 512 and 1024, card 2048, both dtypes)",
    )
    parser.add_argument(
        "--magnet-only",
        action="store_true",
        help="only the MAGNeT rows (magnet_generate vs a bare loop, and audiocraft's loop with --audiocraft-tree)",
    )
    parser.add_argument(
        "--engine-only",
        action="store_true",
        help="only the continuous-batching row (lm.Engine vs static generate batches, 64 requests)",
    )
    parser.add_argument(
        "--musicgen-only",
        action="store_true",
        help="only the MusicGen rows (models.MusicGen vs transformers' generate, tiny and musicgen-small shapes, "
        "B 1 and 8, float32 and bfloat16; vs audiocraft's eager loop with --audiocraft-tree); a full run has the "
        "tiny rows",
    )
    parser.add_argument(
        "--two-level-only",
        action="store_true",
        help="only the two-level decoder rows (lm.two_level_step vs the eager torch nested loop over frames and "
        "codebooks, a CSM-like toy: K 16, card 2048, backbone 512x4, depth 256x2, B 1 and 8)",
    )
    parser.add_argument(
        "--audiocraft-tree",
        metavar="DIR",
        type=path,
        help="an extracted audiocraft 1.3.0 sdist: also time its MAGNeT loop and its MusicGen loop",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--json-out", metavar="PATH", type=path, help="also write the rows as JSON to PATH")
