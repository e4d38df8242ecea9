"""Planning in a forked child while this process writes (production.toolpath.parallel): the
same G-code as one process, a child that dies is replaced by planning here, and no child
outlives the call."""

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import trimesh

from production.toolpath import parallel, plan_toolpath, slicing
from production.toolpath.gcode import purge_line
from production.toolpath.paths import plan_layers
from tests.production.toolpath.gcode_reader import make_profile, stl_of, tube_stl

pytestmark = pytest.mark.cad  # slicing; no database


def _bracket() -> bytes:
    """An L-bracket with a cone on its foot (three overlapping bodies, which the slicer joins):
    layers that repeat (the foot, the upright) and layers that do not (the cone)."""
    foot = trimesh.creation.box(extents=(30, 20, 4))
    upright = trimesh.creation.box(extents=(4, 20, 16))
    upright.apply_translation((-13, 0, 10))
    cone = trimesh.creation.cone(radius=6, height=6)
    cone.apply_translation((6, 0, 2))
    return stl_of(trimesh.util.concatenate([foot, upright, cone]))


def _all_children() -> set[int]:
    task = Path(f"/proc/self/task/{os.getpid()}/children")
    return {int(pid) for pid in task.read_text().split()} if task.exists() else set()


@pytest.fixture
def new_children() -> Callable[[], list[int]]:
    """The child processes the test made that are still there. The test process may have
    children of its own already (a pytest-xdist worker runs the servers earlier tests started:
    Redis, OctoPrint): only the slicer's count."""
    before = _all_children()
    return lambda: sorted(_all_children() - before)


@pytest.mark.parametrize("stl", [_bracket(), tube_stl(6, 9, 8)], ids=["bracket", "tube"])
def test_two_processes_write_the_same_gcode_as_one(
    stl: bytes, monkeypatch: pytest.MonkeyPatch, new_children: Callable[[], list[int]]
) -> None:
    profile = make_profile()
    together = plan_toolpath(stl, profile)
    assert parallel.enabled(together.layers)
    monkeypatch.setenv("MF_TOOLPATH_PROCESSES", "1")
    assert not parallel.enabled(together.layers)
    alone = plan_toolpath(stl, profile)
    assert together.gcode == alone.gcode
    assert together.layers == alone.layers > parallel.MIN_LAYERS
    assert new_children() == []


def _slices() -> list[slicing.Slice]:
    profile = make_profile()
    mesh = slicing.place_on_bed(slicing.load_mesh(_bracket()), profile)
    return slicing.slice_layers(mesh, profile)


def test_layers_a_killed_child_did_not_plan_are_planned_here(
    new_children: Callable[[], list[int]],
) -> None:
    profile = make_profile()
    slices = _slices()
    start = tuple(float(v) for v in purge_line(profile)[-1])
    expected = plan_layers(slices, profile, start=(start[0], start[1]))
    stream = parallel.planned_layers(slices, profile, start=(start[0], start[1]))
    got = [next(stream) for _ in range(3)]
    (child,) = new_children()
    os.kill(child, signal.SIGKILL)
    got += list(stream)
    assert len(got) == len(expected) == len(slices)
    for ours, theirs in zip(got, expected, strict=True):
        assert ours.z_mm == theirs.z_mm
        assert len(ours.paths) == len(theirs.paths)
        for a, b in zip(ours.paths, theirs.paths, strict=True):
            assert a.kind == b.kind and a.width_mm == b.width_mm
            assert a.points.tobytes() == b.points.tobytes()
    assert new_children() == []


def test_a_stream_closed_early_leaves_no_child(new_children: Callable[[], list[int]]) -> None:
    profile = make_profile()
    stream = parallel.planned_layers(_slices(), profile, start=(5.0, 3.0))
    next(stream)
    assert len(new_children()) == 1
    stream.close()  # what an exception in the writer (or a time limit) does
    assert new_children() == []


def test_parts_of_few_layers_are_planned_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MF_TOOLPATH_PROCESSES", raising=False)
    assert parallel.enabled(parallel.MIN_LAYERS)
    assert not parallel.enabled(parallel.MIN_LAYERS - 1)
