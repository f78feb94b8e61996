"""What people read: result objects, Markdown tables, figures (Agg, no pyplot), the model report, the run's HTML report.

* :mod:`ftcloud.report.results`: what ``validate`` and ``trends`` return (and save, and load back); ``RunResults``.
* :mod:`ftcloud.report.tables`: the one Markdown table renderer and the validation/CTC/Table 2 texts.
* :mod:`ftcloud.report.figures`: FT maps, accuracy bars, CTC maps, regional series, slope maps.
* :mod:`ftcloud.report.model`: the training report of a model card.
* :mod:`ftcloud.report.html`: ``OUT/report``: one self-contained HTML page, Markdown and CSV.
"""

__all__ = ["figures", "html", "model", "results", "tables"]
