"""Datasets: the real CDNOW and donations data, and the simulated demo CRM.

``load_*`` functions return canonical tables (see :mod:`crmstats.schema`);
:func:`simulate_crm` returns a :class:`~crmstats.CRMData` with known ground truth.
"""

from crmstats.datasets.real import load_cdnow, load_donations

__all__ = ["load_cdnow", "load_donations", "simulate_crm"]


def __getattr__(name):
    # the simulator is imported on first use so that `import crmstats` stays light
    if name == "simulate_crm":
        from crmstats.datasets.simulate import simulate_crm

        return simulate_crm
    raise AttributeError(f"module 'crmstats.datasets' has no attribute {name!r}")
