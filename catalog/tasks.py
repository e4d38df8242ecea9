"""Celery tasks of the catalog: thin wrappers around catalog.previews and catalog.services."""

import dataclasses

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


@shared_task(
    acks_late=True,  # safe: revision_estimator_fit keeps a result only for the fit it claimed
    reject_on_worker_lost=True,
    ignore_result=True,
)
def fit_estimator(revision_id: int) -> str:
    """Measure a published revision's sample configurations and fit its geometry estimator
    (queue `estimators`)."""
    from django.conf import settings

    from catalog.previews import build_limits
    from catalog.services import revision_estimator_fit

    timeout = settings.CATALOG_ESTIMATOR_FIT_TIMEOUT_S
    limits = build_limits(timeout_s=timeout)
    limits = dataclasses.replace(limits, cpu_s=timeout)
    return revision_estimator_fit(revision_id=revision_id, limits=limits)
