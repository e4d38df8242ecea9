"""The printer and material settings one slice is planned for."""

from dataclasses import dataclass

FLAVOURS = ("marlin", "klipper")


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
    top_bottom_layers: int = 3  # solid layers under every top and over every bottom surface
    infill_density: float = 0.2  # 0..1, rectilinear lines alternating 45/-45 degrees
    print_speed_mm_s: float = 50
    first_layer_speed_mm_s: float = 20
    travel_speed_mm_s: float = 150
    acceleration_mm_s2: float = 1000
    retract_mm: float = 0.8
    nozzle_temp_c: int = 210
    bed_temp_c: int = 60
    filament_density_g_cm3: float = 1.24
    skirt_loops: int = 1

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
        if not 0 <= self.infill_density <= 1:
            raise ValueError(f"infill_density must be within 0..1, not {self.infill_density}")
        if min(self.perimeters, self.top_bottom_layers, self.skirt_loops) < 0:
            raise ValueError("perimeters, top_bottom_layers and skirt_loops cannot be negative")
        if self.retract_mm < 0:
            raise ValueError(f"retract_mm cannot be negative, not {self.retract_mm}")

    @property
    def line_width_mm(self) -> float:
        """Extrusion width of every line: a little wider than the nozzle, as slicers default."""
        return self.nozzle_mm * 1.125
