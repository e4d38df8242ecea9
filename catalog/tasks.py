"""Celery tasks of the catalog: thin wrappers around catalog.previews and catalog.services."""

import dataclasses
from typing import Any

from celery import shared_task
from celery.signals import (
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)


# Warm geometry children (catalog.geometry.warm), one pool per worker process. Configured in
# the main process (a solo pool builds there; prefork children inherit the setting), started
# in each prefork child as it starts, so its first build is warm too, and stopped with it.
@worker_init.connect
def configure_warm_geometry(**kwargs: Any) -> None:
    from django.conf import settings

    from catalog import geometry

    geometry.warm_pool_configure(
        size=settings.MF_GEOMETRY_WARM_POOL, builds_per_child=settings.MF_GEOMETRY_WARM_BUILDS
    )


@worker_process_init.connect
def start_warm_geometry(**kwargs: Any) -> None:
    from catalog import geometry
    from catalog.previews import build_limits

    geometry.warm_pool_prestart(build_limits())


@worker_process_shutdown.connect
@worker_shutdown.connect
def stop_warm_geometry(**kwargs: Any) -> None:
    from catalog import geometry

    geometry.warm_pool_close()


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
