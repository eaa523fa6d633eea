#!/usr/bin/env bash
# Every test tier, as CI runs it (`npm run test:all`), and where the time goes.
# The VM suites' images and releases are prepared while the unit tests run: debootstrap mostly
# waits on downloads and the disk, and the unit tier never boots a VM.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .e2e-cache
phases=()
elapsed() { printf '%d min %02d s' $(($1 / 60)) $(($1 % 60)); }
report() {
  echo
  echo "test:all: where the time goes"
  for row in "${phases[@]}"; do echo "  $row"; done
  echo "  total: $(elapsed "$SECONDS")"
}

t0=$SECONDS
npx tsx test/e2e/prepare.ts >.e2e-cache/prepare.log 2>&1 &
prepare_pid=$!
unit_status=0
npm test || unit_status=$?
phases+=("unit tier (npm test, images built beside it): $(elapsed $((SECONDS - t0)))")
prepare_status=0
t1=$SECONDS
wait "$prepare_pid" || prepare_status=$?
phases+=("waiting for the VM images after the unit tier: $(elapsed $((SECONDS - t1)))")
sed 's/^/  /' .e2e-cache/prepare.log | tail -n 8
if ((unit_status != 0)); then
  report
  echo "test:all: the unit tier failed (exit $unit_status); the VM suites did not run"
  exit "$unit_status"
fi
if ((prepare_status != 0)); then
  report
  echo "test:all: preparing the VM images failed (exit $prepare_status); log: .e2e-cache/prepare.log"
  exit "$prepare_status"
fi

t2=$SECONDS
e2e_status=0
npm run test:e2e || e2e_status=$?
phases+=("VM tier (npm run test:e2e): $(elapsed $((SECONDS - t2)))")
report
exit "$e2e_status"
