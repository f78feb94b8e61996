"""What people read: Markdown tables, figures (Agg, no pyplot), the model report and the run's HTML report.

* :mod:`ftcloud.report.tables`: the one Markdown table renderer and the validation/CTC/Table 2 texts.
* :mod:`ftcloud.report.figures`: FT maps, accuracy bars, CTC maps, regional series, slope maps.
* :mod:`ftcloud.report.model`: the training report of a model card.
* :mod:`ftcloud.report.html`: ``OUT/report``: one self-contained HTML page, Markdown and CSV.
"""

__all__ = ["figures", "html", "model", "tables"]
