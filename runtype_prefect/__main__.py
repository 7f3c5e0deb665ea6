"""``python -m runtype_prefect``: the same command line as ``runtype-prefect``."""

from .cli import app

app()
