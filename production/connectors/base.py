"""The connector interface and the values it returns."""

from dataclasses import dataclass, field
from typing import Protocol


class ConnectorError(Exception):
    """The machine could not be driven, after retries; recorded as the machine's error."""


class Unreachable(ConnectorError):
    """Connection refused, timed out or a server error: the machine may come back by itself."""


class AuthFailed(ConnectorError):
    """The machine refused our API key (or we have none): someone must fix the settings."""


class Unexpected(ConnectorError):
    """The machine answered something we cannot read or did not expect."""


@dataclass(frozen=True)
class MachineStatus:
    """What a machine says about itself, in our words."""

    state: str  # Machine.State: idle, busy, paused, error or offline
    job_file: str | None = None  # the file it is printing or printed last
    job_state: str | None = None  # printing, paused, complete, cancelled or error
    progress: float | None = None  # percent of job_file
    temperatures: dict[str, float] = field(default_factory=dict)
    error_text: str = ""


class Connector(Protocol):
    def dispatch(self, *, filename: str, gcode: bytes) -> None:
        """Upload the G-code and start it. Raises ConnectorError."""

    def poll(self) -> MachineStatus | None:
        """The machine's state now; None when it cannot tell (manual). Raises ConnectorError."""

    def cancel(self) -> None:
        """Stop the job it is running. Raises ConnectorError."""

    def remove(self, *, filename: str) -> None:
        """Delete a file `dispatch` uploaded; one already gone is no error. The machine refuses
        to delete the file it is printing (ConnectorError). Raises ConnectorError."""
