"""Telling people and systems about orders: webhooks (HMAC-signed POSTs, retried with
backoff, every attempt logged) and e-mails: to the requester when the order completed, was
rejected or needs a new price confirmed; to the team's approvers when it waits for their
approval or a new price. Links in both are absolute, on the site's address
(microfactory.site_url: the request's, else MF_SITE_URL).

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
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from microfactory.site_url import site_url
from orders.models import Membership, Order, Status, Webhook, WebhookDelivery
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
        "url": order_url(order),
    }


def order_url(order: Order) -> str:
    """The order's page, absolute."""
    return f"{site_url()}/orders/{order.pk}/"


def active_webhooks(organisation_id: int) -> list[Webhook]:
    """The organisation's active webhooks: read once by a caller that moves an order several
    times in one transaction (placing it: submitted, approved, in production)."""
    return list(Webhook.objects.filter(organisation_id=organisation_id, active=True))


def order_changed(
    *, order: Order, previous: str, now: datetime, webhooks: Sequence[Webhook] | None = None
) -> None:
    """An order changed status: webhooks (`webhooks`: the organisation's active ones, when
    the caller read them), and e-mails (sent after the transaction commits) to the requester
    when it completed, was rejected or waits for a new price to be confirmed, and to the
    team's approvers when it waits for their approval or a new price. Call inside the
    transaction that changed it."""
    _emit(
        organisation_id=order.organisation_id,
        event="order.status_changed",
        payload={"order": order_payload(order), "from_status": previous, "at": now.isoformat()},
        webhooks=webhooks,
    )
    from orders import tasks

    order_id = order.pk
    if order.status in (Status.COMPLETED, Status.REJECTED, Status.PRICE_CONFIRMATION):
        transaction.on_commit(lambda: _send(tasks.email_requester, order_id))
    if order.status in (Status.AWAITING_APPROVAL, Status.PRICE_CONFIRMATION):
        transaction.on_commit(lambda: _send(tasks.email_approvers, order_id))


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


def _emit(
    *,
    organisation_id: int,
    event: str,
    payload: dict[str, Any],
    webhooks: Sequence[Webhook] | None = None,
) -> list[int]:
    ids = []
    for webhook in active_webhooks(organisation_id) if webhooks is None else webhooks:
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
            f"{order_url(order)}\n"
        )
    elif order.status == Status.REJECTED:
        subject = f"Order {order.number} was rejected"
        body = (
            f"Your order {order.number} {order.reference} was rejected.\n\n"
            f"Reason: {order.reason}\n\n{order_url(order)}\n"
        )
    elif order.status == Status.PRICE_CONFIRMATION:
        event = order.events.filter(to_status=Status.PRICE_CONFIRMATION).last()
        subject = f"Order {order.number}: please confirm the new price"
        body = (
            f"Your order {order.number} {order.reference} was priced on an estimate; built, "
            f"it costs more.\n\n{event.reason if event else ''}\n\nNothing is made until "
            f"you (or an approver) confirm or decline: {order_url(order)}\n"
        )
    else:
        return False
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [order.placed_by.email])
    return True


def approvers(order: Order) -> list[str]:
    """The addresses of those who decide on the order: approvers and managers of its
    organisation in its team or in no team (organisation-wide), never its requester."""
    deciders = Membership.objects.filter(
        organisation_id=order.organisation_id,
        role__in=Membership.DECIDERS,
        user__is_active=True,
    ).exclude(user_id=order.placed_by_id)
    if order.team_id is not None:
        deciders = deciders.filter(Q(team_id=order.team_id) | Q(team__isnull=True))
    emails = deciders.exclude(user__email="").values_list("user__email", flat=True)
    return sorted(set(emails))


def email_approvers(*, order_id: int) -> bool:
    """Tell the team's approvers that an order waits for their approval, or for a new price
    to be confirmed (they may decide on it too); False when nobody has an address or there
    is nothing to tell."""
    order = Order.objects.select_related("placed_by", "team").filter(pk=order_id).first()
    if order is None:
        return False
    recipients = approvers(order)
    if not recipients:
        return False
    requester = order.placed_by.get_full_name() or order.placed_by.get_username()
    team = order.team.name if order.team else "your organisation"
    if order.status == Status.AWAITING_APPROVAL:
        event = order.events.filter(to_status=Status.AWAITING_APPROVAL, line=None).last()
        subject = f"Order {order.number} needs your approval"
        body = (
            f"{requester} ordered {order.number} {order.reference} for {team}: "
            f"{order.total_price} {order.currency}.\n\n"
            f"Why it waits: {event.reason if event else 'above the approval threshold'}.\n\n"
            f"Approve or reject it: {order_url(order)}\n"
        )
    elif order.status == Status.PRICE_CONFIRMATION:
        subject = f"Order {order.number}: a new price to confirm"
        event = order.events.filter(to_status=Status.PRICE_CONFIRMATION, line=None).last()
        body = (
            f"{requester}'s order {order.number} {order.reference} for {team} was priced on an "
            f"estimate; built, it costs more.\n\n{event.reason if event else ''}\n\n"
            f"Nothing is made until the requester or an approver confirms or declines: "
            f"{order_url(order)}\n"
        )
    else:
        return False
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    return True
