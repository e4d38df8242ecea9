"""Webhooks (signed, retried with backoff, logged) and e-mails, against a real HTTP receiver
on 127.0.0.1."""

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest.mock import patch

import pytest
from django.core import mail
from django.utils import timezone

from orders.models import Status, Webhook, WebhookDelivery
from orders.notifications import email_requester, signature, webhook_attempt
from orders.services import order_cancel, orders_follow_jobs
from orders.tasks import deliver_webhook
from production.models import Job, JobEvent
from tests.builders import make_machine, make_order, make_part

pytestmark = pytest.mark.django_db


class Receiver:
    """A webhook endpoint: answers with the queued status codes (then 200), keeps requests."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/microfactory"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def webhook(organisation, receiver):
    return Webhook.objects.create(organisation=organisation, url=receiver.url, secret="s3cret")


@pytest.fixture(autouse=True)
def catalog():
    make_part("block")
    make_machine()


@pytest.fixture(autouse=True)
def _no_pipeline():
    with patch("production.tasks.advance_job.apply_async"):
        yield


def verify(request: dict, secret: str) -> bool:
    timestamp = request["headers"]["X-Microfactory-Timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request["body"], hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(request["headers"]["X-Microfactory-Signature"], f"sha256={expected}")


def test_the_signature_is_hmac_sha256_of_timestamp_and_body():
    assert (
        signature("k", "1700000000", b"{}")
        == "sha256=" + hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    )


def test_an_order_status_change_is_posted_signed(
    user, webhook, receiver, django_capture_on_commit_callbacks
):
    with patch("orders.tasks.deliver_webhook.apply_async") as queued:
        with django_capture_on_commit_callbacks(execute=True):
            order = make_order(user=user)
    deliveries = list(WebhookDelivery.objects.order_by("pk"))
    assert [d.payload["order"]["status"] for d in deliveries] == [
        "submitted",
        "approved",
        "in_production",
    ]
    assert queued.call_count == 3
    json.dumps([call.kwargs["args"] for call in queued.call_args_list])
    assert webhook_attempt(delivery_id=deliveries[0].pk) is None
    request = receiver.requests[0]
    assert verify(request, "s3cret") and not verify(request, "wrong")
    assert request["headers"]["X-Microfactory-Event"] == "order.status_changed"
    assert json.loads(request["body"])["order"]["number"] == order.number
    delivery = WebhookDelivery.objects.get(pk=deliveries[0].pk)
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert delivery.log[0]["status_code"] == 200


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(
    user, webhook, receiver, settings
):
    settings.ORDER_WEBHOOK_BACKOFF_S = 10
    settings.ORDER_WEBHOOK_MAX_ATTEMPTS = 5
    with patch("orders.tasks.deliver_webhook.apply_async"):
        make_order(user=user)
    delivery = WebhookDelivery.objects.order_by("pk").first()
    receiver.answers = [500, 503]
    with patch("orders.tasks.deliver_webhook.apply_async") as requeued:
        deliver_webhook(delivery.pk)  # the task body: 500, retried in 10 s
        assert requeued.call_args.kwargs == {"args": (delivery.pk,), "countdown": 10}
        deliver_webhook(delivery.pk)  # 503, retried in 20 s
        assert requeued.call_args.kwargs["countdown"] == 20
        deliver_webhook(delivery.pk)  # 200: done, nothing more queued
        assert requeued.call_count == 2
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 3
    assert [entry["status_code"] for entry in delivery.log] == [500, 503, 200]
    assert len(receiver.requests) == 3
    assert all(verify(request, "s3cret") for request in receiver.requests)
    # A duplicate message after delivery sends nothing.
    assert webhook_attempt(delivery_id=delivery.pk) is None and len(receiver.requests) == 3


def test_an_unreachable_receiver_fails_after_the_last_attempt(user, organisation, settings):
    settings.ORDER_WEBHOOK_MAX_ATTEMPTS = 2
    settings.ORDER_WEBHOOK_TIMEOUT_S = 2
    closed = Receiver()
    url = closed.url
    closed.close()  # nothing listens there any more
    Webhook.objects.create(organisation=organisation, url=url, secret="x")
    with patch("orders.tasks.deliver_webhook.apply_async"):
        make_order(user=user)
    delivery = WebhookDelivery.objects.order_by("pk").first()
    assert webhook_attempt(delivery_id=delivery.pk) is not None
    assert webhook_attempt(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 2
    assert all(entry["status_code"] is None and entry["error"] for entry in delivery.log)


def test_job_changes_become_webhooks_and_complete_the_order(
    user, webhook, receiver, django_capture_on_commit_callbacks
):
    user.email = "req@example.com"
    user.save()
    with patch("orders.tasks.deliver_webhook.apply_async"):
        order = make_order(user=user)
    job = Job.objects.get(line__order=order)
    now = timezone.now()
    JobEvent.objects.create(
        job=job,
        step="qc",
        from_status="awaiting_qc",
        to_status="done",
        actor="station",
        started_at=now,
        finished_at=now,
        duration_ms=0,
    )
    Job.objects.filter(pk=job.pk).update(status="done", qc_passed=job.quantity)
    with (
        patch("orders.tasks.deliver_webhook.apply_async"),
        patch("orders.tasks.email_requester.apply_async") as email,
    ):
        with django_capture_on_commit_callbacks(execute=True):
            handled = orders_follow_jobs(now=now)
        assert orders_follow_jobs(now=now + timedelta(seconds=10)) == 0  # each event once
    assert handled == 2  # the order's "queued" event and the QC one
    order.refresh_from_db()
    assert order.status == Status.COMPLETED
    events = list(WebhookDelivery.objects.order_by("pk").values_list("event", "payload"))
    job_events = [p for e, p in events if e == "job.status_changed"]
    assert [p["job"]["status"] for p in job_events] == ["queued", "done"]
    assert events[-1][1]["order"]["status"] == "completed"
    assert email.call_args.kwargs["args"] == [order.pk]
    assert email_requester(order_id=order.pk)
    assert mail.outbox[-1].to == ["req@example.com"]
    assert order.number in mail.outbox[-1].subject and "complete" in mail.outbox[-1].subject


def test_a_rejected_order_is_mailed_with_its_reason(user):
    user.email = "req@example.com"
    user.save()
    order = make_order(user=user)
    Job.objects.filter(line__order=order).update(status="rejected", reason="too thin")
    from orders.services import order_follow_jobs

    with patch("orders.tasks.email_requester.apply_async"):
        order_follow_jobs(order_id=order.pk, now=timezone.now())
    assert email_requester(order_id=order.pk)
    assert "rejected" in mail.outbox[-1].subject and "too thin" in mail.outbox[-1].body


def test_no_mail_for_a_cancelled_order(user):
    user.email = "req@example.com"
    user.save()
    order = order_cancel(order=make_order(user=user), user=user)
    assert not email_requester(order_id=order.pk)
