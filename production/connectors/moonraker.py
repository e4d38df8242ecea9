"""Moonraker (Klipper) through its HTTP API: server/files/upload, printer/print/start,
printer/objects/query (webhooks, print_stats, virtual_sdcard, heaters), printer/print/cancel,
server/files/gcodes/<file> (DELETE) to remove what we uploaded."""

from typing import Any
from urllib.parse import quote, urlencode

from production.connectors.base import ConnectorError, MachineStatus, Unexpected
from production.connectors.http import HttpClient

QUERY = "/printer/objects/query?webhooks&print_stats&virtual_sdcard&extruder&heater_bed"
# print_stats.state -> our machine state; Klipper keeps "complete" until the next print.
STATES = {"printing": "busy", "paused": "paused", "error": "error"}
JOB_STATES = {"printing", "paused", "complete", "cancelled", "error"}


def read_status(body: dict[str, Any]) -> MachineStatus:
    """Our status from the body of GET printer/objects/query."""
    try:
        status = body["result"]["status"]
        klippy = status["webhooks"]["state"]
        stats = status["print_stats"]
        print_state = stats["state"]
        filename = stats.get("filename") or None
        fraction = status["virtual_sdcard"]["progress"]
        progress = max(0.0, min(100.0, float(fraction) * 100)) if fraction is not None else None
        temperatures = {
            name: float(status[name]["temperature"])
            for name in ("extruder", "heater_bed")
            if isinstance(status.get(name), dict) and status[name].get("temperature") is not None
        }
        klippy_message = str(status["webhooks"].get("state_message") or "")
        print_message = str(stats.get("message") or "")
    except (KeyError, TypeError, ValueError, AttributeError) as failure:
        raise Unexpected(f"Moonraker status not understood: {failure!r}") from None
    if klippy != "ready":
        state = "error" if klippy in ("shutdown", "error") else "offline"
        error = klippy_message or f"Klipper is {klippy}"
    else:
        state = STATES.get(print_state, "idle")
        error = print_message if print_state == "error" else ""
    return MachineStatus(
        state=state,
        job_file=filename,
        job_state=print_state if filename and print_state in JOB_STATES else None,
        progress=progress,
        temperatures=temperatures,
        error_text=error,
    )


class Moonraker:
    def __init__(self, client: HttpClient) -> None:
        self.client = client

    def dispatch(self, *, filename: str, gcode: bytes) -> None:
        self.client.request(
            "POST",
            "/server/files/upload",
            files={"file": (filename, gcode, "application/octet-stream")},
            data={"root": "gcodes"},
            expect=(200, 201),
        )
        try:
            self.client.request("POST", "/printer/print/start?" + urlencode({"filename": filename}))
        except ConnectorError:
            status = self.poll()
            if status.job_file != filename or status.job_state not in ("printing", "complete"):
                raise

    def poll(self) -> MachineStatus:
        return read_status(self.client.json("GET", QUERY))

    def cancel(self) -> None:
        self.client.request("POST", "/printer/print/cancel")

    def remove(self, *, filename: str) -> None:
        # 404: already gone. Moonraker refuses to delete the file Klipper is printing.
        self.client.request("DELETE", f"/server/files/gcodes/{quote(filename)}", expect=(200, 404))
