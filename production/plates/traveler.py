"""A plate's traveler: which copies of which jobs stand where on the bed, and a QC row per copy.

The template only loops; the same PlateTraveler always gives the same HTML.
"""

from dataclasses import dataclass

from django.template.loader import render_to_string

from production.pipeline.traveler import qr_svg, render_pdf, svg_data_uri


@dataclass(frozen=True)
class PlateJob:
    """One job with copies on the plate (its bag label names it)."""

    job_number: str
    part_name: str
    revision_label: str
    material: str
    order_reference: str
    copies: int


@dataclass(frozen=True)
class PlateCopyRow:
    """One copy: its number on the plate map, its job and which of the job's copies it is."""

    number: int
    job_number: str
    copy: int
    copies_of_job: int


@dataclass(frozen=True)
class PlateTraveler:
    plate_reference: str  # e.g. "MAKE-PART plate 1"
    plate_number: int
    plates_in_plan: int
    printed_at: str
    machine: str
    material: str
    engine: str
    layers: int
    filament_g: float
    estimated_time_s: int
    map_svg: str
    jobs: tuple[PlateJob, ...]
    copies: tuple[PlateCopyRow, ...]
    # The station's page of the plate, as a QR code an operator scans to open it ("": none,
    # as make_part's plates, which are in no database).
    qr_url: str = ""

    @property
    def estimated_time(self) -> str:
        hours, minutes = divmod(round(self.estimated_time_s / 60), 60)
        return f"{hours} h {minutes:02d} min"


def plate_traveler_html(t: PlateTraveler) -> str:
    return render_to_string(
        "production/plate_traveler.html",
        {
            "t": t,
            "map_uri": svg_data_uri(t.map_svg.encode()),
            "qr_uri": svg_data_uri(qr_svg(t.qr_url)) if t.qr_url else "",
        },
    )


def render_plate_traveler(t: PlateTraveler) -> bytes:
    """The plate's traveler as PDF bytes."""
    return render_pdf(plate_traveler_html(t))
