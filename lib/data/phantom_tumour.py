"""The planted tumour of a phantom subject: BraTS labels and their appearance.

Geometry (``plant_labels``): one star-shaped lesion per subject. The whole tumour (WT) is
the set of eligible voxels (brain, not CSF, the lesion's hemisphere) whose normalised
radius ``|x - c| / (g(u) * (0.7 + 0.3 * wm))`` is smallest, g being a smooth random function
of the direction u (a few random plane waves on the unit sphere): an irregular outline that
spreads further along white matter, as edema does. The threshold is the quantile that gives
the drawn volume, so tumour/brain, ET/tumour and NCR/tumour shares are planted exactly.
Inside WT the core (TC) is a star-shaped region with its own outline, centred off the lesion's
centre by ``CORE_OFFSET`` x the lesion radius in a random direction (so the WT outline does not
say where the core is). For HGG the core's outer shell (with a rough, textured inner edge) is
enhancing (4) around necrosis (1); the rest of WT is edema (2). LGG: a non-enhancing core (1),
and in some subjects a small enhancing focus (ET share < 0.03).

Appearance (``lesion_images``): every class has a target z (against the subject's own
normal brain, the way ``contrast_report`` measures) drawn per subject from the ranges in
``Z_TARGETS``, plus smooth texture (sd ``TEXTURE_SD`` in z units, partly shared between
modalities) and a fraction ``KEEP_ANATOMY`` of the underlying tissue contrast. Class
boundaries are blurred (partial volume), so labels overlap in intensity as in real scans.
T1 and T1ce are both T1-weighted: without enhancement a tissue has one T1, so the
non-enhancing classes (necrosis, the LGG core, edema) sit at the same place among the healthy
tissues on both (``same_t1_place``, generator 1.4); only ET differs, by its enhancement.
The ranges were tuned so that the figures measured on the finished images (after bias
field and noise) fall inside the ranges measured on real BraTS HGG cases
(``lib.data.phantom.REFERENCE_HGG``; tests/test_phantom.py checks it).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from lib.data.phantom_anatomy import Template, texture_field

MODALITIES = ("t1", "t1ce", "t2", "flair")
NCR, ED, ET = 1, 2, 4

# Planted z (against normal brain) per grade, modality and class: uniform (low, high) per subject.
# HGG FLAIR/T1ce follow the real table; T1/T2 follow the textbook (tumour hyperintense on T2 but
# below CSF, iso- to hypointense on T1; ET bright on T1ce only). LGG: label 1 is a
# non-enhancing core, bright on T2/FLAIR like its edema, dark on the T1-weighted images.
# The tumour core (TC = NCR + ET) is planted on the T1-weighted images, as study A's real data
# implies (Table I: TC Dice 0.042 without T1ce): on FLAIR and T2 the core (and the enhancing
# rim) differs from the edema around it by much less than the within-label spread; the rim is
# bright on T1ce only, the non-enhancing core dark on T1ce and (1.4) equally on T1.
# History, each found by study A's independent measures: 1.0 made the core brighter than edema
# on T2/FLAIR and darker on T1 (occlusion, attribution and subset U-Nets found TC on T2/FLAIR);
# 1.1 still let the rim show on T1/T2 and centred the core in the lesion, so FLAIR/T2 outlines
# located it (complement U-Net 0.72 vs 0.74 baseline). 1.2: rim like edema on T1/T2, necrosis
# and the LGG core darker on T1ce, and the core off-centre (``CORE_OFFSET``).
# 1.4: up to 1.3 the necrosis and the LGG core were far darker on T1ce than on T1 (LGG core:
# CSF-dark on T1ce, grey-matter-like on T1), which no non-enhancing tissue does: the contrast agent
# only brightens. T1ce - T1 then carried the core, and study A's U-Nets used T1 to read T1ce
# (a tumour-free T1 twin gave back 80-93 % of what T1 adds). Since 1.4 the T1 targets of the
# non-enhancing classes follow from their T1ce draws (``T1_FROM_T1CE``, ``same_t1_place``), and the
# LGG core is moderately dark (a water-rich, non-enhancing tumour), not CSF-dark.
Z_TARGETS = {
    "HGG": {
        "flair": {NCR: (1.8, 2.8), ED: (2.35, 2.55), ET: (2.1, 3.0)},
        "t1ce": {NCR: (-1.0, -0.4), ED: (-0.17, -0.01), ET: (2.05, 3.05)},
        "t1": {NCR: (-0.5, -0.15), ED: (-0.35, -0.05), ET: (-0.35, -0.05)},
        "t2": {NCR: (1.35, 1.85), ED: (1.3, 1.8), ET: (1.25, 1.8)},
    },
    "LGG": {
        "flair": {NCR: (1.5, 2.2), ED: (1.5, 2.2), ET: (1.5, 2.2)},
        "t1ce": {NCR: (-1.4, -0.7), ED: (-0.2, 0.1), ET: (1.6, 2.6)},
        "t1": {NCR: (-0.45, -0.1), ED: (-0.4, -0.1), ET: (-0.4, -0.1)},
        "t2": {NCR: (1.1, 1.65), ED: (1.1, 1.6), ET: (1.1, 1.6)},
    },
}
# Non-enhancing classes whose T1 target and texture are not drawn but set by their T1ce ones (1.4):
# the T1 draws (``Z_TARGETS``, the texture field) are still made, so every later random draw stays
# where it was, and then replaced. ``TEXTURE_SD["t1"]`` therefore only applies to ET.
T1_FROM_T1CE = (NCR, ED)
PURE_TISSUE = 0.9  # tissue fraction of the voxels whose mean is a healthy anchor
# Texture sd (z units) per modality and class; scaled per subject by U(0.8, 1.2).
TEXTURE_SD = {
    "flair": {NCR: 0.95, ED: 0.85, ET: 0.95},
    "t1ce": {NCR: 0.6, ED: 0.26, ET: 1.0},
    "t1": {NCR: 0.5, ED: 0.35, ET: 0.45},
    "t2": {NCR: 0.7, ED: 0.6, ET: 0.6},
}
# Share of the healthy tissue contrast kept inside each class, per modality.
KEEP_ANATOMY = {mod: {NCR: 0.1, ED: 0.5, ET: 0.2} for mod in MODALITIES}
TEXTURE_CORR_MM = 2.5
SHARED_TEXTURE = 0.6  # correlation of the texture between modalities
EDGE_BLUR_VOXELS = 0.5  # partial volume at label boundaries (Gaussian sigma, voxels)

# Volume shares drawn per subject (uniform), tumour/brain drawn log-uniform.
TUMOUR_FRACTION = {"HGG": (0.05, 0.17), "LGG": (0.04, 0.14)}
HGG_ET_SHARE = (0.13, 0.26)
HGG_NCR_SHARE = (0.04, 0.42)
LGG_CORE_SHARE = (0.2, 0.55)
# The core sits off the lesion centre by this share of the lesion radius, in a random direction,
# so the WT outline (FLAIR/T2) does not say where inside it the core is (1.2).
CORE_OFFSET = (0.3, 0.6)
LGG_ET_FOCUS = (0.3, (0.005, 0.03))  # probability of a small enhancing focus, its share


def tumour_radius_mm(fraction: float, brain_ml: float) -> float:
    """Radius of the sphere with ``fraction`` of the brain's volume."""
    return (3.0 * fraction * brain_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)


def _eligible_centres(tpl: Template) -> np.ndarray:
    world = tpl.world(np.argwhere(np.ones(tpl.shape, dtype=bool))).reshape(*tpl.shape, 3)
    ok = (tpl.wm > 0.55) & (tpl.depth_mm > 14.0)
    ok &= (np.abs(world[..., 0]) > 14.0) & (world[..., 2] > -8.0) & (world[..., 2] < 55.0)
    return np.argwhere(ok)


_CENTRES: dict[float, np.ndarray] = {}


def choose_centre(rng: np.random.Generator, tpl: Template) -> np.ndarray:
    """A voxel in hemispheric, supratentorial white matter away from the brain's edge."""
    key = tpl.resolution_mm
    if key not in _CENTRES:
        _CENTRES[key] = _eligible_centres(tpl)
    cands = _CENTRES[key]
    return cands[rng.integers(len(cands))].astype(float) + rng.uniform(-0.5, 0.5, 3)


def _outline(rng: np.random.Generator, amplitude: float, n_waves: int = 6):
    """g(u) = 1 + sum a_k cos(f_k . u + phi_k), a smooth random function on the sphere."""
    freq = rng.normal(size=(n_waves, 3)) * 1.4
    phase = rng.uniform(0.0, 2.0 * math.pi, n_waves)
    amp = rng.normal(size=n_waves)
    amp *= amplitude / max(np.abs(amp).sum(), 1e-6) * 1.6

    def g(u: np.ndarray) -> np.ndarray:  # u: (..., 3) unit vectors
        val = 1.0 + np.cos(u @ freq.T + phase) @ amp
        return np.maximum(val, 0.45)

    return g


def _normalised_radius(grid_mm: np.ndarray, centre_mm: np.ndarray, g) -> np.ndarray:
    rel = grid_mm - centre_mm
    dist = np.sqrt((rel ** 2).sum(-1)) + 1e-6
    return dist / g(rel / dist[..., None])


def _smallest(values: np.ndarray, mask: np.ndarray, count: int) -> np.ndarray:
    """Boolean mask of the ``count`` voxels of ``mask`` with the smallest ``values``."""
    out = np.zeros(mask.shape, dtype=bool)
    idx = np.flatnonzero(mask)
    count = int(min(max(count, 0), idx.size))
    if count == 0:
        return out
    order = np.argpartition(values.ravel()[idx], count - 1)[:count] if count < idx.size else np.arange(idx.size)
    out.ravel()[idx[order]] = True
    return out


def plant_labels(rng: np.random.Generator, anat: dict, tpl: Template, grade: str,
                 centre_vox: np.ndarray, fraction: float) -> tuple[np.ndarray, dict]:
    """BraTS labels (uint8, 0/1/2/4) of one subject and the planted facts."""
    r = tpl.resolution_mm
    brain = anat["brain"]
    n_brain = int(brain.sum())
    radius = tumour_radius_mm(fraction, n_brain * r ** 3 / 1000.0)
    half = int(math.ceil(2.4 * radius / r)) + 2
    c = np.round(centre_vox).astype(int)
    box = tuple(slice(max(ci - half, 0), min(ci + half + 1, s)) for ci, s in zip(c, tpl.shape))
    grid = np.stack(np.meshgrid(*[np.arange(b.start, b.stop) for b in box], indexing="ij"), -1).astype(np.float32)
    grid_mm = grid * r
    centre_mm = np.asarray(centre_vox) * r

    hemi = np.sign(tpl.world(centre_vox)[0])
    x_world = tpl.world(grid)[..., 0]
    eligible = brain[box] & (anat["csf"][box] < 0.5) & (hemi * x_world > -3.0)
    wt_outline = _outline(rng, 0.25)
    rho = _normalised_radius(grid_mm, centre_mm, wt_outline) / (0.7 + 0.3 * anat["wm"][box])
    wt = _smallest(rho, eligible, round(fraction * n_brain))
    lab, n = ndimage.label(wt)
    if n > 1:
        wt = lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)
    n_wt = int(wt.sum())

    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction) + 1e-9
    core_centre = centre_mm + direction * rng.uniform(*CORE_OFFSET) * radius
    core_rho = _normalised_radius(grid_mm, core_centre, _outline(rng, 0.2))
    sub = np.where(wt, ED, 0).astype(np.uint8)
    if grade == "HGG":
        et_share = rng.uniform(*HGG_ET_SHARE)
        ncr_share = rng.uniform(*HGG_NCR_SHARE)
        core = _smallest(core_rho, wt, round((et_share + ncr_share) * n_wt))
        rough = texture_field(rng, core_rho.shape, r, 3.0) * (0.08 * radius)
        ncr = _smallest(core_rho + rough, core, round(ncr_share * n_wt))
        sub[core] = ET
        sub[ncr] = NCR
    else:
        core_share = rng.uniform(*LGG_CORE_SHARE)
        core = _smallest(core_rho, wt, round(core_share * n_wt))
        sub[core] = NCR
        p_focus, focus_range = LGG_ET_FOCUS
        has_focus = rng.random() < p_focus
        focus_share = rng.uniform(*focus_range)
        seed_idx = np.argwhere(core)
        if has_focus and len(seed_idx):
            seed = seed_idx[rng.integers(len(seed_idx))] * r
            focus = _smallest(np.sqrt(((grid_mm - seed) ** 2).sum(-1)), core, round(focus_share * n_wt))
            sub[focus] = ET
    seg = np.zeros(tpl.shape, dtype=np.uint8)
    seg[box] = sub
    facts = {"radius_mm": round(float(radius), 2), "target_fraction": round(float(fraction), 4)}
    return seg, facts


def second_rater(seg: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """A second rater's systematic bias: the whole tumour drawn one voxel wider (new voxels
    edema, inside the brain), and the enhancing rim one voxel thicker inward (necrosis
    voxels touching ET become ET). Images are untouched; only the reference changes."""
    out = seg.copy()
    wt = seg > 0
    grown = ndimage.binary_dilation(wt) & brain & ~wt
    out[grown] = ED
    et = seg == ET
    if et.any():
        out[ndimage.binary_dilation(et) & (seg == NCR)] = ET
    return out


def tissue_anchors(image: np.ndarray, tissues: dict[str, np.ndarray], normal: np.ndarray) -> dict[str, float]:
    """z (against the normal brain) of the mean of nearly pure WM, GM and CSF voxels of ``image``."""
    mu, sd = float(image[normal].mean()), float(image[normal].std())
    out = {}
    for tissue in ("csf", "gm", "wm"):
        pure = normal & (tissues[tissue] >= PURE_TISSUE)
        if not pure.any():
            raise ValueError(f"tissue_anchors: no voxel is >= {PURE_TISSUE} {tissue}")
        out[tissue] = (float(image[pure].mean()) - mu) / sd
    return out


def same_t1_place(z: float, source: dict[str, float], dest: dict[str, float]) -> float:
    """The z on sequence ``dest`` of a tissue at z on sequence ``source``, both T1-weighted.

    A tissue without enhancement has one T1 relaxation, so it keeps its place among the healthy
    tissues (CSF < GM < WM on both): z is mapped linearly between the two anchors around it
    (CSF-GM below GM, GM-WM above), extended beyond CSF and WM. Anchors: :func:`tissue_anchors`.
    """
    for anchors in (source, dest):
        if not anchors["csf"] < anchors["gm"] < anchors["wm"]:
            raise ValueError(f"same_t1_place: anchors not ordered CSF < GM < WM: {anchors}")
    low, high = ("csf", "gm") if z < source["gm"] else ("gm", "wm")
    share = (z - source[low]) / (source[high] - source[low])
    return dest[low] + share * (dest[high] - dest[low])


def same_t1_slope(z: float, source: dict[str, float], dest: dict[str, float]) -> float:
    """d(same_t1_place)/dz at ``z``: how a small z change on ``source`` (texture) shows on ``dest``."""
    low, high = ("csf", "gm") if z < source["gm"] else ("gm", "wm")
    return (dest[high] - dest[low]) / (source[high] - source[low])


def lesion_images(rng: np.random.Generator, healthy: dict[str, np.ndarray], seg: np.ndarray,
                  grade: str, voxel_mm: float, gain: dict[str, float],
                  tissues: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict]:
    """Paint the lesion into the healthy (noise-free, bias-free) images.

    For each class c: T_c = mu + sd * (z_c + tau_c * texture) + k_c * (H - mean_c(H)), where mu
    and sd are the normal-brain statistics of that modality; blended with soft class weights.
    The T1 z of the non-enhancing classes is their T1ce z at the same place among the healthy
    tissues (:func:`same_t1_place`; ``tissues``: gm/wm/csf fractions), and so is their texture: the
    same tissue, so T1 shows T1ce's texture field (scaled by :func:`same_t1_slope`), not a look of
    its own; only the acquisition (slices, shift, bias, noise) differs. ``gain[mod]`` scales the
    lesion contrast (I = H + gain * (painted - H)); the RNG draws do not depend on it.
    """
    lesion = seg > 0
    idx = np.argwhere(lesion)
    lo = np.maximum(idx.min(0) - 3, 0)
    hi = np.minimum(idx.max(0) + 4, seg.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    sub = seg[box]
    labels = [lab for lab in (NCR, ED, ET) if (sub == lab).any()]
    sigma = EDGE_BLUR_VOXELS
    weights = {lab: ndimage.gaussian_filter((sub == lab).astype(np.float32), sigma, mode="nearest") for lab in labels}
    wsum = sum(weights.values())
    normal = (seg == 0) & (healthy["t1"] > 0)
    shared = texture_field(rng, sub.shape, voxel_mm, TEXTURE_CORR_MM)
    tau_scale = rng.uniform(0.8, 1.2)
    # every draw first, in the order of generator 1.3, then the T1 targets that follow from T1ce
    textures, z = {}, {}
    for mod in MODALITIES:
        own = texture_field(rng, sub.shape, voxel_mm, TEXTURE_CORR_MM)
        textures[mod] = SHARED_TEXTURE * shared + math.sqrt(1.0 - SHARED_TEXTURE ** 2) * own
        z[mod] = {lab: float(rng.uniform(*Z_TARGETS[grade][mod][lab])) for lab in (NCR, ED, ET)}
    anchors = {mod: tissue_anchors(healthy[mod], tissues, normal) for mod in ("t1", "t1ce")}
    # texture term (z units) per modality and class: its own field, but T1ce's for T1's non-enhancing classes
    texture = {mod: {lab: TEXTURE_SD[mod][lab] * textures[mod] for lab in (NCR, ED, ET)} for mod in MODALITIES}
    for lab in T1_FROM_T1CE:
        z["t1"][lab] = same_t1_place(z["t1ce"][lab], anchors["t1ce"], anchors["t1"])
        texture["t1"][lab] = same_t1_slope(z["t1ce"][lab], anchors["t1ce"], anchors["t1"]) * texture["t1ce"][lab]
    drawn = {mod: {int(k): round(v, 3) for k, v in z[mod].items()} for mod in MODALITIES}
    out = {}
    for mod in MODALITIES:
        full = healthy[mod]
        mu, sd = float(full[normal].mean()), float(full[normal].std())
        h = full[box]
        painted = h * (1.0 - wsum)
        for lab in labels:
            tissue = h - float(h[sub == lab].mean())
            target = mu + sd * (z[mod][lab] + tau_scale * texture[mod][lab]) + KEEP_ANATOMY[mod][lab] * tissue
            painted += weights[lab] * target
        img = full.copy()
        img[box] = h + float(gain.get(mod, 1.0)) * (painted - h)
        out[mod] = np.maximum(img, 0.0)
    return out, {"z_planted": drawn, "t1_anchors": {m: {t: round(v, 3) for t, v in a.items()} for m, a in anchors.items()}}
