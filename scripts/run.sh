#!/usr/bin/env bash
# One command for a fresh machine: set up, migrate and run the embedded system
# (agent + projections + API/dashboard on SQLite under var/). Extra arguments go to `tradeledger run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/tradeledger run "$@"
