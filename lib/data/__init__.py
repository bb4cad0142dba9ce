"""The data layer: what a cohort is and how it becomes arrays.

  layout       BraTS folder layouts (2018/2019 HGG/LGG, 2020 + name_mapping.csv, 2021, 2023+)
  labels       label conventions and the nested regions ET, TC, WT
  validate     the integrity check run before any work (``python -m lib validate``)
  preprocess   normalisation, cropping, resampling, resizing
  slices       2D axial slice sets, cached by content fingerprint (``cache``)
  splits       patient-level hold-out and k-fold splits
  phantom*     the synthetic phantom cohort (``python -m lib phantom``); ``planted`` its truths
  cohort       the cohort a run uses: generated or located, validated, fingerprinted
"""
