# Release artefacts, built reproducibly: the same commit and Go toolchain
# give the same bytes (-trimpath, no build id, no VCS stamping beyond the
# version, zip entries with a fixed time and mode).
#
#   make release VERSION=v1.0.0   # dist/: binaries, Lambda zips, SHA256SUMS
#   make lambda                   # dist/flowguard-$(VERSION)-lambda-{arm64,amd64}.zip
#   make test                     # go vet and go test ./...
#   make check-reproducible       # release twice (the second with an empty
#                                 # build cache) and compare the checksums

VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
DIST     ?= dist
PLATFORMS = linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
GOFLAGS_RELEASE = -trimpath -buildvcs=false
LDFLAGS  = -s -w -buildid= -X main.version=$(VERSION)
# A fixed time for the zip entries: 1980-01-01, the zip epoch.
ZIPTIME  = 198001010000

.PHONY: all build release binaries lambda checksums check-reproducible test clean

all: build

build:
	go build -o flowguard ./cmd/flowguard

release: binaries lambda checksums

binaries:
	@mkdir -p $(DIST)
	@set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; \
	  echo "build $(DIST)/flowguard-$(VERSION)-$$os-$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build $(GOFLAGS_RELEASE) -ldflags "$(LDFLAGS)" \
	    -o $(DIST)/flowguard-$(VERSION)-$$os-$$arch ./cmd/flowguard; \
	done

# The Lambda package: one file named bootstrap (provided.al2023), built
# with the lambda.norpc tag the runtime API client supports.
lambda:
	@mkdir -p $(DIST)
	@set -e; for arch in arm64 amd64; do \
	  d=$$(mktemp -d); \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build $(GOFLAGS_RELEASE) -tags lambda.norpc -ldflags "$(LDFLAGS)" \
	    -o $$d/bootstrap ./cmd/flowguard; \
	  touch -t $(ZIPTIME) $$d/bootstrap; chmod 0755 $$d/bootstrap; \
	  rm -f $(DIST)/flowguard-$(VERSION)-lambda-$$arch.zip; \
	  (cd $$d && TZ=UTC zip -q -X -D $(abspath $(DIST))/flowguard-$(VERSION)-lambda-$$arch.zip bootstrap); \
	  rm -rf $$d; \
	  echo "build $(DIST)/flowguard-$(VERSION)-lambda-$$arch.zip"; \
	done

checksums:
	cd $(DIST) && sha256sum flowguard-$(VERSION)-* > SHA256SUMS

# Two releases of the same commit, the second built from an empty Go build
# cache, must be byte for byte the same: their SHA256SUMS are compared, and
# flowguard version must print VERSION.
check-reproducible:
	@set -e; a=$$(mktemp -d); b=$$(mktemp -d); \
	$(MAKE) --no-print-directory release DIST=$$a; \
	GOCACHE=$$b/.gocache $(MAKE) --no-print-directory release DIST=$$b; \
	if ! diff $$a/SHA256SUMS $$b/SHA256SUMS; then echo "check-reproducible: the two releases differ ($$a, $$b)" >&2; exit 1; fi; \
	v=$$($$a/flowguard-$(VERSION)-$$(go env GOOS)-$$(go env GOARCH) version); \
	case "$$v" in *"$(VERSION)"*) ;; *) echo "check-reproducible: flowguard version printed: $$v" >&2; exit 1;; esac; \
	chmod -R u+w $$b/.gocache; rm -rf $$a $$b; \
	echo "check-reproducible: two builds of $(VERSION) are identical"

test:
	go vet ./...
	go test ./...

clean:
	rm -rf $(DIST) flowguard
