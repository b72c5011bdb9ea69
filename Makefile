# netsentinel: build, test (against a real Apache Kafka broker), fuzz, bench.
#
#   make test    go vet + gofmt check + go test -race ./... with a real broker
#                (scripts/with-kafka.sh starts Apache Kafka from Maven Central
#                jars, cached under ~/.cache/netsentinel, and always stops it)
#   make build   static binary bin/netsentinel
#   make demo    the one-command demo (embedded broker, model, live detection)
#   make fuzz    every Fuzz target for FUZZTIME (default 20s) each, then a
#                table of executions per second (scripts/fuzz.sh: FUZZKEEP,
#                FUZZMINIMIZE, FUZZPARALLEL, FUZZTARGETS)
#   make fuzz-long   the same for FUZZTIME=10m each (unless FUZZTIME is given)
#   make bench   go benchmarks, with the broker up for the end-to-end ones
#   make kafka-start / kafka-stop   a broker for manual runs (KAFKA_DIR, KAFKA_PORT)
#
# Integration tests read NETSENTINEL_TEST_BROKERS and skip without it; see
# internal/kafkatest.

SHELL := /bin/bash
GO ?= go
FUZZTIME ?= 20s
TESTFLAGS ?=
BENCHFLAGS ?= -benchmem
KAFKA_DIR ?= $(or $(TMPDIR),/tmp)/netsentinel-kafka
KAFKA_PORT ?= 9092

.PHONY: all deps lint test vet fmt-check unit build demo fuzz fuzz-long bench bench-e2e kafka-fetch kafka-start kafka-stop kafka-status clean

all: build test

# test installs what it needs first (scripts/deps.sh: Java, Maven, kcat via
# apt, only when missing), so it is the one command a fresh machine needs.
test: deps vet fmt-check lint
	scripts/with-kafka.sh $(GO) test -race $(TESTFLAGS) ./...

# unit runs the tests without a broker (integration tests skip).
unit:
	env -u NETSENTINEL_TEST_BROKERS $(GO) test -race $(TESTFLAGS) ./...

deps:
	bash scripts/deps.sh

# lint runs staticcheck (pinned; fetched from the Go module proxy on first use).
lint:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.*' -not -path '*/testdata/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/netsentinel ./cmd/netsentinel

# demo runs the demo command once it exists; until then it trains and
# evaluates on the shipped NSL-KDD file if those commands exist.
demo: build
	@cmds=$$(bin/netsentinel -h 2>/dev/null || true); \
	if grep -qE '^  demo ' <<<"$$cmds"; then \
		bin/netsentinel demo $(DEMOFLAGS); \
	elif grep -qE '^  train ' <<<"$$cmds" && grep -qE '^  eval ' <<<"$$cmds"; then \
		bin/netsentinel train --data data/KDDTrain+.txt.gz --out bin/demo.model && \
		bin/netsentinel eval --model bin/demo.model --data data/KDDTrain+.txt.gz; \
	else \
		echo "make demo: no demo (or train/eval) command yet"; exit 1; \
	fi

fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# fuzz-long runs each target for 10 minutes; FUZZTIME on the command line or
# in the environment overrides that.
fuzz-long:
	GO=$(GO) FUZZTIME=$(if $(filter command line environment,$(origin FUZZTIME)),$(FUZZTIME),10m) scripts/fuzz.sh

bench:
	scripts/with-kafka.sh $(GO) test -run='^$$' -bench=. $(BENCHFLAGS) ./...

# bench-e2e: publish -> detect -> outputs against a real broker (throughput,
# latency at 20k records/s, RSS); see docs/benchmarks.md.
bench-e2e:
	bench/e2e.sh

kafka-fetch:
	scripts/kafka.sh fetch

kafka-start:
	scripts/kafka.sh start --dir $(KAFKA_DIR) --port $(KAFKA_PORT)

kafka-stop:
	scripts/kafka.sh stop --dir $(KAFKA_DIR)

kafka-status:
	scripts/kafka.sh status --dir $(KAFKA_DIR)

clean:
	rm -rf bin
