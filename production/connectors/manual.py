"""A machine an operator drives from the station: nothing to send, nothing to ask."""

from production.connectors.base import MachineStatus


class Manual:
    def dispatch(self, *, filename: str, gcode: bytes) -> None:
        """The job waits on the operator's list; the station starts and finishes it."""

    def poll(self) -> MachineStatus | None:
        return None

    def cancel(self) -> None:
        """The operator stops the machine by hand."""

    def remove(self, *, filename: str) -> None:
        """Nothing was uploaded."""
