"""Layer renders of the builtin slicer's lines, and their coverage of each layer's section.

Draws one layer of a part's G-code as the lines it lays (each path as wide as its `;WIDTH:`,
coloured by its `;TYPE:`), the section's outline, what the lines leave uncovered (red) and
what two paths both cover at their spacing width (black). Prints each rendered layer's
coverage and double coverage, measured as tests/production/toolpath/test_thin_walls.py does,
against the layer's section as the slicer cut it.

    .venv/bin/python benchmarks/toolpath/layer_renders.py --out docs/images
    .venv/bin/python benchmarks/toolpath/layer_renders.py --out /tmp/before --suffix -before

writes clip-arm, tube, cable-clip and pulley layers (PNG, ~40 KB each). The seed parts (cable
clip, GT2 pulley) are built in the geometry sandbox at their defaults, as compare.py does.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402
import trimesh  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
from shapely.geometry.base import BaseGeometry  # noqa: E402

from production.toolpath import FdmProfile, plan_toolpath, slicing  # noqa: E402
from tests.production.toolpath import wall_coverage  # noqa: E402
from tests.production.toolpath.gcode_reader import extrusions, make_profile, stl_of  # noqa: E402
from tests.production.toolpath.test_thin_walls import wall_mesh  # noqa: E402

COLOURS = {
    "External perimeter": "#f28e2b",
    "Perimeter": "#edc948",
    "Gap fill": "#59a14f",
    "Solid infill": "#b07aa1",
    "Internal infill": "#9c755f",
    "Bridge infill": "#4e79a7",
}


def _patch(geometry: BaseGeometry, **style: object) -> PathPatch | None:
    """A shapely (multi)polygon as one matplotlib patch, holes included."""
    vertices, codes = [], []
    for polygon in shapely.get_parts(geometry):
        if polygon.geom_type != "Polygon" or polygon.is_empty:
            continue
        for ring in (polygon.exterior, *polygon.interiors):
            coords = list(ring.coords)
            vertices += coords
            codes += [MplPath.MOVETO] + [MplPath.LINETO] * (len(coords) - 2) + [MplPath.CLOSEPOLY]
    if not vertices:
        return None
    return PathPatch(MplPath(vertices, codes), **style)


def render(stl: bytes, profile: FdmProfile, layer: int, title: str, out: Path) -> str:
    toolpath = plan_toolpath(stl, profile)
    mesh = slicing.place_on_bed(slicing.load_mesh(stl), profile)
    section = slicing.slice_layers(mesh, profile)[layer].region
    height = profile.first_layer_height_mm if layer == 0 else profile.layer_height_mm
    moves = [m for m in extrusions(toolpath.gcode) if m.layer == layer and m.kind != "Skirt/Brim"]
    runs = wall_coverage._paths(moves)
    fill = wall_coverage.layer_fills(
        toolpath.gcode,
        section,
        first_layer_mm=profile.first_layer_height_mm,
        layer_mm=profile.layer_height_mm,
    )[layer]
    figure, axes = plt.subplots(figsize=(5, 4.2), dpi=90)
    full = []
    for run in runs:
        band = wall_coverage._band(run, height, wall_coverage.BULGE * height)
        full.append(band)
        patch = _patch(band, facecolor=COLOURS.get(run[0].kind, "grey"), alpha=0.55, lw=0.2)
        if patch is not None:
            axes.add_patch(patch)
    flat = [wall_coverage._band(run, height, 0.0) for run in runs]
    twice = [
        flat[i].intersection(flat[j])
        for i in range(len(flat))
        for j in range(i + 1, len(flat))
        if flat[i].intersects(flat[j])
    ]
    for geometry, colour in (
        (section.difference(shapely.union_all(full)), "red"),
        (shapely.union_all(twice) if twice else None, "black"),
    ):
        patch = _patch(geometry, facecolor=colour, lw=0) if geometry is not None else None
        if patch is not None:
            axes.add_patch(patch)
    outline = _patch(section, fill=False, edgecolor="#333333", lw=0.6)
    if outline is not None:
        axes.add_patch(outline)
    x0, y0, x1, y1 = section.bounds
    pad = 0.5
    axes.set_xlim(x0 - pad, x1 + pad)
    axes.set_ylim(y0 - pad, y1 + pad)
    axes.set_aspect("equal")
    summary = (
        f"{title}, layer {layer}: covered {100 * fill.coverage:.1f} %, "
        f"twice {100 * fill.twice:.1f} %"
    )
    axes.set_title(summary, fontsize=8)
    axes.tick_params(labelsize=6)
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return summary


def _on_its_side(stl: bytes) -> bytes:
    """The part turned 90° about X: the cable clip's C-shaped arms lie in the layers."""
    mesh = slicing.load_mesh(stl)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0)))
    return stl_of(mesh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--suffix", default="")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    profile = make_profile()
    from benchmarks.toolpath.compare import meshes

    seeds = meshes({"cable_clip", "gt2_pulley"})
    jobs = [
        (stl_of(wall_mesh("clip", 1.2)), 5, "clip arm 1.2 mm", "clip-arm-1.2mm"),
        (stl_of(wall_mesh("tube", 1.5)), 5, "tube, 1.5 mm wall", "tube-1.5mm"),
        (_on_its_side(seeds["cable_clip"]), 12, "cable clip (seed), on its side", "cable-clip"),
        (seeds["gt2_pulley"], 0, "GT2 pulley (seed), first layer", "pulley-layer0"),
        (seeds["gt2_pulley"], 20, "GT2 pulley (seed)", "pulley-layer20"),
    ]
    for stl, layer, title, name in jobs:
        print(render(stl, profile, layer, title, args.out / f"{name}{args.suffix}.png"))


if __name__ == "__main__":
    main()
