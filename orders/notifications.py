"""Telling people and systems about orders: webhooks (HMAC-signed POSTs, retried with
backoff, every attempt logged) and e-mails to the requester.

Deliveries are rows written in the transaction that changed the order (an outbox): the
Celery task that sends one is queued only after that transaction commits, and a periodic
sweep re-queues any whose task was lost. Delivery is at least once; receivers deduplicate
on the X-Microfactory-Delivery header.
"""

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from orders.models import Order, Status, Webhook, WebhookDelivery
from production.public import JobEventNotice

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Microfactory-Signature"
TIMESTAMP_HEADER = "X-Microfactory-Timestamp"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of "<timestamp>.<body>" under the webhook's secret.
    Receivers recompute it and compare with hmac.compare_digest, and refuse old timestamps."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def order_payload(order: Order) -> dict[str, Any]:
    return {
        "id": order.pk,
        "number": order.number,
        "reference": order.reference,
        "status": order.status,
        "reason": order.reason,
        "total_price": str(order.total_price),
        "currency": order.currency,
    }


def order_changed(*, order: Order, previous: str, now: datetime) -> None:
    """An order changed status: webhooks, and an e-mail when it completed, was rejected or
    waits for the requester to confirm a new price. Call inside the transaction that changed
    it."""
    _emit(
        organisation_id=order.organisation_id,
        event="order.status_changed",
        payload={"order": order_payload(order), "from_status": previous, "at": now.isoformat()},
    )
    if order.status in (Status.COMPLETED, Status.REJECTED, Status.PRICE_CONFIRMATION):
        from orders import tasks

        order_id = order.pk
        transaction.on_commit(lambda: _send(tasks.email_requester, order_id))


def job_changed(*, notice: JobEventNotice, now: datetime) -> None:
    """A job of an order changed status (a production job event): webhooks. Call inside the
    transaction that claimed the event."""
    order = Order.objects.get(pk=notice.order_id)
    _emit(
        organisation_id=order.organisation_id,
        event="job.status_changed",
        payload={
            "job": {
                "id": notice.job_id,
                "number": notice.job_number,
                "status": notice.to_status,
                "line": notice.line_id,
                "quantity": notice.quantity,
            },
            "order": {"id": order.pk, "number": order.number, "reference": order.reference},
            "from_status": notice.from_status,
            "step": notice.step,
            "message": notice.message,
            "at": notice.finished_at.isoformat(),
        },
    )


def _emit(*, organisation_id: int, event: str, payload: dict[str, Any]) -> list[int]:
    ids = []
    for webhook in Webhook.objects.filter(organisation_id=organisation_id, active=True):
        delivery = WebhookDelivery.objects.create(
            webhook=webhook,
            event=event,
            payload={"event": event, **payload},
            next_attempt_at=timezone.now(),
        )
        ids.append(delivery.pk)
    if ids:
        from orders import tasks

        def send_all() -> None:
            for pk in ids:
                _send(tasks.deliver_webhook, pk)

        transaction.on_commit(send_all)
    return ids


def _send(task: Any, object_id: int, countdown: float | None = None) -> None:
    try:
        task.apply_async(args=[object_id], countdown=countdown)
    except OperationalError as error:  # the periodic sweep sends it once the broker is back
        logger.warning("could not queue %s(%s): %s", task.name, object_id, error)


def backoff_s(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: doubling, capped."""
    base: float = settings.ORDER_WEBHOOK_BACKOFF_S
    cap: float = settings.ORDER_WEBHOOK_BACKOFF_MAX_S
    return min(base * 2.0 ** max(0, attempts - 1), cap)


def webhook_attempt(*, delivery_id: int, now: datetime | None = None) -> float | None:
    """POST one delivery once and log the attempt; return seconds until the next try, or
    None when it is done (delivered, out of tries, or gone). Safe to call twice: a delivery
    that is no longer pending is left alone."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return None
    body = json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = str(int((now or timezone.now()).timestamp()))
    request = urllib.request.Request(
        delivery.webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Microfactory-Webhooks/1",
            "X-Microfactory-Event": delivery.event,
            "X-Microfactory-Delivery": str(delivery.pk),
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(delivery.webhook.secret, timestamp, body),
        },
    )
    started = time.monotonic()
    status_code, error = None, ""
    try:
        with urllib.request.urlopen(request, timeout=settings.ORDER_WEBHOOK_TIMEOUT_S) as response:
            status_code = response.status
    except urllib.error.HTTPError as failure:
        status_code, error = failure.code, f"HTTP {failure.code}"
    except (urllib.error.URLError, OSError, ValueError) as failure:
        error = str(getattr(failure, "reason", failure))[:500]
    finished = now or timezone.now()
    attempts = delivery.attempts + 1
    entry = {
        "at": finished.isoformat(),
        "status_code": status_code,
        "error": error,
        "duration_ms": int((time.monotonic() - started) * 1000),
    }
    delivered = status_code is not None and 200 <= status_code < 300
    retry_in = None
    if delivered:
        status, next_at = WebhookDelivery.Status.DELIVERED, None
    elif attempts >= settings.ORDER_WEBHOOK_MAX_ATTEMPTS:
        status, next_at = WebhookDelivery.Status.FAILED, None
    else:
        retry_in = backoff_s(attempts)
        status, next_at = WebhookDelivery.Status.PENDING, finished + timedelta(seconds=retry_in)
    # Claimed on the attempt count we read: a duplicate message's attempt is not logged twice.
    kept = WebhookDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).update(
        attempts=attempts,
        status=status,
        log=[*delivery.log, entry],
        next_attempt_at=next_at,
        delivered_at=finished if delivered else None,
    )
    return retry_in if kept else None


def webhooks_resend_lost(*, now: datetime) -> list[int]:
    """Queue pending deliveries whose retry is overdue by more than a minute (task lost)."""
    overdue = list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at__lt=now - timedelta(seconds=60),
        ).values_list("pk", flat=True)[:500]
    )
    from orders import tasks

    for pk in overdue:
        _send(tasks.deliver_webhook, pk)
    return overdue


def email_requester(*, order_id: int) -> bool:
    """Tell the requester their order completed, was rejected or needs a new price confirmed;
    False when there is no address or nothing to tell."""
    order = Order.objects.select_related("placed_by").filter(pk=order_id).first()
    if order is None or not order.placed_by.email:
        return False
    if order.status == Status.COMPLETED:
        subject = f"Order {order.number} is complete"
        body = (
            f"Your order {order.number} {order.reference} is complete: every part is made.\n\n"
            f"{settings.SITE_URL}/orders/{order.pk}/\n"
        )
    elif order.status == Status.REJECTED:
        subject = f"Order {order.number} was rejected"
        body = (
            f"Your order {order.number} {order.reference} was rejected.\n\n"
            f"Reason: {order.reason}\n\n{settings.SITE_URL}/orders/{order.pk}/\n"
        )
    elif order.status == Status.PRICE_CONFIRMATION:
        event = order.events.filter(to_status=Status.PRICE_CONFIRMATION).last()
        subject = f"Order {order.number}: please confirm the new price"
        body = (
            f"Your order {order.number} {order.reference} was priced on an estimate; built, "
            f"it costs more.\n\n{event.reason if event else ''}\n\nNothing is made until "
            f"you (or an approver) confirm or decline: {settings.SITE_URL}/orders/{order.pk}/\n"
        )
    else:
        return False
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [order.placed_by.email])
    return True
