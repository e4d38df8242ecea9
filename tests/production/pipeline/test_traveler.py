"""The job traveler: HTML checked against a golden file, the PDF smoke-tested."""

from __future__ import annotations

import base64
import dataclasses
import io
import logging
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from production.pipeline.traveler import (
    Label,
    Traveler,
    TravelerCheck,
    TravelerParameter,
    label_html,
    merge_pdfs,
    render_label,
    render_labels,
    render_traveler,
    render_travelers,
    traveler_html,
)

pytestmark = pytest.mark.cad  # traveler HTML and PDF rendering; no database

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "traveler_golden.html"

# Shaped like CadQuery's SVG export: a fixed width and height, no viewBox.
DRAWING = (
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    '<svg xmlns="http://www.w3.org/2000/svg" width="400.0" height="300.0">'
    '<g transform="scale(5, -5) translate(10, -50)" stroke-width="0.2" fill="none">'
    '<g stroke="rgb(0,0,0)"><path d="M0 10 L60 10 L60 40 L0 40 Z"/>'
    '<path d="M20 10 L20 40"/><path d="M40 10 L40 40"/></g></g></svg>'
)


def make_traveler(**changes: object) -> Traveler:
    traveler = Traveler(
        job_number="J-000042",
        station_url="https://factory.example.com/station/jobs/J-000042",
        order_reference="PO-2026-1187 / line 2",
        organisation="Tram Depot Nord GmbH",
        requested_by="Ana Müller",
        due_date="2026-12-02",
        priority="Rush",
        part_name="Cable clamp, double",
        revision_label="rev C",
        revision_checksum="3f2a9c1be47d0a5566f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d",
        parameters=(
            TravelerParameter(name="length", label="Length", value="60.0", unit="mm"),
            TravelerParameter(name="hole_d", label="Hole diameter", value="5.5", unit="mm"),
            TravelerParameter(name="infill", label="Infill", value="40", unit="%"),
        ),
        quantity=4,
        material="PETG, black (1.75 mm)",
        machine="Prusa MK4 (FDM, 0.4 mm nozzle)",
        site="Leipzig cell 2",
        delivery_site="Dresden depot",
        drawing_svg=DRAWING,
        bbox_mm=(60.0, 30.0, 8.0),
        toolpath_summary=(
            ("Layers", "40"),
            ("Estimated time", "1h 12m"),
            ("Filament", "12.3 g / 4.1 m"),
        ),
        dfm_warnings=("Thin wall near slot: 1.3 mm (minimum 1.2 mm)",),
        work_instructions=(
            "Check the spool matches the material above; record the lot number.",
            "Remove brim and support; deburr the holes.",
        ),
        qc_checks=(
            TravelerCheck(label="Overall length", nominal="60.0 mm", tolerance="±0.3 mm"),
            TravelerCheck(label="Hole diameter", nominal="5.5 mm", tolerance="+0.2 / −0 mm"),
        ),
        printed_at="2026-11-25 21:04 UTC",
    )
    return dataclasses.replace(traveler, **changes)


def pdf_reader(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pdf_reader(pdf).pages)


def test_the_traveler_names_the_job_and_lists_every_parameter_with_its_unit() -> None:
    html = traveler_html(make_traveler())

    assert '<h1 class="job-number">J-000042</h1>' in html
    assert re.search(r"Length.*?<td class=\"num\">60.0</td><td class=\"unit\">mm</td>", html)
    assert re.search(r"Hole diameter.*?<td class=\"num\">5.5</td><td class=\"unit\">mm</td>", html)
    assert re.search(r"Infill.*?<td class=\"num\">40</td><td class=\"unit\">%</td>", html)
    assert "60.0 × 30.0 × 8.0 mm" in html
    assert "3f2a9c1be47d<" in html  # the short checksum, with the full one in small print
    assert "3f2a9c1be47d0a5566f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d" in html


def test_it_escapes_everything_it_prints() -> None:
    html = traveler_html(
        make_traveler(
            part_name="<script>alert(1)</script>",
            organisation='Smith & "Sons"',
            work_instructions=("<b>not bold</b>",),
        )
    )

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Smith &amp; &quot;Sons&quot;" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html


def test_the_drawing_is_embedded_as_an_image_never_as_markup() -> None:
    drawing = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    html = traveler_html(make_traveler(drawing_svg=drawing))

    encoded = base64.b64encode(drawing.encode()).decode()
    assert f'<img src="data:image/svg+xml;base64,{encoded}"' in html
    assert "<svg" not in html


def test_the_qr_code_and_the_barcode_are_embedded_as_svg_data_uris() -> None:
    html = traveler_html(make_traveler())

    qr = re.search(r'<img class="qr" src="data:image/svg\+xml;base64,([^"]+)"', html)
    barcode = re.search(r'<img class="barcode" src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert qr and base64.b64decode(qr[1]).startswith(b"<svg")
    assert barcode and base64.b64decode(barcode[1]).startswith(b"<svg")


def test_a_traveler_without_warnings_a_drawing_or_a_due_date_says_so() -> None:
    html = traveler_html(make_traveler(dfm_warnings=(), drawing_svg=None, due_date=None))

    assert re.search(r"<h2>DFM warnings</h2>\s*<p>none</p>", html)
    assert '<p class="no-drawing">no drawing</p>' in html
    assert '<td class="strong">not set</td>' in html


def test_the_html_is_the_same_every_time_and_matches_the_golden_file() -> None:
    html = traveler_html(make_traveler())
    assert traveler_html(make_traveler()) == html

    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(html, encoding="utf-8")
    assert html == GOLDEN.read_text(encoding="utf-8"), "rerun with UPDATE_GOLDEN=1 if intended"


def test_only_a4_and_letter_are_known_page_sizes() -> None:
    with pytest.raises(ValueError, match="page_size"):
        make_traveler(page_size="A3")


def test_the_pdf_names_the_job_on_every_page() -> None:
    pdf = render_traveler(make_traveler())

    assert pdf.startswith(b"%PDF")
    reader = pdf_reader(pdf)
    assert len(reader.pages) >= 1
    assert all("J-000042" in page.extract_text() for page in reader.pages)


def test_a_long_traveler_spills_onto_more_pages() -> None:
    steps = tuple(f"Step number {n} of a long job." for n in range(1, 80))
    pdf = render_traveler(make_traveler(work_instructions=steps))

    text = pdf_text(pdf)
    assert len(pdf_reader(pdf).pages) >= 2
    assert "Page 2 of" in text
    assert "Step number 79 of a long job." in text


def test_a_batch_prints_every_traveler_in_one_pdf() -> None:
    travelers = [make_traveler(job_number=f"J-00010{n}") for n in range(1, 4)]

    pdf = render_travelers(travelers)

    assert pdf.startswith(b"%PDF")
    assert len(pdf_reader(pdf).pages) >= 3
    text = pdf_text(pdf)
    assert all(job in text for job in ("J-000101", "J-000102", "J-000103"))


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError):
        render_travelers([])


def test_letter_travelers_print_on_letter_paper() -> None:
    a4 = pdf_reader(render_traveler(make_traveler())).pages[0].mediabox
    letter = pdf_reader(render_traveler(make_traveler(page_size="Letter"))).pages[0].mediabox

    assert (round(float(a4.width)), round(float(a4.height))) == (595, 842)
    assert (round(float(letter.width)), round(float(letter.height))) == (612, 792)


def test_rendering_reads_only_data_uris_and_the_traveler_assets(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object) -> None:
        raise AssertionError("the traveler tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    sneaky = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50">'
        '<image href="http://127.0.0.1:9/track.png" width="10" height="10"/>'
        '<image href="file:///etc/hostname" width="10" height="10"/>'
        "</svg>"
    )

    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        render_traveler(make_traveler())
    assert not caplog.records, "fonts and CSS should load without complaint"

    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        render_traveler(make_traveler(drawing_svg=sneaky))
    refusals = [r.getMessage() for r in caplog.records if "travelers only read" in r.getMessage()]
    assert any("http://127.0.0.1:9/track.png" in message for message in refusals)
    assert any("file:///etc/hostname" in message for message in refusals)


def test_the_qr_code_and_the_barcode_scan_back(tmp_path: Path) -> None:
    (tmp_path / "traveler.pdf").write_bytes(render_traveler(make_traveler()))
    subprocess.run(
        ["pdftoppm", "-r", "200", "-png", "-singlefile", "traveler.pdf", "traveler"],
        cwd=tmp_path,
        check=True,
    )

    scan = subprocess.run(
        ["zbarimg", "--quiet", "--raw", "traveler.png"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )

    assert set(scan.stdout.split()) == {
        "https://factory.example.com/station/jobs/J-000042",
        "J-000042",
    }


def scan(pdf: bytes, folder: Path) -> set[str]:
    """What zbar reads on the PDF's first page at 200 dpi: every QR code and barcode."""
    (folder / "page.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "200", "-png", "-singlefile", "page.pdf", "page"], cwd=folder, check=True
    )
    found = subprocess.run(
        ["zbarimg", "--quiet", "--raw", "page.png"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(found.stdout.split())


# --- merging stored travelers ---------------------------------------------------------------


def test_stored_travelers_merge_into_one_pdf_in_order() -> None:
    first = render_traveler(make_traveler(job_number="J-000101"))
    second = render_traveler(make_traveler(job_number="J-000102"))

    merged = pdf_reader(merge_pdfs([first, second] * 10))

    assert len(merged.pages) == 20
    texts = [page.extract_text() for page in merged.pages]
    assert ["J-000101" in text for text in texts] == [True, False] * 10
    assert ["J-000102" in text for text in texts] == [False, True] * 10


def test_an_empty_merge_is_refused() -> None:
    with pytest.raises(ValueError):
        merge_pdfs([])


# --- the bag label --------------------------------------------------------------------------


def make_label(**changes: object) -> Label:
    label = Label(
        job_number="J-000042",
        station_url="https://factory.example.com/station/jobs/42/",
        part_name="Cable clamp, double",
        revision_label="rev C",
        key_parameters=(
            TravelerParameter(name="length", label="Length", value="60.0", unit="mm"),
            TravelerParameter(name="hole_d", label="Hole diameter", value="5.5", unit="mm"),
        ),
        material="PETG, black (1.75 mm)",
        quantity=4,
        order_reference="O-000017 / PO-2026-1187",
        team="Bogie maintenance",
        due_date="2026-12-02",
        site="Leipzig cell 2",
        delivery_site="Dresden depot",
    )
    return dataclasses.replace(label, **changes)


MM = 72 / 25.4  # points in a millimetre


def test_the_label_is_one_62_mm_wide_page() -> None:
    reader = pdf_reader(render_label(make_label()))

    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert abs(float(box.width) - 62 * MM) < 0.5
    assert abs(float(box.height) - 100 * MM) < 0.5


def test_the_label_names_the_job_the_part_and_where_it_goes() -> None:
    text = pdf_text(render_label(make_label()))

    for expected in (
        "J-000042",
        "Cable clamp, double",
        "rev C",
        "Hole diameter",
        "5.5 mm",
        "PETG, black (1.75 mm)",
        "O-000017 / PO-2026-1187",
        "Bogie maintenance",
        "2026-12-02",
    ):
        assert expected in text
    assert re.search(r"Qty\s*4", text)


def test_the_labels_qr_code_opens_the_station_and_its_barcode_is_the_job(tmp_path: Path) -> None:
    assert scan(render_label(make_label()), tmp_path) == {
        "https://factory.example.com/station/jobs/42/",
        "J-000042",
    }


def test_the_label_escapes_what_it_prints() -> None:
    html = label_html(make_label(part_name="<script>x</script>", team='A & "B"'))

    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "A &amp; &quot;B&quot;" in html


def test_labels_of_a_queue_print_a_page_each() -> None:
    pdf = render_labels([make_label(job_number=f"J-00020{n}") for n in range(1, 4)])

    reader = pdf_reader(pdf)
    assert len(reader.pages) == 3
    assert all(f"J-00020{n}" in reader.pages[n - 1].extract_text() for n in range(1, 4))
    with pytest.raises(ValueError):
        render_labels([])
