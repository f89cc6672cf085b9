# dynoprof build: BPF C -> .bpf.o (clang -target bpf) -> skeleton header (bpftool gen
# skeleton) -> userspace objects -> ./dynoprof. Everything generated lives in .output/.
# `make V=1` shows the commands. `make test` runs unit tests (ASan+UBSan) and the
# integration suite (root, real BPF). `make bench` runs the benchmarks (not tests).

OUTPUT   := .output
CLANG    ?= clang
BPFTOOL  ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
ARCH     := x86
CC       ?= gcc
PYTHON   ?= /usr/bin/python3
PREFIX   ?= /usr/local

ifeq ($(V),1)
	Q =
	msg =
else
	Q = @
	msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

WARN     := -Wall -Wextra -Werror
CFLAGS   ?= -g -O2
# override: `make CFLAGS=-O0` replaces the optimisation, never the warnings and
# defines the code needs (without _GNU_SOURCE it builds with wrong prototypes).
override CFLAGS += $(WARN) -std=gnu11 -fno-omit-frame-pointer -D_GNU_SOURCE
INCLUDES := -I$(OUTPUT) -I$(OUTPUT)/assets -Iuser -Ibpf
LDLIBS   := -lbpf -lelf -lz -llzma -lmicrohttpd -lsqlite3 -lstdc++ -lpthread -lm
SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))
BPF_HDRS  := $(filter-out %.bpf.h,$(wildcard bpf/*.h))
# BPF-only code of each concern (bpf/*.bpf.h), included by the .bpf.c.
BPF_PROG_HDRS := $(wildcard bpf/*.bpf.h)

MAIN_SRC  := user/cli/main.c
LIB_SRCS  := $(filter-out $(MAIN_SRC),$(shell find user -name '*.c' | sort))
LIB_OBJS  := $(patsubst %.c,$(OUTPUT)/obj/%.o,$(LIB_SRCS))
SAN_OBJS  := $(patsubst %.c,$(OUTPUT)/san/%.o,$(LIB_SRCS))
USER_HDRS := $(shell find user -name '*.h')

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(UNIT_SRCS))
WORKLOAD_SRCS := $(wildcard tests/workloads/*.c)
WORKLOAD_BINS := $(patsubst tests/workloads/%.c,$(OUTPUT)/workloads/%,$(WORKLOAD_SRCS))

# Assets (script, style) are files of their own, built in as C strings:
# user/X/assets/name.ext -> .output/assets/name.ext.inc defining name_ext[].
ASSETS     := $(wildcard user/*/assets/*)
ASSET_INCS := $(patsubst %,$(OUTPUT)/assets/%.inc,$(notdir $(ASSETS)))
vpath %.js $(sort $(dir $(ASSETS)))
vpath %.css $(sort $(dir $(ASSETS)))
vpath %.html $(sort $(dir $(ASSETS)))

.PHONY: all deps test-deps unit-test integration-test test bench clean profile check-layers \
	fuzz fuzz-build fuzz-smoke
.DEFAULT_GOAL := all
.SECONDARY: $(BPF_OBJS) $(SKELS) $(LIB_OBJS) $(SAN_OBJS) $(ASSET_INCS)

all: dynoprof libdynotag

deps:
	$(Q)sh scripts/deps.sh build

test-deps:
	$(Q)sh scripts/deps.sh test

# The Debian unstable root CPython 3.13-3.15 (and 3.14/3.15 debug builds) run from
# in the Python tests (scripts/python-root.sh; cached under /var/cache/dynoprof-test,
# a few minutes to build once, then instant).
.PHONY: test-root
test-root: | test-deps
	$(Q)sh scripts/python-root.sh >/dev/null

$(OUTPUT) $(OUTPUT)/tests $(OUTPUT)/workloads:
	$(Q)mkdir -p $@

# BPF objects: CO-RE against the pre-generated vmlinux.h.
$(OUTPUT)/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) $(BPF_PROG_HDRS) vmlinux/$(ARCH)/vmlinux.h | $(OUTPUT) deps
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
		-Ivmlinux/$(ARCH) -Ibpf -c $< -o $@


# The SVG writer's objects (every build flavour) include them.
$(OUTPUT)/obj/user/formats/svg.o $(OUTPUT)/san/user/formats/svg.o \
	$(OUTPUT)/fuzz/obj/user/formats/svg.o: $(ASSET_INCS)
# ... and the agent's web page (user/agent/assets/web.*).
$(OUTPUT)/obj/user/agent/web.o $(OUTPUT)/san/user/agent/web.o \
	$(OUTPUT)/fuzz/obj/user/agent/web.o $(OUTPUT)/cov/obj/user/agent/web.o: $(ASSET_INCS)

$(OUTPUT)/assets/%.inc: % scripts/embed.sh
	$(call msg,EMBED,$@)
	$(Q)mkdir -p $(@D)
	$(Q)sh scripts/embed.sh $(subst .,_,$(notdir $<)) < $< > $@.tmp && mv $@.tmp $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o | $(OUTPUT)
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(OUTPUT)/obj/%.o: %.c $(USER_HDRS) $(BPF_HDRS) $(SKELS) | deps
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) -c $< -o $@

$(OUTPUT)/san/%.o: %.c $(USER_HDRS) $(BPF_HDRS) $(SKELS) | deps
	$(call msg,CC-SAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -O1 $(SAN) $(INCLUDES) -c $< -o $@

dynoprof: $(OUTPUT)/obj/$(MAIN_SRC:.c=.o) $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# Unit tests (cmocka), built with ASan+UBSan against the same sources.
$(OUTPUT)/tests/%: tests/unit/%.c $(SAN_OBJS) | $(OUTPUT)/tests test-deps
	$(call msg,TEST-CC,$@)
	$(Q)$(CC) $(CFLAGS) -O1 $(SAN) $(INCLUDES) -Itests/unit $< $(SAN_OBJS) $(LDLIBS) -lcmocka -o $@

# Workloads the integration tests profile: frame pointers on, no optimisation that
# would inline the functions whose names the tests look for.
$(OUTPUT)/workloads/%: tests/workloads/%.c | $(OUTPUT)/workloads
	$(call msg,WORKLOAD,$@)
	$(Q)$(CC) -g -O1 -fno-omit-frame-pointer -fno-inline -Wall -Wextra -Werror $< -o $@ -lm -lpthread

# Workloads built the way distributions build (-O2, no frame pointers, PIE, a
# shared library reached through the PLT): the CFI unwinder's truth
# (tests/integration/test_unwind.py).
NOFP_WORKLOADS := $(OUTPUT)/workloads/nofp_chain
NOFP_CFLAGS := -g -O2 -fomit-frame-pointer -Wall -Wextra -Werror

$(OUTPUT)/workloads/libnofp.so: tests/workloads/nofp/libnofp.c tests/workloads/nofp/nofp.h | $(OUTPUT)/workloads
	$(call msg,WORKLOAD,$@)
	$(Q)$(CC) $(NOFP_CFLAGS) -fPIC -shared $< -o $@

# The same library under another name, dlopen()ed late by nofp_chain's "late" mode
# (-Bsymbolic: its calls stay in it, not bound to libnofp.so's same names).
$(OUTPUT)/workloads/libnofp_late.so: tests/workloads/nofp/libnofp.c tests/workloads/nofp/nofp.h | $(OUTPUT)/workloads
	$(call msg,WORKLOAD,$@)
	$(Q)$(CC) $(NOFP_CFLAGS) -fPIC -shared -Wl,-Bsymbolic $< -o $@

$(OUTPUT)/workloads/nofp_chain: tests/workloads/nofp/nofp_chain.c tests/workloads/nofp/nofp.h \
		$(OUTPUT)/workloads/libnofp.so $(OUTPUT)/workloads/libnofp_late.so
	$(call msg,WORKLOAD,$@)
	$(Q)$(CC) $(NOFP_CFLAGS) -fPIE -pie $< -o $@ -L$(OUTPUT)/workloads -l:libnofp.so \
		-Wl,-rpath,'$$ORIGIN'

# One target per test binary: `make -j2 -Otarget unit-test` runs two at a time, each
# one's output whole.
UNIT_RUNS := $(patsubst $(OUTPUT)/tests/%,unit-run-%,$(UNIT_BINS))
unit-test: $(UNIT_RUNS)

unit-run-%: $(OUTPUT)/tests/%
	$(Q)echo "== $<"; ASAN_OPTIONS=detect_leaks=1 $<

# `make test`: what it runs is built first with TEST_JOBS jobs (default: every core),
# then the unit tests and the fuzz smoke run TEST_JOBS at a time, then the integration
# suite in one process (TEST_WORKERS=0, the default) or in TEST_WORKERS pytest-xdist
# workers with --dist loadgroup: tests/integration/xdist_groups.py keeps the tests that
# load the machine and check CPU figures from ever running beside each other. Two
# workers take 18 min instead of 29, but the heavy tests' ground truths (the apps' own
# CPU per request) then move with the other worker's load: one of three runs passed.
TEST_JOBS    ?= $(shell nproc)
TEST_WORKERS ?= 0
XDIST_ARGS   := $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup)

# The tests marked "alone" run after the workers, one at a time; both runs always
# run, and either failing fails the target.
integration-test: dynoprof libdynotag $(WORKLOAD_BINS) $(NOFP_WORKLOADS) | test-deps test-root
	$(Q)rc=0; $(PYTHON) -m pytest -v -p no:cacheprovider --durations=40 \
		$(XDIST_ARGS) -m "not alone" tests/integration || rc=1; \
	$(PYTHON) -m pytest -v -p no:cacheprovider -m alone tests/integration || rc=1; \
	exit $$rc

# Line coverage of user/ by the unit tests alone (`make coverage`): the tests built
# with gcc --coverage (-O0, no sanitizers) from their own objects in $(COV)/, run
# (fresh counts each time), then gcov per source, summed per folder and in total
# (scripts/coverage.sh). main.c is compiled too (no test links it: it counts as 0).
COV       := $(OUTPUT)/cov
COV_SRCS  := $(MAIN_SRC) $(LIB_SRCS)
COV_OBJS  := $(patsubst %.c,$(COV)/obj/%.o,$(LIB_SRCS))
COV_BINS  := $(patsubst tests/unit/%.c,$(COV)/tests/%,$(UNIT_SRCS))
.PHONY: coverage
.SECONDARY: $(COV_OBJS)

$(COV)/obj/user/formats/svg.o: $(ASSET_INCS)

$(COV)/obj/%.o: %.c $(USER_HDRS) $(BPF_HDRS) $(SKELS) | deps
	$(call msg,CC-COV,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -O0 --coverage $(INCLUDES) -c $< -o $@

$(COV)/tests/%: tests/unit/%.c $(COV_OBJS) | test-deps
	$(call msg,TEST-COV,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -O0 $(INCLUDES) -Itests/unit $< $(COV_OBJS) $(LDLIBS) -lcmocka --coverage -o $@

coverage: $(COV_BINS) $(COV)/obj/$(MAIN_SRC:.c=.o)
	$(Q)find $(COV) -name '*.gcda' -delete
	$(Q)set -e; for t in $(COV_BINS); do echo "== $$t"; $$t; done
	$(Q)sh scripts/coverage.sh $(COV)/obj $(COV_SRCS)

# The architecture: every include in user/ goes down the layers (scripts/check-layers.sh).
check-layers:
	$(Q)sh scripts/check-layers.sh

# apt-get first and alone (deps and test-deps would race for dpkg's lock), then the
# build in parallel, then the steps one after another (-j1: never beside each other).
test: check-layers
	$(Q)$(MAKE) --no-print-directory test-deps
	$(Q)$(MAKE) --no-print-directory -j$(TEST_JOBS) dynoprof libdynotag $(UNIT_BINS) \
		fuzz-build $(WORKLOAD_BINS) $(NOFP_WORKLOADS) test-root
	$(Q)$(MAKE) --no-print-directory -j$(TEST_JOBS) -Otarget unit-test
	$(Q)$(MAKE) --no-print-directory -j$(TEST_JOBS) -Otarget fuzz-smoke
	$(Q)$(MAKE) --no-print-directory -j1 integration-test

# The whole binary built with ASan + UBSan ($(OUTPUT)/san/dynoprof, from the unit tests'
# objects) run through the integration suite (`make sanitize-test`, issue 12). Reports
# go to files under $(SAN_LOGS) (not stderr, which tests compare); conftest.py fails the
# test during which a report appeared and prints it. PYTEST_ARGS narrows the run.
SAN_BIN  := $(OUTPUT)/san/dynoprof
SAN_LOGS := $(OUTPUT)/san-logs
.PHONY: sanitize-build sanitize-test

$(SAN_BIN): $(OUTPUT)/san/$(MAIN_SRC:.c=.o) $(SAN_OBJS)
	$(call msg,LINK-SAN,$@)
	$(Q)$(CC) $(CFLAGS) -O1 $(SAN) $^ $(LDLIBS) -o $@

sanitize-build: $(SAN_BIN)

sanitize-test: $(SAN_BIN) dynoprof libdynotag $(WORKLOAD_BINS) $(NOFP_WORKLOADS) | test-deps test-root
	$(Q)mkdir -p $(SAN_LOGS)
	$(Q)DYNOPROF=$(abspath $(SAN_BIN)) DYNOPROF_SAN_LOGS=$(abspath $(SAN_LOGS)) \
		$(PYTHON) -m pytest -v -p no:cacheprovider $(or $(PYTEST_ARGS),tests/integration)

bench: dynoprof libdynotag $(WORKLOAD_BINS) $(OUTPUT)/bench/bench_dynotag $(OUTPUT)/bench/fleet_sim
	$(Q)$(PYTHON) tests/bench/run_bench.py
	$(Q)$(PYTHON) tests/bench/bench_python.py
	$(Q)$(PYTHON) tests/bench/bench_counting.py
	$(Q)$(OUTPUT)/bench/bench_dynotag
	$(Q)DYNOTAG_LIBRARY=$(abspath $(DYNOTAG_SO)) $(PYTHON) tests/bench/bench_dynotag.py
	$(Q)$(PYTHON) tests/bench/bench_agent.py --minutes $(or $(AGENT_BENCH_MINUTES),10) --processes 20
	$(Q)$(PYTHON) tests/bench/fleet_sim.py
	$(Q)$(MAKE) --no-print-directory bench-unwind

# Native unwinding (issue 16): BPF cost per sample with 30 CFI-unwound native frames
# and with 100 Python frames, xz -9's slowdown under dynoprof (CFI, --no-eh-frame) and
# perf --call-graph dwarf, unwind table build time and memory
# (tests/bench/bench_unwind.py; BENCH_UNWIND_ARGS passes options, e.g. --xz-mb 16).
.PHONY: bench-unwind
UNWIND_BENCH_BINS := $(OUTPUT)/bench/unwind_deep_nofp $(OUTPUT)/bench/unwind_deep_fp \
	$(OUTPUT)/bench/bench_cfi_build
bench-unwind: dynoprof $(UNWIND_BENCH_BINS)
	$(Q)$(PYTHON) tests/bench/bench_unwind.py $(BENCH_UNWIND_ARGS)

$(OUTPUT)/bench/unwind_deep_nofp: tests/bench/unwind_deep.c
	$(call msg,BENCH-CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(NOFP_CFLAGS) $< -o $@

$(OUTPUT)/bench/unwind_deep_fp: tests/bench/unwind_deep.c
	$(call msg,BENCH-CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -g -O2 -fno-omit-frame-pointer -Wall -Wextra -Werror $< -o $@

# The registry's per-file table build alone (cfi_table.c), timed by bench_unwind.py.
$(OUTPUT)/bench/bench_cfi_build: tests/bench/bench_cfi_build.c user/unwind/cfi_table.c \
		user/unwind/cfi_table.h bpf/unwind_abi.h
	$(call msg,BENCH-CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) $< user/unwind/cfi_table.c -lelf -o $@

# The fleet simulation (tests/bench/fleet_sim.py drives it): diff's statistic alone.
$(OUTPUT)/bench/fleet_sim: tests/bench/fleet_sim.c tests/unit/fleet_sim.h user/stats/ratio_ci.c user/stats/rng.c
	$(call msg,BENCH-CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -O2 $(INCLUDES) $< user/stats/ratio_ci.c user/stats/rng.c -lm -o $@

# The fleet-host soak (tests/integration/test_fleet.py, issue 11): Django under gunicorn
# in its own cgroup through SOAK_MINUTES (default 10) of churn and rolling deploys, the
# agent at its defaults; prints every window's conservation error and the agent's CPU/RSS.
.PHONY: soak
soak: dynoprof libdynotag | test-deps
	$(Q)DYNOPROF_SOAK=1 SOAK_MINUTES=$(or $(SOAK_MINUTES),10) $(PYTHON) -m pytest -v -s \
		-p no:cacheprovider tests/integration/test_fleet.py -k test_soak_fleet_host

# The quick start's main job: the whole machine for 10 s into profile.svg.
profile: dynoprof
	./dynoprof record -a -d 10 -o profile.svg

# Fuzzing (libFuzzer): every parser's harness in tests/fuzz/, built with clang from
# the same sources as dynoprof (own objects: fuzzer coverage + ASan + UBSan).
# `make fuzz SECONDS=N` runs each harness N seconds (default 60) on its seed
# corpus (tests/fuzz/corpus/X/, read only) plus a working corpus it grows in
# .output/fuzz/work/X/ (FUZZ_WORK); any crash, leak, UBSan report or hang fails the target
# and leaves the input in .output/fuzz/artifacts/. `make test` runs 5 s each.
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(patsubst tests/fuzz/%.c,$(OUTPUT)/fuzz/%,$(FUZZ_SRCS))
FUZZ_OBJS    := $(patsubst %.c,$(OUTPUT)/fuzz/obj/%.o,$(LIB_SRCS))
FUZZ_LIB     := $(OUTPUT)/fuzz/libdynoprof-fuzz.a
FUZZ_CFLAGS  := -g -O1 $(WARN) -std=gnu11 -fno-omit-frame-pointer -D_GNU_SOURCE \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SECONDS := $(or $(SECONDS),60)
FUZZ_WORK    ?= $(OUTPUT)/fuzz/work
FUZZ_RUN     := nice -n 19
.SECONDARY: $(FUZZ_OBJS)

$(OUTPUT)/fuzz/obj/%.o: %.c $(USER_HDRS) $(BPF_HDRS) $(SKELS) | deps
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(INCLUDES) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUTPUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_LIB)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(INCLUDES) $< $(FUZZ_LIB) $(LDLIBS) -o $@

fuzz-build: $(FUZZ_BINS)

# One target per harness: `make -jN fuzz` runs N at a time (`make test`: TEST_JOBS).
FUZZ_RUNS := $(patsubst $(OUTPUT)/fuzz/fuzz_%,fuzz-run-%,$(FUZZ_BINS))
fuzz: $(FUZZ_RUNS)

fuzz-run-%: $(OUTPUT)/fuzz/fuzz_%
	$(Q)set -e; n=$*; b=$<; \
		mkdir -p $(FUZZ_WORK)/$$n $(OUTPUT)/fuzz/artifacts; \
		echo "== fuzz_$$n: $(FUZZ_SECONDS) s"; \
		ASAN_OPTIONS=detect_leaks=1 $(FUZZ_RUN) $$b -max_total_time=$(FUZZ_SECONDS) \
			-timeout=20 -rss_limit_mb=2560 -print_final_stats=1 \
			-artifact_prefix=$(OUTPUT)/fuzz/artifacts/$$n- \
			$(FUZZ_WORK)/$$n tests/fuzz/corpus/$$n \
			> $(OUTPUT)/fuzz/$$n.log 2>&1 || { tail -40 $(OUTPUT)/fuzz/$$n.log; \
			echo "fuzz_$$n FAILED: see $(OUTPUT)/fuzz/$$n.log and $(OUTPUT)/fuzz/artifacts/"; exit 1; }; \
		grep -E '^stat::number_of_executed_units|^Done' $(OUTPUT)/fuzz/$$n.log | tr '\n' ' '; echo

# The smoke run starts from the seed corpora alone (a fresh working corpus), so its
# time does not grow with what long runs found.
fuzz-smoke:
	$(Q)rm -rf $(OUTPUT)/fuzz/smoke-work
	$(Q)$(MAKE) --no-print-directory fuzz SECONDS=5 FUZZ_WORK=$(OUTPUT)/fuzz/smoke-work

include libdynotag/Makefile.inc
include scripts/install.mk

clean:
	rm -rf $(OUTPUT) dynoprof
