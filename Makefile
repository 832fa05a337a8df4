# flowyte — `make run` starts the daemon on its embedded defaults (data in
# ./data); `make test` runs every test. See README.md.

GO        ?= go
BIN       := bin/flowyted
PKGS      := ./...
FUZZTIME  ?= 30s
BENCHTIME ?= 1s

.PHONY: build run test test-fairness test-postgres bench fuzz lint lint-openapi clean dashboard dashboard-check

build:
	$(GO) build -o $(BIN) ./cmd/flowyted

run: build
	./$(BIN) serve

test: dashboard-check
	@command -v git >/dev/null || { echo "git is required: apt-get install -y git" >&2; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	@$(MAKE) --no-print-directory test-fairness
	@$(MAKE) --no-print-directory test-postgres

# Per-tenant fairness (issue 9): an attack from one workspace while another
# is timed. Skipped under -race (which slows CPU-bound code 5-20x), so run
# here without it, one package at a time.
test-fairness:
	$(GO) test -count=1 -p 1 -timeout 20m -run 'TestFairness|TestTenantFairness' ./server/ ./server/webhook/

# The HTTP and webhook suites again on PostgreSQL (a throwaway cluster from
# server/store/pgtest; every test skips with a message when PostgreSQL is
# not installed). FLOWYTE_TEST_DATABASE=postgres://... uses that server.
# The CPU-fairness timings are engine-neutral: test-fairness runs them.
test-postgres:
	FLOWYTE_TEST_DATABASE=$${FLOWYTE_TEST_DATABASE:-postgres} $(GO) test -count=1 -timeout 20m -skip 'TestFairness|TestTenantFairness' ./server/ ./server/webhook/

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

# The dashboard (server/dashboard): its bundle in server/dashboard/dist is
# committed and embedded, so build and run need no Node. `make dashboard`
# rebuilds it from the locked npm packages after editing web/src;
# `make dashboard-check` (part of `make test`) rebuilds it from a clean
# `npm ci` in a temporary directory and fails when the committed copy differs.
DASH := server/dashboard

dashboard:
	cd $(DASH)/web && npm ci --no-audit --no-fund && node build.mjs

dashboard-check:
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "dashboard-check: SKIPPED, npm is not installed (apt-get install -y nodejs npm)"; exit 0; fi; \
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cp $(DASH)/web/package.json $(DASH)/web/package-lock.json $(DASH)/web/build.mjs $(DASH)/web/index.html "$$tmp"/; \
	cp -r $(DASH)/web/src "$$tmp"/src; \
	(cd "$$tmp" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && node build.mjs "$$tmp/dist"); \
	if ! diff -r "$$tmp/dist" $(DASH)/dist >/dev/null; then \
	  diff -rq "$$tmp/dist" $(DASH)/dist || true; \
	  echo "dashboard-check: $(DASH)/dist is stale: run 'make dashboard' and commit it" >&2; exit 1; fi; \
	echo "dashboard-check: $(DASH)/dist is up to date"

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
