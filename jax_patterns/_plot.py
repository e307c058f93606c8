"""Pictures of a pattern: the text grid (CLI, docstrings) and `jax_patterns.plot` (matplotlib).

Both start from `pattern_grid`: the `[K, S]` timestep of each cell of the built
sequence, -1 for the special token, computed from the pattern's coordinates
with numpy (no jax). matplotlib is imported only when something is drawn.
"""

from __future__ import annotations

import textwrap
import typing as tp

import numpy as np

from jax_patterns._checks import check_flag, check_int
from jax_patterns._layout import Pattern

DEFAULT_MAX_STEPS = 64
"""Steps `plot` draws before it shows a window of the first ones (with a note saying so)."""


def resolve_pattern(pattern_or_provider: tp.Any, timesteps: int | None) -> Pattern:
    """A `Pattern`, or a provider's `get_pattern(timesteps)` (default 8 timesteps).

    Raises:
      TypeError: neither a pattern nor a provider.
      ValueError: `timesteps` given with a pattern that has another length.
    """
    if isinstance(pattern_or_provider, Pattern):
        if timesteps is not None and timesteps != pattern_or_provider.timesteps:
            raise ValueError(
                f"`timesteps`={timesteps} but the pattern has timesteps={pattern_or_provider.timesteps}; "
                "pass a provider to choose the length"
            )
        return pattern_or_provider
    if not hasattr(pattern_or_provider, "get_pattern"):
        raise TypeError(
            f"`pattern_or_provider` must be a Pattern or a provider, got {type(pattern_or_provider).__name__}"
        )
    return pattern_or_provider.get_pattern(8 if timesteps is None else timesteps)


def pattern_grid(pattern: Pattern, keep_only_valid_steps: bool = False) -> np.ndarray:
    """`[K, S]` int32: the timestep of the code at each cell of the built sequence, -1 for special tokens.

    Example:
      >>> from jax_patterns import DelayedPatternProvider
      >>> pattern_grid(DelayedPatternProvider(2).get_pattern(2)).tolist()
      [[-1, 0, 1, -1], [-1, -1, 0, 1]]
    """
    kovs = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    length = pattern.valid_steps if kovs else len(pattern)
    steps, ts, qs = pattern.coords
    keep = (steps < length) & (ts < pattern.timesteps)
    grid = np.full((pattern.n_q, length), -1, dtype=np.int32)
    grid[qs[keep], steps[keep]] = ts[keep]
    return grid


def format_grid(grid: np.ndarray, max_steps: int | None = None) -> str:
    """The grid like audiocraft's docstrings: one row per codebook, `S` for special tokens.

    With `max_steps`, only the first `max_steps` steps are written, and a row ends
    with `...` where steps were left out.
    """
    shown = grid if max_steps is None else grid[:, :max_steps]
    cells = [["S" if v < 0 else str(v) for v in row] for row in shown.tolist()]
    width = max((len(c) for row in cells for c in row), default=1)
    more = ", ..." if shown.shape[1] < grid.shape[1] else ""
    rows = ["[" + ", ".join(c.rjust(width) for c in row) + more + "]" for row in cells]
    return "[" + ",\n ".join(rows) + "]"


def plot(
    pattern_or_provider: tp.Any,
    timesteps: int | None = None,
    ax: tp.Any = None,
    *,
    keep_only_valid_steps: bool = False,
    max_steps: int = DEFAULT_MAX_STEPS,
    title: str | None = None,
    annotate: bool | None = None,
) -> tp.Any:
    """Draws a pattern's interleaving: codebooks as rows, sequence steps as columns, colour by timestep.

    Special-token cells are grey. A pattern longer than `max_steps` steps shows
    its first `max_steps` steps, and the axes say so. Cells carry their timestep
    as text while they are large enough (`annotate=None`: up to 40 steps). The
    colour bar has integer ticks. Titles are wrapped to the figure's width.

    Args:
      pattern_or_provider: a `Pattern`, or a provider (then `get_pattern(timesteps)`).
      timesteps: the length for a provider (default 8).
      ax: matplotlib axes to draw into (default: a new figure sized to the grid).
      keep_only_valid_steps: draw only the valid steps.
      max_steps: the most steps drawn.
      title: the title (default: the provider and T).
      annotate: write each cell's timestep (default: when 40 steps or fewer are drawn).

    Returns:
      The matplotlib axes.

    Raises:
      TypeError: not a pattern or provider, `ax` not axes, a `title` not a str, a flag not a bool.
      ValueError: a bad `max_steps` or `timesteps`.

    Example:
      >>> import matplotlib
      >>> matplotlib.use("Agg")
      >>> from jax_patterns import DelayedPatternProvider
      >>> ax = plot(DelayedPatternProvider(4), timesteps=8)
      >>> ax.get_xlabel()
      'sequence step'
    """
    import matplotlib
    import matplotlib.axes
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    pattern = resolve_pattern(pattern_or_provider, timesteps)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    keep_only_valid_steps = check_flag("keep_only_valid_steps", keep_only_valid_steps)
    if annotate is not None:
        annotate = check_flag("annotate", annotate)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"`title` must be a str or None, got {title!r}")
    if ax is not None and not isinstance(ax, matplotlib.axes.Axes):
        raise TypeError(f"`ax` must be matplotlib axes or None, got {type(ax).__name__}")
    grid = pattern_grid(pattern, keep_only_valid_steps)
    n_q, total = grid.shape
    shown = grid[:, :max_steps]
    steps = shown.shape[1]
    if ax is None:
        _, ax = plt.subplots(figsize=figure_size(n_q, steps))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")
    top = max(int(grid.max(initial=0)), 1)
    image = ax.imshow(np.ma.masked_less(shown, 0), cmap=cmap, aspect="auto", interpolation="nearest", vmin=0, vmax=top)
    if annotate if annotate is not None else steps <= 40:
        for (q, s), v in np.ndenumerate(shown):
            colour = "black" if v < 0 or v > 0.6 * top else "white"
            ax.text(s, q, "S" if v < 0 else str(v), ha="center", va="center", fontsize=7, color=colour)
    ax.set_yticks(range(n_q))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("codebook")
    xlabel = "sequence step"
    if steps < total:
        xlabel += f" (first {steps} of {total} steps shown)"
    ax.set_xlabel(xlabel)
    provider = pattern.provider
    name = f"{provider!r}, T={pattern.timesteps}" if provider is not None else repr(pattern)
    text = name + (" (valid steps)" if keep_only_valid_steps else "") if title is None else title
    fig = ax.figure
    chars = max(int(fig.get_figwidth() * 72 / 7.5), 20)  # ~characters of 10-pt text across the figure
    ax.set_title("\n".join(textwrap.wrap(text, chars)), fontsize=10)
    bar = fig.colorbar(image, ax=ax, label="timestep")
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    fig.tight_layout()
    return ax


def figure_size(n_q: int, steps: int) -> tuple[float, float]:
    """Figure inches for a grid: about 0.4 in a step, between 6 and 16 in wide."""
    return min(max(2.5 + 0.4 * steps, 6.0), 16.0), 1.6 + 0.45 * n_q
