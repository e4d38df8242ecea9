"""Any list of a figure's rows as CSV: one column per field of the row's dataclass."""

import csv
import dataclasses
import io
from collections.abc import Sequence
from typing import Any


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"
    return str(value)


def rows_csv(rows: Sequence[Any], row_type: type) -> str:
    """The rows (instances of the dataclass `row_type`) as CSV text with a header line; the
    header alone when there are none."""
    names = [field.name for field in dataclasses.fields(row_type)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_cell(getattr(row, name)) for name in names])
    return out.getvalue()
