#!/usr/bin/env bash
# Run a command under a heading and say how long it took (the passes of `make test`):
#
#   scripts/timed.sh "test suite on SQLite" .venv/bin/python -m pytest
#
# prints "==> test suite on SQLite", the command's output, then
# "==> test suite on SQLite: 6 min 12 s" (with ", exit N" when the command failed), and exits
# with the command's status. With TIMED_SUMMARY naming a file, that last line is appended to it
# as well, so that `make test` can repeat every pass's duration at the end.
set -uo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 NAME COMMAND [ARG...]" >&2
    exit 2
fi
name=$1
shift

echo "==> $name"
start=$(date +%s)
"$@"
status=$?
elapsed=$(($(date +%s) - start))

if [ "$elapsed" -ge 60 ]; then
    took="$((elapsed / 60)) min $((elapsed % 60)) s"
else
    took="$elapsed s"
fi
line="==> $name: $took"
if [ "$status" -ne 0 ]; then
    line+=", exit $status"
fi
echo "$line"
if [ -n "${TIMED_SUMMARY:-}" ]; then
    echo "$line" >>"$TIMED_SUMMARY"
fi
exit "$status"
