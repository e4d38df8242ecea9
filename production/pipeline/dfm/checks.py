"""The vocabulary of a DFM report: one Check per measurement, and the time budget."""

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

PASS, WARN, FAIL = "pass", "warn", "fail"
_RANK = {PASS: 0, WARN: 1, FAIL: 2}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass, warn or fail
    value: str  # what was measured, with its unit
    limit: str  # what it was measured against
    message: str  # one plain sentence for the requester: what is wrong and what to change
    machine: str = ""  # the machine it was measured for; "" when it holds for every machine


# What each check is called where people read it (the part page, the order's report): the
# ids above stay the report's keys (JSON, tests, webhooks), never a sentence's subject.
TITLES = {
    "readable": "File can be read",
    "file_size": "File size",
    "coordinates": "Coordinates",
    "triangles": "Triangle count",
    "vertices": "Vertex count",
    "merged_vertices": "Stray vertices",
    "degenerate_faces": "Faces with no area",
    "duplicate_faces": "Repeated faces",
    "non_manifold_edges": "Edges shared by more than two faces",
    "winding": "Face orientation",
    "watertight": "Closed surface",
    "normals": "Outside faces point outwards",
    "self_intersections": "Faces crossing each other",
    "bodies": "Solid bodies",
    "volume": "Volume",
    "build_volume": "Fits the machine",
    "min_wall": "Thinnest wall",
    "small_features": "Smallest features",
    "crowding": "Features too close together",
    "overhang": "Overhangs needing support",
    "first_layer": "Contact with the bed",
    "tipping": "Stability while printing",
    "orientation": "Print orientation",
    "two_and_a_half_d": "Millable from one side",
    "flat_plate": "Flat plate for cutting",
    "plate_stock": "Plate in stock",
    "sheet_thickness": "Sheet in stock",
    "inside_corners": "Inside corners the cutter reaches",
    "min_feature": "Narrowest slot or hole",
    "min_web": "Narrowest web between cuts",
    "pocket_depth": "Pocket depth for its width",
    "thin_walls": "Thin walls that chatter",
    "fixturing": "Holding the part",
    "time_budget": "Time to check",
}


def title(name: str) -> str:
    """A check's title for people: "min_wall" -> "Thinnest wall"; an unknown id reads as
    words ("new_check" -> "New check")."""
    return TITLES.get(name) or name.replace("_", " ").capitalize()


def worst(statuses: Iterable[str]) -> str:
    """fail if anything failed, else warn if anything warned, else pass."""
    return max(statuses, key=_RANK.__getitem__, default=PASS)


class Refused(Exception):
    """A check failed so badly that nothing after it can be measured (unreadable, too big)."""

    def __init__(self, check: Check) -> None:
        super().__init__(check.message)
        self.check = check


class Budget:
    """Wall-clock time a validation may take: the guard against meshes that would hang us.

    Every stage has a bounded cost (triangle limit, fixed sample counts), so this only
    trips on a very slow host or a pathological mesh; when it does, validation stops with a
    failed check instead of running on.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._started = clock()

    def elapsed(self) -> float:
        return self._clock() - self._started

    def check(self, stage: str) -> None:
        """Raise Refused when the budget is spent, naming the stage that was about to start."""
        elapsed = self.elapsed()
        if elapsed > self.seconds:
            raise Refused(
                Check(
                    "time_budget",
                    FAIL,
                    f"{elapsed:.1f} s before {stage}",
                    f"{self.seconds:g} s",
                    f"the mesh is too complex to check within {self.seconds:g} s: "
                    "simplify it (fewer triangles) and try again",
                )
            )
