"""Limits and hostile input: each a clear rejection, never a crash or a hang."""

import struct
import time

import numpy as np
import pytest
import trimesh

from production.pipeline.validation import MachineLimits, ValidationLimits, dfm_report

MACHINES = [MachineLimits("mk4")]


def box_stl(*, ascii: bool = False) -> bytes:
    box = trimesh.creation.box((10, 10, 10))
    return box.export(file_type="stl_ascii").encode() if ascii else box.export(file_type="stl")


def report_for(data: bytes, **limits):
    return dfm_report(data, machines=MACHINES, limits=ValidationLimits(**limits))


def failure(data: bytes, **limits):
    report = report_for(data, **limits)
    assert report.status == "fail"
    return report, report.first_failure


def test_binary_and_ascii_stl_give_the_same_part():
    binary, text = report_for(box_stl()), report_for(box_stl(ascii=True))
    assert binary.status == text.status == "pass"
    assert binary.volume_mm3 == text.volume_mm3 == pytest.approx(1000)
    assert [c.value for c in text.checks if c.name == "readable"] == ["ASCII STL"]


def test_an_ascii_stl_on_one_line_with_several_solids_reads():
    text = box_stl(ascii=True).decode()
    one_line = " ".join(text.split()) + " " + " ".join(text.split())  # two solids, one line
    report = report_for(one_line.encode())
    assert report.readable
    assert report.triangles == 12  # the second copy is all duplicate faces
    assert "removed 12 faces that repeated another face" in report.warnings


def test_a_truncated_binary_stl_claiming_a_million_triangles_is_unreadable():
    data = bytearray(box_stl()[: 84 + 3 * 50])
    data[80:84] = struct.pack("<I", 1_000_000)
    report, failed = failure(bytes(data))
    assert not report.readable
    assert failed.message == (
        "the STL header claims 1000000 triangles but the file holds only 3: "
        "it is truncated or not an STL"
    )


def test_random_bytes_are_unreadable():
    report, failed = failure(np.random.default_rng(7).bytes(5000))
    assert not report.readable
    assert failed.name == "readable"


@pytest.mark.parametrize("data", [b"", b"   \n", b"hello world", b"\x00" * 83])
def test_empty_or_tiny_files_are_unreadable(data):
    report, failed = failure(data)
    assert not report.readable


def test_binary_bytes_behind_a_solid_header_are_unreadable():
    report, failed = failure(b"solid part\n" + bytes(range(256)) * 4)
    assert failed.message == "the file starts like an ASCII STL but holds binary bytes"


def test_an_ascii_normal_of_x_y_z_is_a_bad_number_with_its_facet():
    text = box_stl(ascii=True).decode().split("\n")
    second_facet = [i for i, line in enumerate(text) if line.startswith("facet normal")][1]
    text[second_facet] = "facet normal x y z"
    report, failed = failure("\n".join(text).encode())
    assert not report.readable
    assert (
        failed.message == "the ASCII STL has a bad number: 'x' in facet 2 (normal) is not a number"
    )


def test_an_ascii_vertex_with_a_decimal_comma_names_the_facet_and_vertex():
    text = box_stl(ascii=True).decode().split("\n")
    third_vertex = [i for i, line in enumerate(text) if line.startswith("vertex")][2]
    text[third_vertex] = "vertex 1,5 2 3"
    _, failed = failure("\n".join(text).encode())
    assert (
        failed.message
        == "the ASCII STL has a bad number: '1,5' in facet 1 (vertex 3) is not a number"
    )


def test_an_ascii_facet_missing_a_vertex_is_malformed():
    text = box_stl(ascii=True).decode()
    broken = text.replace("vertex", "# gone", 1)
    report, failed = failure(broken.encode())
    assert failed.message.startswith(
        "the ASCII STL is malformed: 12 facet end(s), 12 facet start(s), 35 vertices"
    )


def test_nan_coordinates_are_refused():
    data = bytearray(box_stl())
    data[84 + 12 : 84 + 16] = struct.pack("<f", float("nan"))
    report, failed = failure(bytes(data))
    assert report.readable  # it is an STL, just not a usable one: exit 1, not 2
    assert (failed.name, failed.value) == (
        "coordinates",
        "1 triangle(s) with NaN or infinite coordinates",
    )


def test_coordinates_a_kilometre_out_are_refused():
    box = trimesh.creation.box((10, 10, 10))
    box.apply_translation((2e6, 0, 0))
    _, failed = failure(box.export(file_type="stl"))
    assert "check the file's units" in failed.message


def test_a_file_over_the_size_limit_is_refused_before_parsing():
    _, failed = failure(box_stl(), max_file_bytes=500)
    assert failed.name == "file_size"
    assert failed.message == (
        "the file is 0.7 kB; files up to 0.5 kB are accepted: export it with a coarser tessellation"
    )


def test_a_mesh_over_the_triangle_limit_is_refused():
    _, failed = failure(box_stl(), max_triangles=10)
    assert (failed.name, failed.value, failed.limit) == ("triangles", "12", "≤ 10")


def test_a_mesh_over_the_vertex_limit_is_refused():
    _, failed = failure(box_stl(), max_vertices=7)
    assert (failed.name, failed.value) == ("vertices", "8")


def test_a_header_claiming_millions_of_triangles_is_refused_without_reading_them():
    # A complete file would be 50 MB; the claim alone decides, whatever follows.
    data = bytearray(84 + 50 * 2_000_000)
    data[80:84] = struct.pack("<I", 2_000_000)
    started = time.monotonic()
    _, failed = failure(bytes(data), max_file_bytes=200_000_000)
    assert failed.name == "triangles"
    assert time.monotonic() - started < 1


def test_zero_area_everywhere_is_no_part():
    triangles = np.zeros((50, 50), dtype=np.uint8)  # 50 triangles, every coordinate 0
    data = b"\0" * 80 + struct.pack("<I", 50) + triangles.tobytes()
    _, failed = failure(data)
    assert (
        failed.message == "every triangle of the mesh has zero area: there is no part in this file"
    )


def test_faces_piled_into_one_spot_are_refused_before_they_fill_the_memory(monkeypatch):
    monkeypatch.setattr("production.pipeline.dfm.rays.MAX_PAIRS", 2000)  # 5M in production
    rng = np.random.default_rng(3)
    cubes = [trimesh.creation.box((1, 1, 1)) for _ in range(60)]
    for cube in cubes:
        cube.apply_translation(rng.uniform(0, 0.2, 3))
    report = report_for(trimesh.util.concatenate(cubes).export(file_type="stl"))
    checks = {c.name: c for c in report.checks}
    assert checks["self_intersections"].message == (
        "self-intersections were not checked: faces are piled up too densely"
    )
    assert report.first_failure.name == "crowding"
