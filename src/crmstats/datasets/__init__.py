"""Datasets: the real CDNOW and donations data, and the simulated demo CRM.

``load_*`` functions return canonical tables (see :mod:`crmstats.schema`);
:func:`simulate_crm` returns a :class:`~crmstats.CRMData` with known ground truth.
"""

from typing import TYPE_CHECKING

from crmstats._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy exports (crmstats._lazy reads this block)
    from crmstats.datasets.media import media_lift_tests, simulate_media
    from crmstats.datasets.real import load_cdnow, load_donations
    from crmstats.datasets.simulate import simulate_crm

__all__ = ["load_cdnow", "load_donations", "media_lift_tests", "simulate_crm", "simulate_media"]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
