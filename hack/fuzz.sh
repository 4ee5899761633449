#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time each (default
# 20s), then prints one line per target: inputs tried, new interesting
# inputs, and the result. A failing input is written by `go test` to the
# package's testdata/fuzz/<Target>/ folder: commit it, it then runs in
# `make test` for ever. Exits non-zero if any target failed.
set -uo pipefail
cd "$(dirname "$0")/.."
t=${1:-20s}
summary=()
failed=0
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "== $pkg $f ($t)"
    out=$(go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" 2>&1)
    rc=$?
    echo "$out" | tail -5
    last=$(echo "$out" | grep -o 'execs: [0-9]*' | tail -1 | cut -d' ' -f2)
    new=$(echo "$out" | grep -o 'new interesting: [0-9]*' | tail -1 | cut -d' ' -f3)
    result=ok
    if [ $rc -ne 0 ]; then result=FAILED; failed=1; fi
    summary+=("$(printf '%-28s %-55s %12s %6s  %s' "$f" "${pkg#github.com/reconciled/reconciled/}" "${last:-?}" "${new:-?}" "$result")")
  done
done
echo
printf '%-28s %-55s %12s %6s  %s\n' target package inputs new result
printf '%s\n' "${summary[@]}"
exit $failed
