"""A day at a small floor with known answers for the dashboard (tests/production/
test_dashboards.py and the browser test). Every move goes through production.lifecycle with
its own time, so the events are the ones the factory would have written.

On 2026-11-02 (UTC), between 08:00 and 16:00 (8 planned hours):
- M1 runs from 07:00, is down (offline) 10:00-12:00, runs again: 6 h run, 2 h down.
  Job A (4 copies, 1350 s each = 1.5 h estimated) runs on it 07:00-09:00 (2 h): QC at 09:30
  passes 3, scraps 1.
- M2: idle, paused 08:00-09:00, waiting for material 09:00-10:00, runs 10:00-13:00 (job F
  fails on it 12:00-13:00), down 13:00-14:00, idle with no work 14:00-16:00.
  Job B (1 copy, PETG) ran on it 06:35-07:00 and waited 3 h for QC (passed 10:00).
- M3 ran job E 02:40-09:30 (no machine events: idle all day for the dashboard).
Job F (placed 11:00, routed 11:10) ran on M2 12:00-13:00 and failed there.
Stages (jobs A, B, E, F that left them on 11-02): traveler ready 30+5+10+10 min, routed
30+30+30+50, awaiting QC 30+180+30: the bottleneck is awaiting QC (4 h).
Lead times (order placed -> QC passed): A 3.5 h, B 4 h, E 8 h: median 4 h, p90 8 h. A was
promised for 09:00 (late), B needed by 11-02 (on time), E has neither: 1 on time of 2.
On 11-03 job C (2 copies of PLA on M1) is scrapped whole at 07:10.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.contrib.auth.models import User

from catalog.models import Material
from orders.models import Order
from production import lifecycle
from production.lifecycle import By
from production.models import Job, JobEvent, Machine, MachineEvent
from tests.builders import make_machine, make_material, make_ready_job

DAY = date(2026, 11, 2)
T0 = datetime(2026, 11, 2, tzinfo=UTC)
HOUR = 3600.0


def at(hours: float, minutes: float = 0, *, day: int = 0) -> datetime:
    return T0 + timedelta(days=day, hours=hours, minutes=minutes)


@dataclass(frozen=True)
class Floor:
    m1: Machine
    m2: Machine
    m3: Machine
    a: Job
    b: Job
    c: Job
    e: Job
    f: Job


def _job(
    user: User,
    *,
    placed: datetime,
    quantity: int = 1,
    estimated_s: float = 600,
    material: Material | None = None,
) -> Job:
    job = make_ready_job(user=user, material=material, estimated_time_s=estimated_s)
    # Back to queued, then through the pipeline with its events, all when it was placed.
    Job.objects.filter(pk=job.pk).update(quantity=quantity, status=Job.Status.QUEUED)
    # Neither promised nor needed by a date unless the scenario says so.
    Order.objects.filter(pk=job.line.order_id).update(
        placed_at=placed, promised_at=None, due_date=None
    )
    # Its first event (and its pipeline, done) at the time its order was placed.
    JobEvent.objects.filter(job=job).update(started_at=placed, finished_at=placed)
    job = Job.objects.get(pk=job.pk)
    for to in lifecycle.PIPELINE[1:]:
        assert lifecycle.job_move(job, to=to, by=By.PIPELINE, step=str(to), actor="t", now=placed)
    return job


def _walk(job: Job, machine: Machine, *moves: tuple[str, datetime, dict[str, object]]) -> None:
    who = {
        Job.Status.ROUTED: By.ROUTER,
        Job.Status.RUNNING: By.OPERATOR,
        Job.Status.AWAITING_QC: By.OPERATOR,
        Job.Status.DONE: By.OPERATOR,
        Job.Status.SCRAPPED: By.OPERATOR,
        Job.Status.FAILED: By.MACHINE,
    }
    for to, when, fields in moves:
        if to == Job.Status.ROUTED:
            fields = {**fields, "machine": machine}
        assert lifecycle.job_move(
            job, to=to, by=who[to], step=str(to), actor="test", now=when, **fields
        )


def _machine(machine: Machine, *moves: tuple[str, datetime, str | None]) -> None:
    for to, when, loss in moves:
        machine.refresh_from_db()
        assert lifecycle.machine_move(machine, to=to, actor="test", now=when, loss=loss)


def build_floor(user: User) -> Floor:
    S = Job.Status
    petg = make_material("petg")
    m1, m2, m3 = make_machine("m1"), make_machine("m2"), make_machine("m3")
    m2.materials_loaded.add(petg)

    a = _job(user, placed=at(6), quantity=4, estimated_s=1350)
    Order.objects.filter(pk=a.line.order_id).update(promised_at=at(9))
    _walk(
        a,
        m1,
        (S.ROUTED, at(6, 30), {}),
        (S.RUNNING, at(7), {"started_at": at(7)}),
        (S.AWAITING_QC, at(9), {"finished_at": at(9)}),
        (S.DONE, at(9, 30), {"qc_passed": 3, "qc_scrapped": 1}),
    )
    b = _job(user, placed=at(6), material=petg)
    Order.objects.filter(pk=b.line.order_id).update(due_date=DAY)
    _walk(
        b,
        m2,
        (S.ROUTED, at(6, 5), {}),
        (S.RUNNING, at(6, 35), {"started_at": at(6, 35)}),
        (S.AWAITING_QC, at(7), {"finished_at": at(7)}),
        (S.DONE, at(10), {"qc_passed": 1}),
    )
    e = _job(user, placed=at(2))
    _walk(
        e,
        m3,
        (S.ROUTED, at(2, 10), {}),
        (S.RUNNING, at(2, 40), {"started_at": at(2, 40)}),
        (S.AWAITING_QC, at(9, 30), {"finished_at": at(9, 30)}),
        (S.DONE, at(10), {"qc_passed": 1}),
    )
    f = _job(user, placed=at(11))
    _walk(
        f,
        m2,
        (S.ROUTED, at(11, 10), {}),
        (S.RUNNING, at(12), {"started_at": at(12)}),
        (S.FAILED, at(13), {"reason": "nozzle clogged"}),
    )
    c = _job(user, placed=at(6, day=1), quantity=2)
    _walk(
        c,
        m1,
        (S.ROUTED, at(6, 10, day=1), {}),
        (S.RUNNING, at(6, 20, day=1), {"started_at": at(6, 20, day=1)}),
        (S.AWAITING_QC, at(7, day=1), {"finished_at": at(7, day=1)}),
        (S.SCRAPPED, at(7, 10, day=1), {"qc_scrapped": 2}),
    )

    State = Machine.State
    _machine(
        m1, (State.BUSY, at(7), None), (State.OFFLINE, at(10), None), (State.BUSY, at(12), None)
    )
    _machine(
        m2,
        (State.BUSY, at(6, 35), None),
        (State.IDLE, at(7), None),
        (State.PAUSED, at(8), None),
        (State.IDLE, at(9), MachineEvent.Loss.MATERIAL),
        (State.BUSY, at(10), None),
        (State.ERROR, at(13), None),
        (State.IDLE, at(14), None),
    )
    return Floor(m1=m1, m2=m2, m3=m3, a=a, b=b, c=c, e=e, f=f)
