"""Settings for Microfactory: one module, every deployment-specific value from the environment.

Defaults give an embedded developer setup (SQLite and media under var/, Redis on loopback);
production sets DATABASE_URL, REDIS_URL, SECRET_KEY, ALLOWED_HOSTS and the SECURE_* switches
(see docker/production.env).
"""

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
VAR_DIR = Path(env.str("MF_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept under var/."""
    key: str = env.str("SECRET_KEY", default="")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(get_random_secret_key())
        path.chmod(0o600)
    return path.read_text().strip()


# Words that mark a key nobody generated: docker/production.env ships one of them on purpose.
_PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "placeholder", "replace", "insecure")


def _refuse_weak_key(key: str, name: str) -> None:
    """Refuse to start in production (DEBUG off) with a key anyone could guess: shorter than 50
    characters, fewer than 5 distinct ones, Django's "django-insecure-" prefix, or a placeholder.
    Sessions, password-reset links and CSRF tokens are signed with it."""
    lowered = key.lower()
    marker = next((m for m in _PLACEHOLDER_MARKERS if m in lowered), None)
    if len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure") or marker:
        reason = f"contains {marker!r}" if marker else "is too short or too simple"
        raise ImproperlyConfigured(
            f"{name} {reason}: with DEBUG off it must be at least 50 random characters, e.g. "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(50))' "
            '(docs/operations.md, "Secret key")'
        )


SECRET_KEY = _secret_key()
# Keys that still verify signatures made before a rotation (comma-separated, oldest last).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
if not DEBUG:
    _refuse_weak_key(SECRET_KEY, "SECRET_KEY")
    for _index, _fallback in enumerate(SECRET_KEY_FALLBACKS):
        _refuse_weak_key(_fallback, f"SECRET_KEY_FALLBACKS[{_index}]")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "catalog",
    "orders",
    "production",
    "microfactory.demo",  # manage.py seed_demo
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "microfactory.limits.RefuseNulMiddleware",  # before the session cookie is looked up
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "microfactory.urls"
WSGI_APPLICATION = "microfactory.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "microfactory" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the workers write the same file: wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
# Persistent connections (#19, point 8, the web tier): a connection is kept this many seconds
# and reused by the process's next requests instead of being opened for each (0: one per
# request, Django's default). Checked before reuse, so one the server dropped is replaced, not
# failed on. Web processes (microfactory/wsgi.py: gunicorn) default to 60: per request, SQLite
# reopened its file (2.2x the CPU of a cached catalog read) and PostgreSQL set a connection up.
# Workers and beat default to 0: with 60 there, the Redis-outage fault test
# (tests/integration/test_faults.py::test_redis_killed_during_an_intake_burst_and_restarted_empty)
# recovered in 73-76 s against 48-56 s at 0 (the reconciler re-enqueued the same jobs at the
# same times; the time went after that, cause not found): not stranded, but over its 60 s limit.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("MF_DB_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("MF_DB_CONN_HEALTH_CHECKS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
# Operators and managers land on their floor view, everyone else on the catalog
# (production.floor_views.after_login).
LOGIN_REDIRECT_URL = "after-login"

LANGUAGE_CODE = "en"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Security switches: off for the embedded developer setup, on in docker/production.env.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # `Authorization: Token <token>`, hashed tokens (microfactory.accounts, django-rest-knox)
        "microfactory.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "microfactory.schema.AutoSchema",  # adds every operation's 4xx
    "EXCEPTION_HANDLER": "microfactory.api.exception_handler",
    # Bodies: at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes, JSON nested at most MF_JSON_MAX_DEPTH.
    "DEFAULT_PARSER_CLASSES": [
        "microfactory.limits.LimitedJSONParser",
        "microfactory.limits.LimitedFormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # ?limit=&offset=: whole numbers (else 400), limit lowered to API_PAGE_MAX_LIMIT.
    "DEFAULT_PAGINATION_CLASS": "microfactory.limits.Pagination",
    "PAGE_SIZE": 50,
}
API_PAGE_MAX_LIMIT = env.int("MF_API_PAGE_MAX_LIMIT", default=200)
# Our deepest body (an order: lines, a line, its parameters) nests 4 levels; json.loads itself
# fails near 1000 (RecursionError), so a body nested deeper than this is refused unread.
MF_JSON_MAX_DEPTH = env.int("MF_JSON_MAX_DEPTH", default=32)
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Microfactory API",
    "DESCRIPTION": "Order spare parts from the digital inventory and follow them through the "
    "factory.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Celery: Redis broker, at-least-once delivery, idempotent steps ------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# A pipeline step's soft time limit (SoftTimeLimitExceeded: the job fails with the reason) and
# hard one (the pool process is killed). production.tasks.advance_job sets both explicitly.
JOB_STEP_TIME_LIMIT_S = env.int("MF_JOB_STEP_TIME_LIMIT_S", default=600)
JOB_STEP_HARD_TIME_LIMIT_S = env.int(
    "MF_JOB_STEP_HARD_TIME_LIMIT_S", default=JOB_STEP_TIME_LIMIT_S + 60
)
if JOB_STEP_HARD_TIME_LIMIT_S <= JOB_STEP_TIME_LIMIT_S:
    raise ImproperlyConfigured(
        "MF_JOB_STEP_HARD_TIME_LIMIT_S must exceed MF_JOB_STEP_TIME_LIMIT_S, or the soft limit "
        "never gets the chance to fail the job with a reason"
    )
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None  # steps record their results in the database, not in Redis
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a message is acknowledged only after its step finished
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # a killed worker's message goes back to the queue
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # CAD steps are long: never hoard messages
# A worker stopped with SIGQUIT (SIGTERM under `make run`: REMAP_SIGTERM in the Procfile) waits
# this long for running steps, then cancels them: their messages go back to the queue.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = env.float("MF_WORKER_SOFT_SHUTDOWN_S", default=10.0)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "routing"
CELERY_TASK_TIME_LIMIT = JOB_STEP_HARD_TIME_LIMIT_S
CELERY_TASK_SOFT_TIME_LIMIT = JOB_STEP_TIME_LIMIT_S
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Must exceed the longest task time limit, or Redis hands a running task to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 2}
CELERY_BEAT_SCHEDULE = {
    "reconcile-stuck-jobs": {
        "task": "production.tasks.reconcile_stuck_jobs",
        # Short: the recovery bound after a fault (docs/operations.md) is about this plus
        # MF_JOB_STALE_AFTER_S; a pass that finds nothing costs a few indexed queries.
        "schedule": env.float("MF_RECONCILE_INTERVAL_S", default=10.0),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Pipeline limits (every size, count and time the system enforces) ---------------------
# The reconciler (docs/operations.md, "The stuck-job reconciler") re-enqueues a job's step
# when: the worker holding its claim is gone from the cluster (production.cluster: the live
# workers answer a broadcast within WORKER_PING_TIMEOUT_S, asked twice); its claim expired
# (the same where the cluster cannot say: the claim lasts JOB_CLAIM_S, by default the hard
# time limit, after which the step cannot be running any more); no message was sent since
# its status changed JOB_STALE_AFTER_S ago (the broker was down, the web process died between
# committing an order and sending its jobs, or a worker between a step and sending the next:
# the normal gap is milliseconds, and a message sent twice is dropped, so this is short); or
# its message, sent JOB_LOST_GRACE_S ago or more and not claimed since, is neither in its
# Redis queue nor reserved by a live worker (the broker lost it, or a dead worker had taken
# it: production.broker reads at most RECONCILE_SCAN_MAX messages per pass). Where the broker
# cannot be read (not Redis, unreachable, longer queues), such a message counts as lost once
# it has waited JOB_QUEUE_WAIT_MAX_S, longer than any healthy backlog. A worker that starts
# makes a pass at once (production.tasks.take_over_from_dead_workers).
JOB_CLAIM_S = env.int("MF_JOB_CLAIM_S", default=JOB_STEP_HARD_TIME_LIMIT_S)
JOB_STALE_AFTER_S = env.int("MF_JOB_STALE_AFTER_S", default=20)
JOB_LOST_GRACE_S = env.int("MF_JOB_LOST_GRACE_S", default=10)
# How long the reconciler waits for the workers' answers (each of at most two questions a
# pass, asked only when a claim or a reserved message is to be judged). A worker answers from
# its main process even while its pool is busy; one that misses both is taken for gone.
WORKER_PING_TIMEOUT_S = env.float("MF_WORKER_PING_TIMEOUT_S", default=1.0)
JOB_QUEUE_WAIT_MAX_S = env.int("MF_JOB_QUEUE_WAIT_MAX_S", default=6 * 3600)
RECONCILE_SCAN_MAX = env.int("MF_RECONCILE_SCAN_MAX", default=20000)
ORDER_MAX_LINES = env.int("MF_ORDER_MAX_LINES", default=50)
ORDER_MAX_QUANTITY = env.int("MF_ORDER_MAX_QUANTITY", default=500)
# Plates (production.plates): copies at least this far apart on the bed, and how many plates one
# plan may hold before it is refused with the number it needs.
PLATE_SPACING_MM = env.float("MF_PLATE_SPACING_MM", default=6.0)
PLATES_MAX_PER_PLAN = env.int("MF_PLATES_MAX_PER_PLAN", default=20)
# Assets (orders.assets): an order for a critical asset that is down is at least "high"
# priority from this many EUR at stake (downtime cost/h x lead time), "urgent" from the second.
MF_DOWNTIME_HIGH_EUR = env.float("MF_DOWNTIME_HIGH_EUR", default=250.0)
MF_DOWNTIME_URGENT_EUR = env.float("MF_DOWNTIME_URGENT_EUR", default=1000.0)
# The most assets and spare parts per asset a team registers (a page lists them all).
MF_ASSETS_PER_TEAM_MAX = env.int("MF_ASSETS_PER_TEAM_MAX", default=500)
MF_ASSET_PARTS_MAX = env.int("MF_ASSET_PARTS_MAX", default=100)
# The sandboxed CadQuery build (catalog.geometry).
GEOMETRY_BUILD_TIMEOUT_S = env.int("MF_GEOMETRY_BUILD_TIMEOUT_S", default=120)
GEOMETRY_BUILD_CPU_S = env.int("MF_GEOMETRY_BUILD_CPU_S", default=120)
GEOMETRY_BUILD_MEMORY_MB = env.int("MF_GEOMETRY_BUILD_MEMORY_MB", default=4096)
GEOMETRY_BUILD_OUTPUT_MB = env.int("MF_GEOMETRY_BUILD_OUTPUT_MB", default=200)  # all files
# Processes and threads of one build; CadQuery itself needs a few (OpenCascade threads).
GEOMETRY_BUILD_MAX_PROCESSES = env.int("MF_GEOMETRY_BUILD_MAX_PROCESSES", default=64)
GEOMETRY_STL_TOLERANCE_MM = env.float("MF_GEOMETRY_STL_TOLERANCE_MM", default=0.05)
GEOMETRY_STL_ANGULAR_TOLERANCE = env.float("MF_GEOMETRY_STL_ANGULAR_TOLERANCE", default=0.2)
# Where bubblewrap is missing: refuse (production) or warn and use process limits only (dev).
GEOMETRY_SANDBOX_REQUIRE_BWRAP = env.bool("MF_GEOMETRY_SANDBOX_REQUIRE_BWRAP", default=not DEBUG)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # WeasyPrint and fontTools narrate every rendering step at INFO.
    "loggers": {
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# Absolute address of this site, for links that leave the page (QR codes on travelers and
# labels, passports, e-mails, webhooks) when there is no request to take it from: Celery tasks
# and commands (microfactory.site_url). `make run` sets it from PORT for all its processes.
SITE_URL = env.str(
    "MF_SITE_URL", default=f"http://127.0.0.1:{env.int('PORT', default=8000)}"
).rstrip("/")
# Within a request, links use the address the request came to (microfactory.site_url).
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.common.CommonMiddleware") + 1,
    "microfactory.site_url.SiteUrlMiddleware",
)

# --- Part passports (production.passport; docs/operations.md, "Passport signing key") ------
# The Ed25519 private key (PKCS#8 PEM) that signs every job's passport. Every web and worker
# process must read the same file. Set: it must exist and hold an Ed25519 key, or nothing
# starts (docker/production.env points at a Docker secret). Unset: one is generated once into
# var/, as SECRET_KEY is, which suits one host; `check --deploy` warns about it.
PASSPORT_KEY_FILE = Path(
    env.str("MF_PASSPORT_KEY_FILE", default="") or VAR_DIR / "passport_ed25519.pem"
)
PASSPORT_KEY_GENERATED = not env.str("MF_PASSPORT_KEY_FILE", default="")
if not PASSPORT_KEY_GENERATED and not PASSPORT_KEY_FILE.is_file():
    raise ImproperlyConfigured(
        f"MF_PASSPORT_KEY_FILE is {PASSPORT_KEY_FILE}, which is not a file: create the key with "
        "`openssl genpkey -algorithm ed25519 -out PATH` or "
        "`MF_PASSPORT_KEY_FILE= python manage.py passport_key --new PATH` "
        '(docs/operations.md, "Passport signing key")'
    )
# Public keys (hex, 64 characters, comma-separated) of keys retired by a rotation: passports
# they signed still verify, marked as signed by a retired key.
PASSPORT_RETIRED_PUBLIC_KEYS = env.list("MF_PASSPORT_RETIRED_PUBLIC_KEYS", default=[])
RECONCILE_BATCH = env.int("MF_RECONCILE_BATCH", default=500)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a Celery worker process in the integration tests sees the rows.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(VAR_DIR / "test-db.sqlite3")

# --- Toolpath engines (production.toolpath)
# The PrusaSlicer CLI, for machines whose toolpath engine is "prusaslicer" (Debian package
# prusa-slicer). Its time limit stays below MF_JOB_STEP_TIME_LIMIT_S, so a slow slice fails
# the job with a reason instead of being killed by Celery.
PRUSASLICER_BINARY = env.str("MF_PRUSASLICER_BINARY", default="prusa-slicer")
PRUSASLICER_TIMEOUT_S = env.float("MF_PRUSASLICER_TIMEOUT_S", default=300.0)
# The builtin slicer's seam (nearest | aligned | corner) and minimum layer time (seconds; a
# quicker layer is slowed down, then the nozzle waits lifted; 0: none), for every job.
SLICER_SEAM = env.str("MF_SLICER_SEAM", default="nearest")
SLICER_MIN_LAYER_TIME_S = env.float("MF_SLICER_MIN_LAYER_TIME_S", default=10.0)
if SLICER_SEAM not in ("nearest", "aligned", "corner"):
    raise ImproperlyConfigured(f"MF_SLICER_SEAM: nearest, aligned or corner, not {SLICER_SEAM!r}")
if SLICER_MIN_LAYER_TIME_S < 0:
    raise ImproperlyConfigured("MF_SLICER_MIN_LAYER_TIME_S cannot be negative")

# --- Machines and routing (production.routing, production.connectors) ---------------------
# A watched machine (networked, or with an agent) silent this long goes offline; its jobs move.
MF_MACHINE_OFFLINE_AFTER_S = env.int("MF_MACHINE_OFFLINE_AFTER_S", default=120)
MF_MACHINE_SWEEP_INTERVAL_S = env.float("MF_MACHINE_SWEEP_INTERVAL_S", default=30.0)
# Telemetry history kept for the dashboard, and the largest report the API accepts.
MF_TELEMETRY_RETENTION_H = env.int("MF_TELEMETRY_RETENTION_H", default=72)
MF_TELEMETRY_MAX_BYTES = env.int("MF_TELEMETRY_MAX_BYTES", default=8192)
# Connectors (OctoPrint, Moonraker): each request's timeout, tries, and the first backoff
# (doubling), then how often connected machines are polled.
MF_CONNECTOR_TIMEOUT_S = env.float("MF_CONNECTOR_TIMEOUT_S", default=10.0)
MF_CONNECTOR_ATTEMPTS = env.int("MF_CONNECTOR_ATTEMPTS", default=3)
MF_CONNECTOR_BACKOFF_S = env.float("MF_CONNECTOR_BACKOFF_S", default=1.0)
MF_CONNECTOR_POLL_S = env.float("MF_CONNECTOR_POLL_S", default=10.0)
# A job sent to a printer that stays idle this long is sent again.
MF_DISPATCH_STALE_S = env.int("MF_DISPATCH_STALE_S", default=120)
# The router: the cost of changing material on a machine, how often waiting jobs are routed
# again, and how many jobs one routing pass plans.
MF_CHANGEOVER_MIN = env.float("MF_CHANGEOVER_MIN", default=15.0)
MF_ROUTE_INTERVAL_S = env.float("MF_ROUTE_INTERVAL_S", default=60.0)
MF_ROUTE_BATCH = env.int("MF_ROUTE_BATCH", default=2000)
# Spools (production.spools): grams a loaded spool keeps back (the router sends a job to a
# machine only if its spool still holds the job's filament plus this), the level under which
# a loaded spool shows as low, and the stock of a material at a site (all its spools) under
# which the station home warns.
MF_SPOOL_RESERVE_G = env.float("MF_SPOOL_RESERVE_G", default=20.0)
MF_SPOOL_LOW_G = env.float("MF_SPOOL_LOW_G", default=100.0)
MF_SPOOL_LOW_STOCK_G = env.float("MF_SPOOL_LOW_STOCK_G", default=1000.0)
for _name in ("MF_SPOOL_RESERVE_G", "MF_SPOOL_LOW_G", "MF_SPOOL_LOW_STOCK_G"):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must be 0 or more grams")
CELERY_BEAT_SCHEDULE["route-waiting-jobs"] = {
    "task": "production.tasks.route_waiting_jobs",
    "schedule": MF_ROUTE_INTERVAL_S,
}
CELERY_BEAT_SCHEDULE["mark-silent-machines-offline"] = {
    "task": "production.tasks.mark_silent_machines_offline",
    "schedule": MF_MACHINE_SWEEP_INTERVAL_S,
}
CELERY_BEAT_SCHEDULE["poll-machines"] = {
    "task": "production.tasks.poll_machines",
    "schedule": MF_CONNECTOR_POLL_S,
}
CELERY_BEAT_SCHEDULE["prune-telemetry"] = {
    "task": "production.tasks.prune_telemetry",
    "schedule": 3600.0,
}

# --- Plates in production (#13: production.plating) -----------------------------------------
# Ready FDM jobs of the same material and process profile wait up to this long for others to
# share a plate with; an urgent, high-priority or expedited order, or one due within
# MF_PLATE_BATCH_DUE_H hours, is never held. 0: plan at once.
MF_PLATE_BATCH_WINDOW_S = env.float("MF_PLATE_BATCH_WINDOW_S", default=180.0)
MF_PLATE_BATCH_DUE_H = env.float("MF_PLATE_BATCH_DUE_H", default=24.0)
# How often beat looks for plates to plan (waiting jobs whose window has passed).
MF_PLATE_PLAN_INTERVAL_S = env.float("MF_PLATE_PLAN_INTERVAL_S", default=30.0)
CELERY_BEAT_SCHEDULE["plan-plates"] = {
    "task": "production.tasks.plan_plates",
    "schedule": MF_PLATE_PLAN_INTERVAL_S,
    "options": {"queue": "toolpath"},  # it slices: never on the routing queue
}

# --- Catalog (catalog.*) ------------------------------------------------------------------
INSTALLED_APPS += ["django_filters"]  # the parts search (catalog.api): filters and their form
# Static models (STEP or STL uploads) larger than this, or meshes with more triangles, are refused.
CATALOG_MODEL_MAX_MB = env.int("MF_CATALOG_MODEL_MAX_MB", default=64)
CATALOG_MODEL_MAX_TRIANGLES = env.int("MF_CATALOG_MODEL_MAX_TRIANGLES", default=1_000_000)
# Customers' own STEP or STL files (orders.uploads): larger files, or meshes with more
# triangles, are refused with the reason before anything is stored or built. At most the
# catalog's limits above (an upload becomes a static revision).
ORDER_UPLOAD_MAX_MB = min(env.int("MF_ORDER_UPLOAD_MAX_MB", default=32), CATALOG_MODEL_MAX_MB)
ORDER_UPLOAD_MAX_TRIANGLES = min(
    env.int("MF_ORDER_UPLOAD_MAX_TRIANGLES", default=500_000), CATALOG_MODEL_MAX_TRIANGLES
)
# Uploads one organisation may add in a day: each is a sandboxed build on the geometry queue.
ORDER_UPLOAD_MAX_PER_DAY = env.int("MF_ORDER_UPLOAD_MAX_PER_DAY", default=50)
# Previews (POST /api/v1/parts/<slug>/previews/): builds one user may have queued or running,
# and how long a queued build may wait before a new request queues it again (task lost).
CATALOG_PREVIEW_MAX_IN_FLIGHT = env.int("MF_CATALOG_PREVIEW_MAX_IN_FLIGHT", default=3)
CATALOG_PREVIEW_STALE_S = env.int(
    "MF_CATALOG_PREVIEW_STALE_S", default=GEOMETRY_BUILD_TIMEOUT_S + 120
)
# The admin's "build with defaults" runs in the web request: a short wall-clock limit.
CATALOG_ADMIN_BUILD_TIMEOUT_S = env.int("MF_CATALOG_ADMIN_BUILD_TIMEOUT_S", default=30)
# The geometry estimator fitted at publish (catalog.estimator): its sample configurations are
# measured in one sandboxed process, this long at most (wall clock and CPU) for all of them.
CATALOG_ESTIMATOR_FIT_TIMEOUT_S = env.int("MF_CATALOG_ESTIMATOR_FIT_TIMEOUT_S", default=900)
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update(
    {
        "PreviewStatusEnum": "catalog.models.PartPreview.Status",
        "PreviewDfmStatusEnum": "production.models.PreviewDfm.Status",
        "CheckStatusEnum": ["pass", "warn", "fail"],  # a DFM check's verdict
    }
)

# --- Validation limits (production.pipeline.validation) ----------------------------------
# Hostile-input limits: bigger files or meshes are rejected before any real work.
VALIDATION_MAX_FILE_MB = env.int("MF_VALIDATION_MAX_FILE_MB", default=100)
VALIDATION_MAX_TRIANGLES = env.int("MF_VALIDATION_MAX_TRIANGLES", default=1_000_000)
VALIDATION_MAX_VERTICES = env.int("MF_VALIDATION_MAX_VERTICES", default=1_000_000)
VALIDATION_TIME_BUDGET_S = env.float("MF_VALIDATION_TIME_BUDGET_S", default=60.0)
VALIDATION_SELF_INTERSECTION_MAX_TRIANGLES = env.int(
    "MF_VALIDATION_SELF_INTERSECTION_MAX_TRIANGLES", default=100_000
)
# Mesh repair: holes whose rim is at most this long are filled automatically.
VALIDATION_MAX_HOLE_PERIMETER_MM = env.float("MF_VALIDATION_MAX_HOLE_PERIMETER_MM", default=10.0)
# FDM printability (docs/validation.md explains each).
VALIDATION_OVERHANG_DEG = env.float("MF_VALIDATION_OVERHANG_DEG", default=45.0)
VALIDATION_BRIDGE_MM = env.float("MF_VALIDATION_BRIDGE_MM", default=15.0)
# Walls under MIN_WALL_FACTOR nozzle widths warn; under MIN_WALL_FAIL_FACTOR they are rejected.
VALIDATION_MIN_WALL_FACTOR = env.float("MF_VALIDATION_MIN_WALL_FACTOR", default=2.0)
VALIDATION_MIN_WALL_FAIL_FACTOR = env.float("MF_VALIDATION_MIN_WALL_FAIL_FACTOR", default=1.0)
VALIDATION_MIN_CONTACT_MM2 = env.float("MF_VALIDATION_MIN_CONTACT_MM2", default=25.0)
VALIDATION_MAX_HEIGHT_TO_BASE = env.float("MF_VALIDATION_MAX_HEIGHT_TO_BASE", default=5.0)
VALIDATION_WALL_SAMPLES = env.int("MF_VALIDATION_WALL_SAMPLES", default=4000)

# --- Ordering (orders.*) -------------------------------------------------------------------
from decimal import Decimal  # noqa: E402

from orders.quoting import Rates  # noqa: E402  (a pure module: no Django import)

INSTALLED_APPS += ["drf_spectacular_sidecar"]  # Swagger UI's files, served at /api/docs/
# The pages' own CSS and scripts, and the npm libraries scripts/build-assets.sh copies to vendor/.
STATICFILES_DIRS = [BASE_DIR / "microfactory" / "static"]
SPECTACULAR_SETTINGS.update(
    {
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
        # Orders and jobs both have a "status": name their enums apart in the schema.
        "ENUM_NAME_OVERRIDES": {
            **SPECTACULAR_SETTINGS.get("ENUM_NAME_OVERRIDES", {}),
            "OrderStatusEnum": "orders.models.Status",
            "JobStatusEnum": "production.models.Job.Status",
            # Two "kind" and two machine "state" fields with different choices: named apart,
            # or one name would stand for both and one list would be wrong.
            "ArtifactKindEnum": "production.models.Artifact.Kind",
            "RevisionKindEnum": "catalog.models.PartRevision.Kind",
            "MachineStateEnum": "production.models.Machine.State",
            "ReportedStateEnum": "production.api.machines.REPORTED_STATES",
            # A revision's `process` and its `processes` list: one enum of the processes.
            "ProcessEnum": "catalog.models.Process",
        },
    }
)
# A retried order with the same Idempotency-Key returns the first order for this long.
ORDER_IDEMPOTENCY_KEY_TTL_H = env.int("MF_ORDER_IDEMPOTENCY_KEY_TTL_H", default=24)
# The instant quote (orders.quoting): every price and rate in one place.
# An estimated quote (no built geometry of the configuration yet) is priced again once its job
# has built the part: a built price more than this share above the quote waits for the
# customer's confirmation before any machine makes it (docs/ordering.md).
ORDER_QUOTE_TOLERANCE = env.float("MF_QUOTE_TOLERANCE", default=0.05)
if not 0 <= ORDER_QUOTE_TOLERANCE <= 1:
    raise ImproperlyConfigured("MF_QUOTE_TOLERANCE is a share between 0 and 1 (0.05 = 5 %)")
# A saved quote (orders.saved_quotes) holds its prices this many days after it was saved: it
# can be ordered at them until then, and is refused after (re-quote it at today's prices).
MF_QUOTE_VALID_DAYS = env.int("MF_QUOTE_VALID_DAYS", default=30)
if MF_QUOTE_VALID_DAYS < 0:
    raise ImproperlyConfigured("MF_QUOTE_VALID_DAYS is a number of days, 0 or more")
ORDER_QUOTE_RATES = Rates(
    currency=env.str("MF_QUOTE_CURRENCY", default="EUR"),
    setup_fee=Decimal(env.str("MF_QUOTE_SETUP_FEE", default="5.00")),
    waste_factor=env.float("MF_QUOTE_WASTE_FACTOR", default=0.15),
    default_hourly_rate=Decimal(env.str("MF_QUOTE_DEFAULT_HOURLY_RATE", default="6.00")),
    deposition_mm3_s=env.float("MF_QUOTE_DEPOSITION_MM3_S", default=16.0),
    layer_height_mm=env.float("MF_QUOTE_LAYER_HEIGHT_MM", default=0.2),
    layer_overhead_s=env.float("MF_QUOTE_LAYER_OVERHEAD_S", default=1.5),
    pipeline_overhead_s=env.float("MF_QUOTE_PIPELINE_OVERHEAD_S", default=900.0),
)
# Quotes on build plates (#13.5, orders.quoting.plate_plan): the machine time a plate costs once
# (heating, homing, purge, clearing the bed), and the plates' spacing and margin as arranged.
from dataclasses import replace  # noqa: E402

ORDER_QUOTE_RATES = replace(
    ORDER_QUOTE_RATES,
    plate_setup_s=env.float("MF_QUOTE_PLATE_SETUP_S", default=300.0),
    plate_spacing_mm=PLATE_SPACING_MM,
)
# Lead times and promises mean "QC passed" (#15.3): after a job's (simulated) finish they allow
# MF_PROMISE_QC_JOB_S (taking the plate off, opening the checklist) plus MF_PROMISE_QC_COPY_S a
# copy (measuring it); orders.quoting.qc_time_s, for the quote and the simulated promise alike.
ORDER_QUOTE_RATES = replace(
    ORDER_QUOTE_RATES,
    qc_job_s=env.float("MF_PROMISE_QC_JOB_S", default=1800.0),
    qc_copy_s=env.float("MF_PROMISE_QC_COPY_S", default=120.0),
)
if ORDER_QUOTE_RATES.qc_job_s < 0 or ORDER_QUOTE_RATES.qc_copy_s < 0:
    raise ImproperlyConfigured("MF_PROMISE_QC_JOB_S and MF_PROMISE_QC_COPY_S are seconds, >= 0")
# "From" prices on the catalog cards (orders.price_from): the quote of each part's default
# configuration, kept this long in the cache (a new revision, estimator or material price is
# a new entry at once).
ORDER_PRICE_FROM_CACHE_S = env.int("MF_ORDER_PRICE_FROM_CACHE_S", default=3600)
# The cost of a job (production.costing): energy tariff, labour rate and how labour minutes
# are read from the station's timestamps. Costs are the factory's business: only its managers
# and staff see them.


def _env_money(name: str, default: str) -> Decimal:
    raw = env.str(name, default=default)
    try:
        value = Decimal(raw)
    except ArithmeticError:
        message = f"{name} must be an amount such as {default}, not {raw!r}"
        raise ImproperlyConfigured(message) from None
    if not value.is_finite() or value < 0:
        raise ImproperlyConfigured(f"{name} must be an amount of zero or more, not {raw!r}")
    return value


MF_ENERGY_EUR_PER_KWH = _env_money("MF_ENERGY_EUR_PER_KWH", "0.30")
MF_LABOUR_EUR_PER_HOUR = _env_money("MF_LABOUR_EUR_PER_HOUR", "45.00")
# Expediting an order (orders.delivery): this share of the order's price, at least the minimum,
# for going to the router as urgent ahead of the work waiting (docs/ordering.md).
MF_EXPEDITE_FEE_PERCENT = _env_money("MF_EXPEDITE_FEE_PERCENT", "25")
MF_EXPEDITE_FEE_MIN = _env_money("MF_EXPEDITE_FEE_MIN", "20.00")
# A station step with no measurable duration (the first tap after a wait) counts this long.
MF_LABOUR_TOUCH_MIN = env.float("MF_LABOUR_TOUCH_MIN", default=2.0)
# Steps closer than this to the operator's previous step on the job are continuous work (the
# gap counts); a longer gap is waiting, and the step counts MF_LABOUR_TOUCH_MIN.
MF_LABOUR_GAP_MAX_MIN = env.float("MF_LABOUR_GAP_MAX_MIN", default=15.0)
# A job made without any station timestamps (or not made yet: the estimate) counts this long.
MF_LABOUR_HANDLING_MIN = env.float("MF_LABOUR_HANDLING_MIN", default=6.0)
# Orders follow their jobs (webhooks, completion) from production's job events this often,
# each event claimed once, at most ORDERS_FOLLOW_BATCH events a pass.
ORDERS_FOLLOW_INTERVAL_S = env.float("MF_ORDERS_FOLLOW_INTERVAL_S", default=5.0)
ORDERS_FOLLOW_BATCH = env.int("MF_ORDERS_FOLLOW_BATCH", default=1000)
CELERY_BEAT_SCHEDULE["orders-follow-jobs"] = {
    "task": "orders.tasks.follow_jobs",
    "schedule": ORDERS_FOLLOW_INTERVAL_S,
}
# The safety net: every order still in production re-evaluated from its jobs this often, so
# none stays there once its jobs have ended, whatever happened to their events.
ORDERS_RECHECK_INTERVAL_S = env.float("MF_ORDERS_RECHECK_INTERVAL_S", default=300.0)
CELERY_BEAT_SCHEDULE["orders-recheck-in-production"] = {
    "task": "orders.tasks.follow_orders_in_production",
    "schedule": ORDERS_RECHECK_INTERVAL_S,
}
# Webhooks: each POST's timeout, how many tries, and the backoff (doubling from the first,
# capped below the Redis visibility timeout so a delayed retry is never delivered twice).
ORDER_WEBHOOK_TIMEOUT_S = env.float("MF_ORDER_WEBHOOK_TIMEOUT_S", default=10.0)
ORDER_WEBHOOK_MAX_ATTEMPTS = env.int("MF_ORDER_WEBHOOK_MAX_ATTEMPTS", default=8)
ORDER_WEBHOOK_BACKOFF_S = env.float("MF_ORDER_WEBHOOK_BACKOFF_S", default=10.0)
ORDER_WEBHOOK_BACKOFF_MAX_S = env.float("MF_ORDER_WEBHOOK_BACKOFF_MAX_S", default=600.0)
# E-mail (orders.notifications: completed, rejected, approval needed, new price to confirm):
# over SMTP when EMAIL_HOST is set; else, with DEBUG on (`make run`), kept as .eml files in
# MF_MAIL_DIR for the staff's /dev/mail/ page (microfactory.devmail); else on the console.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "microfactory.devmail.MailDirBackend"
    if DEBUG
    else "django.core.mail.backends.console.EmailBackend",
)
MAIL_DIR = Path(env.str("MF_MAIL_DIR", default=str(VAR_DIR / "mail")))
# The /dev/mail/ page lists at most this many messages, newest first.
MAIL_VIEWER_LIMIT = env.int("MF_MAIL_VIEWER_LIMIT", default=200)
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Microfactory <orders@localhost>")
# The largest request body (an order, a form, a JSON body on any API endpoint) Django and the
# API accept: larger is a 413 (microfactory.limits). Files uploaded in the admin have their own.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MF_DATA_UPLOAD_MAX_BYTES", default=1024 * 1024)

# --- Content security (docs/operations.md, "Security headers") -----------------------------
# A strict Content-Security-Policy on every response (django-csp): scripts and styles only
# from our own static files (three.js, htmx and Swagger UI's files are served by us), inline
# ones only with the request's nonce (the part page's import map, Swagger UI's init script).
# No 'unsafe-inline', no 'unsafe-eval'. Files users influenced (drawings, artifacts, preview
# files) set their own stricter policy, `sandbox` (microfactory.downloads).
from csp.constants import NONCE, NONE, SELF  # noqa: E402

INSTALLED_APPS += ["csp"]
MIDDLEWARE += ["csp.middleware.CSPMiddleware"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],  # the nonce appears only where a page used it
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:", "blob:"],  # the admin's test build shows a data: drawing
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# --- Login lockout and API throttles (docs/operations.md, "Login lockout and API throttles") -
# django-axes counts failed logins per user name AND client address (one attacker cannot lock
# a user out from elsewhere, nor try many users from one address past the limit each) on every
# login that goes through django.contrib.auth.authenticate() with the request: /login/ and
# /admin/login/. After MF_LOGIN_FAILURE_LIMIT failures that pair is refused, even with the
# right password, for MF_LOGIN_COOLOFF_MIN minutes (429 with Retry-After, our own page);
# `manage.py axes_reset` lifts every lockout. The API's token and session authentication do
# not call authenticate(), so axes' backend never sees them.
from datetime import timedelta  # noqa: E402

INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # turns axes' lockout signal into our page
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out pair before checking
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("MF_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("MF_LOGIN_COOLOFF_MIN", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "microfactory.throttles.login_locked_out"
# The client is REMOTE_ADDR: a client-sent X-Forwarded-For would let an attacker pick a fresh
# address per try. Behind a reverse proxy, the proxy must set REMOTE_ADDR (e.g. gunicorn's
# --forwarded-allow-ips with a proxy protocol) or every client shares the proxy's address.
AXES_CLIENT_IP_CALLABLE = "microfactory.throttles.client_address"
AXES_RESET_ON_SUCCESS = True  # a user who got in starts again from zero failures

# DRF throttles on every write (POST, PUT, PATCH, DELETE): reads are never counted. Per user
# for authenticated requests, per client address (REMOTE_ADDR: NUM_PROXIES=0 ignores a
# client-sent X-Forwarded-For) for anonymous ones. Machine telemetry (every few seconds per
# machine, on the machine's token, no user) has its own scope, counted per machine token so
# one busy printer never slows another. Over the rate: 429, Retry-After, {"message": ...}.
# The counters live in Django's cache (see CACHES below).
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "microfactory.throttles.UserWriteThrottle",
    "microfactory.throttles.AnonWriteThrottle",
]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "write_user": env.str("MF_API_WRITE_RATE_USER", default="120/min"),
    "write_anon": env.str("MF_API_WRITE_RATE_ANON", default="30/min"),
    "telemetry": env.str("MF_API_TELEMETRY_RATE", default="120/min"),
}
REST_FRAMEWORK["NUM_PROXIES"] = 0
# The throttles' counters: per process in memory unless MF_CACHE_URL is set, which production
# should (e.g. redis://redis:6379/1): with several gunicorn workers, each process would
# otherwise count on its own and the real limit would be the rate times the processes.
CACHES = {"default": env.cache("MF_CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache":
    # Django's default of 300 entries is less than a year of the dashboard's kept days (one
    # entry per site and day of machine time, per scope and day of job moves): past it, kept
    # days are culled at random and recomputed on every read.
    CACHES["default"].setdefault("OPTIONS", {})["MAX_ENTRIES"] = env.int(
        "MF_CACHE_MAX_ENTRIES", default=3000
    )
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # While Redis is down a read is a miss and a write is lost, never a 500 (microfactory.cache).
    CACHES["default"]["BACKEND"] = "microfactory.cache.FailOpenRedisCache"
# Catalog reads (#19, point 8: catalog.cache): the part list and a part's API answer are kept
# in the cache above, keyed by a catalog generation that every change of a part, revision or
# material moves on. With a shared cache (MF_CACHE_URL) a change is seen by every process at
# once; with the per-process default, other processes see it within this many seconds.
MF_CATALOG_CACHE_S = env.int("MF_CATALOG_CACHE_S", default=30)
# The part page's quote and "ready by" of a configuration (orders.views._quoted): kept this
# many seconds in the cache above, since each is a simulation of the live queue (most of the
# page's time). A queue change shows after about twice this long at most (the page's kept
# fragment, then the kept quote); the order itself is always quoted afresh. 0: computed on
# every request.
MF_PART_QUOTE_CACHE_S = env.int("MF_PART_QUOTE_CACHE_S", default=10)
# Past that period a kept quote is still shown for up to this many seconds more while a thread
# of the web process computes the next one (no visitor waits for the simulation); one older
# than both is computed in the request.
MF_PART_QUOTE_STALE_S = env.int("MF_PART_QUOTE_STALE_S", default=60)
for _name in ("MF_PART_QUOTE_CACHE_S", "MF_PART_QUOTE_STALE_S"):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} is seconds, >= 0")
# Orders placed within this many seconds of each other in one web process are quoted and
# promised on one reading of the machines, the live queue and the run-time spread
# (production.machines.machines_read_once), each order adding the jobs placed since to that
# queue; a machine's state or a job routed shows in promises after at most this long. 0: every
# order reads them afresh.
MF_QUOTE_SNAPSHOT_S = env.float("MF_QUOTE_SNAPSHOT_S", default=5.0)
if MF_QUOTE_SNAPSHOT_S < 0:
    raise ImproperlyConfigured("MF_QUOTE_SNAPSHOT_S is seconds, >= 0")
# Manager dashboard (#15.2, production.dashboards.cache): finished days of machine time and
# of job moves are kept in the cache, keyed by generations production.lifecycle moves on when
# a finished day is written or a job with past events changes site; with the per-process
# default cache, another process's such write is seen when the entries expire, after at most
# this many seconds.
MF_DASHBOARD_CACHE_S = env.int("MF_DASHBOARD_CACHE_S", default=3600)

# --- Accounts: API tokens and two-factor authentication (microfactory.accounts) -------------
# docs/operations.md, "API tokens" and "Two-factor authentication".
# API tokens (django-rest-knox): only a SHA-512 digest and the first 15 characters (the prefix
# shown and looked up by) are stored; the token is shown once. `mf_` marks our tokens for
# secret scanners. Tokens last until revoked unless their maker chose an expiry.
INSTALLED_APPS += [
    "knox",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "microfactory.accounts",  # after knox: its admin replaces knox's
]
KNOX_TOKEN_MODEL = "accounts.ApiToken"
# Knox's migrations would create its own token table although ApiToken replaces it: an empty
# table whose key to auth_user breaks PostgreSQL's flush (TRUNCATE) of the known tables.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {"TOKEN_TTL": None, "TOKEN_PREFIX": "mf_", "AUTH_HEADER_PREFIX": "Token"}
API_TOKENS_PER_USER = env.int("MF_API_TOKENS_PER_USER", default=20)
# A token's "last used" is written at most this often (one UPDATE, not one per request).
API_TOKEN_LAST_USED_RESOLUTION_S = env.int("MF_API_TOKEN_LAST_USED_RESOLUTION_S", default=60)
# Two-factor authentication (django-otp, TOTP): staff, superusers and catalog admins must enrol
# an authenticator app and enter a code after their password, on /login/ and /admin/login/
# alike (microfactory.accounts.middleware). OTPMiddleware marks the session verified.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
MIDDLEWARE += ["microfactory.accounts.middleware.MFARequiredMiddleware"]
OTP_TOTP_ISSUER = env.str("MF_MFA_ISSUER", default="Microfactory")  # the name in the app
# After n wrong codes in a row a device refuses every code for FACTOR x 2^(n-1) seconds
# (1, 2, 4, ... with 1: ten wrong codes cost 8.5 minutes, fifteen 4.5 hours).
OTP_TOTP_THROTTLE_FACTOR = env.int("MF_MFA_THROTTLE_FACTOR", default=1)
# The admin never shows a device's secret key or its QR code: an administrator who could read
# another's key could pass their second factor.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- CNC milling verification (issue #16, point 3: production.toolpath.cnc_verify, rs274) ---
# The z-map's cell size: finer finds narrower gouges and uncut slivers (the checks resolve one
# cell laterally) and costs time with the square of 1/size (benchmarks/cnc_simulation.py).
MF_CNC_ZMAP_RESOLUTION_MM = env.float("MF_CNC_ZMAP_RESOLUTION_MM", default=0.2)
# A cut deeper into the part than this is a gouge; more material than this left on a
# machined face is remaining stock.
MF_CNC_GOUGE_TOLERANCE_MM = env.float("MF_CNC_GOUGE_TOLERANCE_MM", default=0.05)
MF_CNC_REMAINING_TOLERANCE_MM = env.float("MF_CNC_REMAINING_TOLERANCE_MM", default=0.1)
# LinuxCNC's standalone G-code interpreter (Debian package linuxcnc-uspace), which every
# milling and laser program must pass; its time limit.
MF_RS274_BINARY = env.str("MF_RS274_BINARY", default="rs274")
MF_RS274_TIMEOUT_S = env.float("MF_RS274_TIMEOUT_S", default=30.0)

# --- Issue #16 point 5: process routes per order line (orders.routes) -------------------------
# How a milled or laser-cut line is priced before its program exists (orders.quoting.
# MachiningRates: stock margin, removal rate and cutting speed of the time estimate).
from orders.quoting import MachiningRates  # noqa: E402  (a pure module: no Django import)

ORDER_MACHINING_RATES = MachiningRates(
    stock_margin_mm=env.float("MF_ROUTE_STOCK_MARGIN_MM", default=5.0),
    mill_removal_mm3_s=env.float("MF_ROUTE_MILL_REMOVAL_MM3_S", default=20.0),
    mill_setup_s=env.float("MF_ROUTE_MILL_SETUP_S", default=600.0),
    laser_cut_mm_s=env.float("MF_ROUTE_LASER_CUT_MM_S", default=8.0),
    laser_setup_s=env.float("MF_ROUTE_LASER_SETUP_S", default=120.0),
)
if ORDER_MACHINING_RATES.mill_removal_mm3_s <= 0 or ORDER_MACHINING_RATES.laser_cut_mm_s <= 0:
    raise ImproperlyConfigured("MF_ROUTE_MILL_REMOVAL_MM3_S and MF_ROUTE_LASER_CUT_MM_S are > 0")

# Issue #19 point 5: warm geometry children (catalog.geometry.warm). Each Celery worker
# process keeps this many sandboxed children with CadQuery already imported, each forking a
# fresh build process per build (0: a cold child per build, ~2 s of imports each, as before);
# a child is replaced after MF_GEOMETRY_WARM_BUILDS builds, and at once after a crash, a
# timeout or a limit hit.
MF_GEOMETRY_WARM_POOL = env.int("MF_GEOMETRY_WARM_POOL", default=1)
MF_GEOMETRY_WARM_BUILDS = env.int("MF_GEOMETRY_WARM_BUILDS", default=100)

# --- DFM for CNC milling and laser cutting (issue #16, point 4) ----------------------------
# The shop's defaults for machines that do not say their own (MachineLimits); VALIDATION_*
# like the other DFM limits, so the part page's cached reports follow a change
# (production.dfm_previews.dfm_machines_key). docs/catalog.md explains each check.
VALIDATION_CNC_SMALLEST_END_MILL_MM = env.float(
    "MF_VALIDATION_CNC_SMALLEST_END_MILL_MM", default=2.0
)
VALIDATION_CNC_POCKET_RATIO_WARN = env.float("MF_VALIDATION_CNC_POCKET_RATIO_WARN", default=3.0)
VALIDATION_CNC_POCKET_RATIO_FAIL = env.float("MF_VALIDATION_CNC_POCKET_RATIO_FAIL", default=6.0)
VALIDATION_CNC_WALL_RATIO_WARN = env.float("MF_VALIDATION_CNC_WALL_RATIO_WARN", default=8.0)
VALIDATION_CNC_MIN_FOOTPRINT_MM = env.float("MF_VALIDATION_CNC_MIN_FOOTPRINT_MM", default=10.0)
VALIDATION_LASER_KERF_MM = env.float("MF_VALIDATION_LASER_KERF_MM", default=0.2)
VALIDATION_LASER_MIN_WEB_MM = env.float("MF_VALIDATION_LASER_MIN_WEB_MM", default=1.0)
VALIDATION_LASER_MIN_PART_MM = env.float("MF_VALIDATION_LASER_MIN_PART_MM", default=15.0)

# --- Issue #15 point 6: failure feedback over a revision's parameter space (production.failmap)
# Each numeric parameter's range is cut into MF_FAILMAP_BINS equal bins; a bin where at least
# MF_FAILMAP_MIN_MADE copies were made and at least MF_FAILMAP_RATE of them were scrapped or
# failed on the machine is a region of high failure: new orders there get a DFM warning
# naming it. Regions are kept in the cache this long (a new QC verdict shows within it).
# docs/catalog.md, "Where parts fail".
MF_FAILMAP_BINS = env.int("MF_FAILMAP_BINS", default=6)
MF_FAILMAP_MIN_MADE = env.int("MF_FAILMAP_MIN_MADE", default=5)
MF_FAILMAP_RATE = env.float("MF_FAILMAP_RATE", default=0.3)
MF_FAILMAP_CACHE_S = env.int("MF_FAILMAP_CACHE_S", default=300)
MF_FAILMAP_MAX_POINTS = env.int("MF_FAILMAP_MAX_POINTS", default=2000)
if MF_FAILMAP_BINS < 2 or MF_FAILMAP_MIN_MADE < 1 or not 0 < MF_FAILMAP_RATE <= 1:
    raise ImproperlyConfigured(
        "MF_FAILMAP_BINS >= 2, MF_FAILMAP_MIN_MADE >= 1 and 0 < MF_FAILMAP_RATE <= 1"
    )

# --- Queue simulation: promise dates and what-if capacity (issue #15, points 3 and 4) -------
# A promise is the order's finish when every job runs as slow as this share of past jobs ran
# against their estimates (production.simulation.promise); until MF_PROMISE_MIN_SAMPLES jobs
# have run, their estimates plus MF_PROMISE_DEFAULT_SPREAD (a share) stand in. A what-if
# replays at most MF_WHATIF_MAX_JOBS jobs of past demand (a longer period is refused).
MF_PROMISE_CONFIDENCE = env.float("MF_PROMISE_CONFIDENCE", default=0.9)
MF_PROMISE_MIN_SAMPLES = env.int("MF_PROMISE_MIN_SAMPLES", default=10)
MF_PROMISE_DEFAULT_SPREAD = env.float("MF_PROMISE_DEFAULT_SPREAD", default=0.25)
MF_WHATIF_MAX_JOBS = env.int("MF_WHATIF_MAX_JOBS", default=5000)
if not 0.5 <= MF_PROMISE_CONFIDENCE < 1 or MF_PROMISE_DEFAULT_SPREAD < 0 or MF_WHATIF_MAX_JOBS < 1:
    raise ImproperlyConfigured(
        "MF_PROMISE_CONFIDENCE is in [0.5, 1), MF_PROMISE_DEFAULT_SPREAD >= 0, "
        "MF_WHATIF_MAX_JOBS >= 1"
    )
