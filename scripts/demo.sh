#!/usr/bin/env bash
# make demo: a full, zero-downtime rotation of the seeded "Nightly stock sync
# (2025)" key against a local bos-emulator, while the example automation
# calls the API every second. Everything lives under .demo/ (binaries,
# database, config, state); nothing secret is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=$root/.demo
bin=$demo/bin
key="Nightly stock sync (2025)"
name=demo
# A profile of its own, so that on macOS the demo's token never replaces
# your real one in the keychain before the cleanup removes it.
export PLANA_PROFILE=demo
. scripts/lib/demo.sh
own_keyring
build

# A fresh workspace every run; the binaries stay.
rm -rf "$demo/bos.db" "$demo/token" "$demo/automation.env" "$demo/config" "$demo/state" "$demo/data" "$demo"/*.log "$demo"/*.json
export XDG_CONFIG_HOME=$demo/config XDG_STATE_HOME=$demo/state XDG_DATA_HOME=$demo/data
unset PLANA_TOKEN

step "Starting bos-emulator with the demo workspace (log: .demo/emulator.log)"
start_emulator --dev-endpoints

step "plana auth login --with-token < .demo/token"
"$bin/plana" auth login --with-token <"$demo/token"

step "Starting the automation with the old key from .demo/automation.env (log: .demo/automation.log)"
start_automation --interval 1s

step "plana keys list"
"$bin/plana" keys list

step "plana keys rotate \"$key\" --to env-file:.demo/automation.env --quiet-period 5s --poll-interval 1s --timeout 2m --yes"
"$bin/plana" keys rotate "$key" --to "env-file:$demo/automation.env" \
  --quiet-period 5s --poll-interval 1s --timeout 2m --yes

step "Stopping the automation"
kill -TERM "$auto"
wait "$auto" || die "the automation did not stop cleanly; see .demo/automation.log"
calls=$(automation_stat calls)
failures=$(automation_stat failures)
echo "The automation's own log, one line per change:"
sed 's/^/  /' "$demo/automation.log"
echo
echo "automation: $calls calls, $failures failed"

step "plana keys log"
"$bin/plana" keys log

step "plana keys list"
"$bin/plana" keys list

if [ "$failures" != 0 ]; then
  die "$failures of $calls calls failed during the rotation: that is downtime, and a bug"
fi
step "Done: the key was rotated with $calls calls and none failed."
