"""plural_kit — a Jupyter-first toolkit for pluralistic alignment.

Subpackages: :mod:`plural_kit.data` (preference schema, generators, loaders),
:mod:`plural_kit.models`, :mod:`plural_kit.engine` and :mod:`plural_kit.embed` (offline models,
one batched forward engine, cached embeddings), :mod:`plural_kit.reward` (Bradley–Terry and
pluralistic reward models), :mod:`plural_kit.metrics`, :mod:`plural_kit.audit` (cultural-bias
audits), :mod:`plural_kit.probes` (misalignment probes) and :mod:`plural_kit.report`.
Importing the package touches no network and loads no model.
"""
__version__ = "0.1.0"
