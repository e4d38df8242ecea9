"""What an arrangement says: plates of placed copies, and the copies it could not place.

No geometry library here: the web process reads plans too.
"""

from __future__ import annotations

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
