"""glioma-companion: the shared library behind the book.

Modules (one concept each):
  data/      BraTS layouts, validation, preprocessing, caching, splits, the phantom cohort
  models/    2D U-Net (Fig. 3A, study A) and the neural ODE segmenter (Eq. 1-4, study A)
  explain/   image flows, BCF and ACC (Eq. 5-7, study A), diagnostics, occlusion, attribution
  metrics    Dice, accuracy, sensitivity, specificity, HD95
  stats      Wilcoxon, rank-sum, Kruskal-Wallis, Dunn
  params     parameter files and their schemas
  runner     jupytext -> papermill -> results/<study>/<name>/
  results    atomic writers used inside notebooks (tables, figures, summary)
  plots      figures shared by the chapters
"""

__version__ = "0.1.0"
