"""Figures: what each shows is checked on hand-made arrays (not their looks)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from lib import plots  # noqa: E402

MODS = ("flair", "t1ce")


def test_the_flow_animation_plays_offline_with_no_external_link():
    t = np.linspace(0, 1, 5)
    I_t = np.random.default_rng(0).normal(size=(5, 2, 8, 8))
    html = plots.flow_animation(t, I_t, np.zeros((5, 8, 8)), np.zeros((5, 2, 8, 8)), MODS, every=2)
    assert "https://" not in html and "http://" not in html and "font-awesome" not in html
    assert 'class="fa' not in html and "▶" in html and "⏸" in html
    assert html.count("<button") >= 8  # the controls are still there


def test_each_channel_of_the_flow_figure_has_one_grey_range_over_all_frames():
    t = np.linspace(0, 1, 11)
    I_t = np.empty((11, 2, 8, 8))
    I_t[:, 0] = np.random.default_rng(1).normal(size=(1, 8, 8)) * np.linspace(1, 1e-4, 11)[:, None, None] + 1.0
    I_t[:, 1] = np.random.default_rng(2).normal(size=(11, 8, 8))
    fig = plots.flow_figure(t, I_t, np.zeros((11, 8, 8)), np.zeros((11, 2, 8, 8)), np.zeros((8, 8)), MODS,
                            times=[0.0, 0.5, 1.0])
    axes = np.array(fig.axes).reshape(3, 2 * 2 + 2)
    for k in range(2):
        limits = {axes[r, k].images[0].get_clim() for r in range(3)}
        assert len(limits) == 1  # the nearly uniform last frame is not stretched to full contrast
    low, high = axes[2, 0].images[0].get_clim()
    assert np.ptp(I_t[-1, 0]) < 0.01 * (high - low)


def test_figure_7_grid_keeps_its_legend_when_the_top_right_panel_is_empty():
    curve = pd.DataFrame({"t": [0.0, 1.0] * 2, "modality": ["flair", "flair", "t1ce", "t1ce"],
                          "mean": [0.1, 0.2, 0.3, 0.4], "sd": [0.01] * 4})
    fig = plots.acc_grid({("ET", 0): curve, ("ET", 1): curve, ("WT", 1): curve}, MODS)  # WT has no seed 0
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1 and [text.get_text() for text in legends[0].get_texts()] == list(MODS)


def test_a_grade_has_one_colour_in_every_panel_of_the_gap_scatter():
    gaps = pd.DataFrame({"subset": ["a", "a", "b"], "inputs": ["x", "x", "y"], "grade": ["HGG", "LGG", "LGG"],
                         "target_pixels": [10, 20, 30], "dice_diff_vs_baseline": [0.0, -0.1, -0.2]})
    fig = plots.dice_gap_scatter(gaps)
    colour_of = {}
    for ax in fig.axes:
        for collection in ax.collections:
            colour_of.setdefault(collection.get_label(), set()).add(to_hex(collection.get_facecolor()[0]))
    assert colour_of == {"HGG": {plots.GRADE_COLOURS["HGG"]}, "LGG": {plots.GRADE_COLOURS["LGG"]}}
    assert [text.get_text() for text in fig.axes[-1].get_legend().get_texts()] == ["HGG", "LGG"]
