"""CuraEngine (Debian's cura-engine, the slicer behind Ultimaker Cura) as a benchmark column.

Not a production engine: compare.py runs it beside ours and PrusaSlicer's with the same
FdmProfile. CuraEngine's command line reads a machine definition (Debian's `cura` package
ships fdmprinter.def.json in /usr/share/cura/resources/definitions) but takes only each
setting's `default_value` from it: the formulas the Cura application evaluates ("value")
are not run, so every setting derived from another (line widths from the nozzle, infill line
distance from the density, layer counts, speeds from the print speed) is given here
explicitly.

    CuraEngine slice -j fdmprinter.def.json -s key=value ... -e0 -s key=value ... -l part.stl
"""

import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from production.toolpath import gcode
from production.toolpath.paths import SKIRT_GAP_MM
from production.toolpath.profile import FdmProfile

BINARY = "CuraEngine"
DEFINITIONS = Path("/usr/share/cura/resources/definitions")
_VERSION = re.compile(r"Cura_SteamEngine version (\S+)")
_TIME = re.compile(r"^Print time \(s\): (\d+)", re.M)


@dataclass(frozen=True)
class CuraResult:
    layers: int
    filament_mm: float
    filament_g: float
    estimated_time_s: float


def available() -> bool:
    return shutil.which(BINARY) is not None and (DEFINITIONS / "fdmprinter.def.json").exists()


def version() -> str:
    out = subprocess.run([BINARY], capture_output=True, text=True, timeout=30)
    found = _VERSION.search(out.stdout + out.stderr)
    return found.group(1) if found else "unknown"


def settings(profile: FdmProfile) -> tuple[dict[str, object], dict[str, object]]:
    """Global and extruder settings matching `profile` (and PrusaSlicer's config from
    production.toolpath.prusaslicer): same widths, layers, speeds, infill, skirt, retraction."""
    p = profile
    width = p.line_width_mm
    speed = p.print_speed_mm_s
    bed_x, bed_y = p.bed_mm
    density = p.infill_density * 100
    global_settings: dict[str, object] = {
        "machine_width": bed_x,
        "machine_depth": bed_y,
        "machine_height": p.max_height_mm,
        "machine_center_is_zero": "false",
        "center_object": "true",  # centred on the bed, its lowest point at z=0, as ours
        "machine_gcode_flavor": "RepRap (Marlin/Sprinter)",
        "machine_start_gcode": "G28",
        "machine_end_gcode": "M84",
        "material_print_temperature": p.nozzle_temp_c,
        "material_print_temperature_layer_0": p.nozzle_temp_c,
        "material_initial_print_temperature": p.nozzle_temp_c,
        "material_final_print_temperature": p.nozzle_temp_c,
        "material_bed_temperature": p.bed_temp_c,
        "material_bed_temperature_layer_0": p.bed_temp_c,
        "acceleration_enabled": "false",
        "jerk_enabled": "false",
        "layer_height": p.layer_height_mm,
        "layer_height_0": p.first_layer_height_mm,
        "infill_sparse_thickness": p.layer_height_mm,
        "line_width": width,
        "wall_line_width": width,
        "wall_line_width_0": width,
        "wall_line_width_x": width,
        "skin_line_width": width,
        "infill_line_width": width,
        "skirt_brim_line_width": width,
        "initial_layer_line_width_factor": 100,
        "wall_line_count": p.perimeters,
        "top_layers": p.top_layers,
        "bottom_layers": p.bottom_layers,
        "initial_bottom_layers": p.bottom_layers,
        "top_bottom_pattern": "lines",
        "top_bottom_pattern_0": "lines",
        "infill_sparse_density": f"{density:g}",
        "infill_pattern": "lines",  # rectilinear, alternating direction layer by layer
        "infill_line_distance": f"{width * 100 / density:g}" if density > 0 else 0,
        "speed_print": speed,
        "speed_infill": speed,
        "speed_wall": speed,
        "speed_wall_0": speed,
        "speed_wall_x": speed,
        "speed_topbottom": speed,
        "speed_roofing": speed,
        "speed_travel": p.travel_speed_mm_s,
        "speed_layer_0": p.first_layer_speed_mm_s,
        "speed_print_layer_0": p.first_layer_speed_mm_s,
        "speed_travel_layer_0": p.travel_speed_mm_s,
        "skirt_brim_speed": p.first_layer_speed_mm_s,
        "speed_slowdown_layers": 1,
        "cool_min_layer_time": p.min_layer_time_s,
        "cool_min_speed": p.min_print_speed_mm_s,
        "retraction_amount": p.retract_mm,
        "retraction_speed": gcode.RETRACT_SPEED_MM_S,
        "retraction_retract_speed": gcode.RETRACT_SPEED_MM_S,
        "retraction_prime_speed": gcode.RETRACT_SPEED_MM_S,
        "retraction_min_travel": gcode.RETRACT_MIN_TRAVEL_MM,
        "retraction_combing": "all" if p.combing else "off",
        "retraction_hop_enabled": "true" if p.z_hop_mm > 0 else "false",
        "adhesion_type": "brim" if p.brim_width_mm > 0 else "skirt",
        "brim_width": p.brim_width_mm,
        "skirt_line_count": p.skirt_loops,
        "skirt_gap": SKIRT_GAP_MM,
        "support_enable": "false",
    }
    extruder_settings: dict[str, object] = {
        "machine_nozzle_size": p.nozzle_mm,
        "material_diameter": p.filament_mm,
    }
    return global_settings, extruder_settings


def command(stl: Path, out: Path, profile: FdmProfile) -> list[str]:
    global_settings, extruder_settings = settings(profile)
    args = [BINARY, "slice", "-v", "-j", str(DEFINITIONS / "fdmprinter.def.json")]
    for key, value in global_settings.items():
        args += ["-s", f"{key}={value}"]
    args.append("-e0")
    for key, value in extruder_settings.items():
        args += ["-s", f"{key}={value}"]
    return [*args, "-l", str(stl), "-o", str(out)]


def slice_stl(stl: bytes, profile: FdmProfile, *, timeout_s: float) -> CuraResult:
    """Write the STL, run CuraEngine on it, read the layers, filament and time back."""
    with tempfile.TemporaryDirectory(prefix="microfactory-cura-") as tmp:
        work = Path(tmp)
        (work / "part.stl").write_bytes(stl)
        out = work / "part.gcode"
        done = subprocess.run(
            command(work / "part.stl", out, profile),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=work,
        )
        if done.returncode != 0 or not out.exists():
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-8:])
            raise RuntimeError(f"CuraEngine failed ({done.returncode}): {tail}")
        text = out.read_text(encoding="utf-8", errors="replace")
        log = done.stdout + done.stderr
    filament_mm = extruded_mm(text)
    area = math.pi * (profile.filament_mm / 2) ** 2
    found = _TIME.search(log)
    return CuraResult(
        layers=len(re.findall(r"^;LAYER:\d+", text, flags=re.M)),
        filament_mm=filament_mm,
        filament_g=filament_mm * area / 1000 * profile.filament_density_g_cm3,
        # CuraEngine's own estimate (its log; the ;TIME: header of a command-line slice is a
        # placeholder).
        estimated_time_s=float(found.group(1)) if found else float("nan"),
    )


def extruded_mm(text: str) -> float:
    """Filament pushed in absolute-E G-code: E's rises above its high-water mark (a retraction
    and its prime cancel), with G92 resets."""
    total, e, high = 0.0, 0.0, 0.0
    for line in text.splitlines():
        if not line or line[0] != "G":
            continue
        code = line.split(";", 1)[0].split()
        if code[0] == "G92":
            for word in code[1:]:
                if word[0] == "E":
                    e = high = float(word[1:])
        elif code[0] in ("G0", "G1"):
            for word in code[1:]:
                if word[0] == "E":
                    e = float(word[1:])
                    if e > high:
                        total += e - high
                        high = e
    return total
