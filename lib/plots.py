"""Figures shared by the chapters. Functions take arrays and return matplotlib figures; the
chapter saves them through ``RunDir.figure`` (which labels phantom figures as synthetic)."""

from __future__ import annotations

import warnings
from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

# No matplotlib.use() here: it would switch a chapter's kernel from the inline backend to Agg
# (force=False only silences a failure) and no figure would reach the book. Scripts and tests
# without a display get Agg from matplotlib's own fallback, or from the Makefile's MPLBACKEND.

MODALITY_COLOURS = {"t1": "#1f77b4", "t1ce": "#ff7f0e", "t2": "#d62728", "flair": "#2ca02c"}
LABEL_COLOURS = {1: "#1f77b4", 2: "#2ca02c", 3: "#d62728"}  # NCR, ED, ET (canonical labels)
LABEL_NAMES = {1: "NCR/NET", 2: "ED", 3: "ET"}


def oriented(image: np.ndarray) -> np.ndarray:
    """An axial slice ``volume[:, :, z]`` of a RAS volume (``lib.data.slices`` turns every file to
    RAS on reading) turned for display: anterior up, the patient's right on the right (neurological)."""
    return np.rot90(image)


def _frame_indices(t: np.ndarray, times: Sequence[float]) -> list[int]:
    return [int(np.argmin(np.abs(t - s))) for s in times]


def label_overlay(ax, image: np.ndarray, labels: np.ndarray, alpha: float = 0.45) -> None:
    """Grey image with the canonical sub-labels (1 NCR, 2 ED, 3 ET) as coloured overlay."""
    image, labels = oriented(image), oriented(labels)
    ax.imshow(image, cmap="gray")
    rgba = np.zeros(labels.shape + (4,))
    for value, colour in LABEL_COLOURS.items():
        rgba[labels == value] = (*matplotlib.colors.to_rgb(colour), alpha)
    ax.imshow(rgba)
    ax.set_axis_off()


def modality_grid(images: np.ndarray, labels: np.ndarray, modalities: Sequence[str], title: str = ""):
    """One row: each modality of one slice, then the label overlay. images (m, H, W), labels (H, W)."""
    m = len(modalities)
    fig, axes = plt.subplots(1, m + 1, figsize=(2.2 * (m + 1), 2.5))
    for ax, name, img in zip(axes, modalities, images):
        ax.imshow(oriented(img), cmap="gray")
        ax.set_title(name)
        ax.set_axis_off()
    label_overlay(axes[-1], images[list(modalities).index("flair")] if "flair" in modalities else images[0], labels)
    axes[-1].set_title("labels")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def flow_figure(t: np.ndarray, I_t: np.ndarray, J_t: np.ndarray, eta: np.ndarray, truth: np.ndarray,
                modalities: Sequence[str], times: Sequence[float], title: str = ""):
    """The paper's Figures 4-6 for one slice.

    (A) image flows I_t (rows: ``times``; columns: ODE channels named by the modality they start
    from), (B) segmentation frames J_t beside the ground truth, (C) binarised contribution η_t.
    Shapes: t (T,), I_t (T, m, H, W), J_t (T, H, W), eta (T, m, H, W), truth (H, W).
    """
    rows = _frame_indices(t, times)
    m = len(modalities)
    # One grey range per channel over all frames (as the animation): scaled panel by panel, a frame
    # the flow has made nearly uniform (the paper's "unity map", Fig. 4A) would show as full-contrast noise.
    ranges = [channel_range(I_t[:, k]) for k in range(m)]
    fig, axes = plt.subplots(len(rows), 2 * m + 2, figsize=(1.45 * (2 * m + 2), 1.5 * len(rows)), squeeze=False)
    for r, fi in enumerate(rows):
        for k in range(m):
            ax = axes[r, k]
            ax.imshow(I_t[fi, k], cmap="gray", vmin=ranges[k][0], vmax=ranges[k][1])
            ax = axes[r, m + 2 + k]
            ax.imshow(eta[fi, k], cmap="gray", vmin=0, vmax=1)
            if eta[fi, k].all():
                ax.text(0.5, 0.5, "*", color="red", ha="center", va="center", transform=ax.transAxes, fontsize=16)
        axes[r, m].imshow(J_t[fi], cmap="magma", vmin=0, vmax=1)
        axes[r, m + 1].imshow(truth if r == len(rows) - 1 else np.zeros_like(truth), cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(f"t = {t[fi]:.2f}", fontsize=8)
    for k, name in enumerate(modalities):
        axes[0, k].set_title(f"(A) I_t {name}", fontsize=8)
        axes[0, m + 2 + k].set_title(f"(C) η_t {name}", fontsize=8)
    axes[0, m].set_title("(B) J_t", fontsize=8)
    axes[0, m + 1].set_title("truth (last row)", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def channel_range(frames: np.ndarray) -> tuple[float, float]:
    """The grey range of one channel over all its frames: its 1st and 99th percentiles."""
    lo, hi = np.percentile(frames, [1, 99])
    return float(lo), float(hi) if hi > lo else float(lo) + 1e-6


def _acc_axes(ax, curves, modalities: Sequence[str]) -> None:
    """One Figure 7 panel: mean μ_t per modality with a shaded ± sd band."""
    for name in modalities:
        c = curves[curves["modality"] == name].sort_values("t")
        colour = MODALITY_COLOURS.get(name)
        ax.plot(c["t"], c["mean"], color=colour, label=name)
        ax.fill_between(c["t"], c["mean"] - c["sd"], c["mean"] + c["sd"], color=colour, alpha=0.15)
    ax.set_xlabel("t")
    ax.set_ylim(0, 1)


def acc_panels(curves_by_seed: dict, modalities: Sequence[str], title: str = "", ylabel: str = "μ_t (ACC)"):
    """The paper's Figure 7: mean ACC with a shaded ± sd band per modality, one panel per seed.

    curves_by_seed: {seed: DataFrame with columns t, modality, mean, sd}."""
    n = len(curves_by_seed)
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n, 2.8), sharey=True, squeeze=False)
    for ax, (seed, curves) in zip(axes[0], curves_by_seed.items()):
        _acc_axes(ax, curves, modalities)
        ax.set_title(f"seed {seed}", fontsize=9)
    axes[0, 0].set_ylabel(ylabel)
    axes[0, -1].legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def eta_coverage_panels(runs_by_seed: dict, modalities: Sequence[str]):
    """How much of γ each η^k covers over t (solid) and how much of the brain η^k covers (dotted),
    mean over the test slices, one panel per seed.

    runs_by_seed: {seed: an ACC run with ``t`` (T,), ``eta_coverage`` and ``eta_area`` (T, N, m);
    :class:`lib.explain.acc.ACCRun`}. Slices with an empty γ have no coverage (NaN) and are left out
    of its mean."""
    n = len(runs_by_seed)
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n, 2.6), sharey=True, squeeze=False)
    for ax, (seed, acc) in zip(axes[0], runs_by_seed.items()):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a mean over slices that all have an empty γ
            coverage = np.nanmean(acc.eta_coverage, axis=1)   # (T, m)
            area = np.nanmean(acc.eta_area, axis=1)
        for k, name in enumerate(modalities):
            line, = ax.plot(acc.t, coverage[:, k], color=MODALITY_COLOURS.get(name), label=f"{name}: covers γ")
            ax.plot(acc.t, area[:, k], ls=":", color=line.get_color())
        ax.set_title(f"seed {seed}", fontsize=9)
        ax.set_xlabel("t")
    axes[0, 0].set_ylabel("fraction (solid: of γ; dotted: of brain)")
    axes[0, -1].legend(fontsize=6)
    fig.tight_layout()
    return fig


def acc_grid(curves: dict, modalities: Sequence[str], title: str = "", ylabel: str = "μ_t (ACC)",
             column_labels: dict | None = None):
    """The paper's Figure 7 (A)-(C) over targets and seeds: one column per target, one row per
    seed; an empty panel where a target has no such seed.

    curves: {(target, seed): DataFrame with columns t, modality, mean, sd}; column_labels: how each
    target is named in its panels' titles (default: the target)."""
    targets = list(dict.fromkeys(t for t, _ in curves))
    seeds = sorted({s for _, s in curves})
    fig, axes = plt.subplots(len(seeds), len(targets), figsize=(3.3 * len(targets), 2.6 * len(seeds)),
                             sharey=True, sharex=True, squeeze=False)
    for i, seed in enumerate(seeds):
        for j, target in enumerate(targets):
            ax = axes[i, j]
            if (target, seed) in curves:
                _acc_axes(ax, curves[(target, seed)], modalities)
                ax.set_title(f"{(column_labels or {}).get(target, target)}, seed {seed}", fontsize=9)
            else:
                ax.set_title(f"{target}: no seed {seed}", fontsize=9)
                ax.set_axis_off()
        axes[i, 0].set_ylabel(ylabel)
    drawn = [ax for ax in axes.flat if ax.get_legend_handles_labels()[0]]
    if drawn:  # the top-right panel can be empty (a target without the first seed)
        drawn[-1].legend(*drawn[-1].get_legend_handles_labels(), fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def heatmap(matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], title: str = "",
            vmin: float = -1, vmax: float = 1, cmap: str = "coolwarm", ax=None):
    """Annotated heat map (e.g. channel mixing correlations)."""
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(0.8 * len(col_labels) + 1.5, 0.6 * len(row_labels) + 1))
    im = ax.imshow(matrix, vmin=vmin, vmax=vmax, cmap=cmap)
    ax.set_xticks(range(len(col_labels)), col_labels, fontsize=8)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_title(title, fontsize=9)
    if own:
        fig.colorbar(im, ax=ax, fraction=0.046)
        fig.tight_layout()
        return fig
    return im


def flow_animation(t: np.ndarray, I_t: np.ndarray, J_t: np.ndarray, eta: np.ndarray,
                   modalities: Sequence[str], every: int = 5, label: str = "") -> str:
    """An HTML/JavaScript animation of I_t, J_t and η_t over t that plays in a static page
    (no kernel): matplotlib's ``to_jshtml`` embeds every frame. Returns the HTML string."""
    from matplotlib import animation

    m = len(modalities)
    frames = list(range(0, len(t), every))
    if frames[-1] != len(t) - 1:
        frames.append(len(t) - 1)
    fig, axes = plt.subplots(2, m + 1, figsize=(1.6 * (m + 1), 3.4))
    ims = []
    for k in range(m):
        lo, hi = np.percentile(I_t[:, k], [1, 99])
        ims.append(axes[0, k].imshow(I_t[0, k], cmap="gray", vmin=lo, vmax=hi))
        axes[0, k].set_title(f"I_t {modalities[k]}", fontsize=7)
        ims.append(axes[1, k].imshow(eta[0, k], cmap="gray", vmin=0, vmax=1))
        axes[1, k].set_title(f"η_t {modalities[k]}", fontsize=7)
    ims.append(axes[0, m].imshow(J_t[0], cmap="magma", vmin=0, vmax=1))
    axes[0, m].set_title("J_t", fontsize=7)
    axes[1, m].set_axis_off()
    text = axes[1, m].text(0.5, 0.5, "", ha="center", va="center", fontsize=9, transform=axes[1, m].transAxes)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if label:
        fig.suptitle(label, fontsize=7, color="#b22222")

    def update(fi):
        for k in range(m):
            ims[2 * k].set_data(I_t[fi, k])
            ims[2 * k + 1].set_data(eta[fi, k])
        ims[-1].set_data(J_t[fi])
        text.set_text(f"t = {t[fi]:.2f}")
        return ims + [text]

    anim = animation.FuncAnimation(fig, update, frames=frames, interval=120, blit=False)
    html = offline_controls(anim.to_jshtml(default_mode="loop"))
    plt.close(fig)
    return html


# Font Awesome 4 icons of matplotlib's animation controls -> characters every font has.
_CONTROL_GLYPHS = {"fa-minus": "−", "fa-plus": "+", "fa-fast-backward": "⏮", "fa-step-backward": "⏴|",
                   "fa-play": "▶", "fa-pause": "⏸", "fa-step-forward": "|⏵", "fa-fast-forward": "⏭"}


def offline_controls(html: str) -> str:
    """matplotlib's ``to_jshtml`` links Font Awesome from a CDN for its buttons: offline (this book
    is read offline too) they would be blank. Drop the link and draw each icon as a character."""
    import re

    html = re.sub(r'<link rel="stylesheet"[^>]*font-awesome[^>]*>\s*', "", html)

    def glyph(match):
        classes = match.group(1).split()
        for name, character in _CONTROL_GLYPHS.items():
            if name in classes:
                return character
        return "·"

    return re.sub(r'<i class="([^"]*\bfa\b[^"]*)"[^>]*>\s*</i>', glyph, html)


def flow_explorer(t: np.ndarray, I_t: np.ndarray, J_t: np.ndarray, eta: np.ndarray, modalities: Sequence[str],
                  label: str = ""):
    """ipywidgets explorer (needs a live kernel): pick a slice and scrub t across I_t, J_t and η_t.

    Shapes: I_t (T, N, m, H, W), J_t (T, N, H, W), eta (T, N, m, H, W). ``label`` (e.g. the
    synthetic-data stamp) is drawn on every figure it shows."""
    import ipywidgets as widgets

    slice_w = widgets.IntSlider(0, 0, I_t.shape[1] - 1, description="slice")
    time_w = widgets.IntSlider(0, 0, len(t) - 1, description="t index")

    def show(slice_index, time_index):
        m = len(modalities)
        fig, axes = plt.subplots(2, m + 1, figsize=(1.8 * (m + 1), 3.8))
        for k in range(m):
            axes[0, k].imshow(I_t[time_index, slice_index, k], cmap="gray")
            axes[0, k].set_title(f"I_t {modalities[k]}", fontsize=8)
            axes[1, k].imshow(eta[time_index, slice_index, k], cmap="gray", vmin=0, vmax=1)
            axes[1, k].set_title(f"η_t {modalities[k]}", fontsize=8)
        axes[0, m].imshow(J_t[time_index, slice_index], cmap="magma", vmin=0, vmax=1)
        axes[0, m].set_title(f"J_t, t = {t[time_index]:.2f}", fontsize=8)
        axes[1, m].set_axis_off()
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        if label:
            fig.suptitle(label, fontsize=7, color="#b22222")
        plt.show()

    return widgets.interactive(show, slice_index=slice_w, time_index=time_w)


def label_histograms(images: np.ndarray, labels: np.ndarray, brain: np.ndarray, modalities: Sequence[str],
                     bins: int = 60):
    """Per modality: density of the intensities inside normal brain and inside each sub-label.

    images (N, m, H, W) z-scored; labels (N, H, W) canonical; brain (N, H, W) bool."""
    m = len(modalities)
    fig, axes = plt.subplots(1, m, figsize=(3.0 * m, 2.6), sharey=False)
    groups = {"normal brain": brain & (labels == 0)}
    groups.update({LABEL_NAMES[v]: labels == v for v in (1, 2, 3)})
    colours = {"normal brain": "#7f7f7f", **{LABEL_NAMES[v]: LABEL_COLOURS[v] for v in (1, 2, 3)}}
    edges = np.linspace(-4, 6, bins + 1)
    for ax, k, name in zip(np.atleast_1d(axes), range(m), modalities):
        channel = images[:, k]
        for group, mask in groups.items():
            values = channel[mask]
            if values.size:
                ax.hist(values, bins=edges, density=True, histtype="step", color=colours[group], label=group)
        ax.set_title(name)
        ax.set_xlabel("z-score over the brain")
    np.atleast_1d(axes)[0].set_ylabel("density")
    np.atleast_1d(axes)[-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


GRADE_MARKERS = {"HGG": "o", "LGG": "^"}
# Fixed per grade, so a grade has one colour in every panel (a panel's own colour cycle would give
# LGG the colour HGG has elsewhere when a panel holds LGG patients only).
GRADE_COLOURS = {"HGG": "#1f77b4", "LGG": "#ff7f0e"}


def dice_gap_scatter(gaps, title: str = ""):
    """One panel per subset: each patient's Dice minus the baseline's against its target size
    (log pixels), marker by grade. ``gaps``: :func:`lib.study_a.comparison.dice_gaps`'s table."""
    roles = list(dict.fromkeys(gaps["subset"]))
    fig, axes = plt.subplots(1, len(roles), figsize=(3.2 * len(roles), 2.9), sharey=True, squeeze=False)
    for ax, role in zip(axes[0], roles):
        one = gaps[gaps["subset"] == role]
        for grade, rows in one.groupby("grade"):
            ax.scatter(rows["target_pixels"], rows["dice_diff_vs_baseline"], s=18, color=GRADE_COLOURS.get(grade, "#7f7f7f"),
                       marker=GRADE_MARKERS.get(grade, "s"), label=grade, alpha=0.8)
        ax.axhline(0.0, color="#7f7f7f", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(f"{role}\n({one['inputs'].iloc[0]})", fontsize=8)
        ax.set_xlabel("target pixels (patient)")
    axes[0][0].set_ylabel("Dice − baseline Dice")
    legend = {label: handle for ax in axes[0] for handle, label in zip(*ax.get_legend_handles_labels())}
    axes[0][-1].legend(legend.values(), legend.keys(), fontsize=7)  # every grade of every panel
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
