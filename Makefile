# Brain — build, run and test every module of the workspace.
MODULES := proto gateway worker brainctl testkit
SHELL   := /bin/bash
GO      ?= go
GOFLAGS_TEST ?= -race -shuffle=on -count=1 -timeout 40m
BENCHTIME ?= 3s
# The version that gateway -version, worker -version and brainctl version print.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/backendim/brain/proto/buildinfo.version=$(VERSION)

.PHONY: all build run test lint fmt vet bench tidy clean kube-bins

all: lint test

## build: compile bin/gateway, bin/worker and bin/brainctl
build:
	@mkdir -p bin
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/gateway ./gateway
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/worker ./worker
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/brainctl ./brainctl

## run: start a complete local Brain (embedded NATS, gateway, worker, example repo) and deploy the example
run: build
	@mkdir -p bin
	$(GO) build -o bin/devstack ./testkit/cmd/devstack
	./bin/devstack

## test: the tests of every module, with the race detector (builds the test API server once, cached)
test:
	@log=$$(mktemp); failed=""; \
	for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test $(GOFLAGS_TEST) ./... 2>&1) | tee -a $$log; \
	  [ $${PIPESTATUS[0]} -eq 0 ] || failed="$$failed $$m"; done; \
	echo "packages: $$(grep -c '^ok ' $$log) passed, $$(grep -c '^FAIL[[:space:]]' $$log) failed"; rm -f $$log; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

## lint: gofmt check and go vet on every module
lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

fmt:
	gofmt -w $(MODULES)

## bench: the benchmarks behind docs/performance.md
bench:
	@failed=""; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem -timeout 60m ./...) || failed="$$failed $$m"; done; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

## kube-bins: build (once) the kube-apiserver and etcd the Kubernetes tests run
kube-bins:
	./scripts/kube-test-bins.sh

tidy:
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) mod tidy); done
	$(GO) work sync

clean:
	rm -rf bin data
