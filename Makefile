# Osprey — every entry point a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
SWIFT ?= swift
OSPREY := .build/debug/osprey
LAB ?= osp
NODES ?= 2
TOPOLOGY ?= bridge
ROUNDS ?= 5
SECONDS_PER_RUN ?= 5
# Generated protobuf/gRPC code (Sources/HubbleAPI) keeps the generator's layout.
SWIFT_SOURCES := Package.swift tools/protoc-plugins/Package.swift \
	$(shell find Sources Tests -name '*.swift' -not -path 'Sources/HubbleAPI/*')
C_SOURCES = $(shell find Sources -name '*.c' -o -name '*.h')

.PHONY: help bootstrap build test sanitize bench soak soak-ui fuzz demo demo-down fmt lint proto clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

bootstrap: ## install missing Debian packages, mount bpffs, check the kernel
	@scripts/bootstrap.sh

build: bootstrap ## build everything (debug)
	$(SWIFT) build

test: bootstrap lint ## run every test (unit and root/lab integration), then the unit tests under ASan and TSan
	$(SWIFT) build --build-tests
	SWIFT=$(SWIFT) scripts/run-tests.sh --skip WebUISoakTests
	SWIFT=$(SWIFT) scripts/sanitize.sh address
	SWIFT=$(SWIFT) scripts/sanitize.sh thread

sanitize: bootstrap ## only the sanitizer runs of `make test`: AddressSanitizer (+ leaks) and ThreadSanitizer on the tests without a lab
	SWIFT=$(SWIFT) scripts/sanitize.sh address
	SWIFT=$(SWIFT) scripts/sanitize.sh thread

SOAK_MINUTES ?= 60
soak: bootstrap ## SOAK_MINUTES (60) of lab traffic + a 100k events/s flood, relay follower, Prometheus: CSV + summary in .build/soak
	$(SWIFT) build -c release --product osprey
	$(SWIFT) build -c release --product osprey-agent
	$(SWIFT) build -c release --product osprey-relay
	$(SWIFT) build -c release --product osprey-bench
	scripts/soak.sh $(SOAK_MINUTES)

soak-ui: bootstrap ## the web UI open for 10 minutes (OSPREY_UI_SOAK_SECONDS): page heap and relay memory flat
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter WebUISoakTests

FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?= dns event jsonpb request addresses kubernetes batch
fuzz: bootstrap ## libFuzzer + AddressSanitizer on every parser of untrusted bytes, FUZZ_SECONDS each or FUZZ_RUNS executions (corpora: Fuzz/corpus)
	OSPREY_FUZZ=1 $(SWIFT) build -c release --build-path .build-fuzz --product osprey-fuzz
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench: bootstrap ## datapath overhead (iperf3, connection churn), live-flow latency, pipeline, export, UI
	$(SWIFT) build -c release --product osprey
	$(SWIFT) build -c release --product osprey-agent
	$(SWIFT) build -c release --product osprey-relay
	$(SWIFT) build -c release --product osprey-bench
	scripts/bench-datapath.sh $(ROUNDS) $(SECONDS_PER_RUN) cross
	scripts/bench-datapath.sh $(ROUNDS) $(SECONDS_PER_RUN) same
	scripts/bench-churn.sh $(ROUNDS) $(SECONDS_PER_RUN) cross
	scripts/bench-churn.sh $(ROUNDS) $(SECONDS_PER_RUN) same
	scripts/bench-programs.sh 3 $(SECONDS_PER_RUN) cross
	scripts/bench-program-cost.sh
	scripts/bench-attach.sh $(ROUNDS) $(SECONDS_PER_RUN) cross
	scripts/bench-hooks.sh $(ROUNDS) $(SECONDS_PER_RUN) same
	scripts/bench-latency.sh 15
	scripts/bench-connections.sh 100000 20
	scripts/bench-relay.sh 12 20000 10 50 200
	scripts/bench-relay.sh 12 500000 10 50 200
	scripts/bench-relay.sh 12 800000 10 50 200
	AGENTS=getflows scripts/bench-relay.sh 12 800000 50
	CLIENT=grpc scripts/bench-relay.sh 12 800000 50
	AGENTS=observer scripts/bench-relay.sh 12 800000 50
	scripts/bench-kubernetes.sh 100000 10000
	scripts/bench-events.sh 100000 60 4095 3
	scripts/bench-events.sh 70000 5 65535
	gcc -O2 -shared -fPIC -o .build/osp-malloc-count.so scripts/malloc-count/malloc_count.c -ldl
	.build/release/osprey-bench 2000000 4095
	.build/release/osprey-bench 2000000 65535
	.build/release/osprey-bench 2000000 4095 remote
	.build/release/osprey-bench 2000000 4095 all
	.build/release/osprey-bench followers 500 2000000
	.build/release/osprey-bench filter 1000000
	LD_PRELOAD=$(CURDIR)/.build/osp-malloc-count.so .build/release/osprey-bench 200000 4095 | grep allocations
	.build/release/osprey-bench export 200000
	scripts/bench-export.sh 67000 60
	.build/release/osprey-bench ui 200000

demo: bootstrap build ## bring up the lab cluster and show what runs where
	@$(OSPREY) lab down --name $(LAB) > /dev/null
	$(OSPREY) lab up --name $(LAB) --nodes $(NODES) --topology $(TOPOLOGY) \
		--prometheus-rules deploy/prometheus/osprey-alerts.yaml

demo-down: ## remove the demo lab
	$(OSPREY) lab down --name $(LAB)

fmt: ## format Swift and C sources in place
	$(SWIFT) format format --in-place --parallel $(SWIFT_SOURCES)
	$(if $(C_SOURCES),clang-format -i $(C_SOURCES))

lint: ## check formatting, and that every import is a dependency the target declares
	@$(SWIFT) format lint --strict --parallel $(SWIFT_SOURCES)
	$(if $(C_SOURCES),clang-format --dry-run -Werror $(C_SOURCES))
	python3 scripts/check-imports.py

proto: ## regenerate Sources/HubbleAPI from proto/ (builds the protoc plugins; not part of test)
	scripts/generate-proto.sh

clean: ## remove build outputs
	rm -rf .build
