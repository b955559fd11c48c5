#!/usr/bin/env sh
# Echo Hub vs python-socketio on this machine, one run: writes bench.md, bench.html and
# bench.json into --out (default reports/bench). Same as `echohub-loadtest bench`.
set -eu
PY="${PYTHON:-python}"
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.venv/bin/python; fi
exec "$PY" -m loadtest bench "$@"
