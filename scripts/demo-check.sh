#!/usr/bin/env bash
# make demo-check: runs the demo while a Secret Service already answers on
# the session bus, standing in for your own keyring (a throwaway one from
# scripts/with-keyring.sh), and fails if the demo left anything in it: its
# token (profile "demo") or the plaintext of any key its journals name.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PLANA_DEMO_CHECK_INNER:-}" ]; then
  export PLANA_DEMO_CHECK_INNER=1
  exec bash scripts/with-keyring.sh bash "$0"
fi
command -v dbus-send >/dev/null || { echo "demo-check: needs dbus-send (sudo apt-get install -y dbus)" >&2; exit 1; }

# Paths of this session's Secret Service items for plana entry $1.
items() {
  dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
    org.freedesktop.Secret.Service.SearchItems dict:string:string:"service","plana","username","$1" |
    grep -o '"/org/freedesktop/secrets/collection/[^"]*"' || true
}
dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
  org.freedesktop.DBus.Peer.Ping >/dev/null || { echo "demo-check: no Secret Service answers to stand in for yours" >&2; exit 1; }

bash scripts/demo.sh
ids=$(grep -rhoE '"id": *"key_[A-Za-z0-9]+"' .demo/state | sed 's/.*"\(key_[A-Za-z0-9]*\)"/\1/' | sort -u)
[ -n "$ids" ] || { echo "demo-check: the demo's journals name no key" >&2; exit 1; }
left=0
for name in token:demo $(printf 'key:%s\n' $ids); do
  if [ -n "$(items "$name")" ]; then
    echo "demo-check: the demo left $name in the session's keyring" >&2
    left=$((left + 1))
  fi
done
[ "$left" -eq 0 ] || exit 1
echo "demo-check: the keyring the demo ran beside holds none of its entries (token:demo, $(echo $ids | wc -w) keys)"
