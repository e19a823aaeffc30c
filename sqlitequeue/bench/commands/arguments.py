"""Argument types shared by the workbench's commands."""

from __future__ import annotations


def name_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: a comma-separated list of names."""
    return [part.strip() for part in text.split(",") if part.strip()]
