"""Stable colours: the same record type or model has the same colour in every chart and report.

A name's colour comes from a hash of the name (not from its position in one chart's data), with
collisions resolved in sorted-name order among the names passed together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

#: Well-separated hues; red and green are left out: they mean failed and succeeded.
PALETTE = [
    "#1f77b4",  # blue
    "#ff7f0e",  # orange
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#7f7f7f",  # grey
    "#bcbd22",  # olive
    "#e7ba52",  # gold
    "#17becf",  # cyan
]

SUCCEEDED = "#2ca02c"
FAILED = "#d62728"


def _slot(name: str) -> int:
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "big") % len(PALETTE)


def color_map(names: Iterable[str]) -> dict[str, str]:
    """Return a colour per name, stable across charts for the same set of names."""
    taken: dict[int, str] = {}
    result: dict[str, str] = {}
    for name in sorted({str(n) for n in names}):
        slot = _slot(name)
        for step in range(len(PALETTE)):
            candidate = (slot + step) % len(PALETTE)
            if candidate not in taken or len(taken) >= len(PALETTE):
                break
        taken[candidate] = name
        result[name] = PALETTE[candidate]
    return result
