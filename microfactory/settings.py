"""Settings for Microfactory: one module, every deployment-specific value from the environment.

Defaults give an embedded developer setup (SQLite and media under var/, Redis on loopback);
production sets DATABASE_URL, REDIS_URL, SECRET_KEY, ALLOWED_HOSTS and the SECURE_* switches
(see docker/production.env).
"""

from pathlib import Path

import environ
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
VAR_DIR = Path(env.str("MF_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept under var/."""
    if key := env.str("SECRET_KEY", default=""):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(get_random_secret_key())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
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
    "rest_framework.authtoken",
    "drf_spectacular",
    "catalog",
    "orders",
    "production",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"

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
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "microfactory.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Microfactory API",
    "DESCRIPTION": "Order spare parts from the digital inventory and follow them through the factory.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Celery: Redis broker, at-least-once delivery, idempotent steps ------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
JOB_STEP_TIME_LIMIT_S = env.int("MF_JOB_STEP_TIME_LIMIT_S", default=600)
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None  # steps record their results in the database, not in Redis
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a message is acknowledged only after its step finished
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # a killed worker's message goes back to the queue
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # CAD steps are long: never hoard messages
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "routing"
CELERY_TASK_TIME_LIMIT = JOB_STEP_TIME_LIMIT_S + 60
CELERY_TASK_SOFT_TIME_LIMIT = JOB_STEP_TIME_LIMIT_S
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Must exceed the longest task time limit, or Redis hands a running task to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 2}
CELERY_BEAT_SCHEDULE = {
    "reconcile-stuck-jobs": {
        "task": "production.tasks.reconcile_stuck_jobs",
        "schedule": env.float("MF_RECONCILE_INTERVAL_S", default=60.0),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Pipeline limits (every size, count and time the system enforces) ---------------------
# A job with no state change and no enqueue for this long is re-enqueued by the reconciler.
JOB_STALE_AFTER_S = env.int("MF_JOB_STALE_AFTER_S", default=JOB_STEP_TIME_LIMIT_S + 120)
ORDER_MAX_LINES = env.int("MF_ORDER_MAX_LINES", default=50)
ORDER_MAX_QUANTITY = env.int("MF_ORDER_MAX_QUANTITY", default=500)
# The sandboxed CadQuery build (catalog.geometry).
GEOMETRY_BUILD_TIMEOUT_S = env.int("MF_GEOMETRY_BUILD_TIMEOUT_S", default=120)
GEOMETRY_BUILD_CPU_S = env.int("MF_GEOMETRY_BUILD_CPU_S", default=120)
GEOMETRY_BUILD_MEMORY_MB = env.int("MF_GEOMETRY_BUILD_MEMORY_MB", default=4096)
GEOMETRY_BUILD_OUTPUT_MB = env.int("MF_GEOMETRY_BUILD_OUTPUT_MB", default=200)
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

# Absolute address of this site, for links printed on paper (the traveler's QR code).
SITE_URL = env.str("MF_SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
RECONCILE_BATCH = env.int("MF_RECONCILE_BATCH", default=500)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a Celery worker process in the integration tests sees the rows.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(VAR_DIR / "test-db.sqlite3")
