# Shale -- top-level Makefile.
#
#   make                  libshale (static + shared), shale CLI, shale-agent
#   make test             install what is missing, then unit tests, the same
#                         tests under ASan+UBSan, and the integration tests
#   make demo             the README's first command: a 3-way split end to end
#   make SANITIZE=address,undefined   any target, built with sanitizers
#   make bench / bench-quick / bench-build / fuzz / soak / lint / clean
#
# Every engine/*/*.c file is part of libshale, every tests/unit/test_*.c is
# one cmocka binary, so adding a module needs no edit here.

CC       ?= gcc
BUILD    ?= build
SANITIZE ?=
OPT      ?= -O2 -g

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC $(OPT)
# The engine and the tests see everything; programs on the engine (the
# agent, the CLI) see its public headers only, so a private include there
# ("util/...", "db/...", "table/...", "objstore/...") fails the build
# (docs/library.md, "What tools get").
INCLUDES        := -Iengine/include -Iengine -Iagent -Itests/unit
PROGRAM_INCLUDES := -Iengine/include
DEP_PKGS    := libcurl libcrypto jansson yaml-0.1 libzstd libxxhash libxml-2.0 libmicrohttpd
PKG_CFLAGS  := $(shell pkg-config --cflags $(DEP_PKGS) 2>/dev/null)
PKG_LIBS    := $(shell pkg-config --libs $(DEP_PKGS) 2>/dev/null)
ifeq ($(strip $(PKG_LIBS)),)
PKG_LIBS    := -lcurl -lcrypto -ljansson -lyaml -lzstd -lxxhash -lxml2 -lmicrohttpd
PKG_CFLAGS  := -I/usr/include/libxml2
endif

ifneq ($(SANITIZE),)
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
BUILD     := $(BUILD)-san
endif

CFLAGS  := $(CFLAGS_BASE) $(INCLUDES) $(PKG_CFLAGS) $(SAN_FLAGS) $(EXTRA_CFLAGS)
PROGRAM_CFLAGS := $(CFLAGS_BASE) $(PROGRAM_INCLUDES) $(PKG_CFLAGS) $(SAN_FLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(SAN_FLAGS) $(EXTRA_LDFLAGS)
LIBS    := $(PKG_LIBS) -lpthread -lm

ENGINE_SRC := $(wildcard engine/util/*.c engine/objstore/*.c engine/table/*.c engine/db/*.c)
ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/%.o)
CLI_SRC    := $(wildcard engine/cli/*.c)
CLI_OBJ    := $(CLI_SRC:%.c=$(BUILD)/%.o)
AGENT_SRC  := $(wildcard agent/*.c)
AGENT_LIB_SRC := $(filter-out agent/main.c,$(AGENT_SRC))
AGENT_LIB_OBJ := $(AGENT_LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=$(BUILD)/fuzz/replay_%)
TESTLIB_SRC := $(wildcard tests/unit/support/*.c)
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(BUILD)/%.o)

# The shared library's ABI version (its soname) and full version, from
# SHALE_VERSION in shale.h: libshale.so.0 -> libshale.so.0.1.0.  The soname
# changes only when a release breaks the ABI (docs/library.md says what
# stays compatible).
VERSION   := $(shell sed -n 's/^\#define SHALE_VERSION "\(.*\)"/\1/p' engine/include/shale.h)
SOVERSION := $(firstword $(subst ., ,$(VERSION)))
LIB_A  := $(BUILD)/libshale.a
LIB_SO := $(BUILD)/libshale.so
LIB_SO_REAL := $(BUILD)/libshale.so.$(VERSION)
AGENT_A := $(BUILD)/libshale-agent.a
CLI    := $(BUILD)/shale
AGENT  := $(BUILD)/shale-agent

.PHONY: install uninstall all test test-unit test-integration demo bench bench-quick bench-build fuzz soak lint clean deps unit

all: $(LIB_A) $(LIB_SO) $(if $(CLI_SRC),$(CLI)) $(if $(wildcard agent/main.c),$(AGENT))

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB_A): $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Only what the public headers declare leaves the shared library
# (shale_export.h); everything else in the engine is hidden.
$(ENGINE_OBJ): CFLAGS += -fvisibility=hidden

# The agent and the CLI: public headers only (see INCLUDES above).
$(AGENT_LIB_OBJ) $(BUILD)/agent/main.o $(CLI_OBJ): CFLAGS := $(PROGRAM_CFLAGS)

$(LIB_SO_REAL): $(ENGINE_OBJ)
	$(CC) -shared -Wl,-soname,libshale.so.$(SOVERSION) -o $@ $^ $(LDFLAGS) $(LIBS)

$(LIB_SO): $(LIB_SO_REAL)
	ln -sf libshale.so.$(VERSION) $(BUILD)/libshale.so.$(SOVERSION)
	ln -sf libshale.so.$(VERSION) $@

$(AGENT_A): $(AGENT_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(CLI): $(CLI_OBJ) $(LIB_A)
	$(CC) -o $@ $(CLI_OBJ) $(LIB_A) $(LDFLAGS) $(LIBS)

$(AGENT): $(BUILD)/agent/main.o $(AGENT_A) $(LIB_A)
	$(CC) -o $@ $^ $(LDFLAGS) $(LIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(TESTLIB_OBJ) $(AGENT_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(TESTLIB_OBJ) $(AGENT_A) $(LIB_A) $(LDFLAGS) $(LIBS) -lcmocka

# Fuzz targets built with gcc and a file-replaying main: `make test` runs
# them over their committed corpora (regression tests for past crashes).
$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(AGENT_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< tests/fuzz/replay.c $(AGENT_A) $(LIB_A) $(LDFLAGS) $(LIBS)

unit: all $(UNIT_BIN) $(FUZZ_REPLAY)

deps:
	@scripts/deps.sh test

test:
	@scripts/deps.sh test
	@tests/run.sh

demo:
	@scripts/deps.sh demo
	@scripts/demo.sh

bench bench-quick:
	@scripts/deps.sh bench
	@scripts/bench.sh $@ | tee build/bench.txt

# build/bench only (no run): for the experiments docs/benchmarks.md names
bench-build:
	@scripts/deps.sh bench
	@scripts/bench.sh build

fuzz:
	@scripts/deps.sh fuzz
	@scripts/fuzz.sh

soak:
	@scripts/deps.sh test
	@tests/sim/soak.sh $(SEEDS)

lint:
	# jansson.h first: cppcheck does not read system headers, and without
	# the definition of json_array_foreach it skips the files that use it.
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	  -Iengine/include -Iengine -Iagent --include=/usr/include/jansson.h engine agent

# make install [PREFIX=/usr/local] [DESTDIR=] [LIBDIR=$(PREFIX)/lib]:
# public headers, libshale.a, libshale.so (soname libshale.so.$(SOVERSION)),
# shale.pc, the shale CLI and shale-agent.  docs/library.md.
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
PUBLIC_HEADERS := $(wildcard engine/include/shale*.h)
ENGINE_PC_DEPS := libcurl libcrypto jansson libzstd libxxhash libxml-2.0

install: all
	install -d $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(BINDIR)
	install -m 644 $(PUBLIC_HEADERS) $(DESTDIR)$(INCDIR)/
	install -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(LIB_SO_REAL) $(DESTDIR)$(LIBDIR)/
	ln -sf libshale.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libshale.so.$(SOVERSION)
	ln -sf libshale.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libshale.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES@|$(ENGINE_PC_DEPS)|' \
	    engine/shale.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/shale.pc
	install -m 755 $(CLI) $(AGENT) $(DESTDIR)$(BINDIR)/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(INCDIR)/,$(notdir $(PUBLIC_HEADERS)))
	rm -f $(DESTDIR)$(LIBDIR)/libshale.a $(DESTDIR)$(LIBDIR)/libshale.so \
	      $(DESTDIR)$(LIBDIR)/libshale.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libshale.so.$(VERSION) \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/shale.pc
	rm -f $(DESTDIR)$(BINDIR)/shale $(DESTDIR)$(BINDIR)/shale-agent

clean:
	rm -rf build build-san build-fuzz tests/tmp

-include $(ENGINE_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(AGENT_LIB_OBJ:.o=.d) $(TESTLIB_OBJ:.o=.d)
