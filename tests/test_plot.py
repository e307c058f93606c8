"""`jax_patterns.plot`: a figure is produced, every text lies inside it, ticks are integers, long patterns read."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import jax_patterns as jp  # noqa: E402
from jax_patterns import _cli  # noqa: E402


def texts_inside(fig) -> list[str]:
    """The drawn texts of `fig` that stick out of it (empty when all fit)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    texts = [fig.texts, *([ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts] for ax in fig.axes)]
    for ax in fig.axes:  # tick labels matplotlib draws: those within the view
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            texts.append([t.label1 for t in axis.get_major_ticks() if low - 1e-9 <= t.get_loc() <= high + 1e-9])
    outside = []
    for text in (t for group in texts for t in group):
        if not text.get_visible() or not text.get_text():
            continue
        extent = text.get_window_extent(renderer)
        if extent.x0 < box.x0 - 1 or extent.x1 > box.x1 + 1 or extent.y0 < box.y0 - 1 or extent.y1 > box.y1 + 1:
            outside.append(text.get_text())
    return outside


@pytest.mark.parametrize(
    "provider, timesteps",
    [
        (jp.DelayedPatternProvider(4), 8),
        (jp.UnrolledPatternProvider(3, flattening=[0, 1, 1], delays=[0, 2, 2]), 5),
        (jp.CoarseFirstPattern(8, [0, 1, 2, 3, 4, 5, 6]), 200),
    ],
)
def test_plot_keeps_every_text_inside_the_figure(provider, timesteps):
    ax = jp.plot(provider, timesteps)
    assert texts_inside(ax.figure) == []
    assert ax.figure.get_figwidth() <= 16
    plt.close(ax.figure)


def test_long_patterns_show_a_window_with_a_note_and_integer_ticks():
    ax = jp.plot(jp.DelayedPatternProvider(4), timesteps=200)
    assert "first 64 of 204 steps shown" in ax.get_xlabel()
    assert ax.images[0].get_array().shape == (4, 64)
    colorbar = ax.images[0].colorbar
    ticks = colorbar.get_ticks()
    assert len(ticks) and np.all(ticks == np.round(ticks))
    assert np.all(ax.get_xticks() == np.round(ax.get_xticks()))
    plt.close(ax.figure)


def test_plot_draws_into_given_axes_and_takes_a_pattern():
    fig, ax = plt.subplots()
    pattern = jp.MusicLMPattern(4, 2).get_pattern(3)
    assert jp.plot(pattern, ax=ax) is ax
    with pytest.raises(ValueError, match=r"`timesteps`=5 but the pattern has timesteps=3"):
        jp.plot(pattern, 5, ax=ax)
    with pytest.raises(TypeError, match="must be a Pattern or a provider"):
        jp.plot("delayed")
    plt.close(fig)


def test_cli_png_has_every_text_inside(tmp_path):
    target = tmp_path / "d.png"
    assert _cli.main(["show", "delayed", "--n-q", "4", "--timesteps", "8", "--png", str(target)]) == 0
    image = plt.imread(target)
    assert image.shape[1] < 1500 and image.shape[0] < 800  # not a 4800-px strip
    pattern = jp.DelayedPatternProvider(4).get_pattern(8)
    ax = jp.plot(pattern)
    assert texts_inside(ax.figure) == []
    plt.close(ax.figure)
