"""The printer and material settings one slice is planned for."""

import math
from dataclasses import dataclass

FLAVOURS = ("marlin", "klipper")
SEAMS = ("nearest", "aligned", "corner")


@dataclass(frozen=True)
class FdmProfile:
    machine_model: str  # e.g. "Prusa MK4"; written into the G-code header comments
    bed_mm: tuple[float, float]  # x, y size of the bed
    max_height_mm: float
    flavour: str = "marlin"  # "marlin" | "klipper"
    nozzle_mm: float = 0.4
    filament_mm: float = 1.75
    layer_height_mm: float = 0.2
    first_layer_height_mm: float = 0.25
    perimeters: int = 2
    top_layers: int = 3  # solid layers under every top surface
    bottom_layers: int = 3  # solid layers over every bottom surface (the bed included)
    infill_density: float = 0.2  # 0..1, rectilinear lines alternating 45/-45 degrees
    print_speed_mm_s: float = 50
    first_layer_speed_mm_s: float = 20
    travel_speed_mm_s: float = 150
    acceleration_mm_s2: float = 1000
    jerk_mm_s: float = 10  # X/Y "jerk" of Marlin's planner: the time estimate's corner speeds
    retract_mm: float = 0.8
    z_hop_mm: float = 0  # lift the nozzle by this much for every travel that retracts
    nozzle_temp_c: int = 210
    bed_temp_c: int = 60
    filament_density_g_cm3: float = 1.24
    skirt_loops: int = 1
    brim_width_mm: float = 0  # loops around the part's first layer, touching it; 0: none
    # Thin spaces between perimeters, or walls too thin for the next loop, get one line of
    # the width they need.
    gap_fill: bool = True
    # Infill regions smaller than this print solid: a sparse grid there only holds nothing
    # up (PrusaSlicer's `solid_infill_below_area`, same default).
    solid_infill_below_area_mm2: float = 70
    # A layer printed faster than this has no time to cool: it is slowed down (to no less than
    # min_print_speed_mm_s), then the nozzle waits off the part for the rest (PrusaSlicer's
    # `slowdown_below_layer_time` 15 s and `min_print_speed` 15 mm/s for PLA; 0: no minimum).
    min_layer_time_s: float = 10
    min_print_speed_mm_s: float = 10
    # Where each loop starts (the seam): "nearest" to the nozzle (least travel), "aligned" at
    # the rear-most point (one straight seam up the back), "corner" in the sharpest concave
    # corner (hidden), else the rear-most.
    seam: str = "nearest"
    # Travel that would cross the perimeters is routed inside the innermost one instead
    # (combing), unless that route is longer than comb_max_detour times the straight line;
    # a travel crossing perimeters anyway retracts (when longer than 2 mm), and a combed one
    # retracts only when longer than retract_combed_above_mm (0: never). PrusaSlicer's
    # `avoid_crossing_perimeters` and `avoid_crossing_perimeters_max_detour`, Cura's
    # "combing" and "max comb distance with no retract".
    combing: bool = True
    comb_max_detour: float = 3.0
    retract_combed_above_mm: float = 30.0

    def __post_init__(self) -> None:
        # A bad profile is our configuration error, not an unmakeable part: crash loudly.
        if self.flavour not in FLAVOURS:
            raise ValueError(f"unknown G-code flavour {self.flavour!r}; expected one of {FLAVOURS}")
        positive = {
            "bed x": self.bed_mm[0],
            "bed y": self.bed_mm[1],
            "max_height_mm": self.max_height_mm,
            "nozzle_mm": self.nozzle_mm,
            "filament_mm": self.filament_mm,
            "layer_height_mm": self.layer_height_mm,
            "first_layer_height_mm": self.first_layer_height_mm,
            "print_speed_mm_s": self.print_speed_mm_s,
            "first_layer_speed_mm_s": self.first_layer_speed_mm_s,
            "travel_speed_mm_s": self.travel_speed_mm_s,
            "acceleration_mm_s2": self.acceleration_mm_s2,
            "filament_density_g_cm3": self.filament_density_g_cm3,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, not {value}")
        if self.seam not in SEAMS:
            raise ValueError(f"unknown seam {self.seam!r}; expected one of {SEAMS}")
        if not 0 <= self.infill_density <= 1:
            raise ValueError(f"infill_density must be within 0..1, not {self.infill_density}")
        if min(self.perimeters, self.top_layers, self.bottom_layers, self.skirt_loops) < 0:
            raise ValueError(
                "perimeters, top_layers, bottom_layers and skirt_loops cannot be negative"
            )
        if not self.comb_max_detour >= 1:
            raise ValueError(f"comb_max_detour must be at least 1, not {self.comb_max_detour}")
        non_negative = {
            "retract_combed_above_mm": self.retract_combed_above_mm,
            "retract_mm": self.retract_mm,
            "z_hop_mm": self.z_hop_mm,
            "brim_width_mm": self.brim_width_mm,
            "solid_infill_below_area_mm2": self.solid_infill_below_area_mm2,
            "jerk_mm_s": self.jerk_mm_s,
            "min_layer_time_s": self.min_layer_time_s,
            "min_print_speed_mm_s": self.min_print_speed_mm_s,
        }
        for name, value in non_negative.items():
            if value < 0:
                raise ValueError(f"{name} cannot be negative, not {value}")

    @property
    def line_width_mm(self) -> float:
        """Extrusion width of every line: a little wider than the nozzle, as slicers default."""
        return self.nozzle_mm * 1.125

    def spacing_mm(self, height_mm: float) -> float:
        """Centre-to-centre distance of two touching lines of `height_mm`.

        A line is a rectangle with round sides (PrusaSlicer's Flow model): `line_width_mm`
        wide at its widest, but neighbours overlap where the round sides meet.
        """
        return self.line_width_mm - height_mm * (1 - math.pi / 4)

    @property
    def bridge_spacing_mm(self) -> float:
        """Bridge threads lie a little apart, so they do not merge while they cool."""
        return self.nozzle_mm + 0.05

    @property
    def bridge_cross_section_mm2(self) -> float:
        """A bridge thread is round, as wide as the nozzle (PrusaSlicer's bridge flow)."""
        return math.pi / 4 * self.nozzle_mm**2

    def cross_section_mm2(self, height_mm: float, width_mm: float | None = None) -> float:
        """Area of one line's cross-section: what one mm of it deposits, in mm³."""
        width = self.line_width_mm if width_mm is None else width_mm
        return height_mm * (width - height_mm * (1 - math.pi / 4))
