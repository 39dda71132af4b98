#!/usr/bin/env bash
# Dependency audit of `make test` with cargo-deny (deny.toml): licenses, bans and sources must
# pass; advisories (RustSec vulnerabilities, unmaintained and yanked crates) run when the
# advisory database can be fetched. It is a GitHub repository, which the dev and CI machines
# cannot reach: then the check says so in one line instead of passing silently.
# docs/operations.md, "Dependency audit".
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deny >/dev/null || { echo "cargo-deny is missing: run scripts/dev-deps.sh"; exit 1; }
# Output is filtered below: no colour codes in it (CARGO_TERM_COLOR still wins when set).
args=(--log-level warn --color "${CARGO_TERM_COLOR:-never}")

# On success only each warning's headline (duplicate versions are warnings), on failure all.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if cargo deny "${args[@]}" check --hide-inclusion-graph licenses bans sources >"$out" 2>&1; then
  grep -E '^(warning|error)\[|^[a-z]+ ok' "$out" || true
else
  cat "$out"
  echo "cargo deny: licenses/bans/sources FAILED (deny.toml)"
  exit 1
fi

if timeout "${DENY_FETCH_TIMEOUT:-120}" cargo deny --log-level error fetch db >/dev/null 2>&1; then
  cargo deny "${args[@]}" check advisories
else
  echo "advisories: database unreachable from this machine (github.com), not checked"
fi
