"""An order cancelled while its copies wait on a shared plate (#13): the plate is made again
without them (a new program checked copy by copy, a new map, traveler and bag labels) and
cannot start until it is; a plate left with no copy is cancelled; a plate already running
prints them all the same, marked cancelled, and QC passes them by (neither made nor scrapped).
"""

import pytest
from django.utils import timezone

from microfactory.errors import DomainError
from orders.services import order_cancel
from production import plate_runner, plating
from production.models import Job, Plate, PlateCopy
from tests.builders import make_machine, make_order, make_part, make_user
from tests.production.test_plating import make_plate, plated_job, route, to_the_router

pytestmark = pytest.mark.django_db

Status = Job.Status
Qc = PlateCopy.Qc


@pytest.fixture
def operator(organisation):
    return make_user("op", organisation=organisation, role="operator")


@pytest.mark.cad
def test_a_cancelled_order_comes_off_a_shared_plate_which_is_made_again(user, operator, settings):
    settings.MF_PLATE_BATCH_WINDOW_S = 0
    make_part("block")
    make_machine()
    params = {"width": 12, "height": 4, "hole_d": 4}
    kept_order = make_order(user=user, quantity=3, parameters=params)
    gone_order = make_order(user=user, quantity=2, parameters=params)
    kept, gone = (to_the_router(o.lines.get().jobs.get().pk) for o in (kept_order, gone_order))
    (plate_id,) = plate_runner.plates_plan(actor="test")
    route()
    plate = Plate.objects.get(pk=plate_id)
    assert plate.status == Plate.Status.ROUTED and plate.copies.count() == 5
    before = (plate.gcode_id, plate.traveler_id, plate.labels_id, plate.estimated_time_s)

    order_cancel(order=gone_order, user=user, reason="not needed")

    assert Job.objects.get(pk=gone.pk).status == Status.CANCELLED
    marked = PlateCopy.objects.filter(plate=plate, qc=Qc.CANCELLED)
    assert sorted(marked.values_list("job_id", flat=True)) == [gone.pk, gone.pk]
    assert "made again" in gone.events.get(step="plate-remake").message
    # Not started until it is made again: its program still prints the cancelled copies.
    with pytest.raises(DomainError, match="being made again"):
        plating.plate_start(plate_id=plate.pk, operator=operator, now=timezone.now())

    assert plate_runner.plates_plan(actor="test") == [plate.pk]

    plate.refresh_from_db()
    assert plate.status == Plate.Status.ROUTED  # still on its machine, with its kept job
    copies = list(plate.copies.order_by("number"))
    assert [(c.job_id, c.number) for c in copies] == [(kept.pk, 1), (kept.pk, 2), (kept.pk, 3)]
    assert plate.gcode_id != before[0] and plate.traveler_id not in (None, before[1])
    assert plate.labels_id not in (None, before[2])
    assert plate.estimated_time_s < before[3]
    checked = plate.verification["copies"]
    assert len(checked) == 3 and {c["status"] for c in checked} == {"pass"}
    with plate.labels.file.open("rb") as pdf:
        assert pdf.read(5) == b"%PDF-"
    assert plate.map_svg.count("<path") == 3
    assert "3 copies" in kept.events.get(step="plate-remake").message
    assert plate_runner.plates_plan(actor="test") == []  # nothing more to make again
    plating.plate_start(plate_id=plate.pk, operator=operator, now=timezone.now())
    assert Job.objects.get(pk=kept.pk).status == Status.RUNNING
    assert Job.objects.get(pk=gone.pk).status == Status.CANCELLED


def test_a_plate_left_with_no_copy_is_cancelled_with_its_order(user):
    make_machine()
    job = plated_job(user, quantity=2)
    plate = make_plate([job])
    route()

    order_cancel(order=job.line.order, user=user, reason="wrong size")

    plate.refresh_from_db()
    assert plate.status == Plate.Status.CANCELLED and "every copy" in plate.reason
    assert set(plate.copies.values_list("qc", flat=True)) == {Qc.CANCELLED}
    assert plate_runner.plates_remake(actor="test") == []


def test_a_running_plate_prints_its_cancelled_copies_and_qc_passes_them_by(user, operator):
    """The order side refuses to cancel a job a machine has started; copies of a job
    cancelled anyway (its plate started while it was being cancelled) are printed, marked."""
    make_machine()
    a, b = plated_job(user, quantity=2), plated_job(user, quantity=1)
    plate = make_plate([a, b])
    route()
    now = timezone.now()
    plating.plate_start(plate_id=plate.pk, operator=operator, now=now)
    with pytest.raises(DomainError, match="a machine has started"):
        order_cancel(order=b.line.order, user=user)

    Job.objects.filter(pk=b.pk).update(status=Status.CANCELLED)  # cancelled as it started
    assert plating.copies_cancel(job_ids=[b.pk], actor="test", now=now, reason="gone") == []

    plate.refresh_from_db()
    assert plate.status == Plate.Status.RUNNING
    (cancelled,) = plate.copies.filter(qc=Qc.CANCELLED)
    assert "printed all the same" in b.events.get(step="plate-remake").message
    plating.plate_finish(plate_id=plate.pk, operator=operator, now=now)
    with pytest.raises(DomainError, match="cancelled with their order"):
        plating.copies_qc(
            plate_id=plate.pk, passed=[cancelled.pk], scrapped=[], reason="",
            operator=operator, now=now,
        )  # fmt: skip
    good = list(plate.copies.filter(job=a).values_list("pk", flat=True))
    plating.copies_qc(
        plate_id=plate.pk, passed=good, scrapped=[], reason="", operator=operator, now=now
    )
    plate.refresh_from_db()
    a.refresh_from_db()
    assert plate.status == Plate.Status.DONE
    assert (a.status, a.qc_passed, a.qc_scrapped) == (Status.DONE, 2, 0)
    assert Job.objects.filter(replaces=b).count() == 0
    assert Job.objects.get(pk=b.pk).qc_passed == 0  # neither made nor scrapped
