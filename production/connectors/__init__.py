"""Talking to machines: one module per connector, one interface (dispatch, poll, cancel, remove).

`connector_for(machine)` builds the right one from a Machine row. Every network problem
(refused connection, timeout, 5xx, bad API key, a body we cannot read) is retried with backoff
inside the connector and then raised as a `ConnectorError` for the caller to record as the
machine's error: a printer that misbehaves never crashes a worker.
"""

import os
from typing import TYPE_CHECKING

from django.conf import settings

from production.connectors.base import (
    AuthFailed,
    Connector,
    ConnectorError,
    MachineStatus,
    Unexpected,
    Unreachable,
)
from production.connectors.http import HttpClient

if TYPE_CHECKING:
    from production.models import Machine

__all__ = [
    "AuthFailed",
    "Connector",
    "ConnectorError",
    "MachineStatus",
    "Unexpected",
    "Unreachable",
    "connector_for",
]


def connector_for(machine: "Machine") -> Connector:
    """The connector for the machine, with its API key read from the environment."""
    from production.connectors.manual import Manual
    from production.connectors.moonraker import Moonraker
    from production.connectors.octoprint import OctoPrint

    if machine.connector == "manual":
        return Manual()
    if not machine.connector_url:
        raise AuthFailed(f"{machine.name} has no connector URL")
    api_key = ""
    if machine.connector_secret_env:
        api_key = os.environ.get(machine.connector_secret_env, "")
        if not api_key:
            raise AuthFailed(
                f"the environment variable {machine.connector_secret_env} "
                f"(API key of {machine.name}) is not set"
            )
    client = HttpClient(
        machine.connector_url,
        headers={"X-Api-Key": api_key} if api_key else {},
        timeout_s=settings.MF_CONNECTOR_TIMEOUT_S,
        attempts=settings.MF_CONNECTOR_ATTEMPTS,
        backoff_s=settings.MF_CONNECTOR_BACKOFF_S,
    )
    if machine.connector == "octoprint":
        return OctoPrint(client)
    if machine.connector == "moonraker":
        return Moonraker(client)
    raise Unexpected(f"unknown connector {machine.connector!r}")
