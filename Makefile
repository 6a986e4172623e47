# The README's two set-up commands are `make demo` and `make test`.

# Go 1.26.8's standard library has known vulnerabilities in plana's call
# graph (make vulncheck finds 11); go1.27.3 has none. The go command fetches
# it once (about 76 MB) through the module proxy, whatever Go is installed,
# so every build, test and release uses it. go.mod's toolchain line says the
# same to a go command run outside make.
export GOTOOLCHAIN := go1.27.3

GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
# The commit's date, not the build's: one commit builds the same bytes
# (goreleaser stamps {{ .CommitDate }}, the same instant in the same form).
DATE      ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo unknown)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo none)
LDFLAGS   := -s -w -X github.com/plana-cli/plana/internal/build.Version=$(VERSION) \
             -X github.com/plana-cli/plana/internal/build.Commit=$(COMMIT) \
             -X github.com/plana-cli/plana/internal/build.Date=$(DATE)

.PHONY: all build image release-image demo demo-check demo-incident test test-inner test-stores vet fmt-check vulncheck docs docs-check release-check bench bench-quick clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/plana ./cmd/bos-emulator

# The container image, with no Docker daemon: plana built for each of
# IMAGE_PLATFORMS as a release builds it, then put by cmd/plana-image on an
# empty base with CA certificates and a non-root user, every timestamp the
# commit's. One archive holds every platform: an OCI layout that `docker
# load` also reads (see the README, "The container image").
IMAGE_PLATFORMS ?= linux/amd64 linux/arm64
IMAGE           ?= plana:$(subst +,-,$(VERSION))

image:
	@set -e; bins=; for p in $(IMAGE_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; out=$(BIN)/$${os}_$${arch}/plana; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/plana; \
	  bins="$$bins --binary $$p=$$out"; \
	done; \
	$(GO) run ./cmd/plana-image $$bins --version '$(VERSION)' --revision '$(REVISION)' --created '$(DATE)' \
	  --name '$(IMAGE)' --out dist/plana-image.tar

# The release's image, from the linux binaries goreleaser left in dist/ (the
# archives' very bytes), named IMAGE_REPO:VERSION. release-check runs it
# after a snapshot; a release's publisher (.goreleaser.yaml) runs it with
# IMAGE_TAGS, and each tag is pushed to IMAGE_REPO, which the release job
# names (PLANA_IMAGE_REPO: REGISTRY/OWNER/plana): the project names no
# registry of its own.
IMAGE_REPO ?= plana
IMAGE_TAGS ?=

release-image:
	@set -e; version=$$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' dist/metadata.json 2>/dev/null); \
	[ -n "$$version" ] || { echo "release-image: no version in dist/metadata.json: run goreleaser first"; exit 1; }; \
	bin() { set -- dist/plana_$$1_*/plana; [ $$# -eq 1 ] && [ -f "$$1" ] || { echo "release-image: want one dist/plana_$$1_*/plana, found: $$*" >&2; exit 1; }; echo "$$1"; }; \
	amd64=$$(bin linux_amd64); arm64=$$(bin linux_arm64); \
	case "$(IMAGE_TAGS):$(IMAGE_REPO)" in :*) ;; *:*/*) ;; *) echo "release-image: IMAGE_REPO='$(IMAGE_REPO)' names no registry: set PLANA_IMAGE_REPO=REGISTRY/OWNER/plana for the release" >&2; exit 1;; esac; \
	push=; for tag in $(IMAGE_TAGS); do push="$$push --push $(IMAGE_REPO):$$tag"; done; \
	$(GO) run ./cmd/plana-image --binary linux/amd64=$$amd64 --binary linux/arm64=$$arm64 \
	  --version "$$version" --revision '$(REVISION)' --created '$(DATE)' \
	  --name "$(IMAGE_REPO):$$(printf %s "$$version" | tr + -)" --out dist/plana-image.tar $$push

# A full rotation against a local bos-emulator, with a live automation, in a
# D-Bus session and keyring of its own.
demo:
	bash scripts/demo.sh

# A compromise, found by keys audit and handled by its --rotate, with a
# stranger and the automation on two networks, in a keyring of its own.
demo-incident:
	bash scripts/demo-incident.sh

# The demo run beside a keyring that answers, which must hold none of the
# demo's entries afterwards.
demo-check:
	bash scripts/demo-check.sh

# Every test, inside a throwaway D-Bus session with an unlocked gnome-keyring
# so the real-keyring tests run without touching the user's own keyring.
test:
	bash scripts/with-keyring.sh $(MAKE) test-inner

test-inner: vet fmt-check
	$(GO) test -race -count=1 -timeout 20m ./...

# The secret-store targets against their real servers and tools: a
# Kubernetes API server and controller manager, the kumo AWS emulator, sops
# with age, pass with gpg (scripts/stores/install.sh installs them: Debian
# packages when missing, the Go builds once per machine into the cache, at
# the versions in scripts/stores/versions). Here a missing store fails;
# in make test it skips, so make test never waits on those builds. Then
# e2e's TestStores: a full rotation through each store with the built
# binaries, a live automation reading the store, and a second machine
# without a keyring finishing it (it runs only here).
STORE_PKGS := ./internal/storetest/... ./rotate/target/...

test-stores:
	bash scripts/stores/install.sh
	PLANA_REQUIRE_STORES=1 $(GO) test -race -count=1 -timeout 20m $(STORE_PKGS)
	PLANA_REQUIRE_STORES=1 $(GO) test -race -count=1 -timeout 20m -run '^TestStores$$' ./e2e/

# staticcheck runs like govulncheck: through the go command at a pinned
# version (v0.8.2 understands go1.27), so every machine checks alike.
STATICCHECK_VERSION ?= v0.8.2

vet:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# govulncheck with a vulnerability database built from the golang.org/x/vulndb
# module, which the go command fetches like any module: the database's own
# host may be out of reach. VULNDB is a fixed snapshot, so CI never compiles
# and runs whatever @latest is that day (its indexdb command builds the
# database); bump it on purpose: `go list -m golang.org/x/vulndb@latest`,
# then `make vulncheck VULNDB=<that version>`, then change it here. Each
# snapshot is indexed once into VULNDB_DIR.
GOVULNCHECK_VERSION ?= v1.9.0
VULNDB              ?= v0.0.0-20261105234957-e22db6528018
VULNDB_DIR          ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/plana-vulndb

vulncheck:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	info=$$(cd "$$tmp" && $(GO) mod download -json golang.org/x/vulndb@$(VULNDB)); \
	ver=$$(printf '%s\n' "$$info" | sed -n 's/^[[:space:]]*"Version": "\([^"]*\)".*/\1/p'); \
	dir=$$(printf '%s\n' "$$info" | sed -n 's/^[[:space:]]*"Dir": "\([^"]*\)".*/\1/p'); \
	[ -n "$$ver" ] && [ -d "$$dir/data/osv" ] || { echo "vulncheck: no OSV data in golang.org/x/vulndb@$(VULNDB)"; exit 1; }; \
	db="$(VULNDB_DIR)/$$ver"; \
	if [ ! -f "$$db/index/db.json" ]; then \
	  echo "vulncheck: indexing golang.org/x/vulndb@$$ver into $$db"; \
	  mkdir -p "$(VULNDB_DIR)"; rm -rf "$$db.tmp"; \
	  (cd "$$tmp" && $(GO) run golang.org/x/vulndb/cmd/indexdb@$$ver -vulns "$$dir/data/osv" -out "$$db.tmp"); \
	  mv "$$db.tmp" "$$db"; \
	fi; \
	echo "vulncheck: govulncheck $(GOVULNCHECK_VERSION), database golang.org/x/vulndb@$$ver"; \
	$(GO) run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) -db "file://$$db" ./...

# The reference in docs/cli and docs/man, from the command tree. Committed;
# docs-check (and go test) fails when it is out of date.
docs:
	SOURCE_DATE_EPOCH= $(GO) run ./cmd/gen-docs --markdown-dir docs/cli --man-dir docs/man

docs-check:
	$(GO) test -count=1 -run 'TestDocsUpToDate' ./cmd/gen-docs/

# .goreleaser.yaml checked and built as a snapshot for all six targets, then
# the archives checked for the binary, man pages and completions, and for an
# SBOM beside each, and the container image built from the linux binaries
# (release-image; a snapshot pushes nothing); then built again, and every
# archive, SBOM, binary and the image must have the same checksum: one
# commit builds the same bytes. The first run compiles goreleaser (about
# 10 minutes on 2 cores) and builds the targets (about 11 minutes cold);
# the second build reuses the build cache and takes a few minutes, and
# catches what differs between two builds of one commit (a build date, a
# file's time in an archive or an image, an SBOM's serial number). goreleaser reads the commit from git only when a remote is
# configured, so a clone without one gets a stand-in for this run.
GORELEASER := $(GO) run github.com/goreleaser/goreleaser/v2@v2.15.1
RELEASE_GIT := $(if $(shell git remote 2>/dev/null),,GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url GIT_CONFIG_VALUE_0=.)
RELEASE_FILES := LICENSE README.md docs/rotation.md docs/targets.md man/man1/plana.1 man/man1/plana-keys-rotate.1 \
                 man/man1/plana-exit-codes.1 completions/plana.bash completions/_plana \
                 completions/plana.fish completions/plana.ps1

release-check:
	$(GORELEASER) check
	$(RELEASE_GIT) $(GORELEASER) release --snapshot --clean
	@n=0; for a in dist/plana_*.tar.gz dist/plana_*.zip dist/bos-emulator_*.tar.gz dist/bos-emulator_*.zip; do \
	  [ -e "$$a" ] || continue; n=$$((n+1)); base=$${a%.tar.gz}; base=$${base%.zip}; \
	  sbom=$$base.sbom.cdx.json; \
	  grep -q '"bomFormat": *"CycloneDX"' "$$sbom" 2>/dev/null && grep -q '"pkg:golang/github.com/plana-cli/plana[@?]' "$$sbom" || \
	    { echo "release-check: $$a has no CycloneDX SBOM listing its modules beside it ($$sbom)"; exit 1; }; \
	  case "$$a" in dist/bos-emulator_*) continue;; esac; \
	  case "$$a" in *.zip) list=$$(unzip -Z1 "$$a"); bin=plana.exe;; *) list=$$(tar tzf "$$a"); bin=plana;; esac; \
	  for f in $$bin $(RELEASE_FILES); do \
	    printf '%s\n' "$$list" | grep -qx "$$f" || { echo "release-check: $$a lacks $$f"; exit 1; }; \
	  done; \
	done; \
	[ $$n -eq 12 ] || { echo "release-check: $$n archives in dist/, want 12"; exit 1; }; \
	echo "release-check: 12 archives, each with its SBOM; the 6 plana ones with the binary, LICENSE, README, docs/rotation.md, docs/targets.md, man pages and completions"
	@if [ "$$($(GO) env GOHOSTOS)/$$($(GO) env GOHOSTARCH)" = linux/amd64 ]; then \
	  meta=$$(cat dist/metadata.json); field() { printf '%s' "$$meta" | sed -n 's/.*"'"$$1"'":"\([^"]*\)".*/\1/p'; }; \
	  want="plana $$(field version) ($$(field commit), $(DATE))"; \
	  got=$$(dist/plana_linux_amd64*/plana version); \
	  case "$$got" in "$$want "*) echo "release-check: $$got";; \
	    *) echo "release-check: plana version printed \"$$got\", want \"$$want ...\" (the commit's date)"; exit 1;; esac; \
	fi
	@$(MAKE) --no-print-directory release-image
	@set -e; first=$$(mktemp); log=$$(mktemp); trap 'rm -f "$$first" "$$log"' EXIT; \
	sums() ( cd dist && cat checksums.txt && sha256sum plana-image.tar $$(find . -mindepth 2 -type f \( -name plana -o -name plana.exe -o -name bos-emulator -o -name bos-emulator.exe \) | sort) ); \
	sums >"$$first"; head=$$(git rev-parse HEAD; git status --porcelain); \
	echo "release-check: building the same commit again"; \
	$(RELEASE_GIT) $(GORELEASER) release --snapshot --clean >"$$log" 2>&1 || { cat "$$log"; exit 1; }; \
	$(MAKE) --no-print-directory release-image >>"$$log" 2>&1 || { cat "$$log"; exit 1; }; \
	if [ "$$head" != "$$(git rev-parse HEAD; git status --porcelain)" ]; then \
	  echo "release-check: the work tree changed between the two builds (a commit or an edit): run it again"; exit 1; \
	fi; \
	if ! sums | diff "$$first" -; then \
	  echo "release-check: a second build of this commit differs (above: < first build, > second)"; exit 1; \
	fi; \
	echo "release-check: two builds of one commit gave the same $$(wc -l <dist/checksums.txt) archives and SBOMs, the same 12 binaries and the same image"

# Every performance figure against its baseline in one run (see bench/):
# prints the table and rewrites docs/benchmarks.md. Not part of make test.
# The start time lets the report count the bench's own compilation.
bench:
	PLANA_BENCH_START=$$(date +%s) $(GO) run ./bench

# The headline figures in under two minutes, for a first look: plana's
# start, one rotation's requests, a cron run's requests. Prints only.
bench-quick:
	PLANA_BENCH_START=$$(date +%s) $(GO) run ./bench -doc "" -only cli,calls,reads

clean:
	rm -rf $(BIN) dist .release .demo
