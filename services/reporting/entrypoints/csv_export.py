"""Controlled figures as CSV that a spreadsheet opens as data, never as formulas.

Rows are flattened as the JSON API shows them: a controlled count (a dict with ``display``)
becomes its displayed text ("fewer than 8") with ``_rate``, ``_lower`` and ``_upper`` columns
beside it when it has them; any other nested dict becomes prefixed columns
(``swemwbs_change_mean``); ``None`` becomes an empty cell. Plain values (``changed_at``,
``held``, ``held_reason``) are plain columns. The columns are the union of every row's, in the
order first seen; a row without a column has an empty cell there.

Formula injection (OWASP, "CSV Injection"): a text cell, header names included, that starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with a single quote, so
Excel, LibreOffice and Google Sheets show it as text instead of evaluating it. A team label
such as ``=cmd|' /C calc'!A0`` comes out as ``'=cmd|' /C calc'!A0``.

Numbers are not text: an ``int`` or ``float`` (a SWEMWBS mean change of ``-4.12``) is written
as the number it is, so a spreadsheet still sums it; a number cannot carry a formula. Only
values that are not numbers are neutralised, so the *string* ``"-1"`` is written ``'-1``.
Booleans are written as ``True``/``False``, as the csv module writes them.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

DANGEROUS_LEADS = ("=", "+", "-", "@", "\t", "\r")
"""The leading characters OWASP lists as starting a formula in a spreadsheet."""


def neutralise(text: str) -> str:
    """``text`` with a leading single quote if a spreadsheet would read it as a formula."""
    return f"'{text}" if text.startswith(DANGEROUS_LEADS) else text


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal):  # bool is an int: True/False, unchanged
        return value
    return neutralise(value if isinstance(value, str) else str(value))


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if "display" in value:
                flat[name] = value["display"]
                for extra in ("rate", "lower", "upper"):
                    if extra in value:
                        flat[f"{name}_{extra}"] = value[extra]
            else:
                flat.update(_flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Controlled rows as CSV: counts as displayed, rates beside them, no cell a formula."""
    flat = [_flatten(row) for row in rows]
    if not flat:
        return ""
    fieldnames = list(dict.fromkeys(name for row in flat for name in row))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([neutralise(name) for name in fieldnames])
    writer.writerows([_cell(row.get(name)) for name in fieldnames] for row in flat)
    return out.getvalue()
