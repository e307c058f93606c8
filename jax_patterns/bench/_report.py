"""The bench's measuring and reporting: a `Row`, timing, XLA temp memory, the torch device, the table and the bar."""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass
class Row:
    """One measurement: the jax time, the torch reference's and the copy baselines' where they apply, and extras.

    `extra` holds a row's own figures (a baseline's time, memory, batches); JSON
    keys are the field names plus `vs_torch`, `x_copy` and `jax_out_GBps`.
    """

    op: str
    shape: str
    dtype: str
    jax_ms: float
    torch_ms: float | None
    np_copy_ms: float | None
    xla_copy_ms: float | None
    out_bytes: int
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def vs_torch(self) -> float | None:
        return self.torch_ms / self.jax_ms if self.torch_ms else None

    @property
    def x_copy(self) -> float | None:
        return self.jax_ms / self.np_copy_ms if self.np_copy_ms else None

    def as_dict(self) -> dict:
        """The row as one JSON object of `--json`."""
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


def copy_baselines(nbytes: int, repeats: int) -> tuple[float, float]:
    """Median ms of a fresh numpy copy of `nbytes` bytes, and of XLA's own elementwise copy of them."""
    src = np.ones(nbytes // 4, dtype=np.float32)
    np_ms = timeit(lambda: src.copy(), repeats)
    on_device = jnp.asarray(src)
    copy = jax.jit(lambda x: x * 1.0)
    xla_ms = timeit(lambda: copy(on_device).block_until_ready(), repeats)
    return np_ms, xla_ms


def torch_device():
    """CUDA when jax runs on a GPU and torch sees one (both sides then run on the card), else CPU."""
    import torch

    on_gpu = jax.devices()[0].platform == "gpu" and torch.cuda.is_available()
    return torch.device("cuda" if on_gpu else "cpu")


def synced(fn: tp.Callable[[], tp.Any]) -> tp.Callable[[], tp.Any]:
    """`fn`, waiting for CUDA to finish where torch runs on a card (a torch call only queues work there)."""
    import torch

    if not torch.cuda.is_available():
        return fn

    def run() -> tp.Any:
        out = fn()
        torch.cuda.synchronize()
        return out

    return run


def temp_bytes(jitted: tp.Any, *args: tp.Any) -> int:
    """XLA's temporary memory (bytes) of `jitted` compiled for `args` (arrays or `ShapeDtypeStruct`s)."""
    analysis = jitted.lower(*args).compile().memory_analysis()
    return int(getattr(analysis, "temp_size_in_bytes", 0))


def blocking(fn: tp.Callable, *args: tp.Any) -> tp.Any:
    """`fn(*args)`, once every array of its result is ready."""
    return jax.block_until_ready(fn(*args))


def seconds(fn: tp.Callable[[], tp.Any]) -> float:
    """Wall time of one call of `fn`, in seconds."""
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def format_rows(rows: tp.Sequence[Row]) -> str:
    """The rows as a text table, one line each (time, reference, copies, ratios, GB/s)."""
    header = (
        "op",
        "shape",
        "dtype",
        "jax ms",
        "torch ms",
        "np copy ms",
        "xla copy ms",
        "vs torch",
        "x np copy",
        "jax GB/s out",
    )

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
            fmt(r.out_bytes / (r.jax_ms * 1e-3) / 1e9 if r.out_bytes else None, ".1f"),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in table)


def device_line() -> str:
    """The machine in words; on a GPU, compare the GB/s column with the card's memory bandwidth."""
    d = jax.devices()[0]
    line = f"device: {d.platform} {d.device_kind} x{jax.device_count()}, jax {jax.__version__}"
    try:
        import torch

        line += f"; torch reference on {torch_device()} (torch {torch.__version__})"
    except ImportError:
        pass
    return line


def progress(total: int) -> tp.Any:
    """A tqdm bar on stderr (the rows go to stdout), or None where tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="bench", unit="row", file=sys.stderr, leave=False)


def format_extras(rows: tp.Sequence[Row]) -> str:
    """One line per row with extra figures (baselines, memory, batches), and the time ratio to its baseline."""
    return "\n".join(
        f"{r.op} [{r.shape} {r.dtype}]: jax {r.jax_ms:.2f} ms; "
        + ", ".join(f"{k} {v:.3f}" for k, v in r.extra.items())
        + (f"; jax/baseline {r.jax_ms / r.extra['baseline_ms']:.3f}x" if "baseline_ms" in r.extra else "")
        for r in rows
        if r.extra
    )
