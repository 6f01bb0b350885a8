#!/usr/bin/env bash
# One command for a fresh machine: set up everything the tests need and run the whole suite.
# Extra arguments go to pytest (e.g. -m slow for the long soak runs, -k NAME).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1; then
  # The dashboard's browser test drives Debian's chromium (no downloaded browsers).
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
mkdir -p test-artifacts
# The layer contracts (.importlinter): a broken one fails the run before any test.
.venv/bin/lint-imports --no-cache
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
# pytest exits 5 when it collected no test: that is a failure here, not a pass.
exit "$status"
