#!/usr/bin/env bash
# Installs the real secret stores that the store tests (make test-stores)
# run against, at the versions pinned in scripts/stores/versions:
#   k8s   kube-apiserver and kube-controller-manager, built from
#         k8s.io/kubernetes through the module proxy; etcd (Debian etcd-server)
#   aws   the kumo AWS emulator (Secrets Manager and SSM), built likewise
#   sops  the sops binary, built likewise; age (Debian)
#   pass  pass and gnupg (Debian)
# With no argument, all four. The Go builds are cached like the vulndb index
# ($XDG_CACHE_HOME or ~/.cache, under plana-stores/NAME-VERSION), so each
# version is built once per machine; Debian packages are installed only when
# their commands are missing. internal/storetest finds everything there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions
. "$here/versions"
export GOTOOLCHAIN=go1.27.3 CGO_ENABLED=0
GO=${GO:-go}
cache=${PLANA_STORES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plana-stores}

kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(k8s aws sops pass)
for k in "${kinds[@]}"; do
  case "$k" in k8s | aws | sops | pass) ;; *)
    echo "stores: unknown kind \"$k\"; the kinds are k8s, aws, sops and pass" >&2
    exit 2
    ;;
  esac
done
want() { case " ${kinds[*]} " in *" $1 "*) return 0 ;; esac; return 1; }

# Debian packages, only for commands that are missing.
pkgs=()
need() { command -v "$1" >/dev/null || pkgs+=("$2"); }
if want k8s; then need etcd etcd-server; fi
if want sops; then need age age; need age-keygen age; fi
if want pass; then need pass pass; need gpg gnupg; fi
if [ ${#pkgs[@]} -gt 0 ]; then
  mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then sudo=(sudo); else
      echo "stores: missing ${pkgs[*]}: install them with: apt-get install -y ${pkgs[*]}" >&2
      exit 1
    fi
  fi
  echo "stores: apt-get install ${pkgs[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

# build NAME VERSION FUNCTION: runs FUNCTION OUTDIR in a scratch directory
# unless $cache/NAME-VERSION already holds the binaries, then moves the
# result into place in one rename, so a build cut short leaves nothing that
# looks finished.
build() {
  local name=$1 version=$2 fn=$3 dest="$cache/$1-$2"
  if [ -f "$dest/.complete" ]; then
    echo "stores: $name $version cached in $dest" >&2
    return
  fi
  mkdir -p "$cache"
  local tmp start
  tmp=$(mktemp -d "$cache/.build-$name.XXXXXX")
  start=$(date +%s)
  echo "stores: building $name $version (once per machine)" >&2
  if ! (cd "$tmp" && "$fn" "$tmp/out"); then
    rm -rf "$tmp"
    echo "stores: building $name $version failed" >&2
    return 1
  fi
  touch "$tmp/out/.complete"
  rm -rf "$dest"
  mv "$tmp/out" "$dest"
  rm -rf "$tmp"
  echo "stores: built $name $version into $dest in $(($(date +%s) - start)) s" >&2
}

# kube-apiserver and kube-controller-manager (the latter runs the Deployment
# controller that completes a rollout) from k8s.io/kubernetes, whose own
# go.mod points its staging modules at ./staging: a scratch module replaces
# each with the same release's published version instead.
build_kubernetes() {
  local out=$1 gomod staged
  gomod=$("$GO" mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  staged=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$gomod")
  [ -n "$staged" ] || { echo "stores: no staging modules found in $gomod" >&2; return 1; }
  {
    echo "module plana.invalid/kubebuild"
    echo
    echo "go 1.24.0"
    echo
    echo "godebug default=go1.24"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    for m in $staged; do echo "	$m => $m $KUBERNETES_STAGING_VERSION"; done
    echo ")"
  } >go.mod
  "$GO" get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION" "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBERNETES_VERSION"
  local v=k8s.io/component-base/version minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  "$GO" build -trimpath -ldflags "-s -w -X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" \
    -o "$out/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
}

build_kumo() {
  GOBIN=$1 "$GO" install -trimpath -ldflags "-s -w" "github.com/sivchari/kumo/cmd/kumo@$KUMO_VERSION"
}

build_sops() {
  GOBIN=$1 "$GO" install -trimpath -ldflags "-s -w" "github.com/getsops/sops/v3/cmd/sops@$SOPS_VERSION"
}

if want k8s; then build kubernetes "$KUBERNETES_VERSION" build_kubernetes; fi
if want aws; then build kumo "$KUMO_VERSION" build_kumo; fi
if want sops; then build sops "$SOPS_VERSION" build_sops; fi
echo "stores: ready: ${kinds[*]} (binaries under $cache)" >&2
