"""Celery tasks of the catalog: thin wrappers around catalog.previews."""

from celery import shared_task


@shared_task(
    acks_late=True,  # safe: preview_build keeps a result only for the build it claimed
    reject_on_worker_lost=True,
    ignore_result=True,
)
def build_preview(preview_id: int) -> str:
    """Build one preview in the sandbox (queue `geometry`)."""
    from catalog.previews import preview_build  # the sandbox runner stays out of web imports

    return preview_build(preview_id=preview_id)
