"""OctoPrint through its REST API: upload to files/local, start, follow /api/job and
/api/printer, cancel, delete the file once its job is over. Authenticated with the X-Api-Key
header."""

from typing import Any
from urllib.parse import quote

from production.connectors.base import ConnectorError, MachineStatus, Unexpected
from production.connectors.http import HttpClient

# OctoPrint's state text -> our machine state (prefix match: "Offline after error: ...").
BUSY = ("Printing", "Starting", "Finishing", "Cancelling", "Pausing", "Resuming", "Sending")


def machine_state(text: str) -> str:
    if text.startswith(BUSY):
        return "busy"
    if text.startswith("Paused"):
        return "paused"
    if text.startswith("Operational"):
        return "idle"
    if text.startswith(("Error", "Offline after error")):
        return "error"
    return "offline"  # Offline, Opening serial connection, Connecting, Detecting ...


def read_status(job: dict[str, Any], printer: dict[str, Any] | None) -> MachineStatus:
    """Our status from the bodies of GET /api/job and GET /api/printer (None: not connected)."""
    try:
        text = str(job["state"])
        state = machine_state(text)
        filename = job["job"]["file"]["name"]
        completion = job["progress"]["completion"]
        progress = None if completion is None else max(0.0, min(100.0, float(completion)))
        temperatures: dict[str, float] = {}
        error = ""
        if printer is not None:
            for name, reading in (printer.get("temperature") or {}).items():
                if isinstance(reading, dict) and reading.get("actual") is not None:
                    temperatures[str(name)] = float(reading["actual"])
            error = str(printer.get("state", {}).get("error") or "")
    except (KeyError, TypeError, ValueError, AttributeError) as failure:
        raise Unexpected(f"OctoPrint status not understood: {failure!r}") from None
    job_state = None
    if filename:
        if state == "busy":
            job_state = "printing"
        elif state == "paused":
            job_state = "paused"
        elif state == "error":
            job_state = "error"
        elif state == "idle" and progress is not None:
            job_state = "complete" if progress >= 100.0 else "cancelled"
    if state in ("error", "offline") and not error:
        error = text
    return MachineStatus(
        state=state,
        job_file=filename or None,
        job_state=job_state,
        progress=progress,
        temperatures=temperatures,
        error_text=error,
    )


class OctoPrint:
    def __init__(self, client: HttpClient) -> None:
        self.client = client

    def dispatch(self, *, filename: str, gcode: bytes) -> None:
        # Upload and start are two requests: a retried upload overwrites the same file, and a
        # start whose answer was lost is recognised by asking what the printer is printing.
        self.client.request(
            "POST",
            "/api/files/local",
            files={"file": (filename, gcode, "application/octet-stream")},
            data={"select": "false", "print": "false"},
            expect=(200, 201),
        )
        try:
            self.client.request(
                "POST",
                f"/api/files/local/{quote(filename)}",
                json={"command": "select", "print": True},
                expect=(200, 204),
            )
        except ConnectorError:
            status = self.poll()
            if status.job_file != filename or status.job_state not in ("printing", "complete"):
                raise

    def poll(self) -> MachineStatus:
        job = self.client.json("GET", "/api/job")
        # 409: the printer is not connected; OctoPrint then has no temperatures to give.
        response = self.client.request("GET", "/api/printer", expect=(200, 409))
        printer = None
        if response.status_code == 200:
            try:
                printer = response.json()
            except ValueError:
                raise Unexpected(f"GET /api/printer: not JSON: {response.text[:200]!r}") from None
        return read_status(job, printer)

    def cancel(self) -> None:
        # 409: nothing is printing, which is what cancelling wants.
        self.client.request("POST", "/api/job", json={"command": "cancel"}, expect=(204, 409))

    def remove(self, *, filename: str) -> None:
        # 404: already gone (deleted by hand, or our earlier request's answer was lost).
        # OctoPrint answers 409 for the file it is printing, and keeps it.
        self.client.request("DELETE", f"/api/files/local/{quote(filename)}", expect=(204, 404))
