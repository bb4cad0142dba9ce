"""The synthetic phantom cohort: layout, determinism, physics, planted truths, calibration,
domain-shift options, atomic writing, and the contrast measurement itself (known answers)."""

from __future__ import annotations

import csv
import json
import os

import nibabel as nib
import numpy as np
import pytest

from lib.data import phantom as P
from lib.data.phantom import PhantomSpec

MODS = ("t1", "t1ce", "t2", "flair")
FAST = dict(resolution_mm=4.0)  # the smoke resolution: ~0.1 s per subject


def _load(folder, name):
    img = nib.load(next(folder.glob(f"*_{name}.nii.gz")))
    return img, np.asarray(img.dataobj)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    spec = PhantomSpec(n_subjects=5, seed=4, **FAST)
    root = P.generate_cohort(tmp_path_factory.mktemp("ph") / "cohort", spec)
    return root, spec


@pytest.fixture(scope="module")
def hgg_subject():
    spec = PhantomSpec(n_subjects=1, seed=2, hgg_fraction=1.0, **FAST)
    return spec, P.synthesize_subject(spec, 0)


# --- layout ---------------------------------------------------------------------------------

def test_layout_files_shapes_labels(cohort):
    root, spec = cohort
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    assert [f.name for f in folders] == [f"BraTS20_Training_{i:03d}" for i in range(1, 6)]
    for folder in folders:
        names = sorted(p.name for p in folder.iterdir())
        assert names == sorted(f"{folder.name}_{m}.nii.gz" for m in (*MODS, "seg"))
        seg_img, seg = _load(folder, "seg")
        assert seg.dtype == np.uint8 and set(np.unique(seg)) <= {0, 1, 2, 4} and (seg > 0).any()
        brain = None
        for mod in MODS:
            img, arr = _load(folder, mod)
            assert arr.dtype == np.float32 and arr.shape == seg.shape
            assert np.allclose(img.affine, seg_img.affine)
            nonzero = arr != 0
            brain = nonzero if brain is None else brain
            assert np.array_equal(nonzero, brain), "all modalities share the (skull-stripped) brain mask"
        assert not (seg[~brain] > 0).any(), "labels only inside the brain"
        assert brain.mean() < 0.6, "zero background outside the brain"


def test_name_mapping_and_marker(cohort):
    root, spec = cohort
    with open(root / "name_mapping.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(P.NAME_MAPPING_COLUMNS)
    assert [r["BraTS_2020_subject_ID"] for r in rows] == [P.subject_id(i) for i in range(5)]
    assert [r["Grade"] for r in rows] == [P.subject_grade(spec, i) for i in range(5)]
    assert {r["Grade"] for r in rows} == {"HGG", "LGG"}
    meta = json.loads((root / "phantom.json").read_text())
    assert meta["synthetic"] is True and "not patient data" in meta["note"]
    assert meta["generator_version"] == P.GENERATOR_VERSION
    assert PhantomSpec.from_dict(meta["spec"]) == spec
    assert not list(root.parent.glob(".*tmp*")), "no temporary folder left behind"


def test_written_files_equal_in_memory_subject(cohort):
    root, spec = cohort
    sub = P.synthesize_subject(spec, 3)
    folder = root / P.subject_id(3)
    for mod in MODS:
        assert np.array_equal(_load(folder, mod)[1], sub["images"][mod])
    assert np.array_equal(_load(folder, "seg")[1], sub["seg"])


# --- determinism ----------------------------------------------------------------------------

def test_determinism_and_subject_independence():
    a = P.synthesize_subject(PhantomSpec(n_subjects=2, seed=9, **FAST), 1)
    b = P.synthesize_subject(PhantomSpec(n_subjects=7, seed=9, **FAST), 1)  # other cohort size
    c = P.synthesize_subject(PhantomSpec(n_subjects=2, seed=10, **FAST), 1)
    for mod in MODS:
        assert np.array_equal(a["images"][mod], b["images"][mod])
        assert not np.array_equal(a["images"][mod], c["images"][mod])
    assert np.array_equal(a["seg"], b["seg"]) and not np.array_equal(a["seg"], c["seg"])


def test_grades_balanced_and_independent_of_size():
    spec = PhantomSpec(n_subjects=200, seed=1)
    grades = [P.subject_grade(spec, i) for i in range(200)]
    assert abs(grades.count("HGG") / 200 - 0.6) <= 0.02
    assert grades[:10] == [P.subject_grade(PhantomSpec(n_subjects=10, seed=1), i) for i in range(10)]
    assert all(P.subject_grade(PhantomSpec(seed=1, hgg_fraction=0.0), i) == "LGG" for i in range(20))


def test_spec_roundtrip_and_validation():
    spec = PhantomSpec(n_subjects=3, seed=5, contrast_gain={"t2": 1.2, "flair": 0.8}, rater="second")
    data = json.loads(json.dumps(spec.to_dict()))
    assert PhantomSpec.from_dict(data) == spec and data == spec.to_dict()
    assert list(spec.contrast_gain) == ["flair", "t2"]
    for bad in ({"rater": "third"}, {"contrast_gain": {"dwi": 1.0}}, {"n_subjects": 0}, {"noise_scale": -1.0}):
        with pytest.raises(ValueError):
            PhantomSpec(**bad)
    with pytest.raises(ValueError, match="unknown"):
        PhantomSpec.from_dict({"n_subjects": 2, "colour": "red"})


# --- physics of the healthy brain -----------------------------------------------------------

def test_tissue_orderings(hgg_subject):
    _, sub = hgg_subject
    normal = sub["seg"] == 0
    pure = {t: (sub["tissues"][t] > 0.8) & normal for t in ("gm", "wm", "csf")}
    assert all(m.sum() > 20 for m in pure.values())
    mean = {m: {t: float(sub["images"][m][pure[t]].mean()) for t in pure} for m in MODS}
    assert mean["t1"]["wm"] > mean["t1"]["gm"] > mean["t1"]["csf"]
    assert mean["t1ce"]["wm"] > mean["t1ce"]["gm"] > mean["t1ce"]["csf"]
    assert mean["t2"]["csf"] > mean["t2"]["gm"] > mean["t2"]["wm"]
    assert mean["flair"]["gm"] > mean["flair"]["wm"] > mean["flair"]["csf"]
    # T2: CSF brighter still than the lesion; FLAIR: the lesion far brighter than CSF.
    ed = sub["seg"] == 2
    assert mean["t2"]["csf"] > sub["images"]["t2"][ed].mean()
    assert sub["images"]["flair"][ed].mean() > 2 * mean["flair"]["csf"]


# --- planted truths -------------------------------------------------------------------------

def test_planted_tumour_truths(cohort):
    root, _ = cohort
    df = P.contrast_report(root)
    hgg, lgg = df[df.grade == "HGG"], df[df.grade == "LGG"]
    assert len(hgg) >= 2 and len(lgg) >= 1
    assert (hgg.t1ce_z_et - hgg.t1ce_z_ed > 1.2).all() and (hgg.cnr_t1ce_et_ed > 2.0).all()  # T1ce: ET >> ED
    assert (hgg.flair_z_ed > 1.5).all() and (lgg.flair_z_ed > 1.0).all()  # FLAIR: ED >> normal brain
    assert (hgg.cnr_flair_et_ed.abs() < 1.6).all()  # FLAIR cannot separate ET from ED much
    # necrosis dark: on T1ce in every subject (the planted ranges do not overlap), on T1 on average
    # (its ranges overlap, so a subject may draw edema darker than its necrosis)
    assert (hgg.t1ce_z_ncr < hgg.t1ce_z_ed).all() and (hgg.t1_z_ncr - hgg.t1_z_ed).mean() < 0
    assert (hgg.t1_z_et.abs() < 0.7).all()  # ET iso-ish on T1: the enhancement is T1ce only
    assert (hgg.t2_z_ed > 0.8).all() and (hgg.t1_z_ed.abs() < 0.8).all()  # edema bright T2, about iso T1
    assert ((hgg.et_share > 0.1) & (hgg.et_share < 0.3)).all()
    assert (lgg.et_share < 0.05).all()  # LGG: ET share near 0
    assert (lgg.flair_z_ncr > 1.0).all() and (lgg.t1ce_z_ncr < 0.3).all()  # core bright FLAIR, not enhancing
    assert ((df.tumour_fraction > 0.03) & (df.tumour_fraction < 0.21)).all()
    # The tumour core is planted on the T1-weighted images: on FLAIR and T2 the core and the rim
    # look like their edema on average; the necrosis and the LGG core are dark on T1ce, and (1.4,
    # no enhancement) on T1 too. Only ET differs between T1 and T1ce by much: the enhancement.
    for grade in (hgg, lgg):
        for mod in ("flair", "t2"):
            assert abs((grade[f"{mod}_z_ncr"] - grade[f"{mod}_z_ed"]).mean()) < 0.6, mod
        assert ((grade.t1ce_z_ed - grade.t1ce_z_ncr) > 0.2).all()
        assert (grade.t1_z_ed - grade.t1_z_ncr).mean() > 0.2
    for mod in ("t2", "t1"):
        assert abs((hgg[f"{mod}_z_et"] - hgg[f"{mod}_z_ed"]).mean()) < 0.3, mod
    enhancement = hgg.t1ce_z_et - hgg.t1_z_et
    for label in ("ncr", "ed"):
        assert ((hgg[f"t1ce_z_{label}"] - hgg[f"t1_z_{label}"]).abs() < 0.5 * enhancement).all(), label


def test_planted_key_modalities_follow_from_the_planted_contrasts():
    from lib.data.phantom_tumour import ED, ET, Z_TARGETS
    from lib.data.planted import PLANTED_KEY_MODALITIES, planted_key_modalities

    def everywhere(holds):  # modalities where ``holds(z ranges by label)`` in every grade
        return {m for m in MODS if all(holds(Z_TARGETS[grade][m]) for grade in Z_TARGETS)}

    # ET: its whole planted range lies above edema's on T1ce only (it overlaps edema on the others)
    assert everywhere(lambda z: z[ET][0] > z[ED][1]) == set(PLANTED_KEY_MODALITIES["ET"]) == {"t1ce"}
    # WT: every tumour label is brighter than normal brain (z > 0) on FLAIR and T2 only
    assert everywhere(lambda z: all(low > 0 for low, _ in z.values())) == set(PLANTED_KEY_MODALITIES["WT"])
    assert PLANTED_KEY_MODALITIES == {"ET": ("t1ce",), "TC": ("t1ce",), "WT": ("flair", "t2")}
    assert planted_key_modalities("WT", synthetic=True) == ("flair", "t2")
    assert planted_key_modalities("ET", synthetic=False) is None  # real data has no planted truth


def test_same_t1_place_known_answers():
    from lib.data.phantom_tumour import same_t1_place

    src = {"csf": -2.0, "gm": 0.0, "wm": 1.0}
    dst = {"csf": -3.0, "gm": -0.5, "wm": 1.5}
    for tissue in src:  # a healthy tissue maps onto itself
        assert same_t1_place(src[tissue], src, dst) == pytest.approx(dst[tissue])
    assert same_t1_place(-1.0, src, dst) == pytest.approx(-1.75)  # halfway CSF-GM
    assert same_t1_place(0.25, src, dst) == pytest.approx(0.0)  # a quarter GM-WM
    assert same_t1_place(2.0, src, dst) == pytest.approx(3.5)  # beyond WM: the GM-WM line extended
    assert same_t1_place(-4.0, src, dst) == pytest.approx(-5.5)  # below CSF: the CSF-GM line extended
    with pytest.raises(ValueError, match="not ordered"):
        same_t1_place(0.5, {"csf": 0.0, "gm": 1.0, "wm": 0.5}, dst)


def test_non_enhancing_tumour_keeps_its_t1_place(hgg_subject):
    """Generator 1.4: the planted T1 z of necrosis and edema is their T1ce z at the same place
    among the subject's healthy tissues; ET keeps its own (drawn) T1 z."""
    from lib.data.phantom_tumour import ED, ET, NCR, Z_TARGETS, same_t1_place

    facts = hgg_subject[1]["facts"]
    z, anchors = facts["z_planted"], facts["t1_anchors"]
    for label in (NCR, ED):
        expected = same_t1_place(z["t1ce"][label], anchors["t1ce"], anchors["t1"])
        assert z["t1"][label] == pytest.approx(expected, abs=2e-3)
    low, high = Z_TARGETS["HGG"]["t1"][ET]
    assert low <= z["t1"][ET] <= high
    assert anchors["t1"]["csf"] < anchors["t1"]["gm"] < anchors["t1"]["wm"]


def test_non_enhancing_tumour_shows_one_texture_on_t1_and_t1ce(hgg_subject, monkeypatch):
    """Generator 1.4: T1 shows the necrosis' T1ce texture (the same tissue), so inside it the two
    images correlate far more than with a texture field of T1's own (only acquisition differs)."""
    from lib.data import phantom_tumour

    def t1_t1ce_correlation(subject, label):
        inside = subject["seg"] == label
        return float(np.corrcoef(subject["images"]["t1"][inside], subject["images"]["t1ce"][inside])[0, 1])

    spec, shared = hgg_subject
    monkeypatch.setattr(phantom_tumour, "T1_FROM_T1CE", ())
    own = P.synthesize_subject(spec, 0)
    assert t1_t1ce_correlation(shared, 1) > t1_t1ce_correlation(own, 1) + 0.2
    assert t1_t1ce_correlation(shared, 1) > 0.6


def test_core_is_off_centre_in_the_lesion():
    """Generator 1.2: the core's centroid is away from the lesion's, in no preferred direction, so
    the FLAIR/T2 outline does not say where the core is (1.1 centred it: a shape leak)."""
    spec = PhantomSpec(n_subjects=8, seed=11, **FAST)
    offsets, directions = [], []
    for index in range(spec.n_subjects):
        seg = P.synthesize_subject(spec, index)["seg"]
        wt, core = np.argwhere(seg > 0), np.argwhere((seg == 1) | (seg == 4))
        radius = (3.0 * len(wt) / (4.0 * np.pi)) ** (1.0 / 3.0)
        shift = core.mean(0) - wt.mean(0)
        offsets.append(np.linalg.norm(shift) / radius)
        directions.append(shift / np.linalg.norm(shift))
    assert np.median(offsets) > 0.28  # a centred core gives ~0.22 here (the outline is irregular)
    assert np.linalg.norm(np.mean(directions, 0)) < 0.6  # directions do not all agree


def test_calibration_within_real_ranges(tmp_path):
    spec = PhantomSpec(n_subjects=4, seed=7, resolution_mm=3.0, hgg_fraction=1.0)
    df = P.contrast_report(P.generate_cohort(tmp_path / "cal", spec), grade="HGG", modalities=("flair", "t1ce"))
    assert len(df) == 4
    ours, ref = P.summarise_contrast(df), P.reference_contrast()
    assert set(ref.index) <= set(ours.index)
    for figure, real in ref.iterrows():
        got = ours.loc[figure]
        assert real["min"] <= got["mean"] <= real["max"], figure
        assert real["min"] <= got["min"] and got["max"] <= real["max"], f"{figure}: a subject outside the real range"
        if not np.isnan(real["within_label_sd"]):  # labels overlap in intensity: not cleaner than real data
            assert 0.5 * real["within_label_sd"] <= got["within_label_sd"] <= 1.5 * real["within_label_sd"], figure


# --- domain-shift options -------------------------------------------------------------------

def _z(img, seg, label):
    normal = (img != 0) & (seg == 0)
    return float((img[seg == label].mean() - img[normal].mean()) / img[normal].std())


def test_contrast_gain_changes_only_that_modality(hgg_subject):
    spec, base = hgg_subject
    shifted = P.synthesize_subject(PhantomSpec.from_dict({**spec.to_dict(), "contrast_gain": {"flair": 0.5}}), 0)
    for mod in ("t1", "t1ce", "t2"):
        assert np.array_equal(base["images"][mod], shifted["images"][mod])
    assert np.array_equal(base["seg"], shifted["seg"])
    z0, z1 = _z(base["images"]["flair"], base["seg"], 2), _z(shifted["images"]["flair"], base["seg"], 2)
    assert z1 < z0 - 0.6 and z1 > 0.2  # the lesion about half as conspicuous on FLAIR
    outside = base["seg"] == 0
    far = outside & (np.abs(base["images"]["flair"] - shifted["images"]["flair"]) > 0)
    assert far.sum() < 0.05 * outside.sum(), "healthy brain unchanged away from the lesion"


def test_zero_gain_is_a_tumour_free_twin(hgg_subject, monkeypatch):
    """Gain 0 renders the modality as if no tumour were painted: whatever contrast the tumour is
    given on it, the image is the same (only the labels' mass effect on the anatomy remains)."""
    spec, base = hgg_subject
    twin_spec = PhantomSpec.from_dict({**spec.to_dict(), "contrast_gain": {"t1": 0.0}})
    twin = P.synthesize_subject(twin_spec, 0)
    for mod in ("t1ce", "t2", "flair"):
        assert np.array_equal(base["images"][mod], twin["images"][mod])
    assert np.array_equal(base["seg"], twin["seg"])
    assert not np.array_equal(base["images"]["t1"], twin["images"]["t1"])
    # the tumour made far brighter on T1: the twin does not change, the painted T1 does
    from lib.data import phantom_tumour

    bright = {grade: {**targets, "t1": {label: (5.0, 5.5) for label in targets["t1"]}}
              for grade, targets in phantom_tumour.Z_TARGETS.items()}
    monkeypatch.setattr(phantom_tumour, "Z_TARGETS", bright)
    monkeypatch.setattr(phantom_tumour, "T1_FROM_T1CE", ())  # T1 targets as drawn, not from T1ce
    assert np.array_equal(P.synthesize_subject(twin_spec, 0)["images"]["t1"], twin["images"]["t1"])
    assert _z(P.synthesize_subject(spec, 0)["images"]["t1"], base["seg"], 2) > 3.0


def test_noise_and_bias_scale():
    def flair(**kw):
        return P.synthesize_subject(PhantomSpec(n_subjects=1, seed=3, **FAST, **kw), 0)["images"]["flair"]

    clean = flair(noise_scale=0.0)
    brain = clean > 0
    d1 = (flair() - clean)[brain].std()
    d2 = (flair(noise_scale=2.0) - clean)[brain].std()
    assert d1 > 0 and 1.8 < d2 / d1 < 2.2
    flat = flair(noise_scale=0.0, bias_scale=0.0)
    r1 = np.log(clean[brain] / flat[brain]).std()
    r3 = np.log(flair(noise_scale=0.0, bias_scale=3.0)[brain] / flat[brain]).std()
    assert r1 > 0.005 and r3 / r1 == pytest.approx(3.0, rel=0.01)


def test_second_rater_perturbs_labels_only(hgg_subject):
    spec, first = hgg_subject
    second = P.synthesize_subject(PhantomSpec.from_dict({**spec.to_dict(), "rater": "second"}), 0)
    for mod in MODS:
        assert np.array_equal(first["images"][mod], second["images"][mod])
    a, b = first["seg"], second["seg"]
    assert set(np.unique(b)) <= {0, 1, 2, 4}
    assert (b > 0).sum() > (a > 0).sum() and (b == 4).sum() > (a == 4).sum() and (b == 1).sum() < (a == 1).sum()
    assert set(np.unique(b[(a == 0) & (b > 0)])) == {2}, "the wider outline is edema"
    assert set(np.unique(b[(a == 1) & (b != 1)])) == {4}, "the rim grows into necrosis"
    assert np.array_equal(b[a == 4], a[a == 4]) and np.array_equal(b[a == 2], a[a == 2])


# --- writing: atomic, refusing to clobber, CLI ------------------------------------------------

def test_atomic_write_on_failure(tmp_path, monkeypatch):
    calls = []
    real = P._write_subject

    def failing(folder, sid, subject):
        calls.append(sid)
        if len(calls) == 2:
            raise RuntimeError("disk full (simulated)")
        real(folder, sid, subject)

    monkeypatch.setattr(P, "_write_subject", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        P.generate_cohort(tmp_path / "out", PhantomSpec(n_subjects=3, seed=0, **FAST))
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == [], "neither the cohort nor a temporary folder is left"


def test_folders_of_a_killed_generation_are_removed_but_not_those_of_a_live_one(tmp_path):
    """A generation killed outright (no except clause runs) leaves its temporary folder; the next
    generation removes it, and a replaced phantom's old folder, unless their writer is alive."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    live_pid = os.getppid()
    abandoned = [tmp_path / f".ph.tmp-1-{dead_pid}", tmp_path / f".ph.old-2-{dead_pid}"]
    in_progress = tmp_path / f".ph.tmp-3-{live_pid}"
    other_cohort = tmp_path / f".other.tmp-4-{dead_pid}"
    for folder in (*abandoned, in_progress, other_cohort):
        (folder / "BraTS20_Training_001").mkdir(parents=True)
    out = P.generate_cohort(tmp_path / "ph", PhantomSpec(n_subjects=1, seed=0, **FAST))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, in_progress.name, other_cohort.name])


def test_refuses_to_overwrite_and_reuses_same_spec(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    spec = PhantomSpec(n_subjects=1, seed=0, **FAST)
    with pytest.raises(FileExistsError):
        P.generate_cohort(other, spec)
    assert (other / "notes.txt").read_text() == "mine"
    out = P.generate_cohort(tmp_path / "ph", spec)
    stamp = (out / "phantom.json").stat().st_mtime_ns
    assert P.generate_cohort(out, spec) == out and (out / "phantom.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError):
        P.generate_cohort(out, PhantomSpec(n_subjects=1, seed=1, **FAST))


def test_a_cohort_made_by_other_generator_code_is_not_reused(tmp_path, monkeypatch):
    """Changing the generator's code without raising GENERATOR_VERSION must not leave the old
    cohort in use: phantom.json records a hash of the generator's source."""
    from lib.data.cohort import ensure_phantom

    spec = PhantomSpec(n_subjects=1, seed=0, **FAST)
    out = P.generate_cohort(tmp_path / "ph", spec)
    assert P.is_same_phantom(out, spec)
    assert json.loads((out / "phantom.json").read_text())["generator_source_sha256"] == P.generator_source_sha256()
    monkeypatch.setattr(P, "generator_source_sha256", lambda: "0" * 64)
    assert not P.is_same_phantom(out, spec)
    ensure_phantom(out, spec)  # regenerated, now stamped with the (patched) source hash
    assert json.loads((out / "phantom.json").read_text())["generator_source_sha256"] == "0" * 64


def test_runs_needing_the_same_phantom_at_once_generate_it_once(tmp_path, monkeypatch):
    """make book runs ET and TC side by side, and both need the tumour-free twin: the first
    generates it while the second waits, then finds it made (before, each replaced the folder)."""
    import threading
    import time

    from lib.data.cohort import ensure_phantom

    spec = PhantomSpec(n_subjects=1, seed=0, **FAST)
    real, calls = P.generate_cohort, []

    def slow_generate(*args, **kwargs):
        calls.append(threading.current_thread().name)
        time.sleep(0.5)  # long enough for the other run to arrive while this one works
        return real(*args, **kwargs)

    monkeypatch.setattr(P, "generate_cohort", slow_generate)
    out = tmp_path / "ph"
    runs = [threading.Thread(target=ensure_phantom, args=(out, spec), name=f"run{i}") for i in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert len(calls) == 1 and P.is_same_phantom(out, spec)


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["--out", str(out), "--subjects", "2", "--seed", "1", "--resolution", "4",
            "--contrast-gain", "flair=0.8", "t2=1.2", "--noise-scale", "1.5", "--rater", "second"]
    assert P.main(args) == 0
    said = capsys.readouterr().out
    assert "wrote" in said and "2 synthetic subjects" in said and " s" in said
    spec = P.read_phantom_spec(out)
    assert spec.contrast_gain == {"flair": 0.8, "t2": 1.2} and spec.noise_scale == 1.5 and spec.rater == "second"
    assert P.main(args) == 0 and "nothing written" in capsys.readouterr().out
    assert P.main([*args[:5], "2"]) == 2  # same folder, other seed
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1


def test_cli_errors_name_its_options_and_paths_in_one_line(tmp_path, capsys):
    assert P.main(["--out", str(tmp_path / "c"), "--subjects", "0"]) == 2
    assert capsys.readouterr().err == "error: --subjects must be >= 1\n"  # not PhantomSpec's n_subjects
    assert P.main(["--out", str(tmp_path / "c"), "--hgg-fraction", "1.5"]) == 2
    assert capsys.readouterr().err == "error: --hgg-fraction must be within 0..1\n"
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert P.main(["--out", str(a_file / "sub"), "--subjects", "1"]) == 2
    assert capsys.readouterr().err == f"error: --out {a_file / 'sub'}: {a_file}: File exists\n"
    assert P.main(["--out", str(a_file), "--subjects", "1"]) == 2
    assert capsys.readouterr().err == f"error: {a_file}: exists and is not a folder\n"


# --- the measurement itself (known answers; real layouts) -----------------------------------

def test_contrast_report_known_answer(tmp_path):
    # A BraTS 2018-style folder (HGG/<id>/...) with ET as label 3 and exactly known z-scores.
    shape = (10, 10, 10)
    seg = np.zeros(shape, np.uint8)
    seg[2:4, 2:4, 2:4] = 1  # 8 voxels
    seg[5:7, 5:7, 5:7] = 2  # 8
    seg[7, 7, 7:9] = 3  # 2, the BraTS 2017 ET label
    flair = np.zeros(shape, np.float32)
    flair[1:9, 1:9, 1:9] = 100.0
    normal = (flair > 0) & (seg == 0)
    flair[normal] = np.where(np.arange(normal.sum()) % 2 == 0, 90.0, 110.0)  # mean 100, sd 10 (even count)
    assert normal.sum() % 2 == 0
    flair[seg == 1] = 80.0
    flair[seg == 2] = np.tile([120.0, 140.0], 4)
    flair[seg == 3] = 150.0
    folder = tmp_path / "HGG" / "Brats18_X_1"
    folder.mkdir(parents=True)
    for name, arr in (("flair", flair), ("seg", seg)):
        nib.save(nib.Nifti1Image(arr, np.eye(4)), folder / f"Brats18_X_1_{name}.nii.gz")
    df = P.contrast_report(tmp_path)
    row = df.iloc[0]
    assert row.grade == "HGG" and len(df) == 1 and "t1ce_z_et" not in df
    assert row.tumour_fraction == pytest.approx(18 / 512)
    assert row.et_share == pytest.approx(2 / 18) and row.ncr_share == pytest.approx(8 / 18)
    assert row.flair_z_ncr == pytest.approx(-2.0) and row.flair_z_et == pytest.approx(5.0)
    assert row.flair_z_ed == pytest.approx(3.0) and row.flair_sd_ed == pytest.approx(1.0)
    assert row.cnr_flair_et_ed == pytest.approx(2.0)
    summary = P.summarise_contrast(df)
    assert summary.loc["FLAIR z in ED", "mean"] == pytest.approx(3.0)
    assert summary.loc["FLAIR z in ED", "within_label_sd"] == pytest.approx(1.0)
    assert P.contrast_report(tmp_path, grade="LGG").empty


def test_a_phantom_read_as_a_folder_is_still_labelled_synthetic(cohort, make_cohort, tmp_path):
    from lib.data.cohort import prepare_cohort
    from lib.results import data_label, is_synthetic

    root, _ = cohort
    real_like = make_cohort("brats2020")
    for folder, expected in ((root, True), (real_like, False)):
        params = {"data_source": "folder", "data_dir": str(folder), "modalities": ["t1", "t1ce", "t2", "flair"],
                  "label_convention": "auto", "cache_dir": str(tmp_path / "cache")}
        assert is_synthetic(params) is expected
        assert prepare_cohort(params).synthetic is expected
        assert (data_label(params) == "this build, synthetic phantom") is expected
    assert is_synthetic({"data_source": "phantom"})
    assert not is_synthetic({})  # a page without data (the cost page)


@pytest.mark.parametrize("layout, options, n_hgg", [("brats2023", {}, 0), ("brats2021", {}, 0),
                                                     ("brats2020", {"wrapper": "MICCAI_BraTS2020_TrainingData"}, 2),
                                                     ("brats2020", {"suffix": ".nii"}, 2)])
def test_contrast_report_reads_every_layout_and_keeps_its_columns(make_cohort, layout, options, n_hgg):
    # The data chapter measures the user's own folder: every subject of any supported layout is
    # found (2023 names, a wrapper folder, .nii files), and with no HGG subject (BraTS 2021 and
    # 2023 have no grade) the report is empty but still has its columns.
    root = make_cohort(layout, **options)
    assert len(P.contrast_report(root)) == 4
    hgg = P.contrast_report(root, grade="HGG")
    assert len(hgg) == n_hgg and "et_share" in hgg
