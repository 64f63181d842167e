# luomodel build targets. `make test` is what CI runs (see .ci/run).
GO            ?= go
STATICCHECK   ?= staticcheck
STATICCHECK_VERSION := v0.8.2
PKGS          ?= ./...
BENCHTIME     ?= 1s
FUZZTIME      ?= 30s

.PHONY: all test test-short lint fmt vet staticcheck bench check fuzz tools

all: lint test

## test: the full test suite under the race detector (CI runs this).
test:
	$(GO) test -race -count=1 $(PKGS)

## test-short: a quick pass without -race.
test-short:
	$(GO) test -short -count=1 $(PKGS)

## lint: gofmt, go vet and staticcheck (pinned).
lint: fmt vet staticcheck

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

staticcheck:
	@command -v $(STATICCHECK) >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$$( command -v $(STATICCHECK) || echo $$($(GO) env GOPATH)/bin/staticcheck ) $(PKGS)

## tools: install the pinned lint tools.
tools:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## bench: every benchmark, once, with allocation figures.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) $(PKGS)

## check: the main job, a default checking campaign.
check:
	$(GO) run ./cmd/luo check

## xref: regenerate docs/xref.md (C function -> Go counterpart -> tests).
.PHONY: xref
xref:
	XREF_UPDATE=1 $(GO) test -count=1 -run '^TestXref$$' ./docs
