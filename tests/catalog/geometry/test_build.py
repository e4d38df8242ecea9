"""build_geometry: scripts in, geometry or a clear refusal out, with the sandbox holding.

Every build starts a Python + OpenCascade child (2-3 s), so each test builds once. Tests
that need bubblewrap's namespaces are skipped where it does not work (never in CI); the others
accept the rlimits-only fallback so they run anywhere.
"""

import ast
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import trimesh

from catalog.geometry import BuildFailed, BuildLimits, build_geometry, sandbox
from catalog.geometry.sandbox import CHILD_SCRIPT, bwrap_wrapper
from microfactory.errors import Rejected

pytestmark = pytest.mark.cad  # CadQuery builds in the sandbox; no database

LIMITS = BuildLimits(require_bwrap=False)
SECRET = "do-not-leak-7f3a9c"

# `make test` installs bubblewrap; only a developer machine without it may skip these. In CI
# a missing sandbox is a failure, never a skip.
needs_bwrap = pytest.mark.skipif(
    bwrap_wrapper() is None and not os.environ.get("CI"),
    reason="bubblewrap is not installed or cannot create namespaces",
)


def test_a_script_builds_into_a_watertight_mesh_with_its_measurements() -> None:
    script = "import cadquery as cq\nsize = 10\nshow_object(cq.Workplane().box(size, 20, 30))\n"

    geometry = build_geometry(script, {"size": 15}, limits=LIMITS)

    assert geometry.bbox_mm == (15.0, 20.0, 30.0)
    assert geometry.volume_mm3 == pytest.approx(15 * 20 * 30)
    assert geometry.area_mm2 == pytest.approx(2 * (15 * 20 + 15 * 30 + 20 * 30))
    mesh = trimesh.load_mesh(io.BytesIO(geometry.stl), file_type="stl")
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(geometry.volume_mm3)
    assert geometry.step.startswith(b"ISO-10303-21;")
    assert "<svg" in geometry.svg
    assert geometry.sandbox == ("rlimits" if bwrap_wrapper() is None else "bwrap")


def test_a_script_that_raises_is_rejected_with_its_message_and_line() -> None:
    script = "import cadquery as cq\nbore_d = 10\nraise ValueError('bore larger than the collar')\n"

    with pytest.raises(Rejected) as refusal:
        build_geometry(script, {}, limits=LIMITS)

    assert str(refusal.value) == (
        "the script failed on line 3: ValueError: bore larger than the collar"
    )


def test_a_script_without_show_object_is_rejected() -> None:
    script = "import cadquery as cq\nbox = cq.Workplane().box(1, 1, 1)\n"

    with pytest.raises(Rejected, match="did not call show_object"):
        build_geometry(script, {}, limits=LIMITS)


def test_an_infinite_loop_fails_at_the_time_limit() -> None:
    limits = BuildLimits(require_bwrap=False, timeout_s=2)

    with pytest.raises(BuildFailed, match="exceeded 2 s"):
        build_geometry("while True:\n    pass\n", {}, limits=limits)


def test_a_memory_hog_fails_at_the_memory_limit() -> None:
    # Importing CadQuery maps about 1 GB, so 2 GB leaves room to start and then run out.
    limits = BuildLimits(require_bwrap=False, memory_mb=2048)
    script = "chunks = []\nwhile True:\n    chunks.append(bytearray(100 * 1024 * 1024))\n"

    with pytest.raises(BuildFailed, match="2048 MB memory limit"):
        build_geometry(script, {}, limits=limits)


@needs_bwrap
def test_the_script_sees_none_of_the_workers_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("DATABASE_URL", f"postgres://app:{SECRET}@db/app")
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "microfactory.settings")
    # Its own environment, and, since /proc/<worker>/environ would hand them over too,
    # every process it can see.
    script = (
        "import glob, os\n"
        "secret = ''\n"
        "names = ('SECRET_KEY', 'DATABASE_URL', 'DJANGO_SETTINGS_MODULE')\n"
        "found = []\n"
        "for path in glob.glob('/proc/[0-9]*/environ'):\n"
        "    try:\n"
        "        if secret.encode() in open(path, 'rb').read():\n"
        "            found.append(path)\n"
        "    except OSError:\n"
        "        pass\n"
        "raise RuntimeError(f'saw {[os.environ.get(n) for n in names]}, found in {found}')\n"
    )

    with pytest.raises(Rejected) as refusal:
        build_geometry(script, {"secret": SECRET}, limits=LIMITS)

    assert SECRET not in str(refusal.value)
    assert "saw [None, None, None], found in []" in str(refusal.value)


@needs_bwrap
def test_the_script_cannot_reach_the_network() -> None:
    # A listener on the host's loopback: the sandbox has a loopback of its own.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        script = (
            "import socket\n"
            "port = 0\n"
            "try:\n"
            "    socket.create_connection(('127.0.0.1', port), timeout=2).close()\n"
            "    outcome = 'connected'\n"
            "except OSError as error:\n"
            "    outcome = f'blocked: {error}'\n"
            "raise RuntimeError(outcome)\n"
        )

        with pytest.raises(Rejected, match="blocked"):
            build_geometry(script, {"port": listener.getsockname()[1]}, limits=LIMITS)
        with pytest.raises(BlockingIOError):
            listener.accept()


@needs_bwrap
def test_the_script_cannot_write_outside_its_working_directory(tmp_path: Path) -> None:
    existing = tmp_path / "existing.txt"
    existing.write_text("original")
    created = tmp_path / "created.txt"
    # Opening the project's own child.py for appending changes nothing even where it works,
    # so a broken sandbox makes this test fail without damaging the tree.
    script = (
        "import cadquery as cq\n"
        "existing = ''\n"
        "created = ''\n"
        "child = ''\n"
        "for path in (existing, created):\n"
        "    try:\n"
        "        open(path, 'w').write('changed')\n"
        "    except OSError as error:\n"
        "        print(error)\n"
        "try:\n"
        "    open(child, 'a').close()\n"
        "    raise RuntimeError('child.py is writable')\n"
        "except OSError as error:\n"
        "    print(error)\n"
        "show_object(cq.Workplane().box(1, 1, 1))\n"
    )
    paths = {"existing": str(existing), "created": str(created), "child": str(CHILD_SCRIPT)}

    build_geometry(script, paths, limits=LIMITS)

    assert existing.read_text() == "original"
    assert not created.exists()


def test_without_bubblewrap_a_build_is_refused_when_it_is_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox, "bwrap_wrapper", lambda: None)

    with pytest.raises(BuildFailed, match="no working bubblewrap sandbox"):
        build_geometry("show_object(None)\n", {}, limits=BuildLimits(require_bwrap=True))


def test_without_bubblewrap_a_build_falls_back_to_rlimits_and_a_clean_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox, "bwrap_wrapper", lambda: None)
    monkeypatch.setenv("SECRET_KEY", SECRET)
    script = "import os\nraise RuntimeError(f'saw {os.environ.get(\"SECRET_KEY\")}')\n"

    with pytest.raises(Rejected, match="saw None"):
        build_geometry(script, {}, limits=BuildLimits(require_bwrap=False))


def test_importing_the_package_does_not_load_opencascade() -> None:
    check = (
        "import sys, catalog.geometry\n"
        "loaded = [name for name in ('cadquery', 'OCP') if name in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    project = Path(__file__).resolve().parents[3]

    subprocess.run([sys.executable, "-c", check], cwd=project, check=True)


def test_the_geometry_package_does_not_import_django() -> None:
    for module in CHILD_SCRIPT.parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(name.split(".")[0] in ("django", "rest_framework") for name in names), (
                f"{module.name} imports {names}"
            )


def test_a_script_that_prints_megabytes_still_builds_and_its_log_stays_bounded() -> None:
    script = (
        "import cadquery as cq\n"
        "for _ in range(40):\n"
        "    print('x' * 1_000_000)\n"
        "show_object(cq.Workplane().box(3, 3, 3))\n"
    )

    geometry = build_geometry(script, {}, limits=LIMITS)

    assert geometry.bbox_mm == (3.0, 3.0, 3.0)


def test_a_script_that_prints_past_the_output_limit_fails_at_that_limit() -> None:
    limits = BuildLimits(require_bwrap=False, output_mb=5)
    script = "while True:\n    print('x' * 1_000_000)\n"

    with pytest.raises(BuildFailed, match=r"wrote (more than|a file over the) 5 MB"):
        build_geometry(script, {}, limits=limits)


def test_several_separate_solids_are_rejected_and_touching_ones_fused_into_one() -> None:
    apart = (
        "import cadquery as cq\n"
        "show_object(cq.Workplane().box(2, 2, 2))\n"
        "show_object(cq.Workplane().box(2, 2, 2).translate((5, 0, 0)))\n"
        "show_object(cq.Workplane().box(2, 2, 2).translate((10, 0, 0)))\n"
    )
    touching = apart.replace("(5, 0, 0)", "(2, 0, 0)").replace("(10, 0, 0)", "(4, 0, 0)")

    with pytest.raises(Rejected) as refusal:
        build_geometry(apart, {}, limits=LIMITS)
    fused = build_geometry(touching, {}, limits=LIMITS)

    assert str(refusal.value).startswith("the script shows 3 solids; a part must be one solid")
    assert fused.bbox_mm == (6.0, 2.0, 2.0)
    assert fused.volume_mm3 == pytest.approx(24)


def test_after_a_crash_a_timeout_and_a_refusal_the_next_build_works() -> None:
    quick = BuildLimits(require_bwrap=False, timeout_s=2)
    for script in (
        "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
        "while True:\n    pass\n",
        "raise ValueError('no')\n",
    ):
        with pytest.raises((BuildFailed, Rejected)):
            build_geometry(script, {}, limits=quick)

    geometry = build_geometry(
        "import cadquery as cq\nshow_object(cq.Workplane().box(1, 2, 3))\n", {}, limits=LIMITS
    )

    assert geometry.bbox_mm == (1.0, 2.0, 3.0)


def test_every_build_gives_a_glb_for_the_browser_viewer_in_millimetres_y_up() -> None:
    geometry = build_geometry(
        "import cadquery as cq\nshow_object(cq.Workplane().box(10, 20, 30))\n", {}, limits=LIMITS
    )

    scene = trimesh.load(io.BytesIO(geometry.glb), file_type="glb")

    assert geometry.glb.startswith(b"glTF")
    assert sorted(scene.extents) == pytest.approx([10, 20, 30], abs=0.01)
    assert scene.extents[1] == pytest.approx(30, abs=0.01)  # +Z of the part is +Y in glTF


@pytest.mark.parametrize(
    "shown, reason",
    [
        (
            "cq.Workplane().box(10, 10, 1e-6)",
            "the script produced a degenerate solid, 10 x 10 x 0 mm: every side must be at "
            "least 0.01 mm",
        ),
        (
            "cq.Workplane().box(5, 5, 5).union(cq.Workplane().box(5, 5, 5).translate((20, 0, 0)))",
            "the script shows 2 solids; a part must be one solid",
        ),
        ("cq.Workplane()", "the script's result contains no solid"),
    ],
    ids=["zero-thickness", "two-boxes", "empty"],
)
def test_a_degenerate_several_body_or_empty_result_is_rejected(shown: str, reason: str) -> None:
    script = f"import cadquery as cq\nshow_object({shown})\n"

    with pytest.raises(Rejected) as refusal:
        build_geometry(script, {}, limits=LIMITS)

    assert str(refusal.value).startswith(reason)


@needs_bwrap
def test_a_fork_bomb_is_stopped_by_the_process_limit_within_seconds() -> None:
    # As root RLIMIT_NPROC only binds because the build runs as a uid of its own.
    limits = BuildLimits(require_bwrap=True, max_processes=32, timeout_s=60, cpu_s=60)
    seen: list[int] = []
    done = threading.Event()

    def count_build_tasks() -> None:  # the threads of each build uid, as the kernel sees them
        while not done.is_set():
            # Per uid: a build in another test process (pytest-xdist) runs under a uid of its own.
            per_uid = Counter(uid for uid in _task_uids() if uid >= sandbox.BUILD_UID_BASE)
            seen.append(max(per_uid.values(), default=0))
            time.sleep(0.01)

    sampler = threading.Thread(target=count_build_tasks)
    sampler.start()
    started = time.monotonic()
    try:
        with pytest.raises(BuildFailed, match=r"too many processes or threads \(limit 32\)"):
            build_geometry("import os\nwhile True:\n    os.fork()\n", {}, limits=limits)
    finally:
        done.set()
        sampler.join()
    elapsed = time.monotonic() - started
    print(f"fork bomb stopped after {elapsed:.1f} s, at most {max(seen)} tasks of the build uid")
    assert elapsed < 20
    if os.geteuid() == 0:  # not as root the build shares the worker's uid, counted per namespace
        assert 0 < max(seen) <= 32


def _task_uids() -> list[int]:
    uids = []
    for task in Path("/proc").glob("[0-9]*/task/[0-9]*"):
        try:
            status = (task / "status").read_text()
        except OSError:
            continue  # gone meanwhile
        uids += [int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:")]
    return uids


@needs_bwrap
def test_many_files_together_over_the_output_limit_fail_at_that_limit() -> None:
    # Each file is under the per-file limit (RLIMIT_FSIZE); together they are not.
    limits = BuildLimits(require_bwrap=True, output_mb=40)
    script = "for i in range(8):\n    open(f'f{i}.bin', 'wb').write(b'x' * (10 * 1024 * 1024))\n"
    with pytest.raises(BuildFailed, match="more than 40 MB \\(all files together\\)"):
        build_geometry(script, {}, limits=limits)


def test_a_segfault_is_reported_as_one() -> None:
    script = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"
    with pytest.raises(BuildFailed, match=r"segfault \(SIGSEGV\)"):
        build_geometry(script, {}, limits=LIMITS)
