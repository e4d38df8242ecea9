"""Celery tasks of orders: thin wrappers around orders.services and orders.notifications."""

from celery import shared_task
from django.utils import timezone


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    """One attempt at one webhook delivery; the next attempt is queued with backoff."""
    from orders.notifications import webhook_attempt

    retry_in = webhook_attempt(delivery_id=delivery_id)
    if retry_in is not None:
        deliver_webhook.apply_async(args=(delivery_id,), countdown=retry_in)


@shared_task(
    acks_late=True, ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5
)
def email_requester(order_id: int) -> None:
    from orders.notifications import email_requester as send

    send(order_id=order_id)


@shared_task(ignore_result=True)
def follow_jobs() -> int:
    """Periodic: job webhooks and order status changes from job events not followed yet;
    lost webhooks."""
    from orders.notifications import webhooks_resend_lost
    from orders.services import orders_follow_jobs

    now = timezone.now()
    handled = orders_follow_jobs(now=now)
    webhooks_resend_lost(now=now)
    return handled


@shared_task(ignore_result=True)
def follow_orders_in_production() -> int:
    """Periodic, slower: re-evaluate every order still in production (the safety net)."""
    from orders.services import orders_follow_in_production

    return orders_follow_in_production(now=timezone.now())


@shared_task(
    acks_late=True, ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5
)
def email_approvers(order_id: int) -> None:
    from orders.notifications import email_approvers as send

    send(order_id=order_id)
