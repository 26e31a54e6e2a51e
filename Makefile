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

# Extra flags for `make run`, e.g. ARGS="--registration=open".
ARGS ?=

run: ## Start the server on the embedded default (./axon-data, localhost:8008). ARGS adds flags.
	$(GO) run ./cmd/axon serve $(ARGS)

build: ## Build the axon binary into ./bin.
	$(GO) build -o bin/axon ./cmd/axon

# Debian packages the tests need (PostgreSQL and etcd are installed by
# with-postgres.sh and with-etcd.sh).
TEST_DEBS := python3-matrix-nio

test: fmt-check lint test-deps unit fuzz-brief ## Everything CI runs: format, vet, staticcheck, unit and HTTP tests (race detector), client e2e, brief fuzzing.

test-deps:
	scripts/ensure-debs.sh $(TEST_DEBS)

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

# Unit and HTTP-level tests under the race detector, with a throwaway
# PostgreSQL server (at SERIALIZABLE), NATS JetStream server and etcd
# server, all on loopback, for the tests that run against them too.
unit:
	scripts/with-postgres.sh scripts/with-nats.sh scripts/with-etcd.sh $(GO) test -race -count=1 $(PKGS)

fuzz-brief:
	@$(MAKE) --no-print-directory fuzz FUZZTIME_LONG=$(FUZZTIME)

fuzz: ## Run every fuzz target for FUZZTIME_LONG (default 2m) each.
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME_LONG))"; \
	    $(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(FUZZTIME_LONG) $$pkg >/tmp/axon-fuzz.$$$$.log 2>&1 || { cat /tmp/axon-fuzz.$$$$.log; rm -f /tmp/axon-fuzz.$$$$.log; exit 1; }; \
	  done; done; rm -f /tmp/axon-fuzz.$$$$.log

# Flags for `make cluster-up`, e.g. CLUSTER_ARGS="--room 3".
CLUSTER_ARGS ?=

cluster-up: ## Start a local cluster (PostgreSQL, 3 NATS nodes, etcd, workers of each role, haproxy) in ./axon-cluster; CLUSTER_ARGS adds flags.
	$(GO) run ./cmd/axon dev cluster up $(CLUSTER_ARGS)

cluster-down: ## Stop the local cluster of cluster-up (every process by PID) and remove ./axon-cluster.
	$(GO) run ./cmd/axon dev cluster down

test-cluster: ## The cluster fault suite (issue 5): rolling redeploy, SIGKILLs, NATS/PostgreSQL/etcd restarts, scaling.
	AXON_CLUSTER_TESTS=1 $(GO) test -p 1 -count=1 -v -timeout 20m ./internal/devcluster/ ./tests/cluster/

bench: ## Send/sync scenarios over HTTP against fresh servers (embedded, then PostgreSQL); SCALE=0.25 for a quick run.
	scripts/bench.sh

bench-core: ## Go benchmarks of the protocol core and the store.
	$(GO) test -run='^$$' -bench=. -benchmem ./matrix/...

.PHONY: help run build bench-core test test-deps test-short fmt fmt-check vet lint unit fuzz-brief fuzz bench cluster-up cluster-down test-cluster
