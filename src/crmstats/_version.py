"""The package's version, in a module of its own so that low layers can read it.

``crmstats.__version__`` re-exports it; :mod:`crmstats.estimator` writes it into
model files without importing the package's top level (which imports every
domain and would put the estimator base in an import ring with them).
"""

__version__ = "0.1.0"
