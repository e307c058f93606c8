"""`python -m jax_patterns`: show (a pattern's grid, text or PNG), check (against torch), bench, train (a model)."""

from __future__ import annotations

import argparse
import os
import re
import sys
import typing as tp

import jax_patterns  # noqa: F401 - defines (and so registers) every family
from jax_patterns import _flags, _plot, _providers

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


def save_png(pattern: tp.Any, keep_only_valid_steps: bool, path: str) -> None:
    """Draws the pattern with `jax_patterns.plot` into a PNG whose every text lies inside the image.

    Raises:
      OSError: the file cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = _plot.plot(pattern, keep_only_valid_steps=keep_only_valid_steps)
    try:
        ax.figure.savefig(path, dpi=120, bbox_inches="tight", pad_inches=0.1, format="png")
    finally:
        plt.close(ax.figure)


def check_png(path: str) -> None:
    """Refuses a `--png` path before anything is printed: a name not ending in .png, a missing folder, or no
    matplotlib.

    Raises:
      UserError: naming the flag and what to do.
    """
    from jax_patterns.train._command import importable

    if not path.lower().endswith(".png"):
        raise UserError(f"`--png` {path!r} must name a .png file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"cannot write the PNG {path!r}: the folder {folder!r} does not exist")
    if not importable("matplotlib"):
        raise UserError("`show --png` needs matplotlib; install it with: pip install 'jax_patterns[plot]'")


class UserError(Exception):
    """A mistake in the command line or its files: one line on stderr, exit code 2, no traceback."""


def _add_provider_args(parser: argparse.ArgumentParser, timesteps_nargs: str | None) -> None:
    int32 = _flags.int32
    parser.add_argument("kind", choices=sorted(KINDS), help="pattern provider")
    parser.add_argument("--n-q", type=int32, default=4, help="number of codebooks (default 4)")
    if timesteps_nargs:
        parser.add_argument(
            "--timesteps",
            type=int32,
            nargs=timesteps_nargs,
            default=[0, 1, 5, 16],
            help="timesteps to check (default 0 1 5 16)",
        )
    else:
        parser.add_argument("--timesteps", type=int32, default=8, help="timesteps T (default 8)")
    parser.add_argument("--delays", type=int32, nargs="+", help="delays (delayed, unrolled, coarse-first)")
    parser.add_argument(
        "--any-order", action="store_true", default=None, help="accept unsorted --delays (delayed; not audiocraft's)"
    )
    parser.add_argument("--flatten-first", type=int32, help="flatten the first N timesteps (delayed)")
    parser.add_argument("--empty-initial", type=int32, help="empty steps after the special token; <0 drops it")
    parser.add_argument("--flattening", type=int32, nargs="+", help="inner step of each codebook (unrolled)")
    parser.add_argument("--group-by", type=int32, help="codebooks per group (musiclm)")


def _provider(args: argparse.Namespace, parser: argparse.ArgumentParser):
    try:
        return make_provider(
            args.kind,
            args.n_q,
            delays=args.delays,
            any_order=args.any_order,
            flatten_first=args.flatten_first,
            empty_initial=args.empty_initial,
            flattening=args.flattening,
            group_by=args.group_by,
        )
    except (ValueError, TypeError) as err:
        parser.error(in_cli_words(str(err)))


def in_cli_words(message: str) -> str:
    """A library error message as the command line says it: a hint at `X(..., any_order=True)` names `--any-order`."""
    return re.sub(r"`\w+\(\.\.\., any_order=True\)`", "`--any-order`", message)


SHOW_MAX_STEPS = 80
"""Steps `show` prints before it cuts the text grid (`--all-steps` prints every step)."""


def _show(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    provider = _provider(args, parser)
    try:
        pattern = provider.get_pattern(args.timesteps)
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    if args.png:
        check_png(args.png)
    grid = _plot.pattern_grid(pattern, args.valid_only)
    title = f"{provider!r}, T={args.timesteps}" + (" (valid steps)" if args.valid_only else "")
    steps = f"{grid.shape[1]} {'valid ' if args.valid_only else ''}steps"
    print(
        f"{title}: K={pattern.n_q} codebooks x {steps} (num_sequence_steps={pattern.num_sequence_steps}, "
        f"audiocraft's count, leaves out step 0), max_delay={pattern.max_delay}"
    )
    print("(cell = timestep of the code placed there, S = special token)")
    limit = None if args.all_steps else SHOW_MAX_STEPS
    print(_plot.format_grid(grid, limit))
    if limit is not None and grid.shape[1] > limit:
        print(f"(first {limit} of {grid.shape[1]} steps; --all-steps prints them all)")
    if args.png:
        try:
            save_png(pattern, args.valid_only, args.png)
        except OSError as err:
            raise UserError(f"cannot write the PNG {args.png!r}: {err.strerror or err}") from err
        print(f"wrote {args.png}")
    return 0


def _load_audiocraft(path: str) -> tp.Any:
    import torch_compat

    if not os.path.isfile(path):
        raise UserError(f"--audiocraft-source {path!r}: no such file (expected audiocraft's codebooks_patterns.py)")
    try:
        return torch_compat.load_audiocraft_file(path)
    except Exception as err:  # noqa: BLE001 - any failure of a user's file is reported in one line
        raise UserError(f"--audiocraft-source {path!r} could not be loaded: {type(err).__name__}: {err}") from err


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    provider = _provider(args, parser)
    try:
        import torch_compat
    except ImportError as err:
        raise UserError(f"`check` needs torch ({err}); install it with: pip install 'jax_patterns[torch]'") from err
    module = _load_audiocraft(args.audiocraft_source) if args.audiocraft_source else None
    try:
        results = torch_compat.compare(provider, args.timesteps, audiocraft=module)
    except (ValueError, TypeError) as err:
        raise UserError(str(err)) from err
    print(torch_compat.format_table(results, verbose=args.verbose))
    return 0 if all(r.ok for r in results) else 1


def make_parser() -> tuple[_flags.Parser, dict[str, argparse.ArgumentParser]]:
    """The parser of `python -m jax_patterns`, and each command's own parser by name."""
    parser = _flags.Parser(prog="python -m jax_patterns", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser(
        "show",
        help="print a pattern's interleaving grid (and draw it as a PNG)",
        description="Print the interleaving grid of a pattern: one row per codebook, "
        "the timestep of each code, S for special tokens.",
    )
    _add_provider_args(show, None)
    show.add_argument("--valid-only", action="store_true", help="keep only valid steps")
    show.add_argument(
        "--png", metavar="PATH", type=_flags.path, help="also draw the grid into this PNG file (needs matplotlib)"
    )
    show.add_argument(
        "--all-steps", action="store_true", help=f"print every step (default: the first {SHOW_MAX_STEPS})"
    )
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
        type=_flags.path,
        help="audiocraft's codebooks_patterns.py, to compare against the genuine code as well",
    )
    check.add_argument("--verbose", action="store_true", help="one row per comparison (default: one per T)")
    bench = commands.add_parser(
        "bench", help="time every operation against the torch reference and a plain copy", description=_bench_doc()
    )
    from jax_patterns import bench as bench_command

    bench_command.add_arguments(bench)
    train = commands.add_parser(
        "train",
        help="train the example NNX codec LM on a synthetic corpus (packing, grain, jax.distributed, orbax)",
        description="Train lm.CodecLM on a deterministic synthetic code corpus; one JSON line per logged step "
        "on stdout ({step, loss, tokens_per_s, padding_fraction}), progress on stderr.",
    )
    from jax_patterns.train import _command

    _command.add_arguments(train)
    return parser, {"show": show, "check": check, "bench": bench, "train": train}


def main(argv: tp.Sequence[str] | None = None) -> int:
    """Entry point of `python -m jax_patterns`."""
    from jax_patterns import bench as bench_command
    from jax_patterns.train import _command

    parser, commands = make_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            try:
                code = _command.run(args, argv)
            except ValueError as err:
                raise UserError(str(err)) from err
        elif args.command == "bench":
            try:
                code = bench_command.run(args)
            except ValueError as err:
                raise UserError(str(err)) from err
        else:
            code = _show(args, commands["show"]) if args.command == "show" else _check(args, commands["check"])
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return code
    except UserError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `... | head`: the reader left; stop quietly, as Python's docs advise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _bench_doc() -> str:
    from jax_patterns.bench import _command

    return (_command.__doc__ or "").split("\n", 1)[1].strip()
