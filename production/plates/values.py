"""What an arrangement says: plates of placed copies, and the copies it could not place.

No geometry library here: the web process reads plans too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from microfactory.errors import DomainError


@dataclass(frozen=True)
class Placement:
    """Where one copy of a job's part goes on its plate.

    The part (mesh and footprint, in the coordinates its footprint was taken in) is turned by
    `rotation_deg` about the Z axis through the origin, then moved by (`x_mm`, `y_mm`): bed
    coordinates, origin at the bed's front-left corner.
    """

    job: int
    copy: int
    x_mm: float
    y_mm: float
    rotation_deg: float

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "copy": self.copy,
            "x_mm": self.x_mm,
            "y_mm": self.y_mm,
            "rotation_deg": self.rotation_deg,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Placement:
        return cls(
            job=int(data["job"]),
            copy=int(data["copy"]),
            x_mm=float(data["x_mm"]),
            y_mm=float(data["y_mm"]),
            rotation_deg=float(data["rotation_deg"]),
        )


@dataclass(frozen=True)
class Plate:
    """One bed's worth of copies, in the order they were placed."""

    placements: tuple[Placement, ...]


@dataclass(frozen=True)
class Unplaced:
    """A copy no plate can take, and why: reported, never dropped."""

    job: int
    copy: int
    reason: str


@dataclass(frozen=True)
class Arrangement:
    plates: tuple[Plate, ...]
    unplaced: tuple[Unplaced, ...] = ()

    @property
    def copies_placed(self) -> int:
        return sum(len(plate.placements) for plate in self.plates)

    def to_json(self) -> dict[str, Any]:
        return {
            "plates": [[p.to_json() for p in plate.placements] for plate in self.plates],
            "unplaced": [{"job": u.job, "copy": u.copy, "reason": u.reason} for u in self.unplaced],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Arrangement:
        return cls(
            plates=tuple(
                Plate(tuple(Placement.from_json(p) for p in plate))
                for plate in data.get("plates", ())
            ),
            unplaced=tuple(
                Unplaced(job=int(u["job"]), copy=int(u["copy"]), reason=str(u["reason"]))
                for u in data.get("unplaced", ())
            ),
        )


class TooManyPlates(DomainError):
    """The copies need more plates than one plan may hold (a setting): refused, with the count."""

    def __init__(self, *, copies: int, needed: int, allowed: int) -> None:
        self.copies, self.needed, self.allowed = copies, needed, allowed
        super().__init__(
            f"{copies} copies need {needed} plates; one plan may hold at most {allowed}"
        )


# --- keep-out zones: where a machine's bed takes no part (Machine.keep_out_zones) ------------

MAX_KEEP_OUT_ZONES = 20  # a bed with more zones than this is better described as smaller


@dataclass(frozen=True)
class KeepOutZone:
    """A rectangle of the bed no copy may cover (clips, a purge area, a damaged patch), in bed
    millimetres with the origin at the bed's front-left corner, as the slicer's coordinates.
    Copies also keep the bed's margin from it (arrange.Bed)."""

    x_mm: float
    y_mm: float
    width_mm: float
    depth_mm: float
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "x_mm": self.x_mm,
            "y_mm": self.y_mm,
            "width_mm": self.width_mm,
            "depth_mm": self.depth_mm,
        }
        if self.note:
            found["note"] = self.note
        return found


KEEP_OUT_EXAMPLE = '[{"x_mm": 0, "y_mm": 190, "width_mm": 30, "depth_mm": 20, "note": "clip"}]'
_KEEP_OUT_KEYS = ("x_mm", "y_mm", "width_mm", "depth_mm")


def keep_out_zones_from_json(
    value: object, *, bed_mm: tuple[float, float] | None = None
) -> tuple[KeepOutZone, ...]:
    """The zones a Machine's `keep_out_zones` JSON lists, checked: a list of objects with
    x_mm, y_mm, width_mm, depth_mm (numbers; sizes above 0) and an optional note, each inside
    the bed when its size is given. ValueError naming the zone and what is wrong otherwise."""
    if not isinstance(value, list):
        raise ValueError(f"give a list of rectangles, e.g. {KEEP_OUT_EXAMPLE}")
    if len(value) > MAX_KEEP_OUT_ZONES:
        raise ValueError(f"at most {MAX_KEEP_OUT_ZONES} keep-out zones, not {len(value)}")
    zones = []
    for number, item in enumerate(value, start=1):
        name = f"zone {number}"
        if not isinstance(item, dict):
            raise ValueError(f"{name} is not an object like {KEEP_OUT_EXAMPLE[1:-1]}")
        unknown = sorted(set(item) - {*_KEEP_OUT_KEYS, "note"})
        missing = [key for key in _KEEP_OUT_KEYS if key not in item]
        if unknown or missing:
            said = "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"unknown {', '.join(unknown)}" if unknown else "",
                )
                if part
            )
            raise ValueError(f"{name}: {said} (it takes {', '.join(_KEEP_OUT_KEYS)} and a note)")
        numbers = []
        for key in _KEEP_OUT_KEYS:
            number_value = item[key]
            if isinstance(number_value, bool) or not isinstance(number_value, int | float):
                raise ValueError(f"{name}: {key} must be a number of mm, not {number_value!r}")
            if not math.isfinite(number_value):
                raise ValueError(f"{name}: {key} must be a finite number, not {number_value!r}")
            numbers.append(float(number_value))
        x, y, width, depth = numbers
        if width < 0 or depth < 0:
            raise ValueError(f"{name}: its size cannot be negative ({width:g} x {depth:g} mm)")
        if width == 0 or depth == 0:
            raise ValueError(f"{name}: a zone of {width:g} x {depth:g} mm covers nothing")
        note = item.get("note", "")
        if not isinstance(note, str) or len(note) > 100:
            raise ValueError(f"{name}: the note must be text of at most 100 characters")
        if bed_mm is not None:
            bed_x, bed_y = bed_mm
            if x < 0 or y < 0 or x + width > bed_x + 1e-9 or y + depth > bed_y + 1e-9:
                raise ValueError(
                    f"{name} ({x:g}, {y:g}) to ({x + width:g}, {y + depth:g}) mm is not inside "
                    f"the {bed_x:g} x {bed_y:g} mm bed"
                )
        zones.append(KeepOutZone(x, y, width, depth, note))
    return tuple(zones)
