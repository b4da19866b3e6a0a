# Breakwater: a safety circuit breaker for automated content moderation.
GO ?= go
PKGS := ./...

.PHONY: screenshots help run build test test-short bench eval fuzz chaos lint fmt deps manifest docs

help: ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: ## Run the daemon on the embedded default (in-process Kafka-protocol broker and Redis, demo traffic).
	$(GO) build -o bin/ ./cmd/breakwater
	bin/breakwater run

screenshots: ## Retake the console's screenshots in docs/ from the live embedded demo, going through its incident as a person would (about 5 minutes; needs chromium).
	$(GO) build -o bin/ ./cmd/breakwater
	$(GO) run ./scripts/screenshots

build: ## Build the binaries into bin/.
	$(GO) build -o bin/ ./cmd/...

test: ## Run every test: unit, fuzz seeds, the integration tests against kfake and a real redis-server, and the image and chart tests (module deploy/).
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 20m $(PKGS)
	cd deploy && $(GO) vet ./... && $(GO) test -count=1 -timeout 20m ./...

test-short: ## Run the unit tests only.
	$(GO) test -count=1 -short $(PKGS)
	cd deploy && $(GO) test -count=1 -short ./...

bench: ## Run the benchmarks: decoder, Redis script, replay speed (events/s), and the throughput of the breakwater binary against a raw kafka-go passthrough binary, each in its own process (CPU profiles in bin/).
	$(GO) test -run '^$$' -bench . -benchmem ./event ./store
	$(GO) test -run '^$$' -bench Replay -benchtime 3x ./replay | awk '/^BenchmarkReplay/ {for (i = 2; i < NF; i++) if ($$(i+1) == "events/s" || $$(i+1) == "events/cpu-s") printf "replay of 1M lines: %s %s\n", $$i, $$(i+1)} {print}'
	@mkdir -p bin
	BENCH_PROFILE=$(CURDIR)/bin/bench-breaker.pprof $(GO) test -run '^$$' -bench Throughput -benchtime 1x -timeout 60m -v ./bench

eval: ## Run the labelled scenario suite: every scenario at two traffic sizes with five seeds (suggest on two normal days, replay four, reset after 1h); print medians and worst cases against the goals.
	$(GO) run ./cmd/breakwater eval

fuzz: ## Fuzz every parser (event decoder, config, tokens, JSON Lines, labels, incidents, alert payloads, admin API bodies, a sign-in proxy's headers) for FUZZTIME each (default 60s).
	scripts/fuzz FuzzDecode ./event
	scripts/fuzz FuzzParse ./config
	scripts/fuzz FuzzTokens ./config
	scripts/fuzz FuzzLines ./replay
	scripts/fuzz FuzzLabels ./replay
	scripts/fuzz FuzzParseIncident ./traffic
	scripts/fuzz FuzzSlackMessage ./alert
	scripts/fuzz FuzzEventJSON ./alert
	scripts/fuzz FuzzParseOverride ./admin
	scripts/fuzz FuzzParseReset ./admin
	scripts/fuzz FuzzParseReview ./admin
	scripts/fuzz FuzzParseApproval ./admin
	scripts/fuzz FuzzParseReversal ./admin
	scripts/fuzz FuzzParseSource ./wire
	scripts/fuzz FuzzDecode ./history
	scripts/fuzz FuzzProxyHeaders ./signin

# CHAOS_RUNS is how many full fault campaigns make chaos runs, each with its own seed.
CHAOS_RUNS ?= 1

chaos: ## Run the full fault campaign CHAOS_RUNS times (200,000 actions, 3 replicas killed every 5s, Redis wiped and frozen 60s, brokers restarted; about 10 minutes each) and print its table.
	@mkdir -p bin; rm -f bin/chaos-table.txt; \
	echo "fault campaign: $(CHAOS_RUNS) full run(s), log in bin/chaos.log"; \
	nice -n 10 $(GO) test -count=$(CHAOS_RUNS) -timeout $$(( $(CHAOS_RUNS) * 30 + 10 ))m -run '^TestChaos$$' -v ./e2e \
		-args -chaos.size=full -chaos.table=$(CURDIR)/bin/chaos-table.txt > bin/chaos.log 2>&1; status=$$?; \
	cat bin/chaos-table.txt 2>/dev/null; \
	if [ $$status -ne 0 ]; then awk '/ violation: |^panic|^--- FAIL/ {p = 1; print; next} p && /^        / {print; next} {p = 0}' bin/chaos.log | head -60; fi; \
	exit $$status

lint: ## Run golangci-lint (v2) with the repository's configuration, and gofmt.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	golangci-lint run

fmt: ## Format the code.
	gofmt -w $$(git ls-files '*.go')

docs: ## Regenerate docs/configuration.md from the config package's doc comments (go generate ./config).
	$(GO) generate ./config

manifest: ## Regenerate deploy/kubernetes/breakwater.yaml from the Helm chart and deploy/kubernetes/values.yaml.
	cd deploy && $(GO) test -count=1 -run TestPlainManifest -update .

deps: ## Install the Debian packages the tests need (redis-server, redis-tools, redis-sentinel, kcat, chromium, curl).
	command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server)
	command -v redis-cli >/dev/null || (apt-get update && apt-get install -y redis-tools)
	command -v redis-sentinel >/dev/null || (apt-get update && apt-get install -y redis-sentinel)
	command -v kcat >/dev/null || (apt-get update && apt-get install -y kcat)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	command -v curl >/dev/null || (apt-get update && apt-get install -y curl)
