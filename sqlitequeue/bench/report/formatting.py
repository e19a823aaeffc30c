"""Numbers and tables as a reader sees them: rounded, with "-" for a missing value.

One formatter for the report page, the terminal summary and the notebooks, so a figure
reads the same everywhere and no raw value (``6930.833333``, ``NaN``, ``[2.57, ...]``)
leaks out.
"""

from __future__ import annotations

import html
import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def format_number(value: Any) -> str:
    """A number rounded for reading: "6,931", "12.3", "2.57"; "-" when missing or NaN.

    Text is returned as it is.
    """
    try:
        value = float(value)
    except (TypeError, ValueError):  # None, pandas.NA, text
        return "-" if value is None or str(value) == "<NA>" else str(value)
    if math.isnan(value):
        return "-"
    if value.is_integer() and abs(value) < 1e15:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_range(low: Any, high: Any) -> str:
    """ "2,401-6,931" (or one number when both round alike); "-" when either is missing."""
    a, b = format_number(low), format_number(high)
    if "-" in (a, b):
        return "-"
    return a if a == b else f"{a}-{b}"


def markdown_table(df: pd.DataFrame) -> str:
    """``df`` as a GitHub Markdown table: numbers rounded, missing values as "-", text
    as it is."""
    header = "| " + " | ".join(_cell(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = [
        "| " + " | ".join(_cell(_shown(v)) for v in row) + " |"
        for row in df.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def _shown(value: Any) -> str:
    """Text as it is (e.g. a price already written "467.27"), yes/no for a flag, else a
    rounded number."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format_number(value)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def inline_html(text: str) -> str:
    """``text`` escaped for HTML, with each `backticked` span shown as ``<code>``."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
