"""Orchestration only: the commands' bodies, from store groups to files, on the active dask scheduler.

* :mod:`ftcloud.workflows.ingest`: recipes into a store, transactional and resumable.
* :mod:`ftcloud.workflows.validate`: direct validation, baselines on one common mask, CTC, figures.
* :mod:`ftcloud.workflows.trends`: frozen days, per-pixel trends (one lazy graph), Table 2, figures.
* :mod:`ftcloud.workflows.run`: ``ftcloud run``, every stage, resumable by fingerprints.
* :mod:`ftcloud.workflows.inputs`: opening the product, the store's groups and the twin's truth.
* :mod:`ftcloud.workflows.sizing`: the dry run of an ingest plan (work items, memory per item, store size).

The statistics are :mod:`ftcloud.science`'s; tables and figures :mod:`ftcloud.report`'s.
"""

__all__ = ["ingest", "inputs", "run", "sizing", "trends", "validate"]
