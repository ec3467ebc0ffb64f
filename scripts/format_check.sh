#!/usr/bin/env bash
# The C++ and CUDA sources under csrc/ must be formatted as .clang-format says (as ruff
# checks the Python). Formatting differs between clang-format releases, so the major version
# is pinned: `pip install clang-format==18.1.8`. `scripts/format_check.sh --fix` reformats.
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
WANT_MAJOR=18
if ! command -v "$CLANG_FORMAT" >/dev/null; then
  echo "format_check: $CLANG_FORMAT not found; pip install clang-format==18.1.8" >&2
  exit 2
fi
major=$("$CLANG_FORMAT" --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
if [ "$major" != "$WANT_MAJOR" ]; then
  echo "format_check: $CLANG_FORMAT is version ${major:-unknown}, need $WANT_MAJOR;" \
    "pip install clang-format==18.1.8 or set CLANG_FORMAT" >&2
  exit 2
fi
mapfile -t files < <(find csrc \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' \) | sort)
if [ "${1:-}" = "--fix" ]; then
  "$CLANG_FORMAT" -i "${files[@]}"
else
  "$CLANG_FORMAT" --dry-run --Werror "${files[@]}"
  echo "format_check: ${#files[@]} C++/CUDA files formatted as .clang-format says"
fi
