"""The Prefect flows, in one place to import them from.

``from runtype_prefect.flows import nightly, run_record_type``; deployments name them by module
(``runtype_prefect.orchestration.nightly:nightly``, see ``deployments/prefect.yaml``).
"""

from .orchestration.nightly import nightly
from .orchestration.quality import quality_followup
from .orchestration.record_type import run_record_type
from .orchestration.repair import repair_night
from .orchestration.reporting import report_flow
from .rehearsal.backfill import backfill

__all__ = [
    "backfill",
    "nightly",
    "quality_followup",
    "repair_night",
    "report_flow",
    "run_record_type",
]
