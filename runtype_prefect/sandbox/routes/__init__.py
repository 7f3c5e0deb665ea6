"""The sandbox's routes, one module per area of the Runtype API, plus its own controls."""

from . import admin, batches, flows, pages, records, usage

#: Every router, in the order the app includes them.
ROUTERS = [
    flows.router,
    batches.router,
    records.router,
    usage.router,
    admin.router,
    pages.router,
]

__all__ = ["ROUTERS"]
