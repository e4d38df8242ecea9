"""The frozen values the pipeline steps pass along (production.pipeline.steps), and their JSON.

No CAD or mesh library here, and no ORM: the web process reads these too (the station reprints
a traveler from a job's stored meta), so this module must stay as light as the values are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalog.parameters import ParameterSpec, Rule
from catalog.qc import QcCheck
from production.routing import ProfileKey

Matrix = tuple[tuple[float, ...], ...]  # 4 x 4, model to print coordinates
IDENTITY: Matrix = (
    (1.0, 0.0, 0.0, 0.0),
    (0.0, 1.0, 0.0, 0.0),
    (0.0, 0.0, 1.0, 0.0),
    (0.0, 0.0, 0.0, 1.0),
)


# Artifact kinds (production.models.Artifact.Kind), as the steps name what they make.
STEP, STL, REPAIRED, SVG, GCODE, TRAVELER = "step", "stl", "repaired", "svg", "gcode", "traveler"
DFM = "dfm"  # a mesh's DFM report against a set of machines, kept for the next job of it
RENDER = "render"  # a program's simulated result (milling, PNG) or cut paths (laser, SVG)


@dataclass(frozen=True)
class Stored:
    """A file kept earlier for the same inputs, with its meta."""

    content: bytes = field(repr=False)
    meta: Mapping[str, Any] = field(default_factory=dict)


# (kind, input key) -> the file stored for those inputs, or None. The worker looks in its
# Artifact table, so a retry or a second job with the same inputs repeats no slow work;
# make_part stores nothing between runs.
Reuse = Callable[[str, str], Stored | None]


def nothing_stored(kind: str, key: str) -> Stored | None:
    return None


def input_key(*parts: object) -> str:
    """sha256 over the JSON of everything that determines an artifact."""
    payload = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class MaterialFacts:
    slug: str
    name: str
    nozzle_temp_c: int
    bed_temp_c: int
    density_g_cm3: float
    # Plate or sheet stock thicknesses in mm (Material.sheet_thicknesses_mm), thinnest first.
    sheet_thicknesses_mm: tuple[float, ...] = ()


@dataclass(frozen=True)
class PartSpec:
    """What to make: a revision (a CadQuery script or a static model) with parameter values, in
    a material; with what its traveler prints about it."""

    family_name: str
    revision_number: int
    revision_checksum: str  # a static model's covers its file's sha256
    kind: str  # "script" | "static" (catalog.geometry.SCRIPT / STATIC)
    process: str  # "fdm", "cnc_mill", ...
    process_label: str  # "FDM 3D printing": for messages
    material: MaterialFacts
    parameters: Mapping[str, Any] = field(default_factory=dict)
    script: str = ""
    model: bytes = field(default=b"", repr=False)  # a static revision's STEP or STL file
    has_step: bool = True  # False for a part made from an STL mesh: it has no STEP model
    specs: tuple[ParameterSpec, ...] = ()
    rules: tuple[Rule, ...] = ()  # the revision's cross-parameter rules, checked at build
    work_instructions: tuple[str, ...] = ()
    qc_checks: tuple[QcCheck, ...] = ()


@dataclass(frozen=True)
class Paperwork:
    """Who the part is for, as the traveler prints it; make_part fills in placeholders."""

    job_number: str
    station_url: str
    order_reference: str
    organisation: str
    requested_by: str
    due_date: str | None
    priority: str
    quantity: int
    printed_at: datetime
    # The job's passport page (production.passport): what the traveler's QR code opens. Known
    # before the traveler is rendered, since the traveler is itself in the passport.
    passport_url: str = ""
    delivery_site: str = ""  # the name of the site the parts go to ("": none named)


# FdmProfile.seam's choices (production.toolpath.profile.SEAMS; tests/test_contracts.py keeps
# them equal): not imported from there, which would load the slicer into the web process.
SEAMS = ("nearest", "aligned", "corner")


@dataclass(frozen=True)
class SlicerSettings:
    """Overrides of the FDM profile's slicer defaults (None: the default). The worker slices
    with the defaults; `make_part` passes what its options say."""

    layer_height_mm: float | None = None
    first_layer_height_mm: float | None = None
    perimeters: int | None = None
    top_layers: int | None = None
    bottom_layers: int | None = None
    infill_percent: float | None = None
    brim_width_mm: float | None = None
    seam: str | None = None  # "nearest" | "aligned" | "corner" (FdmProfile.seam)
    min_layer_time_s: float | None = None  # 0: no minimum

    def __post_init__(self) -> None:
        if self.seam is not None and self.seam not in SEAMS:
            raise ValueError(f"seam must be one of {', '.join(SEAMS)}, not {self.seam!r}")
        for name in ("layer_height_mm", "first_layer_height_mm"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, not {value}")
        for name in (
            "perimeters",
            "top_layers",
            "bottom_layers",
            "brim_width_mm",
            "min_layer_time_s",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} cannot be negative, not {value}")
        if self.infill_percent is not None and not 0 <= self.infill_percent <= 100:
            raise ValueError(f"infill_percent must be within 0..100, not {self.infill_percent}")


DEFAULT_SLICER = SlicerSettings()


@dataclass(frozen=True)
class GeometryMeta:
    """The built part's measures, as Artifact.meta of its STL, STEP and SVG stores them."""

    bbox_mm: tuple[float, float, float]
    volume_mm3: float
    area_mm2: float
    sandbox: str
    engine: str

    def to_json(self) -> dict[str, Any]:
        return {
            "bbox_mm": [round(v, 3) for v in self.bbox_mm],
            "volume_mm3": round(self.volume_mm3, 3),
            "area_mm2": round(self.area_mm2, 3),
            "sandbox": self.sandbox,
            "engine": self.engine,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GeometryMeta:
        x, y, z = (float(v) for v in data.get("bbox_mm", (0, 0, 0)))
        return cls(
            bbox_mm=(x, y, z),
            volume_mm3=float(data.get("volume_mm3", 0)),
            area_mm2=float(data.get("area_mm2", 0)),
            sandbox=str(data.get("sandbox", "")),
            engine=str(data.get("engine", "")),
        )


@dataclass(frozen=True)
class BuiltPart:
    """The build step's result: the mesh every later step reads, the drawing the traveler
    prints, and the STEP model (empty for an STL mesh, and when loaded back for later steps,
    which never read it)."""

    stl: bytes = field(repr=False)
    svg: str = field(repr=False)
    meta: GeometryMeta
    step: bytes = field(default=b"", repr=False)
    key: str = ""  # the input key its artifacts are stored under
    reused: bool = False  # found stored for the same inputs rather than built now

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.stl).hexdigest()


@dataclass(frozen=True)
class ToolpathMeta:
    """What Job.toolpath_meta holds: the program's numbers, the machine and settings it was
    planned for, how the part was turned and which mesh was sliced, and the G-code check."""

    engine: str
    layers: int
    filament_mm: float
    filament_g: float
    estimated_time_s: int
    layer_height_mm: float
    nozzle_mm: float
    first_layer_height_mm: float = 0.0
    perimeters: int = 0
    top_layers: int = 0
    bottom_layers: int = 0
    infill_percent: float = 0.0
    brim_width_mm: float = 0.0
    planned_for: str = ""  # the machine's slug
    profile_key: ProfileKey | None = None  # machines with this key run the program
    orientation: str = ""
    orientation_matrix: Matrix = IDENTITY
    sliced_sha256: str = ""
    repaired: bool = False  # the mesh sliced is the one validation repaired
    verification: Mapping[str, Any] = field(default_factory=dict)  # GcodeCheck.to_json()
    # "fdm", or "cnc_mill" / "laser" for a MachineProgram, whose facts `program` holds
    # (ProgramFacts.to_json(): dialect, stock, tools, work offset, set-up steps, ...).
    process: str = "fdm"
    program: Mapping[str, Any] = field(default_factory=dict)

    @property
    def program_facts(self) -> ProgramFacts | None:
        """A milling or laser program's facts; None for an FDM toolpath."""
        return ProgramFacts.from_json(self.program) if self.program else None

    def to_json(self) -> dict[str, Any]:
        kept = self._fdm_json()
        if self.process != "fdm":  # FDM jobs' meta stays as it always was
            kept.update(process=self.process, program=dict(self.program))
        return kept

    def _fdm_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "layers": self.layers,
            "filament_mm": self.filament_mm,
            "filament_g": self.filament_g,
            "estimated_time_s": self.estimated_time_s,
            "layer_height_mm": self.layer_height_mm,
            "nozzle_mm": self.nozzle_mm,
            "first_layer_height_mm": self.first_layer_height_mm,
            "perimeters": self.perimeters,
            "top_layers": self.top_layers,
            "bottom_layers": self.bottom_layers,
            "infill_percent": self.infill_percent,
            "brim_width_mm": self.brim_width_mm,
            "planned_for": self.planned_for,
            "profile_key": None if self.profile_key is None else list(self.profile_key),
            "orientation": self.orientation,
            "orientation_matrix": [list(row) for row in self.orientation_matrix],
            "sliced_mesh": {"sha256": self.sliced_sha256, "repaired": self.repaired},
            "verification": dict(self.verification),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToolpathMeta:
        """The stored meta; fields a job planned before they existed get their defaults."""
        sliced = data.get("sliced_mesh") or {}
        profile_key = data.get("profile_key")
        matrix = data.get("orientation_matrix") or IDENTITY
        return cls(
            engine=str(data.get("engine", "")),
            layers=int(data.get("layers", 0)),
            filament_mm=float(data.get("filament_mm", 0)),
            filament_g=float(data.get("filament_g", 0)),
            estimated_time_s=int(data.get("estimated_time_s", 0)),
            layer_height_mm=float(data.get("layer_height_mm", 0)),
            nozzle_mm=float(data.get("nozzle_mm", 0)),
            first_layer_height_mm=float(data.get("first_layer_height_mm", 0)),
            perimeters=int(data.get("perimeters", 0)),
            top_layers=int(data.get("top_layers", 0)),
            bottom_layers=int(data.get("bottom_layers", 0)),
            infill_percent=float(data.get("infill_percent", 0)),
            brim_width_mm=float(data.get("brim_width_mm", 0)),
            planned_for=str(data.get("planned_for", "")),
            profile_key=None if profile_key is None else _profile_key(profile_key),
            orientation=str(data.get("orientation", "")),
            orientation_matrix=tuple(tuple(float(v) for v in row) for row in matrix),
            sliced_sha256=str(sliced.get("sha256", "")),
            repaired=bool(sliced.get("repaired", False)),
            verification=dict(data.get("verification") or {}),
            process=str(data.get("process", "fdm")),
            program=dict(data.get("program") or {}),
        )


@dataclass(frozen=True)
class ProgramTool:
    """A tool a milling or laser program uses, as the traveler lists it (program.ToolUse)."""

    number: int
    name: str
    kind: str
    diameter_mm: float
    operations: tuple[str, ...] = ()
    spindle_rpm: int = 0
    feed_mm_min: float = 0.0
    plunge_mm_min: float = 0.0
    stepdown_mm: float = 0.0
    power_percent: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "name": self.name,
            "kind": self.kind,
            "diameter_mm": self.diameter_mm,
            "operations": list(self.operations),
            "spindle_rpm": self.spindle_rpm,
            "feed_mm_min": self.feed_mm_min,
            "plunge_mm_min": self.plunge_mm_min,
            "stepdown_mm": self.stepdown_mm,
            "power_percent": self.power_percent,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProgramTool:
        return cls(
            number=int(data.get("number", 0)),
            name=str(data.get("name", "")),
            kind=str(data.get("kind", "")),
            diameter_mm=float(data.get("diameter_mm", 0)),
            operations=tuple(str(o) for o in data.get("operations") or ()),
            spindle_rpm=int(data.get("spindle_rpm", 0)),
            feed_mm_min=float(data.get("feed_mm_min", 0)),
            plunge_mm_min=float(data.get("plunge_mm_min", 0)),
            stepdown_mm=float(data.get("stepdown_mm", 0)),
            power_percent=float(data.get("power_percent", 0)),
        )


@dataclass(frozen=True)
class ProgramFacts:
    """What a milling or laser program (production.toolpath.program.MachineProgram) tells the
    shop floor and the quote, kept in the job's toolpath meta: no G-code, no CAD library."""

    dialect: str
    stock_x_mm: float
    stock_y_mm: float
    stock_thickness_mm: float
    stock_material: str
    stock_margin_mm: float = 0.0
    tools: tuple[ProgramTool, ...] = ()
    work_offset: str = "G54"
    setup_steps: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    cut_length_mm: float = 0.0
    rapid_length_mm: float = 0.0
    filename: str = "part.nc"  # the G-code artifact's name: .nc for mills, .gcode for lasers

    @property
    def stock_text(self) -> str:
        """ "120 x 80 x 6 mm aluminium-6061" """
        return (
            f"{self.stock_x_mm:g} × {self.stock_y_mm:g} × {self.stock_thickness_mm:g} mm "
            f"{self.stock_material}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "dialect": self.dialect,
            "stock": {
                "x_mm": self.stock_x_mm,
                "y_mm": self.stock_y_mm,
                "thickness_mm": self.stock_thickness_mm,
                "material": self.stock_material,
                "margin_mm": self.stock_margin_mm,
            },
            "tools": [tool.to_json() for tool in self.tools],
            "work_offset": self.work_offset,
            "setup_steps": list(self.setup_steps),
            "warnings": list(self.warnings),
            "cut_length_mm": self.cut_length_mm,
            "rapid_length_mm": self.rapid_length_mm,
            "filename": self.filename,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProgramFacts:
        stock = data.get("stock") or {}
        return cls(
            dialect=str(data.get("dialect", "")),
            stock_x_mm=float(stock.get("x_mm", 0)),
            stock_y_mm=float(stock.get("y_mm", 0)),
            stock_thickness_mm=float(stock.get("thickness_mm", 0)),
            stock_material=str(stock.get("material", "")),
            stock_margin_mm=float(stock.get("margin_mm", 0)),
            tools=tuple(ProgramTool.from_json(t) for t in data.get("tools") or ()),
            work_offset=str(data.get("work_offset", "G54")),
            setup_steps=tuple(str(s) for s in data.get("setup_steps") or ()),
            warnings=tuple(str(w) for w in data.get("warnings") or ()),
            cut_length_mm=float(data.get("cut_length_mm", 0)),
            rapid_length_mm=float(data.get("rapid_length_mm", 0)),
            filename=str(data.get("filename", "part.nc")),
        )


def _profile_key(raw: Any) -> ProfileKey:
    """(model, nozzle, flavour, build volume, engine) from its JSON list."""
    # Jobs planned before machines had a toolpath engine were sliced by the builtin one.
    model, nozzle, flavour, volume, engine = raw if len(raw) == 5 else [*raw, "builtin"]
    x, y, z = volume
    return (str(model), float(nozzle), str(flavour), (float(x), float(y), float(z)), str(engine))


@dataclass(frozen=True)
class PlannedMachine:
    """The machine (class) a traveler says the job is planned for."""

    name: str
    model: str
    site: str


def dfm_warnings(report: Mapping[str, Any]) -> tuple[str, ...]:
    """The warnings of a stored DFM report (ValidationReport.warnings of its JSON)."""
    return tuple(c["message"] for c in report.get("checks", []) if c["status"] == "warn")
