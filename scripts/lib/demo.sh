# What `make demo` and `make demo-incident` share, sourced by both from the
# checkout's root once they have set name (their messages' prefix), root,
# demo (their directory under .demo/), bin and PLANA_PROFILE. Sourcing it sets
# the traps that stop what start_emulator and start_automation started.

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
  step() { printf '\n==> %s\n' "$*"; }
fi
die() { echo "$name: $*" >&2; exit 1; }
rel=${demo#"$root"/}

# A Secret Service answers on the session bus (or this is macOS, whose
# keychain needs no bus).
keyring_answers() {
  [ "$(uname -s)" = Darwin ] && return 0
  [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] && command -v dbus-send >/dev/null || return 1
  timeout 5 dbus-send --session --print-reply --dest=org.freedesktop.secrets \
    /org/freedesktop/secrets org.freedesktop.DBus.Peer.Ping >/dev/null 2>&1
}

# A demo never uses your own keyring: it stores a management token and new
# keys' plaintexts, and would leave them there. On Linux the script runs
# itself again inside a D-Bus session of its own with a throwaway
# gnome-keyring, whose files and sockets live under $demo/keyring (not your
# data or runtime directories, where a second daemon would find or create
# your keyring).
own_keyring() {
  if [ "$(uname -s)" != Darwin ] && [ -z "${PLANA_DEMO_IN_SESSION:-}" ]; then
    if ! command -v dbus-run-session >/dev/null || ! command -v gnome-keyring-daemon >/dev/null; then
      echo "$name: the demo runs in a keyring of its own, which needs dbus-run-session and gnome-keyring-daemon:" >&2
      echo "$name:   sudo apt-get install -y gnome-keyring dbus" >&2
      exit 1
    fi
    rm -rf "$demo/keyring"
    mkdir -p "$demo/keyring/data" "$demo/keyring/run"
    chmod 700 "$demo/keyring" "$demo/keyring/run"
    echo "$name: running in a D-Bus session and gnome-keyring of its own ($rel/keyring); your keyring is not touched." >&2
    export PLANA_DEMO_IN_SESSION=1
    # The daemon reads the new keyring's password from stdin.
    exec env XDG_DATA_HOME="$demo/keyring/data" XDG_RUNTIME_DIR="$demo/keyring/run" \
      dbus-run-session -- sh -c 'printf x | gnome-keyring-daemon --unlock --components=secrets >/dev/null; exec bash "$0"' "$0"
  fi
  keyring_answers || die "the demo's own gnome-keyring does not answer; see the messages above."
}

build() {
  step "Building plana, bos-emulator and the example automation into .demo/bin"
  mkdir -p "$bin"
  go build -o "$bin/" ./cmd/plana ./cmd/bos-emulator ./examples/automation
}

pids=()
cleanup() {
  if [ "$(uname -s)" = Darwin ]; then
    # macOS has one keychain per user and no session to throw away: remove
    # what the demo put there, the token and the plaintext of every key
    # its journals name.
    for id in $(grep -rhoE '"id": *"key_[A-Za-z0-9]+"' "$demo/state" 2>/dev/null | sed 's/.*"\(key_[A-Za-z0-9]*\)"/\1/' | sort -u); do
      security delete-generic-password -s plana -a "key:$id" >/dev/null 2>&1 || true
    done
    security delete-generic-password -s plana -a "token:$PLANA_PROFILE" >/dev/null 2>&1 || true
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_emulator FLAG...: bos-emulator on a free loopback port with the demo
# seed and FLAG..., its log in $demo/emulator.log; exports PLANA_API_URL.
start_emulator() {
  "$bin/bos-emulator" --listen 127.0.0.1:0 --db "$demo/bos.db" "$@" \
    --seed demo --token-file "$demo/token" --automation-env-file "$demo/automation.env" \
    2>"$demo/emulator.log" &
  local pid=$! url=
  pids+=("$pid")
  for _ in $(seq 100); do
    url=$(sed -n 's/^bos-emulator: listening on \(http:[^ ]*\)$/\1/p' "$demo/emulator.log")
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || die "bos-emulator exited: $(cat "$demo/emulator.log")"
    sleep 0.1
  done
  [ -n "$url" ] || die "bos-emulator did not start within 10s; see $rel/emulator.log"
  export PLANA_API_URL=$url
  echo "API at $url"
}

# start_automation FLAG...: the example automation on the key in
# $demo/automation.env, until its first call is counted; sets auto to its pid.
start_automation() {
  "$bin/automation" --env-file "$demo/automation.env" --stats-file "$demo/automation.json" "$@" \
    2>"$demo/automation.log" &
  auto=$!
  pids+=("$auto")
  for _ in $(seq 100); do
    [ -s "$demo/automation.json" ] && break
    kill -0 "$auto" 2>/dev/null || die "the automation exited: $(cat "$demo/automation.log")"
    sleep 0.1
  done
  [ -s "$demo/automation.json" ] || die "the automation made no call within 10s; see $rel/automation.log"
}

# automation_stat NAME: a field of the automation's stats file.
automation_stat() { sed -n "s/^ *\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},*$/\1/p" "$demo/automation.json"; }
