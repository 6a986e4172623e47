#!/usr/bin/env bash
# make demo-incident: a compromise, found and handled. The example automation
# calls the API with "Nightly stock sync (2025)" from its server; a stranger
# uses a copy of that key from another network; `plana keys audit` flags the
# stranger's calls (exit 6); `plana keys audit --rotate --yes` runs the
# emergency rotation; the stranger's next call is refused, and the
# automation carries on with the new key. The emulator plays both networks
# through X-Forwarded-For (--trust-forwarded-for, loopback only).
# Everything lives under .demo/incident/; nothing secret is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=$root/.demo/incident
bin=$root/.demo/bin
key="Nightly stock sync (2025)"
server=203.0.113.7   # the automation's server, as the seed's month of history knows it
stranger=192.0.2.66  # another network

name=demo-incident
export PLANA_PROFILE=demo-incident
. scripts/lib/demo.sh
own_keyring
build

rm -rf "$demo/bos.db" "$demo/token" "$demo"/*.env "$demo/config" "$demo/state" "$demo/data" "$demo"/*.log "$demo"/*.json
mkdir -p "$demo"
export XDG_CONFIG_HOME=$demo/config XDG_STATE_HOME=$demo/state XDG_DATA_HOME=$demo/data
unset PLANA_TOKEN PLANA_API_URL PLANA_AUDIT_ALLOW PLANA_ROTATION_TARGETS PLANA_NOTIFY

# run CODE CMD...: runs CMD, which must exit CODE.
run() {
  local want=$1 code=0
  shift
  "$@" || code=$?
  [ "$code" = "$want" ] || die "$(basename "$1") exited $code, want $want"
}

# as_stranger FLAG...: one call of the example automation with the copied
# key, from the stranger's network, as a script of theirs would make it.
as_stranger() {
  "$bin/automation" --env-file "$demo/stolen.env" --once --forwarded-for "$stranger" --user-agent python-requests/2.31 "$@"
}

step "Starting bos-emulator with the demo workspace and its weeks of history, trusting X-Forwarded-For (log: .demo/incident/emulator.log)"
start_emulator --trust-forwarded-for

step "plana auth login --with-token < .demo/incident/token"
"$bin/plana" auth login --with-token <"$demo/token"

step "The key's deploy target, for an emergency: plana config set rotation.targets ..."
"$bin/plana" config set rotation.targets "[{match: \"Nightly stock sync*\", to: [\"env-file:$demo/automation.env\"]}]"
"$bin/plana" config set poll_interval 1s
"$bin/plana" config get rotation.targets

step "Starting the automation on its server ($server) with the key in .demo/incident/automation.env (log: .demo/incident/automation.log)"
start_automation --interval 2s --forwarded-for "$server"

step "plana keys audit --all: every key against its own month of history"
run 0 "$bin/plana" keys audit --all
echo "exit 0: nothing you didn't make"

step "A stranger with a copy of the key, from $stranger: reads stock, then tries the key management API"
cp "$demo/automation.env" "$demo/stolen.env"
for _ in 1 2 3; do
  as_stranger 2>/dev/null
done
as_stranger --path /v1/api-keys 2>/dev/null || echo "(refused with 403: the key lacks keys:manage; the attempt is in the log all the same)"

step "plana keys audit --all"
run 6 "$bin/plana" keys audit --all
echo "exit 6: suspicious calls"

step "plana keys audit --all --rotate --yes: the emergency rotation of the flagged key"
run 6 "$bin/plana" keys audit --all --rotate --yes --timeout 2m

step "The stranger tries again"
if as_stranger 2>"$demo/stranger.log"; then
  die "the stranger's call with the old key succeeded after the emergency rotation"
fi
grep -q 'HTTP 401' "$demo/stranger.log" || die "the stranger's call failed, but not with 401: $(cat "$demo/stranger.log")"
echo "refused: 401"

step "The automation carries on with the new key"
new=$(sed -n 's/^PLANA_KEY=\(pa_live_[0-9A-Za-z]\{8\}\).*/\1/p' "$demo/automation.env")
for _ in $(seq 100); do
  [ "$(automation_stat last_prefix)" = "$new" ] && break
  sleep 0.1
done
[ "$(automation_stat last_prefix)" = "$new" ] || die "the automation did not move to the new key $new; see .demo/incident/automation.log"
kill -TERM "$auto"
wait "$auto" || die "the automation did not stop cleanly; see .demo/incident/automation.log"
echo "The automation's own log, one line per change:"
sed 's/^/  /' "$demo/automation.log"
echo
echo "automation: $(automation_stat calls) calls, $(automation_stat failures) failed (an emergency revokes first: calls between the revoke and the deploy may fail)"

step "plana keys audit --all: the stranger, refused, is still a finding; the new key is too young to judge"
run 6 "$bin/plana" keys audit --all

step "plana keys log"
"$bin/plana" keys log

step "Done: the stranger's calls were flagged, the key rotated in an emergency, the stranger refused, and the automation runs on the new key $new."
