"""The on-disk formats of run, export and sweep folders, and their one owner.

Every file name of a run folder, an ``export/`` folder and a sweep folder is defined in
:mod:`~ssl_domains.layout.names`; the typed schemas and the code that writes and reads them
live beside it:

* :mod:`~ssl_domains.layout.run`: the run folder (:class:`~ssl_domains.layout.run.RunFolder`),
  its resolved config;
* :mod:`~ssl_domains.layout.export`: the shareable ``export/`` folder
  (:class:`~ssl_domains.layout.export.ExportConfig`, the one writer and reader);
* :mod:`~ssl_domains.layout.predictions`: ``predictions/<split>.csv``
  (:class:`~ssl_domains.layout.predictions.Predictions`);
* :mod:`~ssl_domains.layout.sweep`: the sweep folder (cell names, ``results.csv``), the
  headline metric and the number format that tables and progress lines share.

``eval.json``'s schema is :class:`~ssl_domains.engine.assess.Assessment` (computed by the
engine); its file name is here like every other. This package imports neither torch (the
safetensors writer loads it on first use) nor pandas.
"""
