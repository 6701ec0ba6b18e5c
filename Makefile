# jitsi-agent: the two commands a new machine needs are `make demo` and `make test`.
GO       ?= go
BIN      ?= bin/jitsi-agent
DEMO_OUT ?= demo-out
SPEC     ?= examples/meet.hcl
PKGS     := ./...

# The demo renders the example with a throwaway JWT secret unless you export
# your own; it needs no root and writes only under $(DEMO_OUT).
DEMO_SECRET  := 5d1c0e9a7b3f48e2a6c4d8f0b2e7a9c1d3f5b7e9a1c3e5f7
DEMO_API_KEY := 8e2b6f0a4c9d1e7b3a5f9c2d6e0b4a8f
DEMO_ENV      = JITSI_APP_SECRET=$${JITSI_APP_SECRET:-$(DEMO_SECRET)} JOIN_API_KEY=$${JOIN_API_KEY:-$(DEMO_API_KEY)}

.PHONY: all build demo test test-short vet staticcheck fmt-check fuzz bench clean deb release

all: build

# Version stamping: `jitsi-agent version` and the metrics' build_info label
# show these. Override VERSION for a release; DATE honours SOURCE_DATE_EPOCH
# for reproducible builds.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell date -u -d @$${SOURCE_DATE_EPOCH:-$$(date +%s)} +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

# Static binaries (CGO_ENABLED=0): no dynamic loader at every start (about
# 1 ms of each `jitsi-agent` run) and os/user reads /etc/passwd and
# /etc/group itself; the system users jitsi-agent looks up are local ones.
# Three programs, kept apart so that what every start pays stays small
# (README, Performance): jitsi-agent is the launcher
# (cmd/jitsi-agent-launcher: version, help, completion, man and no-op
# applies), jitsi-agent-full (cmd/jitsi-agent) runs every other command, and
# jitsi-agent-import runs `jitsi-agent import` (its JavaScript and Lua
# engines). The launcher finds the other two next to it. The launcher and
# jitsi-agent-full carry the same version stamp (a no-op stamp names both).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/jitsi-agent-launcher
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(dir $(BIN))jitsi-agent-full ./cmd/jitsi-agent
	CGO_ENABLED=0 $(GO) build -trimpath -o $(dir $(BIN))jitsi-agent-import ./cmd/jitsi-agent-import

demo: build
	@rm -rf $(DEMO_OUT)
	$(DEMO_ENV) ./$(BIN) validate $(SPEC)
	$(DEMO_ENV) ./$(BIN) render $(SPEC) --out $(DEMO_OUT)
	@echo
	@echo "The complete deployment for $(SPEC) is under ./$(DEMO_OUT) (laid out as under /)."
	@echo "Next: JITSI_APP_SECRET=... JOIN_API_KEY=... ./$(BIN) plan $(SPEC) --root $(DEMO_OUT)"

vet:
	$(GO) vet $(PKGS)

# staticcheck (installed by .ci/run); the one repo-wide exception is
# explained in staticcheck.conf, others where they are made (//lint:ignore).
staticcheck:
	staticcheck $(PKGS)

fmt-check:
	@out=$$(gofmt -l cmd internal templates systemd packaging); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The test command CI runs (after .ci/run installed the real components).
test: fmt-check vet staticcheck
	$(GO) test -race -count=1 -timeout 30m $(PKGS)
	$(MAKE) --no-print-directory fuzz

test-short:
	$(GO) test -short -count=1 $(PKGS)

# Brief coverage-guided fuzzing of the input decoders (seed corpora also run
# as plain tests in `go test`).
# A count, not a duration: duration-based runs can end with a spurious
# "context deadline exceeded" when a worker is mid-input at the deadline.
# Minimising a new input may take up to -fuzzminimizetime (60 s by default)
# with no inputs run meanwhile; 5 s keeps a run that finds several within the
# timeout (go test's 10 minutes is too short for FuzzLoad on a slow machine).
FUZZTIME ?= 50000x
fuzz:
	@set -e; for t in $$(grep -rhoE '^func (Fuzz[A-Za-z0-9_]+)' --include='*_test.go' internal | sed 's/func //' | sort -u); do \
	  pkg=$$(grep -rlE "^func $$t\(" --include='*_test.go' internal | head -1 | xargs dirname); \
	  echo "fuzz $$t in ./$$pkg for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s -timeout 20m ./$$pkg; \
	done

# consul-template (the start-up comparison) and pebble are Go tools: go.mod's
# tool block, built into .ci/bin.
bench:
	$(GO) build -o .ci/bin/ tool
	PATH="$(CURDIR)/.ci/bin:$$PATH" $(GO) test -run '^$$' -bench . -benchmem -count 5 $(PKGS) | tee bench.txt

clean:
	rm -rf bin dist $(DEMO_OUT) bench.txt

# Debian packages and the release set (packaging/deb/build.sh; dpkg-deb,
# no debhelper). Reproducible: SOURCE_DATE_EPOCH defaults to the commit
# time, so two builds of one commit are byte-identical.
DIST        ?= dist
DEB_ARCHES  ?= amd64 arm64
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
# packaging/debversion.sh: v1.2.3 -> 1.2.3; untagged -> 0~gitYYYYMMDD.HASH.
DEB_VERSION ?= $(shell SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) packaging/debversion.sh '$(VERSION)')

deb:
	@for a in $(DEB_ARCHES); do GO=$(GO) packaging/deb/build.sh $$a '$(DEB_VERSION)' '$(VERSION)' '$(COMMIT)' $(DIST) || exit 1; done

# The .debs, one static tarball per architecture and SHA256SUMS over them.
release: deb
	@set -e; for a in $(DEB_ARCHES); do packaging/tarball.sh $$a '$(DEB_VERSION)' $(DIST); done
	cd $(DIST) && sha256sum jitsi-agent_$(DEB_VERSION)_*.deb jitsi-agent_$(DEB_VERSION)_linux_*.tar.gz > SHA256SUMS
	@echo "$(DIST)/SHA256SUMS"
