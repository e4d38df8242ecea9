"""Sent mail for developers: with DEBUG on and no EMAIL_HOST (`make run`), e-mails are kept
as .eml files in MAIL_DIR (var/mail/) by MailDirBackend, and staff read them on /dev/mail/.

The web and worker processes both send mail (a completion is noticed by a beat task, an
approval request by the web): files in one directory are what both can write and the web
can read back, without an SMTP server to install.
"""

import email
import email.policy
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage as ParsedMessage
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


class MailDirBackend(BaseEmailBackend):
    """Writes each message to MAIL_DIR as `<nanoseconds>-<random>.eml` (names sort by time)
    and logs a line saying where to read it."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        directory = Path(settings.MAIL_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
            # Written under a temporary name, then renamed: the page never reads half a file.
            partial = directory / f".{name}.partial"
            partial.write_bytes(message.message().as_bytes())
            partial.rename(directory / name)
            logger.info(
                "mail to %s: %s (kept in %s; read it on /dev/mail/)",
                ", ".join(message.recipients()),
                message.subject,
                directory / name,
            )
        return len(email_messages)


@dataclass(frozen=True)
class SentMail:
    name: str
    sent_at: datetime
    sender: str
    recipients: str
    subject: str
    body: str


def sent_mail(directory: Path, *, limit: int) -> list[SentMail]:
    """The newest `limit` messages kept in `directory`, newest first."""
    if not directory.is_dir():
        return []
    paths = sorted(directory.glob("*.eml"), reverse=True)[:limit]
    found = []
    for path in paths:
        try:
            parsed: Any = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        except OSError:  # removed meanwhile
            continue
        assert isinstance(parsed, ParsedMessage)
        part = parsed.get_body(preferencelist=("plain", "html"))
        nanoseconds = path.name.split("-", 1)[0]
        found.append(
            SentMail(
                name=path.name,
                sent_at=datetime.fromtimestamp(
                    int(nanoseconds) / 1e9 if nanoseconds.isdigit() else path.stat().st_mtime,
                    tz=UTC,
                ),
                sender=str(parsed.get("From", "")),
                recipients=", ".join(
                    str(parsed[field]) for field in ("To", "Cc") if parsed.get(field)
                ),
                subject=str(parsed.get("Subject", "")),
                body=part.get_content() if part is not None else "",
            )
        )
    return found


@require_GET
@login_required
def dev_mail(request: HttpRequest) -> HttpResponse:
    """Staff only, and only with DEBUG on: the mail the site sent, newest first. Elsewhere
    the page does not exist (404)."""
    if not settings.DEBUG or not request.user.is_staff:
        raise Http404("no such page")
    directory = Path(settings.MAIL_DIR)
    context = {
        "messages_sent": sent_mail(directory, limit=settings.MAIL_VIEWER_LIMIT),
        "directory": directory,
        "backend": settings.EMAIL_BACKEND,
        "kept_here": settings.EMAIL_BACKEND == f"{__name__}.MailDirBackend",
    }
    return render(request, "microfactory/dev_mail.html", context)
