"""`python -m jax_patterns`: show a pattern's grid (text or PNG), check it against torch."""

from __future__ import annotations

import argparse
import sys
import typing as tp

import numpy as np

import jax_patterns  # noqa: F401 - defines (and so registers) every family
from jax_patterns import _providers

KINDS = _providers.FAMILIES  # every built-in family registers its command-line name and options


def make_provider(kind: str, n_q: int, **options: tp.Any) -> _providers.CodebooksPatternProvider:
    """Builds the provider `kind` from command-line options (those left None are not passed).

    Raises:
      ValueError: an option the provider does not take, or a bad value.
    """
    family = KINDS[kind]
    given = {k: v for k, v in options.items() if v is not None}
    extra = sorted(set(given) - set(family.cli_options))
    if extra:
        flags = ", ".join("--" + e.replace("_", "-") for e in extra)
        raise ValueError(f"{kind} takes no {flags} (it takes: {', '.join(family.cli_options) or 'nothing'})")
    return family(n_q, **given)


def pattern_grid(pattern: tp.Any, keep_only_valid_steps: bool = False) -> np.ndarray:
    """`[K, S]` timestep of each cell of the built sequence, -1 for special tokens."""
    times = np.broadcast_to(np.arange(pattern.timesteps, dtype=np.int32), (pattern.n_q, pattern.timesteps))
    values, _, _ = pattern.build_pattern_sequence(times, -1, keep_only_valid_steps)
    return np.asarray(values)


def format_grid(grid: np.ndarray) -> str:
    """The grid like audiocraft's docstrings: one row per codebook, `S` for special tokens."""
    cells = [["S" if v < 0 else str(v) for v in row] for row in grid.tolist()]
    width = max((len(c) for row in cells for c in row), default=1)
    rows = ["[" + ", ".join(c.rjust(width) for c in row) + "]" for row in cells]
    return "[" + ",\n ".join(rows) + "]"


def save_png(grid: np.ndarray, title: str, path: str) -> None:
    """Draws the grid: codebooks as rows, steps as columns, colour by timestep, special cells grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_q, steps = grid.shape
    fig, ax = plt.subplots(figsize=(min(2 + 0.45 * steps, 40), 1 + 0.5 * n_q))
    shown = np.ma.masked_less(grid, 0)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")
    image = ax.imshow(shown, cmap=cmap, aspect="auto", interpolation="nearest")
    if steps <= 80:
        for (q, s), v in np.ndenumerate(grid):
            ax.text(
                s,
                q,
                "S" if v < 0 else str(v),
                ha="center",
                va="center",
                fontsize=7,
                color="black" if v < 0 else "white",
            )
    ax.set_xlabel("sequence step")
    ax.set_ylabel("codebook")
    ax.set_yticks(range(n_q))
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="timestep")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _add_provider_args(parser: argparse.ArgumentParser, timesteps_nargs: str | None) -> None:
    parser.add_argument("kind", choices=sorted(KINDS), help="pattern provider")
    parser.add_argument("--n-q", type=int, default=4, help="number of codebooks (default 4)")
    if timesteps_nargs:
        parser.add_argument(
            "--timesteps",
            type=int,
            nargs=timesteps_nargs,
            default=[0, 1, 5, 16],
            help="timesteps to check (default 0 1 5 16)",
        )
    else:
        parser.add_argument("--timesteps", type=int, default=8, help="timesteps T (default 8)")
    parser.add_argument("--delays", type=int, nargs="+", help="delays (delayed, unrolled, coarse-first)")
    parser.add_argument("--flatten-first", type=int, help="flatten the first N timesteps (delayed)")
    parser.add_argument("--empty-initial", type=int, help="empty steps after the special token; <0 drops it")
    parser.add_argument("--flattening", type=int, nargs="+", help="inner step of each codebook (unrolled)")
    parser.add_argument("--group-by", type=int, help="codebooks per group (musiclm)")


def _provider(args: argparse.Namespace, parser: argparse.ArgumentParser):
    try:
        return make_provider(
            args.kind,
            args.n_q,
            delays=args.delays,
            flatten_first=args.flatten_first,
            empty_initial=args.empty_initial,
            flattening=args.flattening,
            group_by=args.group_by,
        )
    except (ValueError, TypeError) as err:
        parser.error(str(err))


def _show(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    provider = _provider(args, parser)
    try:
        pattern = provider.get_pattern(args.timesteps)
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    grid = pattern_grid(pattern, args.valid_only)
    title = f"{provider!r}, T={args.timesteps}" + (" (valid steps)" if args.valid_only else "")
    print(f"{title}: K={pattern.n_q} codebooks x S={grid.shape[1]} sequence steps, max_delay={pattern.max_delay}")
    print("(cell = timestep of the code placed there, S = special token)")
    print(format_grid(grid))
    if args.png:
        save_png(grid, title, args.png)
        print(f"wrote {args.png}")
    return 0


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    provider = _provider(args, parser)
    try:
        import torch_compat
    except ImportError as err:
        print(f"`check` needs torch ({err}); install it with: pip install 'jax_patterns[torch]'", file=sys.stderr)
        return 2
    module = torch_compat.load_audiocraft_file(args.audiocraft_source) if args.audiocraft_source else None
    results = torch_compat.compare(provider, args.timesteps, audiocraft=module)
    print(torch_compat.format_table(results))
    return 0 if all(r.ok for r in results) else 1


def main(argv: tp.Sequence[str] | None = None) -> int:
    """Entry point of `python -m jax_patterns`."""
    parser = argparse.ArgumentParser(prog="python -m jax_patterns", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser(
        "show",
        help="print a pattern's interleaving grid (and draw it as a PNG)",
        description="Print the interleaving grid of a pattern: one row per codebook, "
        "the timestep of each code, S for special tokens.",
    )
    _add_provider_args(show, None)
    show.add_argument("--valid-only", action="store_true", help="keep only valid steps")
    show.add_argument("--png", metavar="PATH", help="also draw the grid into this PNG file (needs matplotlib)")
    check = commands.add_parser(
        "check",
        help="compare jax_patterns with the torch reference (and audiocraft)",
        description="Run every operation in jax_patterns and in the torch reference path "
        "(optionally the genuine audiocraft file too) and print a pass/fail table.",
    )
    _add_provider_args(check, "+")
    check.add_argument(
        "--audiocraft-source",
        metavar="PATH",
        help="audiocraft's codebooks_patterns.py, to compare against the genuine code as well",
    )
    bench = commands.add_parser(
        "bench", help="time every operation against the torch reference and a plain copy", description=_bench_doc()
    )
    from jax_patterns import _bench

    _bench.add_arguments(bench)
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _bench.run(args)
    return _show(args, show) if args.command == "show" else _check(args, check)


def _bench_doc() -> str:
    from jax_patterns import _bench

    return (_bench.__doc__ or "").split("\n", 1)[1].strip()
