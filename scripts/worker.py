"""`make worker`: one more Celery worker, for the factory that `make run` is running here.

    .venv/bin/python scripts/worker.py [CELERY WORKER OPTIONS ...]

The worker sees the environment `make run` gives its processes (this one, then `.env`,
DEBUG=true unless set: scripts/run.py's `environment()`), so it uses the same database. Its
Redis:

- REDIS_URL, when set (in the environment or `.env`);
- otherwise the Redis of the `make run` going on in this checkout, from the var/run.json it
  writes (var/ is MF_VAR_DIR when set), once that run is alive and its Redis answers;
- otherwise none: it says why and exits with status 2, rather than start a worker that
  waits for a Redis that is not there (or joins some other one on the default port).

Joining a `make run`, it also takes that run's web address for MF_SITE_URL (unless set), so
the links it prints (e-mails, travelers) point at the port the site runs on.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (scripts/run.py, beside this file)

HOW = (
    "start `make run` in another terminal first, or name a Redis: "
    "make worker REDIS_URL=redis://HOST:PORT/0"
)


class NoRedis(Exception):
    """Why there is no Redis to join."""


def run_is_alive(pid: int) -> bool:
    """A live scripts/run.py, not whatever process reuses the pid of one that died."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return run.alive(pid) and any(part.endswith(b"run.py") for part in command)


def redis_of_make_run(var_dir: Path) -> str:
    """The URL of the Redis the live `make run` of this checkout uses; else NoRedis."""
    from redis import Redis
    from redis.exceptions import RedisError

    path = var_dir / "run.json"
    shown = run.relative(path)
    try:
        record = json.loads(path.read_text())
        pid, url = int(record["pid"]), str(record["redis_url"])
    except FileNotFoundError:
        raise NoRedis(f"no `make run` is running in this checkout (no {shown})") from None
    except (OSError, ValueError, KeyError, TypeError) as failure:
        raise NoRedis(f"{shown} cannot be read ({failure!r})") from None
    if not run_is_alive(pid):
        raise NoRedis(f"the `make run` that wrote {shown} (pid {pid}) is no longer running")
    try:
        Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except RedisError as failure:
        why = f"the Redis of `make run` (pid {pid}) at {url} does not answer: {failure}"
        raise NoRedis(why) from None
    return url


def web_url_of_make_run(var_dir: Path) -> str:
    """The web address var/run.json names (`http://127.0.0.1:PORT`), or "" when unknown."""
    try:
        return str(json.loads((var_dir / "run.json").read_text())["web_url"]).rstrip("/")
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def main(argv: list[str]) -> int:
    env = run.environment()
    if env.get("REDIS_URL"):
        print(f"worker: Redis from REDIS_URL: {env['REDIS_URL']}", flush=True)
    else:
        var_dir = Path(env.get("MF_VAR_DIR", run.ROOT / "var"))
        try:
            env["REDIS_URL"] = redis_of_make_run(var_dir)
        except NoRedis as why:
            print(f"worker: REDIS_URL is not set and {why}:\n  {HOW}", file=sys.stderr)
            return 2
        print(f"worker: joining the Redis of `make run`: {env['REDIS_URL']}", flush=True)
        site = web_url_of_make_run(var_dir)
        if site:  # its links (e-mails, travelers) point at that run's web server, on its port
            env.setdefault("MF_SITE_URL", site)
    env.setdefault("REMAP_SIGTERM", "SIGQUIT")  # as the Procfile's worker: stops within seconds
    celery = str(run.VENV_BIN / "celery")
    os.chdir(run.ROOT)
    os.execve(celery, [celery, "-A", "microfactory", "worker", *argv], env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
