# netguard. The quickstart is two commands: `make run` and `make test`.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

GO        ?= go
BIN       := $(CURDIR)/bin
ASSETS    := $(BIN)/k8s
NETGUARD  := $(BIN)/netguard
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
GOFILES    = $(shell git ls-files --cached --others --exclude-standard '*.go')

export KUBEBUILDER_ASSETS := $(ASSETS)

.PHONY: all build run test test-unit test-e2e envtest-assets dataplane-assets vet fmt-check clean help bench bench-quick image plugin lint vuln generate verify-generated tools

all: build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## build bin/netguard
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(NETGUARD) ./cmd/netguard

plugin: ## build bin/kubectl-netguard: netguard as a kubectl plugin (kubectl netguard ...)
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/kubectl-netguard ./cmd/netguard

# The image is assembled by hack/image (go-containerregistry), without a Docker
# engine or a base image: see docs/install.md, "The image". Its tag is the
# chart's appVersion, which is the chart's default image tag.
IMAGE_REPO        ?= ghcr.io/netguard/netguard
IMAGE_TAG         ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/netguard/Chart.yaml)
IMAGE_ARCH        ?= $(shell $(GO) env GOARCH)
IMAGE_REVISION    ?= $(shell git rev-parse HEAD 2>/dev/null)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

image: ## build the container image into bin/image: OCI layout (oci/), docker archive (netguard.tar), SBOM
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -buildvcs=false \
		-ldflags "-s -w -buildid= -X main.version=$(IMAGE_TAG) -X main.commit=$(IMAGE_REVISION)" \
		-o $(BIN)/image/linux-$(IMAGE_ARCH)/netguard ./cmd/netguard
	$(GO) run ./hack/image -binary $(BIN)/image/linux-$(IMAGE_ARCH)/netguard -arch $(IMAGE_ARCH) \
		-version $(IMAGE_TAG) -revision "$(IMAGE_REVISION)" -repository $(IMAGE_REPO) \
		-created $(SOURCE_DATE_EPOCH) -out $(BIN)/image

# The control plane is compiled from Go modules once and cached in bin/k8s.
# The script returns at once when every binary is there at the pinned versions.
envtest-assets: ## build etcd, kube-apiserver, kube-controller-manager, kubectl into bin/k8s
	hack/envtest-assets.sh

# The NetworkPolicy dataplane (kube-network-policies) is compiled once into
# bin/dataplane, outside bin/k8s; the script also installs Debian's iptables
# and nftables when they are missing. See docs/dataplane.md.
dataplane-assets: ## build kube-network-policies into bin/dataplane (and install iptables)
	hack/dataplane-assets.sh

run: build envtest-assets dataplane-assets ## start a local control plane with netguard's webhooks and a real dataplane; prints KUBECONFIG=...
	$(GO) build -o $(BIN)/netguard-run ./hack/run
	$(GO) build -o $(BIN)/netguard-dataplane ./hack/dataplane
	exec $(BIN)/netguard-run -netguard $(NETGUARD) -assets $(ASSETS) -dataplane $(BIN)/dataplane/kube-network-policies -dataplane-helper $(BIN)/netguard-dataplane

# e2e/dataplane needs root, network namespaces and a queue mechanism; on a
# machine without them it fails with one line, unless NETGUARD_SKIP_DATAPLANE=1.
test: fmt-check vet envtest-assets dataplane-assets ## every test: unit, race, fuzz seeds, e2e and real packets against a real API server
	$(GO) test -race -count=1 -timeout 45m ./...

test-unit: ## tests that need no control plane
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)

test-e2e: envtest-assets dataplane-assets ## e2e tests against the real control plane only
	$(GO) test -count=1 -timeout 45m -v ./e2e/...

# Benchmarks are never part of `make test`: they take minutes, and timing on
# a shared machine is no pass/fail criterion. See docs/benchmarks.md.
bench: ## measure netguard against its floor and alternatives; rewrites BENCHMARKS.md (about 10-15 minutes)
	$(GO) run ./hack/bench -assets $(ASSETS) -out BENCHMARKS.md

bench-quick: ## the same with small counts (a few minutes); writes tmp/BENCHMARKS.quick.md
	@mkdir -p tmp
	$(GO) run ./hack/bench -quick -assets $(ASSETS) -out tmp/BENCHMARKS.quick.md

vet: ## go vet
	$(GO) vet ./...

fmt-check: ## fail when gofmt would change a file
	@out=$$(gofmt -l $(GOFILES)); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Tools are pinned by the tool directives of a separate module, hack/tools,
# so that their dependencies never take part in netguard's own version
# selection (see CONTRIBUTING.md, "Tools"). Each is built once into bin/tools.
TOOLS := $(BIN)/tools
TOOLS_MOD := hack/tools/go.mod hack/tools/go.sum

$(TOOLS)/golangci-lint: $(TOOLS_MOD)
	$(GO) -C hack/tools build -o $(TOOLS)/ github.com/golangci/golangci-lint/v2/cmd/golangci-lint
$(TOOLS)/govulncheck: $(TOOLS_MOD)
	$(GO) -C hack/tools build -o $(TOOLS)/ golang.org/x/vuln/cmd/govulncheck
$(TOOLS)/controller-gen: $(TOOLS_MOD)
	$(GO) -C hack/tools build -o $(TOOLS)/ sigs.k8s.io/controller-tools/cmd/controller-gen
$(TOOLS)/benchstat: $(TOOLS_MOD)
	$(GO) -C hack/tools build -o $(TOOLS)/ golang.org/x/perf/cmd/benchstat

tools: $(TOOLS)/golangci-lint $(TOOLS)/govulncheck $(TOOLS)/controller-gen $(TOOLS)/benchstat ## build the pinned tools into bin/tools

# Not part of `make test`: building golangci-lint takes minutes on a cold
# cache. .ci/run runs it after the tests.
lint: $(TOOLS)/golangci-lint vuln ## golangci-lint (.golangci.yml), then govulncheck when its database is reachable
	$(TOOLS)/golangci-lint run ./...

vuln: $(TOOLS)/govulncheck ## govulncheck; skipped with a message when GOVULNDB (default https://vuln.go.dev) cannot be reached
	GOVULNCHECK=$(TOOLS)/govulncheck hack/vulncheck.sh

generate: $(TOOLS)/controller-gen ## regenerate deepcopy functions and CRDs from api/ (hack/gen-api.sh)
	CONTROLLER_GEN=$(TOOLS)/controller-gen hack/gen-api.sh

verify-generated: $(TOOLS)/controller-gen ## fail when the generated files differ from what make generate writes; leaves the tree untouched
	CONTROLLER_GEN=$(TOOLS)/controller-gen hack/gen-api.sh --verify

clean: ## remove bin/ except the cached control plane and dataplane
	find $(BIN) -mindepth 1 -maxdepth 1 ! -name k8s ! -name dataplane -exec rm -rf {} +

test-dataplane: envtest-assets dataplane-assets ## only the real-packet tests (e2e/dataplane)
	$(GO) test -count=1 -timeout 15m -v ./e2e/dataplane/

# Fuzzing and the soak are not part of `make test`: they take minutes.
.PHONY: fuzz soak test-dataplane

FUZZTIME ?= 5m
# Minimizing each new input for up to a minute (the default) stalls the
# webhook targets, whose inputs are whole AdmissionReviews: bound it by runs.
FUZZFLAGS ?= -fuzzminimizetime=500x
FUZZ_TARGETS := rules:FuzzParseDependsOn rules:FuzzAnalyze rules:FuzzGenerate webhook:FuzzNetworkPolicyReview webhook:FuzzWorkloadReview

fuzz: ## run each fuzz target for FUZZTIME (default 5m); a crasher is saved under <package>/testdata/fuzz: commit it
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name in ./$$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./$$pkg/ || exit 1; \
	done

SOAK_DURATION ?= 10m

soak: build ## mixed load on a local control plane for SOAK_DURATION (default 10m); fails if netguard's RSS or goroutines grow
	$(GO) run ./hack/soak -netguard $(NETGUARD) -assets $(ASSETS) -duration $(SOAK_DURATION)
