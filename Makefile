# Stripe billing integration — developer entry points. See README.md.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/billing-target
CARGO ?= cargo

.PHONY: demo up down status test test-clean build release fmt lint screenshots bench bench-bus bench-ingress bench-match bench-fake bench-sync bench-risk bench-api bench-compare chaos deps

## Everything up on this machine, demo data flowing, results shown.
demo: deps release
	@bash scripts/up.sh
	@bash scripts/demo.sh

## Build and start every service and the Stripe fake in the background (logs in .run/logs/).
up: deps release
	@bash scripts/up.sh

## Stop what `make up` started (SIGTERM, then wait for a clean exit).
down:
	@bash scripts/down.sh

status:
	@bash scripts/up.sh --status

## Every test of the workspace: unit + integration against the real Postgres and RabbitMQ; then
## a scan of every service log line of the run for secrets (scripts/log-scan.py), the k8s
## checks and the dependency audit (cargo deny, scripts/deny-check.sh).
TEST_LOG_ROOT := $(CARGO_TARGET_DIR)/test-logs
TEST_LOG_DIR := $(TEST_LOG_ROOT)/$(shell date +%Y%m%d-%H%M%S)-$(shell echo $$PPID)
test: deps test-clean
	python3 scripts/log-scan.py --self-test
	python3 scripts/bench-all.py --self-test
	@# A fresh directory per run; runs older than a day are dropped (a parallel run keeps its own).
	@mkdir -p $(TEST_LOG_ROOT) && find $(TEST_LOG_ROOT) -mindepth 1 -maxdepth 1 -mmin +1440 -exec rm -rf {} +
	@rm -rf $(TEST_LOG_DIR) && mkdir -p $(TEST_LOG_DIR)
	BILLING_TEST_LOG_DIR=$(TEST_LOG_DIR) $(CARGO) test --workspace --no-fail-fast; tests=$$?; \
	  python3 scripts/log-scan.py $(TEST_LOG_DIR); scan=$$?; \
	  [ $$tests -eq 0 ] && [ $$scan -eq 0 ]
	bash scripts/k8s-validate.sh
	bash scripts/deny-check.sh

## Refresh docs/screenshots/widget.png from the widget's real-browser test (headless Chromium).
screenshots: deps
	WIDGET_SCREENSHOT=$(CURDIR)/docs/screenshots/widget.png $(CARGO) test -p query-api --test billing_reads the_widget_in_a_real_browser

# Drop test databases left behind by interrupted runs.
test-clean:
	@bash scripts/clean-test-dbs.sh

deps:
	@bash scripts/dev-deps.sh

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release --workspace --bins

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Every service benchmark in turn (bench-bus, -ingress, -sync, -match, -risk, -api; BENCH_TARGETS
## to choose), then one table: figure, target, measured, ratio, and each service's peak RSS.
## Results in $(CARGO_TARGET_DIR)/bench-results.txt; fails if any benchmark failed.
bench: deps
	python3 scripts/bench-all.py

## Bus benchmark: confirmed publishes/s and publish→consume→commit→ack latency.
bench-bus: deps
	$(CARGO) run --release -p platform --example bench_bus

## Ingress benchmark: verified events/s, ack latency, outbox lag, RSS (release ingress process).
bench-ingress: deps
	$(CARGO) build --release -p ingress --bins --examples
	$(CARGO_TARGET_DIR)/release/examples/bench_ingress

## Matching benchmark: precision/recall per rule on the fake's labelled 10k book and the tricky set, CPU seconds and RSS.
bench-match:
	$(CARGO) run --release -p matcher --example bench_match

## Stripe fake benchmark: list pages/s (rate limit off) and 10k-customer seed time.
bench-fake:
	$(CARGO) run --release -p stripe-fake -- bench

## Backfill benchmark: cold backfill of 1k and 10k customers from a release stripe-fake process
## at 100 req/s (requests, objects/s, share of the rate limit used, worker peak RSS).
bench-sync: deps
	$(CARGO) build --release -p stripe-fake --bins
	$(CARGO) build --release -p sync-worker --example bench_sync
	$(CARGO_TARGET_DIR)/release/examples/bench_sync

## Whole-pipeline benchmark: the fake's signed webhooks → ingress → sync worker → risk engine,
## failed payments at a steady rate; latency from webhook accepted to signal on the risk exchange.
bench-risk: deps
	$(CARGO) build --release -p stripe-fake -p ingress -p sync-worker -p risk-engine --bins
	$(CARGO) build --release -p risk-engine --example bench_risk
	$(CARGO_TARGET_DIR)/release/examples/bench_risk

## Read API benchmark: GET /api/stripe/mrr/:id and /invoices/:id of a release query-api process
## at 500 req/s over a seeded book of 10,000 accounts (latency from each request's due time, RSS).
bench-api: deps
	$(CARGO) build --release -p query-api --bins
	$(CARGO) build --release -p query-api --example bench_api
	$(CARGO_TARGET_DIR)/release/examples/bench_api

## Backfill comparison with Supabase's Stripe sync engine (npm, pinned): same book, same rate
## limit, time, requests and the same correctness checks on both tools' tables.
bench-compare: deps
	$(CARGO) build --release -p stripe-fake -p query-api -p sync-worker -p billingctl --bins
	bash scripts/sync-compare/run.sh

## Whole-system correctness under faults (crates/e2e/tests/chaos.rs): 1,000 customers, 10,000
## changes at Stripe while RabbitMQ and Postgres restart, every worker is kill -9ed, webhooks are
## duplicated, shuffled and dropped and Stripe answers 500s and 429s; then objects, signals, lost
## events and duplicates compared with the fake. Restarts this machine's Postgres and RabbitMQ:
## not part of `make test`. CHAOS_CUSTOMERS, CHAOS_MUTATIONS, CHAOS_RATE, CHAOS_SEED to vary.
chaos: deps
	$(CARGO) build --workspace --bins
	$(CARGO) test -p e2e --test chaos -- --ignored --nocapture
