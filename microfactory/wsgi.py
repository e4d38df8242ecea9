import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microfactory.settings")
# Web processes keep their database connection between requests unless MF_DB_CONN_MAX_AGE
# says otherwise: a connection per request was half a cached catalog read's time on SQLite
# (opening the file, WAL pragma) and a connection set-up on PostgreSQL (benchmarks/web.py).
# Workers and beat never load this module and keep Django's default of 0: with 60 there,
# recovery after a Redis outage measured slower (tests/integration/test_faults.py, settings).
os.environ.setdefault("MF_DB_CONN_MAX_AGE", "60")
application = get_wsgi_application()
