"""The job traveler: the paper that goes with the part through the shop; and its label.

A `Traveler` holds every value already formatted for print (even `printed_at`), so the
template only loops and branches and the same Traveler always gives the same HTML.
WeasyPrint then turns that HTML into a PDF, reading nothing but data: URIs and the
fonts and CSS in `TRAVELER_ASSETS`. A `Label` is the same idea on a 62 mm label-printer roll
(62 x 100 mm), for the bag a finished part goes in.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import barcode
import segno
from django.template.loader import render_to_string
from pypdf import PdfReader, PdfWriter
from weasyprint import HTML, Document
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from catalog.qc import qc_lines
from production.pipeline.values import (
    GeometryMeta,
    Paperwork,
    PartSpec,
    PlannedMachine,
    ProgramFacts,
    ProgramTool,
    ToolpathMeta,
)

TRAVELER_ASSETS = Path(__file__).resolve().parent.parent / "templates/production/traveler_assets"
PAGE_SIZES = ("A4", "Letter")


@dataclass(frozen=True)
class TravelerParameter:
    name: str
    label: str
    value: str
    unit: str


@dataclass(frozen=True)
class TravelerCheck:
    """One row of the QC checklist; the inspector writes the measured value by hand.

    `nominal` and `tolerance` are the printed texts; the numbers beside them (mm) are what the
    station checks a measured value against.
    """

    label: str
    nominal: str
    tolerance: str
    nominal_mm: float = 0.0
    minus_mm: float = 0.0
    plus_mm: float = 0.0


@dataclass(frozen=True)
class TravelerTool:
    """One tool of a milling or laser program, as the set-up table prints it."""

    number: str  # "T1"
    name: str
    diameter: str  # "6 mm"
    spindle: str  # "7958 rpm"; "" for a laser
    feed: str  # "764 mm/min"
    plunge: str  # "229 mm/min"; "" when it does not plunge
    stepdown: str  # "1.5 mm"; ""
    power: str  # "65 %"; "" for a mill
    operations: str  # "pocket, profile"


@dataclass(frozen=True)
class Traveler:
    job_number: str  # "J-000042"
    station_url: str  # the job's station page; in the QR code when there is no passport URL
    order_reference: str
    organisation: str
    requested_by: str
    due_date: str | None
    priority: str
    part_name: str
    revision_label: str
    revision_checksum: str  # full sha256 hex digest
    parameters: tuple[TravelerParameter, ...]
    quantity: int
    material: str
    machine: str  # the machine, or machine class, the job is planned for
    site: str  # where it is made: its machine's site once routed, the planned one before
    drawing_svg: str | None  # CadQuery line drawing; comes from part scripts, so never inlined
    bbox_mm: tuple[float, float, float]
    toolpath_summary: tuple[tuple[str, str], ...]  # (("Layers", "87"), ("Estimated time", ...))
    dfm_warnings: tuple[str, ...]
    work_instructions: tuple[str, ...]
    qc_checks: tuple[TravelerCheck, ...]
    printed_at: str  # "2026-11-25 21:04 UTC"
    page_size: str = "A4"  # one of PAGE_SIZES
    # The job's passport page, in the QR code: scanned at the station it opens the job (as
    # its station URL would), scanned by anyone else it shows the passport.
    passport_url: str = ""

    @property
    def qr_url(self) -> str:
        return self.passport_url or self.station_url

    delivery_site: str = ""  # where the parts go ("": the order names none)
    # The lot and spool the job is made from, when known as it is printed (production.spools
    # .job_lot); empty: a line to write it in by hand.
    lot: str = ""
    # A milled or laser-cut job's set-up (process "cnc_mill" / "laser"): its tools, the stock
    # and where the work offset is, the set-up steps, and the program's rendering (the
    # simulated result of milling as PNG, the cut paths as SVG) as a data: URI.
    process: str = "fdm"
    tools: tuple[TravelerTool, ...] = ()
    stock: str = ""
    work_offset: str = ""
    setup_steps: tuple[str, ...] = ()
    program_warnings: tuple[str, ...] = ()
    render_uri: str = ""
    render_caption: str = ""

    def __post_init__(self) -> None:
        if self.page_size not in PAGE_SIZES:
            raise ValueError(f"page_size must be one of {PAGE_SIZES}, not {self.page_size!r}")


@dataclass(frozen=True)
class Label:
    """What the bag label of a job's parts says: what is in it, for whom, and how to find the
    job again (its QR code opens the job's station page; the barcode is the job number)."""

    job_number: str
    station_url: str
    part_name: str
    revision_label: str
    key_parameters: tuple[TravelerParameter, ...]  # the first few of the part's parameters
    material: str
    quantity: int
    order_reference: str
    team: str  # the ordering team, or the organisation when the order names none
    due_date: str | None
    site: str = ""  # where it is made ("": not routed yet)
    delivery_site: str = ""  # where the parts go ("": the order names none)
    lot: str = ""  # the lot and spool it is made from, when known (production.spools.job_lot)


@dataclass(frozen=True)
class SpoolLabel:
    """The label stuck on a spool: its number (Code 128) and a QR code of its station URL,
    which the station's scan field reads to load it on the machine whose page is open."""

    spool_number: str  # "S-000012"
    station_url: str
    material: str
    colour: str
    lot_number: str
    initial: str  # "1000 g"
    site: str
    received: str  # "2026-11-25"


LABEL_SIZE_MM = (62, 100)  # width x height: a 62 mm roll (Brother DK-22205) cut at 100 mm
SPOOL_LABEL_SIZE_MM = (62, 62)  # the same roll cut square, to fit a spool's side


GENERIC_INSTRUCTIONS = (
    "Check that the loaded material matches this traveler; note the spool number.",
    "Start the job from the station by scanning the QR code.",
    "Remove the part when the bed has cooled; remove skirt and stringing.",
    "Measure the critical dimensions and record QC on the station.",
)
# For a milled or laser-cut revision that names no instructions of its own.
GENERIC_PROGRAM_INSTRUCTIONS = {
    "cnc_mill": (
        "Check that the plate matches this traveler: material and thickness.",
        "Set the machine up as listed under Set-up; start the job from the station by "
        "scanning the QR code.",
        "Cut the holding tabs, file their stubs flush and deburr every edge.",
        "Measure the critical dimensions and record QC on the station.",
    ),
    "laser": (
        "Check that the sheet matches this traveler: material and thickness.",
        "Set the machine up as listed under Set-up; start the job from the station by "
        "scanning the QR code.",
        "Let the fumes clear before opening the lid; check that every contour is cut through.",
        "Measure the critical dimensions and record QC on the station.",
    ),
}
WORK_OFFSET_TEXT = "{offset}: X0 Y0 at the stock's front-left corner, Z0 on its top face"
RENDER_CAPTIONS = {
    "cnc_mill": "Simulated result: the stock after the program (height map; darker is deeper)",
    "laser": "Cut paths as programmed (kerf-compensated, red); lead-ins blue",
}


def traveler_of(
    *,
    part: PartSpec,
    paperwork: Paperwork,
    geometry: GeometryMeta,
    drawing_svg: str | None,
    toolpath: ToolpathMeta,
    dfm_warnings: tuple[str, ...],
    planned: PlannedMachine | None,
    lot: str = "",
    render: bytes = b"",
) -> Traveler:
    """Every value a job's traveler prints, from the pipeline's values: the template has no
    logic, and the same values always give the same Traveler. `render` is a milling or laser
    program's rendering (PNG or SVG bytes), printed with its set-up."""
    specs = {s.name: s for s in part.specs}
    minutes = toolpath.estimated_time_s // 60
    traveler = Traveler(
        job_number=paperwork.job_number,
        station_url=paperwork.station_url,
        order_reference=paperwork.order_reference,
        organisation=paperwork.organisation,
        requested_by=paperwork.requested_by,
        due_date=paperwork.due_date,
        priority=paperwork.priority,
        part_name=part.family_name,
        revision_label=f"rev {part.revision_number}",
        revision_checksum=part.revision_checksum,
        parameters=tuple(
            TravelerParameter(
                name=name,
                label=specs[name].label if name in specs else name,
                value=str(value),
                unit=specs[name].unit if name in specs else "",
            )
            for name, value in sorted(part.parameters.items())  # JSONB reorders keys
        ),
        quantity=paperwork.quantity,
        material=part.material.name,
        machine=f"{planned.model or planned.name} class" if planned else "to be routed",
        site=planned.site if planned else "",
        drawing_svg=drawing_svg,
        bbox_mm=geometry.bbox_mm,
        toolpath_summary=(
            ("Engine", toolpath.engine),
            ("Layers", str(toolpath.layers)),
            ("Layer height", f"{toolpath.layer_height_mm} mm"),
            ("Nozzle", f"{toolpath.nozzle_mm} mm"),
            ("Estimated time", f"{minutes // 60} h {minutes % 60:02d} min"),
            ("Filament", f"{toolpath.filament_g} g / {toolpath.filament_mm / 1000:.2f} m"),
        ),
        dfm_warnings=dfm_warnings,
        work_instructions=part.work_instructions or GENERIC_INSTRUCTIONS,
        qc_checks=_qc_checks(part),
        printed_at=paperwork.printed_at.strftime("%Y-%m-%d %H:%M UTC"),
        passport_url=paperwork.passport_url,
        delivery_site=paperwork.delivery_site,
        lot=lot,
    )
    facts = toolpath.program_facts
    if facts is None:
        return traveler
    return _with_program(traveler, part, toolpath, facts, render)


def _with_program(
    traveler: Traveler, part: PartSpec, toolpath: ToolpathMeta, facts: ProgramFacts, render: bytes
) -> Traveler:
    """A milled or laser-cut job's traveler: its program's figures, tools and set-up."""
    process = toolpath.process
    seconds = toolpath.estimated_time_s
    minutes = seconds // 60
    # A laser cuts a small part in seconds: "0 h 00 min" would say it takes no time.
    duration = f"{seconds} s" if seconds < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
    summary = [
        ("Engine", toolpath.engine),
        ("Dialect", facts.dialect.upper() if facts.dialect == "grbl" else facts.dialect),
        ("Estimated time", duration),
        ("Stock", facts.stock_text),
        ("Cut length", f"{facts.cut_length_mm / 1000:.2f} m"),
    ]
    if process == "laser" and facts.tools:
        laser = facts.tools[0]
        summary[3] = ("Sheet", facts.stock_text)
        summary += [
            ("Power", f"{laser.power_percent:g} %"),
            ("Speed", f"{laser.feed_mm_min:g} mm/min"),
            ("Kerf", f"{laser.diameter_mm:g} mm"),
        ]
    else:
        summary.append(("Tools", str(len(facts.tools))))
    return replace(
        traveler,
        toolpath_summary=tuple(summary),
        work_instructions=part.work_instructions
        or GENERIC_PROGRAM_INSTRUCTIONS.get(process, GENERIC_INSTRUCTIONS),
        process=process,
        tools=tuple(_tool(tool) for tool in facts.tools),
        stock=facts.stock_text,
        work_offset=WORK_OFFSET_TEXT.format(offset=facts.work_offset),
        setup_steps=facts.setup_steps,
        program_warnings=facts.warnings,
        render_uri=_image_uri(render),
        render_caption=RENDER_CAPTIONS.get(process, "") if render else "",
    )


def _tool(tool: ProgramTool) -> TravelerTool:
    return TravelerTool(
        number=f"T{tool.number}",
        name=tool.name,
        diameter=f"{tool.diameter_mm:g} mm",
        spindle=f"{tool.spindle_rpm} rpm" if tool.spindle_rpm else "",
        feed=f"{tool.feed_mm_min:g} mm/min" if tool.feed_mm_min else "",
        plunge=f"{tool.plunge_mm_min:g} mm/min" if tool.plunge_mm_min else "",
        stepdown=f"{tool.stepdown_mm:g} mm" if tool.stepdown_mm else "",
        power=f"{tool.power_percent:g} %" if tool.power_percent else "",
        operations=", ".join(tool.operations),
    )


def _image_uri(render: bytes) -> str:
    """A PNG or SVG rendering as a data: URI (never inlined: an <img> keeps its markup out)."""
    if not render:
        return ""
    if render.startswith(b"\x89PNG"):
        return "data:image/png;base64," + base64.b64encode(render).decode("ascii")
    return svg_data_uri(render)


def _qc_checks(part: PartSpec) -> tuple[TravelerCheck, ...]:
    """The revision's QC checks for this configuration; without any, every length ± 0.2 mm."""
    if part.qc_checks:
        return tuple(
            TravelerCheck(
                label=line.label,
                nominal=line.nominal_text,
                tolerance=line.tolerance,
                nominal_mm=line.nominal,
                minus_mm=line.tolerance_minus,
                plus_mm=line.tolerance_plus,
            )
            for line in qc_lines(part.qc_checks, part.parameters)
        )
    specs = {s.name: s for s in part.specs}
    return tuple(
        TravelerCheck(
            label=specs[name].label,
            nominal=f"{value} {specs[name].unit}",
            tolerance="± 0.2",
            nominal_mm=float(value),
            minus_mm=0.2,
            plus_mm=0.2,
        )
        for name, value in sorted(part.parameters.items())
        if name in specs and specs[name].type == "length"
    )


def traveler_html(t: Traveler) -> str:
    """The traveler as one HTML document; the same Traveler always gives the same string."""
    return render_to_string("production/traveler.html", _context(t))


def render_traveler(t: Traveler) -> bytes:
    """The traveler as PDF bytes: one traveler, one or more pages."""
    return render_pdf(traveler_html(t))


def render_pdf(html_text: str) -> bytes:
    """Any of our paper documents (HTML that uses the traveler assets) as PDF bytes."""
    return _pdf(_render(html_text, FontConfiguration()))


def render_travelers(ts: Sequence[Traveler]) -> bytes:
    """A batch of travelers as one PDF; each starts on a new page and numbers its own pages."""
    if not ts:
        raise ValueError("no travelers to render")
    return _render_all([traveler_html(t) for t in ts])


def label_html(label: Label) -> str:
    """The label as one HTML document; the same Label always gives the same string."""
    width, height = LABEL_SIZE_MM
    return render_to_string(
        "production/label.html",
        {
            "l": label,
            "page_size": f"{width}mm {height}mm",
            "qr_uri": svg_data_uri(_qr_svg(label.station_url)),
            "barcode_uri": svg_data_uri(_code128_svg(label.job_number)),
        },
    )


def render_label(label: Label) -> bytes:
    """The label as a one-page 62 x 100 mm PDF."""
    return _pdf(_render(label_html(label), FontConfiguration()))


def spool_label_html(label: SpoolLabel) -> str:
    """The spool's label as one HTML document; the same SpoolLabel always gives the same
    string."""
    width, height = SPOOL_LABEL_SIZE_MM
    return render_to_string(
        "production/spool_label.html",
        {
            "l": label,
            "page_size": f"{width}mm {height}mm",
            "qr_uri": svg_data_uri(_qr_svg(label.station_url)),
            "barcode_uri": svg_data_uri(_code128_svg(label.spool_number)),
        },
    )


def render_spool_label(label: SpoolLabel) -> bytes:
    """The spool's label as a one-page 62 x 62 mm PDF."""
    return _pdf(_render(spool_label_html(label), FontConfiguration()))


def render_labels(labels: Sequence[Label]) -> bytes:
    """Several labels as one PDF, a page (one cut of the roll) each."""
    if not labels:
        raise ValueError("no labels to render")
    return _render_all([label_html(label) for label in labels])


def _render_all(htmls: Sequence[str]) -> bytes:
    font_config = FontConfiguration()  # shared, so the bundled fonts are loaded once per batch
    documents = [_render(html, font_config) for html in htmls]
    pages = [page for document in documents for page in document.pages]
    return _pdf(documents[0].copy(pages))


def merge_pdfs(pdfs: Sequence[bytes]) -> bytes:
    """Several PDFs as one, their pages in order: a batch of travelers the pipeline already
    rendered prints without laying any of them out again (pypdf copies pages, ~ms each)."""
    if not pdfs:
        raise ValueError("no PDFs to merge")
    writer = PdfWriter()
    for pdf in pdfs:
        writer.append(PdfReader(io.BytesIO(pdf)))
    merged = io.BytesIO()
    writer.write(merged)
    return merged.getvalue()


def _pdf(document: Document) -> bytes:
    pdf: bytes = document.write_pdf()  # WeasyPrint is untyped: its write_pdf is Any
    return pdf


def _render(html_text: str, font_config: FontConfiguration) -> Document:
    html = HTML(
        string=html_text,
        base_url=TRAVELER_ASSETS.as_uri() + "/",  # trailing slash: "traveler.css" resolves inside
        url_fetcher=_AssetsOnlyFetcher(),
    )
    return html.render(font_config=font_config)


def _context(t: Traveler) -> Mapping[str, object]:
    """What the template shows beyond the Traveler's own fields: images and short forms."""
    x, y, z = t.bbox_mm
    return {
        "t": t,
        "qr_uri": svg_data_uri(_qr_svg(t.qr_url)),
        "barcode_uri": svg_data_uri(_code128_svg(t.job_number)),
        # A data URI in an <img> keeps the drawing's markup out of ours, whatever it holds.
        "drawing_uri": svg_data_uri(t.drawing_svg.encode()) if t.drawing_svg else None,
        "checksum_short": t.revision_checksum[:12],
        "bbox": f"{x:.1f} × {y:.1f} × {z:.1f} mm",
    }


def svg_data_uri(svg: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def qr_svg(url: str) -> bytes:
    """The URL as a QR code (SVG), as travelers and labels print it."""
    return _qr_svg(url)


def _qr_svg(url: str) -> bytes:
    qr = segno.make(url, error="m", micro=False)
    svg = io.BytesIO()
    # border=4 is the quiet zone the QR standard asks for; omitsize lets CSS set the size.
    qr.save(svg, kind="svg", border=4, omitsize=True, xmldecl=False, nl=False)
    return svg.getvalue()


def _code128_svg(text: str) -> bytes:
    """Code 128 of `text` as an SVG whose user unit is one module, so CSS can scale it."""
    modules = barcode.Code128(text).build()[0]  # "1101001000...": 1 is a bar, 0 a space
    quiet = 10  # modules of blank space each side, as the Code 128 standard asks
    bar_height = 40  # the height is set by CSS; this only fixes the proportions before that
    bars = []
    start = None
    for i, module in enumerate(modules + "0"):
        if module == "1" and start is None:
            start = i
        elif module == "0" and start is not None:
            bars.append(f"M{quiet + start} 0h{i - start}v{bar_height}h-{i - start}z")
            start = None
    width = len(modules) + 2 * quiet
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {bar_height}" '
        f'preserveAspectRatio="none" shape-rendering="crispEdges">'
        f'<path fill="#000" d="{"".join(bars)}"/></svg>'
    ).encode()


class _AssetsOnlyFetcher(URLFetcher):  # type: ignore[misc]  # WeasyPrint is untyped
    """Lets WeasyPrint read data: URIs and files under TRAVELER_ASSETS, and nothing else.

    The drawing SVG comes from part scripts: a stray href in it must neither reach the
    network nor read the worker's files. A refused URL is logged by WeasyPrint and left out.
    """

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> URLFetcherResponse:
        scheme = url.partition(":")[0].lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file":
            # resolve() first, so neither ../ nor a symlink can lead out of the assets folder.
            path = Path(url2pathname(urlsplit(url).path)).resolve()
            if path.is_relative_to(TRAVELER_ASSETS):
                return super().fetch(path.as_uri(), headers)
        raise ValueError(f"travelers only read data: URIs and their own assets, not {url[:100]}")
