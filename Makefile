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
DATE      ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -s -w -X github.com/plana-cli/plana/internal/build.Version=$(VERSION) \
             -X github.com/plana-cli/plana/internal/build.Commit=$(COMMIT) \
             -X github.com/plana-cli/plana/internal/build.Date=$(DATE)

.PHONY: all build demo test test-inner vet fmt-check vulncheck docs docs-check release-check bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/plana ./cmd/bos-emulator

# A full rotation against a local bos-emulator, with a live automation.
demo:
	bash scripts/demo.sh

# Every test, inside a throwaway D-Bus session with an unlocked gnome-keyring
# so the real-keyring tests run without touching the user's own keyring.
test:
	bash scripts/with-keyring.sh $(MAKE) test-inner

test-inner: vet fmt-check
	$(GO) test -race -count=1 -timeout 20m ./...

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
# host may be out of reach. VULNDB=<pseudo-version> rescans against a fixed
# snapshot; each snapshot is indexed once into VULNDB_DIR.
GOVULNCHECK_VERSION ?= v1.9.0
VULNDB              ?= latest
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
# the archives checked for the binary, man pages and completions. The first
# run compiles goreleaser (about 10 minutes on 2 cores); later runs reuse the
# build cache. goreleaser reads the commit from git only when a remote is
# configured, so a clone without one gets a stand-in for this run.
GORELEASER := $(GO) run github.com/goreleaser/goreleaser/v2@v2.15.1
RELEASE_GIT := $(if $(shell git remote 2>/dev/null),,GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url GIT_CONFIG_VALUE_0=.)
RELEASE_FILES := LICENSE README.md docs/rotation.md man/man1/plana.1 man/man1/plana-keys-rotate.1 \
                 man/man1/plana-exit-codes.1 completions/plana.bash completions/_plana \
                 completions/plana.fish completions/plana.ps1

release-check:
	$(GORELEASER) check
	$(RELEASE_GIT) $(GORELEASER) release --snapshot --clean
	@n=0; for a in dist/plana_*.tar.gz dist/plana_*.zip; do \
	  [ -e "$$a" ] || continue; n=$$((n+1)); \
	  case "$$a" in *.zip) list=$$(unzip -Z1 "$$a"); bin=plana.exe;; *) list=$$(tar tzf "$$a"); bin=plana;; esac; \
	  for f in $$bin $(RELEASE_FILES); do \
	    printf '%s\n' "$$list" | grep -qx "$$f" || { echo "release-check: $$a lacks $$f"; exit 1; }; \
	  done; \
	done; \
	[ $$n -eq 6 ] || { echo "release-check: $$n plana archives in dist/, want 6"; exit 1; }; \
	echo "release-check: 6 plana archives, each with the binary, LICENSE, README, docs/rotation.md, man pages and completions"
	@if [ "$$($(GO) env GOHOSTOS)/$$($(GO) env GOHOSTARCH)" = linux/amd64 ]; then \
	  meta=$$(cat dist/metadata.json); field() { printf '%s' "$$meta" | sed -n 's/.*"'"$$1"'":"\([^"]*\)".*/\1/p'; }; \
	  want="plana $$(field version) ($$(field commit), $$(field date | sed 's/\.[0-9]*Z$$/Z/'))"; \
	  got=$$(dist/plana_linux_amd64*/plana version); \
	  case "$$got" in "$$want "*) echo "release-check: $$got";; \
	    *) echo "release-check: plana version printed \"$$got\", want \"$$want ...\""; exit 1;; esac; \
	fi

# Every performance figure against its baseline in one run (see bench/):
# prints the table and rewrites docs/benchmarks.md. Not part of make test.
# The start time lets the report count the bench's own compilation.
bench:
	PLANA_BENCH_START=$$(date +%s) $(GO) run ./bench

clean:
	rm -rf $(BIN) dist .release .demo
