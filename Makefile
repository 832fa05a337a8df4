# flowyte — `make run` starts the daemon on its embedded defaults (data in
# ./data); `make test` runs every test. See README.md.

GO        ?= go
BIN       := bin/flowyted
PKGS      := ./...
FUZZTIME  ?= 30s
BENCHTIME ?= 1s

.PHONY: build run test bench fuzz lint lint-openapi clean

build:
	$(GO) build -o $(BIN) ./cmd/flowyted

run: build
	./$(BIN) serve

test:
	@command -v git >/dev/null || { echo "git is required: apt-get install -y git" >&2; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) -timeout 60m $(PKGS)

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -run 'TestNoBuildOutputTracked|TestImportDirection|TestTransportsStayThin' ./cmd/flowyted

# Lints server/openapi.json with Redocly and Spectral (spectral:oas), fetched
# by npx from the npm registry; exceptions, each with its reason, are in
# redocly.yaml, .redocly.lint-ignore.yaml and .spectral.yaml. Not part of
# `make test`: it needs Node.js and the network.
REDOCLY_CLI  ?= @redocly/cli@2
SPECTRAL_CLI ?= @stoplight/spectral-cli@6
lint-openapi:
	@if ! command -v npx >/dev/null; then echo "lint-openapi: npx not found (install Node.js); skipped"; exit 0; fi; \
	set -e; \
	npx --yes $(REDOCLY_CLI) lint --config redocly.yaml server/openapi.json; \
	npx --yes $(SPECTRAL_CLI) lint --ruleset .spectral.yaml --fail-severity=warn server/openapi.json

clean:
	rm -rf bin
