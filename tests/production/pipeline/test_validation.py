import numpy as np
import pytest
import trimesh

from microfactory.errors import Rejected
from production.pipeline.validation import validate_part


def stl(mesh: trimesh.Trimesh) -> bytes:
    return mesh.export(file_type="stl")


VOLUMES = {"mk4": (250.0, 210.0, 220.0), "mini": (180.0, 180.0, 180.0)}


def test_a_closed_box_passes_and_lists_the_machines_it_fits():
    report = validate_part(stl(trimesh.creation.box((200, 100, 50))), build_volumes_mm=VOLUMES)
    assert report.fits == ("mk4",)
    assert report.volume_mm3 == pytest.approx(200 * 100 * 50)
    assert report.extents_mm == (200, 100, 50)
    assert all(c.status == "pass" for c in report.checks)


def test_a_part_bigger_than_every_machine_is_rejected_with_its_size():
    with pytest.raises(Rejected, match=r"\(300.0 x 100.0 x 50.0 mm\) is larger than every"):
        validate_part(stl(trimesh.creation.box((300, 100, 50))), build_volumes_mm=VOLUMES)


def test_an_open_mesh_is_rejected():
    box = trimesh.creation.box((10, 10, 10))
    box.update_faces(np.arange(len(box.faces)) != 0)
    with pytest.raises(Rejected, match="not a closed solid"):
        validate_part(stl(box), build_volumes_mm=VOLUMES)


@pytest.mark.parametrize("garbage", [b"", b"solid x\nfacet normal a b c\n", b"\x00" * 84 + b"\xff" * 7])
def test_garbage_is_rejected_not_crashed_on(garbage):
    with pytest.raises(Rejected):
        validate_part(garbage, build_volumes_mm=VOLUMES)


def test_two_bodies_are_a_warning():
    a = trimesh.creation.box((10, 10, 10))
    b = trimesh.creation.box((10, 10, 10))
    b.apply_translation((30, 0, 0))
    report = validate_part(stl(trimesh.util.concatenate([a, b])), build_volumes_mm=VOLUMES)
    assert report.bodies == 2
    assert report.warnings == ("2 separate bodies will be made together",)
