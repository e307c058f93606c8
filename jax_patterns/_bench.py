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
import statistics
import time
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

import jax_patterns as jp
from jax_patterns import _indices

NAN = float("nan")


@dataclasses.dataclass
class Row:
    op: str
    shape: str
    dtype: str
    jax_ms: float
    torch_ms: float | None
    np_copy_ms: float | None
    xla_copy_ms: float | None
    out_bytes: int

    @property
    def vs_torch(self) -> float | None:
        return self.torch_ms / self.jax_ms if self.torch_ms else None

    @property
    def x_copy(self) -> float | None:
        return self.jax_ms / self.np_copy_ms if self.np_copy_ms else None

    def as_dict(self) -> dict:
        gbps = self.out_bytes / (self.jax_ms * 1e-3) / 1e9
        return {**dataclasses.asdict(self), "vs_torch": self.vs_torch, "x_copy": self.x_copy, "jax_out_GBps": gbps}


def timeit(fn: tp.Callable[[], tp.Any], repeats: int) -> float:
    """Median wall time in ms of `fn()` after one warm-up call (fn must block until done)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _copy_baselines(nbytes: int, repeats: int) -> tuple[float, float]:
    src = np.ones(nbytes // 4, dtype=np.float32)
    np_ms = timeit(lambda: src.copy(), repeats)
    on_device = jnp.asarray(src)
    copy = jax.jit(lambda x: x * 1.0)
    xla_ms = timeit(lambda: copy(on_device).block_until_ready(), repeats)
    return np_ms, xla_ms


def _torch_dtype(dtype: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "int32": torch.int64}[dtype]


def bench_ops(
    k: int, t: int, batch: int, card: int, dtype: str, repeats: int, with_lengths: bool, ops: tp.Sequence[str]
) -> list[Row]:
    """Build, revert and revert_logits (both card axes) for `DelayedPatternProvider(k)` at `t`."""
    import torch

    from torch_compat import reference

    provider = jp.DelayedPatternProvider(k)
    pattern = provider.get_pattern(t)
    steps = _indices.layout_length(pattern, True)
    rng = np.random.default_rng(0)
    lengths = jnp.asarray(rng.integers(t // 2, t + 1, batch)) if with_lengths else None
    tag = " +lengths" if with_lengths else ""
    rows = []

    def row(op: str, shape: tuple, dt: str, run_jax, run_torch, out_bytes: int) -> Row:
        jax_ms = timeit(lambda: jax.block_until_ready(run_jax()), repeats)
        torch_ms = timeit(run_torch, repeats) if run_torch is not None else None
        np_ms, xla_ms = _copy_baselines(out_bytes, repeats)
        return Row(op + tag, "x".join(map(str, shape)), dt, jax_ms, torch_ms, np_ms, xla_ms, out_bytes)

    if "build" in ops:
        z = jnp.asarray(rng.integers(0, card, (batch, k, t)), dtype=jnp.int32)
        z_t = torch.from_numpy(np.array(z)).long()
        build = jax.jit(lambda z, n: pattern.build_pattern_sequence(z, card, True, lengths=n)[0])
        rows.append(
            row(
                "build",
                (batch, k, t),
                "int32",
                lambda: build(z, lengths),
                None if with_lengths else lambda: reference.build_pattern_sequence(pattern, z_t, card, True),
                batch * k * steps * 4,
            )
        )
    if "revert" in ops:
        s = jnp.asarray(rng.integers(0, card, (batch, k, steps)), dtype=jnp.int32)
        s_t = torch.from_numpy(np.array(s)).long()
        revert = jax.jit(lambda s, n: pattern.revert_pattern_sequence(s, card, True, lengths=n)[0])
        rows.append(
            row(
                "revert",
                (batch, k, steps),
                "int32",
                lambda: revert(s, lengths),
                None if with_lengths else lambda: reference.revert_pattern_sequence(pattern, s_t, card, True),
                batch * k * t * 4,
            )
        )
    for card_axis in (-1, 1):
        if f"logits{card_axis}" not in ops:
            continue
        shape = (batch, k, steps, card) if card_axis == -1 else (batch, card, k, steps)
        logits = jax.random.normal(jax.random.key(0), shape, dtype=jnp.dtype(dtype))
        logits_t = torch.from_numpy(np.array(logits.astype(jnp.float32))).to(_torch_dtype(dtype))
        if card_axis == -1:  # audiocraft's compute_predictions: permute, revert, permute back

            def run_torch(x=logits_t):
                out = reference.revert_pattern_logits(pattern, x.permute(0, 3, 1, 2), NAN, True)[0]
                return out.permute(0, 2, 3, 1)
        else:

            def run_torch(x=logits_t):
                return reference.revert_pattern_logits(pattern, x, NAN, True)[0]

        revert_logits = jax.jit(
            lambda x, n, a=card_axis: pattern.revert_pattern_logits(x, NAN, True, card_axis=a, lengths=n)[0]
        )
        nbytes = batch * k * t * card * jnp.dtype(dtype).itemsize
        run_jax = functools.partial(revert_logits, logits, lengths)
        torch_side = None if with_lengths else run_torch
        rows.append(row(f"revert_logits[card_axis={card_axis}]", shape, dtype, run_jax, torch_side, nbytes))
    return rows


def bench_construction(t: int, repeats: int, audiocraft_source: str | None = None) -> list[Row]:
    """`get_pattern` for a new T plus everything up to a lowered jitted build, vs the reference path."""
    import torch

    from torch_compat import load_audiocraft_file, reference

    provider = jp.DelayedPatternProvider(8)
    counter = iter(range(10**6))

    def ours() -> None:
        length = t + next(counter)  # a length never seen: nothing cached
        pattern = provider.get_pattern(length)
        spec = jax.ShapeDtypeStruct((1, 8, length), jnp.int32)
        jax.jit(lambda z: pattern.build_pattern_sequence(z, -1)[0]).lower(spec)

    def torch_reference() -> None:
        length = t + next(counter)
        pattern = reference.get_pattern(provider, length)
        reference.build_pattern_sequence(pattern, torch.zeros((1, 8, length), dtype=torch.long), -1)

    rows = [
        Row(
            "construct new T (delayed K=8)",
            f"1x8x{t}",
            "int32",
            timeit(ours, repeats),
            timeit(torch_reference, repeats),
            None,
            None,
            0,
        )
    ]
    if audiocraft_source:
        module = load_audiocraft_file(audiocraft_source)
        genuine = module.DelayedPatternProvider(8)

        def audiocraft() -> None:
            length = t + next(counter)
            pattern = genuine.get_pattern(length)
            pattern.build_pattern_sequence(torch.zeros((1, 8, length), dtype=torch.long), -1)

        rows.append(
            Row(
                "construct new T vs genuine audiocraft",
                f"1x8x{t}",
                "int32",
                rows[0].jax_ms,
                timeit(audiocraft, repeats),
                None,
                None,
                0,
            )
        )
    return rows


def format_rows(rows: tp.Sequence[Row]) -> str:
    header = ("op", "shape", "dtype", "jax ms", "torch ms", "np copy ms", "xla copy ms", "vs torch", "x np copy")

    def fmt(x: float | None, spec: str) -> str:
        return "-" if x is None else format(x, spec)

    table = [header] + [
        (
            r.op,
            r.shape,
            r.dtype,
            fmt(r.jax_ms, ".2f"),
            fmt(r.torch_ms, ".2f"),
            fmt(r.np_copy_ms, ".2f"),
            fmt(r.xla_copy_ms, ".2f"),
            fmt(r.vs_torch, ".2f") + ("x" if r.vs_torch else ""),
            fmt(r.x_copy, ".2f") + ("x" if r.x_copy else ""),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in table)


def device_line() -> str:
    d = jax.devices()[0]
    return f"device: {d.platform} {d.device_kind} x{jax.device_count()}, jax {jax.__version__}"


def run(args: tp.Any) -> int:
    budget = args.max_gb * 2**30
    rows: list[Row] = []
    print(device_line(), flush=True)
    for k in args.k:
        for t in args.t:
            for dtype in args.dtype:
                for with_lengths in (False, True) if args.lengths else (False,):
                    ops = ["build", "revert"] if dtype == "float32" else []
                    logits_bytes = args.batch * k * t * args.card * jnp.dtype(dtype).itemsize
                    if logits_bytes <= budget:
                        ops += ["logits-1", "logits1"]
                    elif not args.json:
                        print(f"skip logits K={k} T={t} {dtype}: {logits_bytes / 2**30:.1f} GiB > --max-gb")
                    if ops:
                        rows += bench_ops(k, t, args.batch, args.card, dtype, args.repeats, with_lengths, ops)
                        if not args.json:
                            print(format_rows(rows[-len(ops) :]).split("\n", 1)[1], flush=True)
    rows += bench_construction(args.construct_t, args.repeats, args.audiocraft_source)
    if args.json:
        print(json.dumps({"device": device_line(), "rows": [r.as_dict() for r in rows]}, indent=1))
    else:
        print()
        print(format_rows(rows))
    return 0


def add_arguments(parser: tp.Any) -> None:
    parser.add_argument("--k", type=int, nargs="+", default=[4, 8], help="codebooks (default 4 8)")
    parser.add_argument("--t", type=int, nargs="+", default=[500, 1500], help="timesteps (default 500 1500)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--card", type=int, default=2048, help="cardinality of the logits (default 2048)")
    parser.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    parser.add_argument("--lengths", action="store_true", help="also time every op with lengths=")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--max-gb", type=float, default=1.0, help="skip logits tensors larger than this (GiB)")
    parser.add_argument("--construct-t", type=int, default=30000, help="T of the construction benchmark")
    parser.add_argument("--audiocraft-source", metavar="PATH", help="also time genuine audiocraft's construction")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
