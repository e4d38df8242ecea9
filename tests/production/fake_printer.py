"""A scripted HTTP server on loopback that answers like a printer's API from recorded bodies."""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RECORDED = Path(__file__).resolve().parents[1] / "data" / "moonraker"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    delay_s: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    """Per (method, path without query): answers given in turn, the last one repeated."""

    answers: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.answers[(method, path)] = list(answers)

    def next(self, method: str, path: str) -> Answer:
        queue = self.answers.get((method, path.split("?")[0]))
        if not queue:
            return Answer(404, b'{"error": {"code": 404, "message": "Not Found"}}')
        return queue[0] if len(queue) == 1 else queue.pop(0)


def recorded(name: str, status: int = 200, *, job: str = "J-000001") -> Answer:
    """A recorded body; `job` replaces the job number the recording printed."""
    return Answer(status, (RECORDED / name).read_bytes().replace(b"J-000001", job.encode()))


class FakePrinter:
    def __init__(self) -> None:
        self.script = Script()
        script = self.script

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                script.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                answer = script.next(self.command, self.path)
                time.sleep(answer.delay_s)
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [f"{seen.method} {seen.path}" for seen in self.script.seen]
