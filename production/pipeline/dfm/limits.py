"""What a validation is measured against: the machines, and the limits we enforce."""

from dataclasses import dataclass

FDM, CNC_MILL, LASER = "fdm", "cnc_mill", "laser"


@dataclass(frozen=True)
class MachineLimits:
    """One machine as validation sees it.

    build_volume_mm is the printer's build volume (FDM), the largest stock the mill takes
    (CNC: x, y, and z the stock height), or the laser's bed with z the thickest sheet it cuts.
    """

    key: str  # the machine's slug
    process: str = FDM
    build_volume_mm: tuple[float, float, float] = (250.0, 210.0, 220.0)
    nozzle_mm: float = 0.4  # FDM only
    name: str = ""  # for messages; the key when empty
    # CNC and laser (issue #16): None takes the shop's default from ValidationLimits (settings
    # VALIDATION_CNC_* / VALIDATION_LASER_*). The smallest flat end mill the mill holds, the
    # laser's kerf, and the plate or sheet thicknesses of the material in stock (the
    # material's, not the machine's: set per validation; None when no material is known).
    smallest_end_mill_mm: float | None = None
    kerf_mm: float | None = None
    sheet_thicknesses_mm: tuple[float, ...] | None = None

    @property
    def title(self) -> str:
        return self.name or self.key


# Profiles for `validate_mesh --process X` when no machine of that process is configured.
DEFAULT_MACHINES = {
    FDM: MachineLimits("default-fdm", FDM, (250.0, 210.0, 220.0), 0.4, "a typical FDM printer"),
    CNC_MILL: MachineLimits("default-cnc", CNC_MILL, (300.0, 200.0, 100.0), 0.0, "a typical mill"),
    LASER: MachineLimits("default-laser", LASER, (600.0, 400.0, 10.0), 0.0, "a typical laser"),
}


@dataclass(frozen=True)
class ValidationLimits:
    """Every limit validation enforces; settings VALIDATION_* set them in production."""

    max_file_bytes: int = 100_000_000
    max_triangles: int = 1_000_000
    max_vertices: int = 1_000_000
    time_budget_s: float = 60.0
    overhang_deg: float = 45.0  # from vertical: steeper faces need support
    bridge_mm: float = 15.0  # overhangs resting on both sides and this narrow print as bridges
    min_wall_factor: float = 2.0  # a sound wall has this many nozzle widths: warn below
    min_wall_fail_factor: float = 1.0  # thinner than this many nozzle widths cannot print: fail
    min_contact_mm2: float = 25.0  # first-layer area below which a brim is advised
    max_height_to_base: float = 5.0  # height over the footprint's narrow side: tipping risk
    max_hole_perimeter_mm: float = 10.0  # holes with a shorter rim are filled automatically
    wall_samples: int = 4000  # surface points whose wall thickness is measured
    self_intersection_max_triangles: int = 100_000  # larger meshes skip that test
    # CNC milling and laser cutting (issue #16); machines may set their own end mill and kerf.
    cnc_smallest_end_mill_mm: float = 2.0  # inside corners need its radius, gaps its diameter
    cnc_pocket_ratio_warn: float = 3.0  # pocket depth over its narrowest width: long tools
    cnc_pocket_ratio_fail: float = 6.0  # deeper than this many widths: no end mill reaches
    cnc_wall_ratio_warn: float = 8.0  # wall height over thickness: it chatters above this
    cnc_min_footprint_mm: float = 10.0  # narrower parts are hard to hold: tabs, soft jaws
    cnc_max_slabs: int = 12  # floor heights examined on a curved part (the largest kept)
    laser_kerf_mm: float = 0.2  # a slot narrower than the beam's cut cannot be cut
    laser_min_web_mm: float = 1.0  # material between two cuts narrower than this burns away
    laser_min_part_mm: float = 15.0  # narrower parts drop between the bed's slats: tabs
