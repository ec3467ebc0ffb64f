#!/usr/bin/env bash
# Keep the asv suite alive: every benchmark must import, be well formed, and run once
# (--quick) without error in the current environment. asv exits 2 if any benchmark fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
. "${BGBENCH_VENV:-.venv}/bin/activate"
asv machine --yes >/dev/null
asv check -E existing
asv run -E existing --quick --show-stderr "$@"
