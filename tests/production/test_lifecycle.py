"""production.lifecycle: the transition table, the one writer of job status and machine state."""

import ast
import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from microfactory.errors import DomainError
from production import lifecycle
from production.lifecycle import CREATED, TRANSITIONS, By
from production.models import Job, JobEvent, Machine, MachineEvent
from tests.builders import make_machine, make_order, make_part, make_user

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
STATUSES = [str(status) for status in Job.Status]


def make_job(*, status: str = Job.Status.QUEUED) -> Job:
    """A job of a one-line order, set to `status` as a fixture (not as a move)."""
    if not Job.objects.exists():
        make_part("block")
        make_order(user=make_user("req"))
    line = Job.objects.order_by("pk").first().line  # type: ignore[union-attr]
    return Job.objects.create(line=line, quantity=1, status=status)


def test_every_status_but_the_ends_has_a_way_on() -> None:
    sources = {source for source, _ in TRANSITIONS}
    ends = {Job.Status.DONE, Job.Status.SCRAPPED, Job.Status.REJECTED, Job.Status.CANCELLED}
    assert set(STATUSES) - sources == ends


def test_the_pipeline_moves_one_step_at_a_time_up_to_the_router() -> None:
    # Up to toolpath_ready: since #19 the traveler is rendered beside routing, and no step
    # moves a job into traveler_ready (the pipeline ended there before).
    assert lifecycle.PIPELINE[-1] == Job.Status.TOOLPATH_READY
    steps = [(a, b) for a, b in zip(lifecycle.PIPELINE, lifecycle.PIPELINE[1:], strict=False)]
    for source, to in steps:
        assert TRANSITIONS[(source, to)] == {By.PIPELINE}
    # No skipping: geometry straight to the toolpath, say.
    assert not lifecycle.may_move(Job.Status.QUEUED, Job.Status.TOOLPATH_READY, By.PIPELINE)
    assert (Job.Status.TOOLPATH_READY, Job.Status.TRAVELER_READY) not in TRANSITIONS


def test_the_router_takes_jobs_with_verified_g_code_and_those_left_in_traveler_ready() -> None:
    for waiting in (Job.Status.TOOLPATH_READY, Job.Status.TRAVELER_READY):
        assert TRANSITIONS[(waiting, Job.Status.ROUTED)] == {By.ROUTER}
        assert TRANSITIONS[(waiting, Job.Status.REJECTED)] >= {By.ROUTER}
    # A job taken back from its machine waits for the router where a new one does.
    for taken_back in lifecycle.NOT_STARTED:
        assert lifecycle.may_move(taken_back, Job.Status.TOOLPATH_READY, By.SYSTEM)
        assert not lifecycle.may_move(taken_back, Job.Status.TRAVELER_READY, By.SYSTEM)


@pytest.mark.parametrize(
    ("source", "to", "by"),
    [
        (Job.Status.DONE, Job.Status.QUEUED, By.OPERATOR),  # nothing leaves an end
        (Job.Status.RUNNING, Job.Status.CANCELLED, By.CUSTOMER),  # too late to cancel
        (Job.Status.AWAITING_QC, Job.Status.DONE, By.MACHINE),  # only people pass QC
        (Job.Status.QUEUED, Job.Status.GEOMETRY_BUILT, By.OPERATOR),  # only the worker builds
        (Job.Status.TRAVELER_READY, Job.Status.ROUTED, By.PIPELINE),  # only the router routes
        (Job.Status.TOOLPATH_READY, Job.Status.ROUTED, By.PIPELINE),
        (Job.Status.FAILED, Job.Status.AWAITING_QC, By.MACHINE),  # resuming is a person's call
    ],
)
def test_some_moves_are_refused_whoever_asks_twice(source: str, to: str, by: By) -> None:
    assert not lifecycle.may_move(source, to, by)


def test_every_move_outside_the_table_is_refused_and_writes_nothing() -> None:
    # An unsaved job: a refusal must be decided before any query.
    job = Job(pk=1, quantity=1)
    refused = 0
    for source, to, by in itertools.product(STATUSES, STATUSES, By):
        if by in TRANSITIONS.get((source, to), frozenset()):
            continue
        job.status = source
        with pytest.raises(DomainError, match=f"cannot go from {source} to {to}"):
            lifecycle.job_move(job, to=to, by=by, step="test", actor="test", now=NOW)
        assert job.status == source
        refused += 1
    allowed = sum(len(who) for (source, _), who in TRANSITIONS.items() if source != CREATED)
    assert refused == len(STATUSES) ** 2 * len(By) - allowed


@pytest.mark.django_db
def test_every_move_in_the_table_is_made_with_its_event() -> None:
    base = make_job()
    for (source, to), roles in sorted(TRANSITIONS.items()):
        if source == CREATED:
            continue
        for by in sorted(roles):
            job = Job.objects.create(line=base.line, quantity=1, status=source)
            assert lifecycle.job_move(
                job, to=to, by=by, step="test", actor=f"{by} actor", now=NOW, message="why"
            )
            stored = Job.objects.get(pk=job.pk)
            assert (stored.status, stored.status_changed_at) == (to, NOW)
            event = JobEvent.objects.get(job=job)
            assert (event.from_status, event.to_status, event.actor) == (source, to, f"{by} actor")
            assert event.message == "why"


@pytest.mark.django_db
def test_a_stale_move_loses_and_writes_nothing() -> None:
    job = make_job(status=Job.Status.ROUTED)
    first, second = Job.objects.get(pk=job.pk), Job.objects.get(pk=job.pk)
    assert lifecycle.job_move(first, to=Job.Status.DISPATCHED, by=By.MACHINE, step="dispatch",
                              actor="w1", now=NOW)  # fmt: skip
    assert not lifecycle.job_move(second, to=Job.Status.DISPATCHED, by=By.MACHINE,
                                  step="dispatch", actor="w2", now=NOW)  # fmt: skip
    assert list(JobEvent.objects.filter(job=job).values_list("actor", flat=True)) == ["w1"]
    assert second.status == Job.Status.ROUTED  # the loser's instance is left as it saw it


@pytest.mark.django_db
def test_moves_write_other_fields_in_the_same_update() -> None:
    job = make_job(status=Job.Status.QUEUED)
    lifecycle.job_move(job, to=Job.Status.FAILED, by=By.SYSTEM, step="failure", actor="w",
                       now=NOW, reason="boom", step_started_at=NOW, duration_ms=1500)  # fmt: skip
    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.reason) == (Job.Status.FAILED, "boom")
    assert JobEvent.objects.get(job=job).duration_ms == 1500


@pytest.mark.django_db
def test_a_job_is_created_only_as_the_table_allows() -> None:
    line = make_job().line
    job = lifecycle.job_create(by=By.CUSTOMER, step="order", actor="req", now=NOW,
                               message="1 x collar", line=line, quantity=1)  # fmt: skip
    event = JobEvent.objects.get(job=job)
    assert (event.from_status, event.to_status) == ("", Job.Status.QUEUED)
    with pytest.raises(DomainError):
        lifecycle.job_create(by=By.CUSTOMER, step="order", actor="req", now=NOW, message="",
                             status=Job.Status.DONE, line=line, quantity=1)  # fmt: skip


@pytest.mark.django_db
def test_an_event_without_a_move_is_only_a_measurement() -> None:
    job = make_job(status=Job.Status.AWAITING_QC)
    lifecycle.job_record(job, step="measure", actor="op", now=NOW, message="width 20 mm")
    assert JobEvent.objects.get(job=job).to_status == Job.Status.AWAITING_QC
    with pytest.raises(DomainError):
        lifecycle.job_record(job, step="qc", actor="op", now=NOW, message="passed")


@pytest.mark.django_db
def test_a_machine_state_change_is_an_event_and_a_repeat_is_not() -> None:
    machine = make_machine()
    assert lifecycle.machine_move(machine, to=Machine.State.OFFLINE, actor="silence check",
                                  now=NOW, reason="silent")  # fmt: skip
    assert not lifecycle.machine_move(machine, to=Machine.State.OFFLINE, actor="again", now=NOW)
    event = MachineEvent.objects.get(machine=machine)
    assert (event.from_state, event.to_state, event.reason) == ("idle", "offline", "silent")
    assert Machine.objects.get(pk=machine.pk).state == Machine.State.OFFLINE
    with pytest.raises(DomainError):
        lifecycle.machine_move(machine, to="exploded", actor="x", now=NOW)


# --- nothing else writes them ---------------------------------------------------------------


def _writers(path: Path) -> list[str]:
    """What in one module writes Job.status, JobEvent, Machine.state or MachineEvent."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Attribute) and isinstance(leaf.value, ast.Name):
                        owner = leaf.value.id.lower()
                        if (leaf.attr == "status" and "job" in owner) or (
                            leaf.attr == "state" and "machine" in owner
                        ):
                            found.append(f"{path.name}:{node.lineno} assigns {owner}.{leaf.attr}")
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        chain = ast.unparse(node.func.value)
        keywords = {k.arg for k in node.keywords}
        method = node.func.attr
        if method in ("create", "bulk_create", "update", "get_or_create", "update_or_create"):
            if chain.startswith(("JobEvent.", "MachineEvent.")):
                # Orders claim events they followed (JobEvent.followed_at): not the trail.
                if method != "update" or keywords - {"followed_at"}:
                    found.append(f"{path.name}:{node.lineno} {chain}.{method}")
            elif chain.startswith("Job.") and "status" in keywords:
                found.append(f"{path.name}:{node.lineno} Job status via {method}")
            elif chain.startswith("Machine.") and "state" in keywords:
                found.append(f"{path.name}:{node.lineno} Machine state via {method}")
        if method == "save":
            for keyword in node.keywords:
                if keyword.arg == "update_fields":
                    fields = ast.unparse(keyword.value)
                    if "'status'" in fields and "job" in chain.lower():
                        found.append(f"{path.name}:{node.lineno} saves job status")
                    if "'state'" in fields and "machine" in chain.lower():
                        found.append(f"{path.name}:{node.lineno} saves machine state")
    return found


def test_only_the_lifecycle_module_writes_job_status_and_machine_state() -> None:
    writers: dict[str, list[str]] = {}
    for app in ("catalog", "orders", "production", "microfactory"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            found = _writers(path)
            if found:
                writers[str(path.relative_to(ROOT))] = found
    assert list(writers) == ["production/lifecycle.py"], writers


def test_the_writer_scan_finds_each_kind_of_write(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "job.status = 'done'\n"
        "Job.objects.filter(pk=1).update(status='done')\n"
        "JobEvent.objects.create(job=job)\n"
        "Machine.objects.filter(pk=1).update(state='idle')\n"
        "machine.state = 'idle'\n"
        "job.save(update_fields=['status'])\n"
        "Job.objects.filter(pk=1).update(progress=3)\n"  # not a status write
        "JobEvent.objects.filter(pk=1).update(followed_at=now)\n"  # the orders' claim
        "JobEvent.objects.filter(pk=1).update(to_status='done')\n"
    )
    assert len(_writers(sample)) == 7
