"""Warm geometry children (catalog.geometry.warm): the same geometry as a cold child, every
build isolated from the last, and a child replaced after a crash, a limit, a timeout or N
builds, with the build failing for the same reason as a cold one.

Warm children need bubblewrap (without it builds run cold, as test_build.py checks); each
test starts its own pool, so each pays one CadQuery import (~2 s) before its warm builds.
"""

import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from catalog.geometry import (
    BuildFailed,
    BuildLimits,
    build_geometry,
    sandbox,
    warm,
    warm_pool_close,
    warm_pool_configure,
    warm_pool_stats,
)
from catalog.parts import DEMO_PARTS
from microfactory.errors import Rejected

pytestmark = [
    pytest.mark.cad,
    pytest.mark.skipif(
        sandbox.bwrap_wrapper() is None and not os.environ.get("CI"),
        reason="warm children run only inside bubblewrap",
    ),
]

LIMITS = BuildLimits(require_bwrap=True)
BOX = "import cadquery as cq\nshow_object(cq.Workplane().box(1, 2, 3))\n"


@pytest.fixture
def pool() -> Iterator[None]:
    warm_pool_configure(size=1, builds_per_child=100)
    yield
    warm_pool_configure(size=0, builds_per_child=1)  # closes it: later tests build cold


def test_a_warm_build_gives_the_same_geometry_as_a_cold_one() -> None:
    part = next(part for part in DEMO_PARTS if part.slug == "shaft_collar")
    values = {parameter["name"]: parameter["default"] for parameter in part.schema}
    values["bore_d"] = 21.5
    cold = build_geometry(part.script, values, limits=LIMITS)
    warm_pool_configure(size=1, builds_per_child=100)
    try:
        warm = build_geometry(part.script, values, limits=LIMITS)
        assert warm_pool_stats()["builds"] == 1
    finally:
        warm_pool_close()
        warm_pool_configure(size=0, builds_per_child=1)

    assert warm.sandbox == cold.sandbox == "bwrap"
    assert warm.stl == cold.stl
    assert warm.svg == cold.svg
    assert (warm.bbox_mm, warm.volume_mm3, warm.area_mm2) == (
        cold.bbox_mm,
        cold.volume_mm3,
        cold.area_mm2,
    )
    # The GLB names its node with a fresh uuid1 and the STEP header has the time: the rest
    # is byte for byte the same.
    uuid = re.compile(rb'"name":"[0-9a-f-]{36}"')
    assert uuid.sub(b"", warm.glb) == uuid.sub(b"", cold.glb)
    stamp = re.compile(rb"FILE_NAME\([^;]*;")
    assert stamp.sub(b"", warm.step) == stamp.sub(b"", cold.step)


def test_warm_builds_reuse_one_child_and_leave_nothing_for_the_next(pool: None) -> None:
    # The first build leaves what it can: a module attribute, files in every writable place
    # it finds, and a process in a session of its own that outlives it.
    leave = (
        "import os, time, cadquery as cq\n"
        "cq.LEFT_BEHIND = 1\n"
        "for path in ('/tmp/left', '/dev/shm/left', '/build/left', '../left'):\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "    except OSError:\n"
        "        pass\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(600)\n"
        "    os._exit(0)\n"
        "show_object(cq.Workplane().box(1, 1, 1))\n"
    )
    look = (
        "import os, cadquery as cq\n"
        "paths = ('/tmp/left', '/dev/shm/left', '/build/left', '../left', 'left')\n"
        "seen = [path for path in paths if os.path.exists(path)]\n"
        "others = [pid for pid in os.listdir('/proc') if pid.isdigit() and int(pid) > 2\n"
        "          and int(pid) != os.getpid()]\n"
        'raise RuntimeError(f\'seen {seen}, attribute {hasattr(cq, "LEFT_BEHIND")}, '
        "processes {others}')\n"
    )

    build_geometry(leave, {}, limits=LIMITS)
    with pytest.raises(Rejected) as seen:
        build_geometry(look, {}, limits=LIMITS)

    assert "seen [], attribute False, processes []" in str(seen.value)
    stats = warm_pool_stats()
    assert (stats["started"], stats["builds"], stats["recycled"], stats["cold"]) == (1, 2, 0, 0)


@pytest.mark.parametrize(
    "script, limits, reason",
    [
        (
            "import os\nos._exit(3)\n",
            LIMITS,
            "geometry child exited with status 3 without a result",
        ),
        (
            "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
            LIMITS,
            r"segfault \(SIGSEGV\)",
        ),
        (
            "chunks = []\nwhile True:\n    chunks.append(bytearray(100 * 1024 * 1024))\n",
            BuildLimits(require_bwrap=True, memory_mb=2048),
            "2048 MB memory limit",
        ),
        ("while True:\n    pass\n", BuildLimits(require_bwrap=True, timeout_s=2), "exceeded 2 s"),
        (
            "while True:\n    pass\n",
            BuildLimits(require_bwrap=True, cpu_s=2, timeout_s=60),
            "exceeded the 2 s CPU time limit",
        ),
        (
            "while True:\n    print('x' * 1_000_000)\n",
            BuildLimits(require_bwrap=True, output_mb=5),
            r"wrote (more than|a file over the) 5 MB",
        ),
    ],
    ids=["os-exit", "segfault", "memory", "timeout", "cpu", "output"],
)
def test_a_crash_or_a_limit_fails_the_build_as_cold_and_replaces_the_child(
    pool: None, script: str, limits: BuildLimits, reason: str
) -> None:
    with pytest.raises(BuildFailed, match=reason):
        build_geometry(script, {}, limits=limits)
    after_failure = warm_pool_stats()
    geometry = build_geometry(BOX, {}, limits=limits)

    assert geometry.bbox_mm == (1.0, 2.0, 3.0)
    assert after_failure["recycled"] == 1
    stats = warm_pool_stats()
    # The next build ran warm, in the replacement started when the first child was dropped.
    assert (stats["started"], stats["builds"], stats["cold"]) == (2, 2, 0)


def test_a_child_is_replaced_after_n_builds() -> None:
    warm_pool_configure(size=1, builds_per_child=2)
    try:
        for _ in range(5):
            assert build_geometry(BOX, {}, limits=LIMITS).bbox_mm == (1.0, 2.0, 3.0)
        stats = warm_pool_stats()
    finally:
        warm_pool_configure(size=0, builds_per_child=1)

    # Builds 1-2 in the first child, 3-4 in the second, 5 in the third.
    assert (stats["started"], stats["builds"], stats["recycled"], stats["cold"]) == (3, 5, 2, 0)


def test_a_refusal_keeps_the_child(pool: None) -> None:
    with pytest.raises(Rejected, match="line 1: ValueError: no"):
        build_geometry("raise ValueError('no')\n", {}, limits=LIMITS)
    build_geometry(BOX, {}, limits=LIMITS)

    stats = warm_pool_stats()
    assert (stats["started"], stats["builds"], stats["recycled"]) == (1, 2, 0)


def test_when_every_warm_child_is_busy_a_build_runs_cold(pool: None) -> None:
    slow = "import time, cadquery as cq\ntime.sleep(3)\nshow_object(cq.Workplane().box(1, 2, 3))\n"
    with ThreadPoolExecutor(2) as builds:
        results = list(builds.map(lambda s: build_geometry(s, {}, limits=LIMITS), [slow, slow]))

    assert [result.bbox_mm for result in results] == [(1.0, 2.0, 3.0)] * 2
    stats = warm_pool_stats()
    assert (stats["builds"], stats["cold"]) == (1, 1)


def test_without_a_pool_or_without_bubblewrap_builds_run_cold(
    pool: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox, "bwrap_wrapper", lambda: None)

    with pytest.raises(BuildFailed, match="no working bubblewrap sandbox"):
        build_geometry(BOX, {}, limits=LIMITS)
    monkeypatch.undo()
    warm_pool_configure(size=0, builds_per_child=1)
    assert build_geometry(BOX, {}, limits=LIMITS).bbox_mm == (1.0, 2.0, 3.0)

    assert warm_pool_stats()["builds"] == 0


def test_closing_the_pool_stops_its_children(pool: None) -> None:
    build_geometry(BOX, {}, limits=LIMITS)
    members = [member for pool in warm._pools.values() for member in pool.idle]
    assert len(members) == 1 and members[0].root.is_dir()

    warm_pool_close()

    assert warm_pool_stats()["children"] == 0
    assert not members[0].root.exists()
    assert members[0].process.returncode is not None
