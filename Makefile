# Lanterna build. `make` builds build/lanterna; `make run` starts it on the
# embedded default; `make test` runs every test (unit, fuzz corpus replay,
# integration), then again under ASan+UBSan. Set-up (Debian packages, the
# Python virtualenv) is done by scripts/ and is idempotent.

CC       ?= cc
BUILD    ?= release
PKGS     := libevent libevent_pthreads libprotobuf-c jansson sqlite3 zlib libzstd liblz4 libssl libcrypto
WARN     := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes
CSTD     := -std=c17 -D_GNU_SOURCE
ifeq ($(BUILD),release)
  OUT    := build
  OPT    := -O2 -g
else ifeq ($(BUILD),debug)
  OUT    := build/debug
  OPT    := -O0 -g3
else ifeq ($(BUILD),asan)
  OUT    := build/asan
  OPT    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
  $(error BUILD must be release, debug or asan)
endif

GEN      := build/gen
PROTOS   := $(shell find proto -name '*.proto' 2>/dev/null | sort)
PROTO_C  := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
# Data compiled into the binary (scripts/embed.sh).
EMBED_C  := $(GEN)/prices_json.c $(GEN)/ui_assets.c
SRCS     := $(shell find src -name '*.c' | sort)
OBJS     := $(patsubst src/%.c,$(OUT)/obj/%.o,$(SRCS)) $(patsubst $(GEN)/%.c,$(OUT)/obj/gen/%.o,$(PROTO_C) $(EMBED_C))
LIBOBJS  := $(filter-out $(OUT)/obj/main.o,$(OBJS))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNITS    := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRC))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))

CFLAGS_ALL  = $(CSTD) $(OPT) $(WARN) -Isrc -I$(GEN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
LDLIBS_ALL  = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm $(LDLIBS)

.PHONY: all deps run test unit fuzz fuzz-replay integration clean check-asan bench
all: deps $(OUT)/lanterna

deps:
	@bash scripts/deps-debian.sh

$(OUT)/lanterna: $(OBJS)
	@echo "  LINK  $@"
	@$(CC) $(OPT) -o $@ $^ $(LDLIBS_ALL)

# Generated files wait for deps too: protoc-c comes from a Debian package,
# and with -j the build would otherwise race its installation.
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto | deps
	@mkdir -p $(GEN)
	@echo "  PROTO $<"
	@protoc-c --proto_path=proto --c_out=$(GEN) $<

$(GEN)/prices_json.c: data/prices.json scripts/embed.sh
	@mkdir -p $(GEN)
	@echo "  EMBED $<"
	@bash scripts/embed.sh lt_builtin_prices $< > $@

# ---- Web UI (docs/ui.md) ----------------------------------------------------
# web/ (TypeScript) is bundled with npm and compiled in as $(GEN)/ui_assets.c.
# scripts/deps-node.sh runs `npm ci` only when web/package-lock.json changed,
# so with web/node_modules in place the build needs no network.
UI_SRC   := $(shell find web/src -type f 2>/dev/null) web/index.html web/build.mjs web/package.json web/package-lock.json
$(GEN)/ui_assets.c: $(UI_SRC) scripts/deps-node.sh scripts/embed-ui.sh
	@mkdir -p $(GEN)
	@echo "  UI    web/ -> $@"
	@bash scripts/embed-ui.sh $@

# Every object waits for the generated protobuf headers.
$(OUT)/obj/%.o: src/%.c $(PROTO_C) | deps
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

# Generated sources are kept (not intermediate) and every generated object
# waits for all of them: a generated file includes the headers it imports.
.SECONDARY:
$(OUT)/obj/gen/%.o: $(GEN)/%.c $(PROTO_C)
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(filter-out -Wshadow,$(CFLAGS_ALL)) -Wno-unused-parameter -MMD -MP -c -o $@ $<

$(OUT)/tests/%: tests/unit/%.c $(LIBOBJS) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	@echo "  TEST  $@"
	@$(CC) $(CFLAGS_ALL) -o $@ $< $(LIBOBJS) $(LDLIBS_ALL) -lcmocka

-include $(OBJS:.o=.d)

# Defaults (127.0.0.1:4318, ./lanterna-data) are the binary's own, so the
# LANTERNA_* variables work here too; ARGS adds flags:
#   make run ARGS="--listen 127.0.0.1:4319 --retention 7d"
run: all
	./$(OUT)/lanterna serve $(ARGS)

unit: deps $(UNITS)
	@bash scripts/run-unit.sh $(UNITS)

# Fuzz targets build with clang's libFuzzer into build/fuzz/: the library
# objects once (instrumented, no main), then one small link per target.
FUZZ_SECONDS ?= 0
FUZZ_BIN := $(patsubst fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
FUZZ_CFLAGS = $(CSTD) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -Ifuzz -Isrc -I$(GEN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_OBJS := $(patsubst src/%.c,build/fuzz/obj/%.o,$(filter-out src/main.c,$(SRCS))) \
             $(patsubst $(GEN)/%.c,build/fuzz/obj/gen/%.o,$(PROTO_C) $(EMBED_C))
build/fuzz/obj/gen/%.o: $(GEN)/%.c $(PROTO_C)
	@mkdir -p $(dir $@)
	@clang $(FUZZ_CFLAGS) -c -o $@ $<
build/fuzz/obj/%.o: src/%.c $(PROTO_C)
	@mkdir -p $(dir $@)
	@echo "  CC    $< (fuzz)"
	@clang $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<
build/fuzz/%: fuzz/%.c fuzz/otlp_walk.h $(FUZZ_OBJS)
	@echo "  FUZZ  $@"
	@clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LDLIBS_ALL)
-include $(FUZZ_OBJS:.o=.d)

fuzz: deps $(FUZZ_BIN)

# Replays every committed corpus file through its target (no mutation).
fuzz-replay: fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz-replay.sh $(FUZZ_BIN)

integration: all
	@bash scripts/deps-python.sh
	@bash scripts/deps-prometheus.sh
	@bash scripts/deps-node.sh tests/integration/node
	.venv/bin/python -m pytest -q sdk/python/tests
	LANTERNA_BIN=$(abspath $(OUT)/lanterna) .venv/bin/python -m pytest -q tests/integration

check-asan:
	$(MAKE) BUILD=asan unit integration

test: all unit
	$(MAKE) fuzz-replay FUZZ_SECONDS=10
	$(MAKE) integration
	bash scripts/ui-test.sh
	$(MAKE) check-asan

bench: all $(OUT)/bench/rollup_tool
	@bash scripts/deps-bench.sh
	.venv-bench/bin/python bench/ingest_bench.py
	.venv-bench/bin/python bench/rollup_bench.py
	.venv-bench/bin/python bench/sdk_bench.py
	.venv-bench/bin/python bench/proxy_bench.py

# Seeds a store through the real write path and computes exact answers
# from raw spans, for bench/rollup_bench.py.
$(OUT)/bench/rollup_tool: bench/rollup_tool.c $(LIBOBJS)
	@mkdir -p $(dir $@)
	@echo "  CC    $@"
	@$(CC) $(CFLAGS_ALL) -o $@ $< $(LIBOBJS) $(LDLIBS_ALL)

clean:
	rm -rf build
