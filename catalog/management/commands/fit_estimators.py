"""Fit the geometry estimators of published revisions: `manage.py fit_estimators`.

Publishing queues the fit by itself; this is for revisions published before estimators
existed, a fit that failed or was lost with the broker, and a new geometry engine (--all).
"""

import dataclasses
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from catalog.models import PartRevision, RevisionEstimator
from catalog.previews import build_limits
from catalog.services import revision_estimator_fit, revision_estimator_queue


class Command(BaseCommand):
    help = (
        "Queue (or with --now, run here) the estimator fit of every published revision that "
        "has no ready estimator; with --all, of every published revision."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="fit ready estimators again too")
        parser.add_argument(
            "--now", action="store_true", help="measure and fit in this process, one at a time"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        revisions = PartRevision.objects.filter(published_at__isnull=False).select_related("family")
        if not options["all"]:
            revisions = revisions.exclude(estimator__status=RevisionEstimator.Status.READY)
        timeout = settings.CATALOG_ESTIMATOR_FIT_TIMEOUT_S
        limits = dataclasses.replace(build_limits(timeout_s=timeout), cpu_s=timeout)
        for revision in revisions.order_by("family__slug", "number"):
            with transaction.atomic():
                revision_estimator_queue(
                    revision=revision, now=timezone.now(), send=not options["now"]
                )
            if not options["now"]:
                self.stdout.write(f"{revision.label}: queued")
                continue
            status = revision_estimator_fit(revision_id=revision.pk, limits=limits)
            fit = RevisionEstimator.objects.get(revision=revision)
            detail = fit.message or (
                f"{fit.samples} samples, volume error median {fit.median_error:.1%}, "
                f"worst {fit.worst_error:.1%}"
            )
            self.stdout.write(f"{revision.label}: {status} ({detail})")
