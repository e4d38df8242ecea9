"""QC checks and work instructions of a revision: their JSON checked, and resolved for one
configuration. Pure, no Django.

A QC check measures one dimension of the made part. Its nominal is either a parameter of
the revision (the configured value: `bore_d` of this order line, plus an optional `offset`
for a feature drawn larger than its parameter) or a fixed number:
``{"label": "Bore", "parameter": "bore_d", "tolerance_minus": 0, "tolerance_plus": 0.2}``
``{"label": "Pin hole", "parameter": "pin_d", "offset": 0.4, "tolerance_minus": 0.2, ...}``
``{"label": "Flange thickness", "nominal": 3, "tolerance_minus": 0.2, "tolerance_plus": 0.2}``
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from catalog.parameters import ParameterSpec, SchemaError

_NUMERIC = ("length", "angle", "integer", "number")
MAX_INSTRUCTIONS = 50
MAX_CHECKS = 50
MAX_TEXT = 500


@dataclass(frozen=True)
class QcCheck:
    label: str
    parameter: str | None  # the nominal is this parameter's configured value...
    nominal: float | None  # ...or this fixed value
    offset: float  # added to the parameter's value
    tolerance_minus: float
    tolerance_plus: float
    unit: str = "mm"


@dataclass(frozen=True)
class QcLine:
    """One check for one configuration, as a traveler prints it."""

    label: str
    nominal: float
    unit: str
    tolerance_minus: float
    tolerance_plus: float

    @property
    def tolerance(self) -> str:
        if self.tolerance_minus == self.tolerance_plus:
            return f"± {_fmt(self.tolerance_plus)}"
        return f"-{_fmt(self.tolerance_minus)} / +{_fmt(self.tolerance_plus)}"

    @property
    def nominal_text(self) -> str:
        return f"{_fmt(self.nominal)} {self.unit}".strip()


def parse_work_instructions(raw: Any) -> tuple[str, ...]:
    """A list of short texts, in the order the shop floor does them."""
    if not isinstance(raw, list | tuple):
        raise SchemaError("work instructions must be a list of texts")
    if len(raw) > MAX_INSTRUCTIONS:
        raise SchemaError(f"at most {MAX_INSTRUCTIONS} work instructions")
    steps = []
    for index, step in enumerate(raw):
        if not isinstance(step, str) or not step.strip():
            raise SchemaError(f"work instruction {index + 1} must be a non-empty text")
        if len(step) > MAX_TEXT:
            raise SchemaError(f"work instruction {index + 1} is over {MAX_TEXT} characters")
        steps.append(step.strip())
    return tuple(steps)


def parse_qc_checks(raw: Any, specs: Sequence[ParameterSpec]) -> tuple[QcCheck, ...]:
    """Check a revision's QC checks against its parameter schema; SchemaError if malformed."""
    if not isinstance(raw, list | tuple):
        raise SchemaError("QC checks must be a list")
    if len(raw) > MAX_CHECKS:
        raise SchemaError(f"at most {MAX_CHECKS} QC checks")
    by_name = {spec.name: spec for spec in specs}
    checks = []
    for index, item in enumerate(raw):
        where = f"QC check {index + 1}"
        if not isinstance(item, Mapping):
            raise SchemaError(f"{where} must be an object")
        unknown = set(item) - {
            "label",
            "parameter",
            "offset",
            "nominal",
            "tolerance_minus",
            "tolerance_plus",
            "unit",
        }
        if unknown:
            raise SchemaError(f"{where} has unknown keys: {', '.join(sorted(map(str, unknown)))}")
        label = item.get("label")
        if not isinstance(label, str) or not label.strip() or len(label) > MAX_TEXT:
            raise SchemaError(f"{where} needs a label")
        parameter, nominal = item.get("parameter"), item.get("nominal")
        if (parameter is None) == (nominal is None):
            raise SchemaError(f"{where} ({label}) needs either a parameter or a nominal value")
        unit = item.get("unit")
        if parameter is not None:
            spec = by_name.get(parameter) if isinstance(parameter, str) else None
            if spec is None:
                raise SchemaError(f"{where} ({label}): '{parameter}' is not a parameter")
            if spec.type not in _NUMERIC:
                raise SchemaError(f"{where} ({label}): '{parameter}' is not a dimension")
            unit = unit if unit is not None else spec.unit
        else:
            nominal = _number(nominal, f"{where} ({label}): nominal")
            if "offset" in item:
                raise SchemaError(f"{where} ({label}): an offset goes with a parameter only")
        offset = _number(item.get("offset", 0), f"{where} ({label}): offset")
        checks.append(
            QcCheck(
                label=label.strip(),
                parameter=parameter,
                nominal=nominal,
                offset=offset,
                tolerance_minus=_tolerance(item, "tolerance_minus", where, label),
                tolerance_plus=_tolerance(item, "tolerance_plus", where, label),
                unit=str(unit if unit is not None else "mm"),
            )
        )
    return tuple(checks)


def qc_lines(checks: Sequence[QcCheck], parameters: Mapping[str, Any]) -> tuple[QcLine, ...]:
    """The checks for one configuration: parameter nominals take its values."""
    lines = []
    for check in checks:
        if check.parameter is not None:
            value = parameters.get(check.parameter)
            if value is None:
                continue
            nominal = float(value) + check.offset
        else:
            nominal = float(check.nominal or 0)
        lines.append(
            QcLine(
                label=check.label,
                nominal=round(nominal, 6),
                unit=check.unit,
                tolerance_minus=check.tolerance_minus,
                tolerance_plus=check.tolerance_plus,
            )
        )
    return tuple(lines)


def _tolerance(item: Mapping[str, Any], key: str, where: str, label: str) -> float:
    value = _number(item.get(key), f"{where} ({label}): {key}")
    if value < 0:
        raise SchemaError(f"{where} ({label}): {key} must be 0 or more (a size, not a sign)")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"{what} must be a number")
    if not math.isfinite(value):
        raise SchemaError(f"{what} must be finite")
    return float(value)


def _fmt(value: float) -> str:
    return f"{value:g}"
