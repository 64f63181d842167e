# luomodel build targets. `make test` is what CI runs (see .ci/run).
GO            ?= go
STATICCHECK   ?= staticcheck
STATICCHECK_VERSION := v0.8.2
PKGS          ?= ./...
BENCHTIME     ?= 1s
FUZZTIME      ?= 30s
# PGO is the profile `go build` applies to cmd/luo by itself (its
# default.pgo); benchmarks are built with it too, to measure what luo runs.
PGO           ?= $(CURDIR)/cmd/luo/default.pgo

.PHONY: all test test-short lint fmt vet staticcheck bench check fuzz tools

all: lint test

## test: the full test suite under the race detector (CI runs this), then
## the shim's C programs against a server built without -race.
test:
	$(GO) test -race -count=1 $(PKGS)
	$(GO) test -count=1 -run '^TestShim' ./serve/

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

## bench: every benchmark, once, with allocation figures, built with luo's
## profile (PGO).
bench:
	$(GO) test -pgo=$(PGO) -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) $(PKGS)

## pgo: regenerate cmd/luo/default.pgo, the profile of luo's two campaigns
## that the compiler optimizes luo for: a CPU profile of the concurrent
## benchmark merged with one of a sequential campaign (a minute or so).
.PHONY: pgo
pgo:
	$(GO) test -pgo=off -run='^$$' -bench='^BenchmarkSchedulesLin$$' -benchtime=20000x -cpu=1 -cpuprofile=$(CURDIR)/pgo-concurrent.prof ./proptest/concurrent/
	$(GO) run -pgo=off ./cmd/luo check -q -j 1 -concurrent 0 -duration 30s -cpuprofile $(CURDIR)/pgo-sequential.prof > /dev/null
	$(GO) tool pprof -proto $(CURDIR)/pgo-concurrent.prof $(CURDIR)/pgo-sequential.prof > cmd/luo/default.pgo
	rm -f $(CURDIR)/pgo-concurrent.prof $(CURDIR)/pgo-sequential.prof concurrent.test

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

## fuzz: run every fuzz target (FUZZ_TARGETS, default all) for FUZZTIME
## each, one after the other; it fails first if a Fuzz function of the
## tree is missing from FUZZ_TARGETS_ALL. A new interesting input is
## minimized with at most FUZZMINIMIZETIME calls. Go's default (60 s) went,
## whole, to each one (the minimizer's subset pass is quadratic in the
## input), and any time limit is lost: the coordinator's deadline for the
## worker's answer is the worker's own, so a minimization that runs to it is
## killed and discarded, and the worker restarted (FuzzReader: 1.3k execs/s
## at 5s, 9.5k at 500 calls). Go 1.26's coordinator can end a run with
## "context deadline exceeded" and no failing input when -fuzztime expires
## (go.dev/issue/75804, fixed in Go 1.27): that is reported and not counted
## as a finding. FUZZFLAGS go to go test (e.g. -parallel=1).
FUZZMINIMIZETIME ?= 500x
FUZZFLAGS ?=
FUZZ_TARGETS_ALL := \
	./kernel/lib/fdt:FuzzReader \
	./kernel/lib/fdt:FuzzWriterRoundTrip \
	./kernel/usermem:FuzzCopyStructFromUser \
	./kernel/kho:FuzzKHOHandover \
	./kernel/liveupdate:FuzzSessionDeserialize \
	./kernel/liveupdate:FuzzLUOHandover \
	./kernel/liveupdate:FuzzIoctl \
	./kernel/mm/memfdluo:FuzzRetrieve \
	./serve:FuzzServerMessages \
	./kernel/lib/liveupdatetest:FuzzFLBHandover \
	./proptest:FuzzLockstep
FUZZ_TARGETS ?= $(FUZZ_TARGETS_ALL)
fuzz:
	@set -e; \
	missing=$$(grep -rHo --include='*_test.go' --exclude-dir=.git --exclude-dir=testdata '^func Fuzz[A-Za-z0-9_]*' . | \
		sed 's,^\(.*\)/[^/]*:func ,\1:,' | sort -u | \
		while read t; do case " $(strip $(FUZZ_TARGETS_ALL)) " in *" $$t "*) ;; *) echo "$$t";; esac; done); \
	if [ -n "$$missing" ]; then echo "fuzz targets missing from FUZZ_TARGETS_ALL:" $$missing; exit 1; fi; \
	log=$$(mktemp); trap 'rm -f "$$log" "$$log.rc"' EXIT; \
	for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg) for $(FUZZTIME)"; \
		{ rc=0; $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) \
			-fuzzminimizetime $(FUZZMINIMIZETIME) $(FUZZFLAGS) $$pkg || rc=$$?; echo $$rc >"$$log.rc"; } 2>&1 | tee "$$log"; \
		[ "$$(cat "$$log.rc")" = 0 ] && continue; \
		grep -q 'Failing input written' "$$log" && exit 1; \
		awk '/^--- FAIL: /{f=NR} f && NR==f+1 && $$0=="    context deadline exceeded"{c=1} \
			f && NR==f+2 && c && $$0=="FAIL"{ok=1} END{exit !ok}' "$$log" || exit 1; \
		echo "== $$name: \"context deadline exceeded\" with no failing input: go.dev/issue/75804, not a finding"; \
	done

## mutants: the bug zoo: apply every mutants/*.patch to a scratch copy of
## HEAD, run its checks, print the kill table (fails if one survives).
.PHONY: mutants mutants-ci
mutants:
	$(GO) run ./cmd/luo mutants

## mutants-ci: the fixed CI subset of the zoo ("ci: yes" in the headers).
mutants-ci:
	$(GO) run ./cmd/luo mutants -ci

## shim: build shim/libluoshim.so, the LD_PRELOAD library that runs a real
## program against `luo serve` (see README "Real programs").
CC ?= cc
SHIM_CFLAGS ?= -O2 -g -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden
.PHONY: shim
shim: shim/libluoshim.so
shim/libluoshim.so: shim/libluoshim.c shim/luoshim_proto.h
	$(CC) $(SHIM_CFLAGS) -o $@ shim/libluoshim.c -ldl -lpthread
