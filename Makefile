# The README's two set-up commands are `make demo` and `make test`.
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
DATE      ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -s -w -X github.com/plana-cli/plana/internal/build.Version=$(VERSION) \
             -X github.com/plana-cli/plana/internal/build.Commit=$(COMMIT) \
             -X github.com/plana-cli/plana/internal/build.Date=$(DATE)

.PHONY: all build demo test test-inner vet fmt-check docs docs-check bench clean

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

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The reference in docs/cli and docs/man, from the command tree. Committed;
# docs-check (and go test) fails when it is out of date.
docs:
	SOURCE_DATE_EPOCH= $(GO) run ./cmd/gen-docs --markdown-dir docs/cli --man-dir docs/man

docs-check:
	$(GO) test -count=1 -run 'TestDocsUpToDate' ./cmd/gen-docs/

# Every performance figure against its baseline in one run (see bench/):
# prints the table and rewrites docs/benchmarks.md. Not part of make test.
bench:
	$(GO) run ./bench

clean:
	rm -rf $(BIN) dist .demo
