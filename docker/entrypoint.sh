#!/bin/sh
# Runs the container's command; for the web server (gunicorn) it first applies migrations,
# so a new image's schema is in place before it serves. Workers and beat start after web is
# healthy (docker/compose.yaml), hence after the migrations.
#
# With several web replicas, set MF_MIGRATE_ON_START=false and run migrations once per
# deploy instead: docker compose run --rm web python manage.py migrate
set -eu

if [ "${1:-}" = gunicorn ] && [ "${MF_MIGRATE_ON_START:-true}" = true ]; then
    python manage.py migrate --noinput
fi
exec "$@"
