"""`settings_flow`: Prefect's ``@flow`` for the flows that take grouped settings, accepting the
flat parameter names a deployment written before the grouping still passes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from prefect import Flow

from ..engine.settings import upgrade_parameters

_log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class SettingsFlow(Flow[P, R]):
    """A `Flow` that moves former flat parameters (``timeout_seconds``) into their settings
    field before Prefect validates them, logging one line per move: a deployment on a server
    keeps working until its parameters are rewritten. Any other unknown name is refused by
    Prefect's validation, naming it."""

    def validate_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Return the validated parameters (`Flow.validate_parameters`) after the moves.

        Raises `ParameterTypeError` (Prefect's) for parameters the flow cannot take."""
        upgraded, moves = upgrade_parameters(parameters, set(self.parameters.properties))
        for move in moves:
            _log.warning("%s: %s; update the deployment's parameters", self.name, move)
        return super().validate_parameters(upgraded)


def settings_flow(**options: Any) -> Callable[[Callable[P, R]], SettingsFlow[P, R]]:
    """Return a decorator making a `SettingsFlow` with Prefect's ``@flow`` options."""

    def decorate(fn: Callable[P, R]) -> SettingsFlow[P, R]:
        return SettingsFlow(fn, **options)

    return decorate
