"""How ``--help`` reads at any terminal width: docstrings re-flow, flags show no type.

Typer's rich help keeps a docstring's single line breaks, so a command documented at 100
columns prints broken mid-sentence at 80; and it prints ``<bool>`` beside every flag, which
takes no value and costs the option names their column. These command classes fix both for
every command of the app.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import typer.core

if TYPE_CHECKING:
    from typer._click import Context, Parameter

    _Base = typer.core.TyperCommand
else:
    _Base = object


def reflow(text: str) -> str:
    """Return ``text`` (a docstring) with each paragraph on one line; paragraphs (blank-line
    separated) stay apart, so the terminal wraps them at its own width."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _without_flag_types(params: list[Parameter]) -> list[Parameter]:
    for param in params:
        # An empty metavar is what typer's rich help prints in the type column.
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _ReadableHelp(_Base):
    """What `Command` and `Group` add: the help re-flows (`reflow`), flags show no type."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.help:
            self.help = reflow(self.help)

    def get_params(self, ctx: Context) -> list[Parameter]:
        """Return the parameters (the help option included), flags without a type."""
        return _without_flag_types(super().get_params(ctx))


class Command(_ReadableHelp, typer.core.TyperCommand):
    """A command whose help re-flows and whose flags show no type."""


class Group(_ReadableHelp, typer.core.TyperGroup):
    """The app's group, with the same help as its commands."""
