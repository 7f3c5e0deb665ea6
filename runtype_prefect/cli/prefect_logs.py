"""Prefect's own log lines go to a file, so the terminal shows the progress and the results.

Prefect reads its logging configuration from ``PREFECT_LOGGING_SETTINGS_PATH`` whenever it
sets logging up (at import, and again in its temporary server): we point it at a copy of
Prefect's own configuration whose terminal handlers write to one file instead. Flow and task
logs still reach the Prefect API and its UI. ``--verbose`` leaves Prefect's configuration alone.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import yaml

LOG_NAME = "runtype-prefect.log"
#: Prefect's handlers that print to the terminal.
_PRINTING_HANDLERS = ("console", "debug")


def prefect_logs_to_file() -> Path:
    """Before Prefect is imported: make every Prefect process started from here log to
    ``$PREFECT_HOME/logs/runtype-prefect.log`` instead of the terminal; return that path.
    Does nothing (but return the path) if Prefect's logging was already configured."""
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = home / "logs" / LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        return path
    default = Path(next(iter(spec.submodule_search_locations))) / "logging" / "logging.yml"
    config = yaml.safe_load(default.read_text())
    for name in _PRINTING_HANDLERS:
        handler = config["handlers"].get(name)
        if handler is not None:
            config["handlers"][name] = {
                "level": handler.get("level", 0),
                "class": "logging.FileHandler",
                "formatter": handler.get("formatter", "standard"),
                "filename": str(path),
                "encoding": "utf-8",
            }
    settings = home / "logs" / "runtype-logging.yml"
    settings.write_text(yaml.safe_dump(config, sort_keys=False))
    os.environ["PREFECT_LOGGING_SETTINGS_PATH"] = str(settings)
    return path
