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

## breakages: issue 5's acceptance experiments: each patch under
## proptest/testdata/breakages, applied alone to a copy of the committed
## tree, must make `luo check` fail (minutes; LUOMODEL_CAMPAIGN=N seeds it).
.PHONY: breakages
breakages:
	LUOMODEL_BREAKAGES=1 $(GO) test -count=1 -v -timeout 30m -run '^TestBreakages$$' ./proptest/

## xref: regenerate docs/xref.md (C function -> Go counterpart -> tests).
.PHONY: xref
xref:
	XREF_UPDATE=1 $(GO) test -count=1 -run '^TestXref$$' ./docs

## fuzz: run every fuzz target for FUZZTIME each, one after the other.
FUZZ_TARGETS ?= \
	./kernel/lib/fdt:FuzzReader \
	./kernel/lib/fdt:FuzzWriterRoundTrip \
	./kernel/usermem:FuzzCopyStructFromUser \
	./kernel/kho:FuzzKHOHandover \
	./kernel/liveupdate:FuzzSessionDeserialize \
	./kernel/liveupdate:FuzzLUOHandover \
	./kernel/liveupdate:FuzzIoctl \
	./kernel/mm/memfdluo:FuzzRetrieve \
	./proptest:FuzzLockstep
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## mutants: the bug zoo: apply every mutants/*.patch to a scratch copy of
## HEAD, run its checks, print the kill table (fails if one survives).
.PHONY: mutants mutants-ci
mutants:
	$(GO) run ./cmd/luo mutants

## mutants-ci: the fixed CI subset of the zoo ("ci: yes" in the headers).
mutants-ci:
	$(GO) run ./cmd/luo mutants -ci
