"""The reconciler takes a step from a worker gone from the cluster at once, and never from a
live one (production.cluster; the cluster's answers given here, the real broadcast is
exercised by tests/integration/test_faults.py)."""

import time
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.utils import timezone

from production import cluster, services
from production.cluster import ClusterView
from production.models import Job
from tests.builders import make_order, make_part

pytestmark = pytest.mark.django_db

DEAD = "doomed@host/dead0001"
LIVE = "alive@host/live0001"


def view(*holders: str, held: tuple[str, ...] = ()) -> ClusterView:
    return ClusterView(holders=frozenset(holders), held=frozenset(held), asked_at=time.time())


def claimed_job(user, *, holder: str, seconds_ago: float = 30) -> Job:
    job = make_order(user=user).lines.get().jobs.get()
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        status_changed_at=now - timedelta(minutes=5), enqueued_at=now - timedelta(minutes=5)
    )
    job.refresh_from_db()
    assert services.job_claim(
        job=job, actor="worker", holder=holder, now=now - timedelta(seconds=seconds_ago)
    )
    return job


def reconcile(*answers: ClusterView | None) -> tuple[list[int], list[dict]]:
    """One pass, the cluster answering `answers` in turn; (ids re-sent, messages sent)."""
    replies = iter(answers)
    sent: list[dict] = []
    with patch("production.tasks.advance_job.apply_async", lambda **kw: sent.append(kw)):
        again = services.jobs_reconcile(now=timezone.now(), ask_cluster=lambda: next(replies, None))
    return again, sent


def test_the_step_of_a_worker_gone_is_sent_again_at_once_and_only_once(user):
    make_part("block")
    dead = claimed_job(user, holder=DEAD)
    live = claimed_job(user, holder=LIVE)
    again, sent = reconcile(view(LIVE), view(LIVE))
    assert again == [dead.pk] and len(sent) == 1
    dead.refresh_from_db()
    # The dead worker's claim ended now, long before MF_JOB_CLAIM_S; the live one's holds.
    assert dead.claim_expires_at <= timezone.now() and dead.claimed_by == DEAD
    assert Job.objects.get(pk=live.pk).claim_expires_at > timezone.now()
    # The message just sent is waiting: the next pass sends nothing.
    assert reconcile(view(LIVE), view(LIVE)) == ([], [])


def test_nothing_is_taken_from_a_worker_that_answers_the_second_question(user):
    make_part("block")
    slow = claimed_job(user, holder=DEAD)
    assert reconcile(view(LIVE), view(LIVE, DEAD)) == ([], [])
    assert Job.objects.get(pk=slow.pk).claim_expires_at > timezone.now()


def test_nothing_is_taken_when_the_cluster_cannot_say(user):
    make_part("block")
    claimed_job(user, holder=DEAD)
    # No answer at all (Redis down, no worker up): the claim waits for MF_JOB_CLAIM_S.
    assert reconcile(None, None) == ([], [])
    # Answered once, silent the second time: nothing is taken either.
    assert reconcile(view(LIVE), None) == ([], [])


def test_a_worker_restarted_under_the_same_name_does_not_answer_for_the_dead_one(user):
    make_part("block")
    dead = claimed_job(user, holder="w1@host/before01")
    again, _ = reconcile(view("w1@host/after002"), view("w1@host/after002"))
    assert again == [dead.pk]


def test_claims_not_taken_by_a_worker_or_taken_after_the_question_are_left_alone(user):
    make_part("block")
    by_hand = claimed_job(user, holder="")  # recorded as its actor: "worker"
    assert by_hand.claimed_by == "worker" and cluster.holder_node("worker") is None
    assert cluster.holder_node("worker w1@host") is None  # a claim from before holders
    late = claimed_job(user, holder=DEAD, seconds_ago=-5)  # after the question was asked
    assert reconcile(view(LIVE), view(LIVE)) == ([], [])
    assert Job.objects.get(pk=late.pk).claim_expires_at > timezone.now()


def test_a_claim_records_this_worker_incarnation():
    holder = cluster.holder_id("w1@host")
    assert holder == f"w1@host/{cluster.INCARNATION}"
    assert cluster.holder_node(holder) == "w1@host"
