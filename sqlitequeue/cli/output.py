"""How the core commands print: aligned tables, JSON, and bytes as text or base64."""

from __future__ import annotations

import base64
import json
from typing import Any


def jsonable_bytes(value: str | bytes | None) -> Any:
    """Return ``value`` JSON-ready: UTF-8 bytes as text, other bytes as ``{"base64": ...}``."""
    if not isinstance(value, bytes):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii")}


def print_json(value: object) -> None:
    """Print ``value`` as indented JSON; bytes anywhere in it as :func:`jsonable_bytes` does."""
    print(json.dumps(value, indent=2, default=_json_default))


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return jsonable_bytes(value)
    raise TypeError(f"cannot print {type(value).__name__} as JSON")


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Print ``header`` and ``rows`` as left-aligned columns two spaces apart."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())


def short(value: str | bytes | None, width: int = 60) -> str:
    """Return ``value`` on one line, at most ``width`` characters (``-`` for None)."""
    if value is None:
        return "-"
    text = value if isinstance(value, str) else value.decode(errors="backslashreplace")
    text = text.replace("\n", "\\n").replace("\t", "\\t")
    return text if len(text) <= width else text[: width - 3] + "..."
