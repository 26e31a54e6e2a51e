# Axon — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
PKGS ?= ./...
# How long each fuzz target runs: briefly in `make test`, longer in `make fuzz`.
# The brief run counts inputs rather than seconds: a time limit that expires
# while the fuzzer's workers are busy can fail the run with "context deadline
# exceeded" and no failing input, which would make CI flaky.
FUZZTIME ?= 20000x
FUZZTIME_LONG ?= 2m

.DEFAULT_GOAL := help

help: ## List the targets.
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: ## Start the server on the embedded default (not built yet: see README "Status").
	@echo "make run: the axon server binary is not in this tree yet (issue #3); only the protocol core matrix/ is." >&2
	@exit 1

test: fmt-check lint unit fuzz-brief ## Everything CI runs: format, vet, staticcheck, unit tests (race detector), brief fuzzing.

test-short: ## Unit tests only, no race detector, no fuzzing.
	$(GO) test -short $(PKGS)

fmt: ## Format the code.
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: ## go vet.
	$(GO) vet $(PKGS)

lint: vet ## go vet and staticcheck (a pinned Go tool).
	$(GO) tool staticcheck $(PKGS)

# Unit tests under the race detector, with a throwaway PostgreSQL server (at
# SERIALIZABLE, on loopback) for the tests that run against it too.
unit:
	scripts/with-postgres.sh $(GO) test -race -count=1 $(PKGS)

fuzz-brief:
	@$(MAKE) --no-print-directory fuzz FUZZTIME_LONG=$(FUZZTIME)

fuzz: ## Run every fuzz target for FUZZTIME_LONG (default 2m) each.
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME_LONG))"; \
	    $(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(FUZZTIME_LONG) $$pkg >/tmp/axon-fuzz.$$$$.log 2>&1 || { cat /tmp/axon-fuzz.$$$$.log; rm -f /tmp/axon-fuzz.$$$$.log; exit 1; }; \
	  done; done; rm -f /tmp/axon-fuzz.$$$$.log

bench: ## Benchmarks of the protocol core (prints one table per package).
	$(GO) test -run='^$$' -bench=. -benchmem ./matrix/...

.PHONY: help run test test-short fmt fmt-check vet lint unit fuzz-brief fuzz bench
