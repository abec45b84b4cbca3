# sbx — build, test and benchmark. Plain GNU make; `make help` lists targets.
#
# Three toolchains:
#   guest: musl-gcc, static       -> build/sbx-init       (objects in build/guest)
#   host:  gcc + glibc            -> build/sbx, build/sbx-vsockd, unit tests
#   asan:  gcc + glibc + ASan/UBSan, dynamic -> build/asan/* (same tests)

BUILD      := build
MUSL       := $(BUILD)/musl
KHDR       := $(MUSL)/kernel-headers
DEPS_STAMP := $(BUILD)/.deps-ok

# snprintf truncates by design; paths are length-checked where it matters.
WARN    := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wno-format-truncation
COMMON  := $(WARN) -I. -MMD -MP -fstack-protector-strong -ffunction-sections -fdata-sections
HOST_CFLAGS  := $(COMMON) -O2 -g -D_FORTIFY_SOURCE=2
# The guest has no unwinder to feed (C, no backtraces): without unwind
# tables sbx-init is ~30 KiB smaller (bench/footprint.sh: goal <= 400 KiB).
# No LTO: it made sbx-init 8 KiB smaller, but its idle PID 1 touched ~50 KiB
# more of it (RSS 368 -> 424 KiB) and the two processes 16 KiB more
# private memory.
GUEST_CFLAGS := $(COMMON) -Os -fno-asynchronous-unwind-tables -fno-unwind-tables -isystem $(KHDR) -isystem $(MUSL)/include -isystem $(BUILD)/xxhash
ASAN_CFLAGS  := $(COMMON) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -DSBX_NO_SECCOMP
LDHARDEN     := -Wl,-z,relro,-z,now -Wl,--gc-sections

# Sources by room (docs/ARCHITECTURE.md). lib/ and vsock/ are shared by
# both sides, but for lib/'s system pieces of the guest and its cpio
# writer (the launcher's); libsbx.a is the installable client library and
# carries what it needs of them.
LIB_GUEST    := lib/reap.c lib/user.c lib/ctl.c lib/kmod.c lib/mount.c
SHARED_SRC   := $(filter-out $(LIB_GUEST) lib/cpio.c,$(wildcard lib/*.c)) $(wildcard vsock/*.c)
GUEST_SRC    := $(SHARED_SRC) $(LIB_GUEST) \
		$(wildcard init/*.c server/*.c conn/*.c exec/*.c fs/*.c net/*.c)
LIBSBX_SRC   := $(SHARED_SRC) $(wildcard libsbx/*.c)
LAUNCHER_SRC := $(wildcard launcher/*.c) lib/cpio.c
GATEWAY_SRC  := $(wildcard gateway/*.c)
CLI_SRC      := $(wildcard cli/*.c)
SERVE_SRC    := $(wildcard serve/*.c)
OCI_SRC      := $(wildcard oci/*.c)
# The dashboard's page, script and style, embedded in sbx at build time
# (scripts/embed.sh): the server and its page cannot drift apart, and
# nothing has to be found on disk at run time.
WWW_FILES    := $(sort $(wildcard serve/www/*))
VSOCKD_SRC   := $(filter-out vsockd/main.c,$(wildcard vsockd/*.c))
# Guest code that unit tests exercise on the host (parsers, state machines).
GUESTLIB_SRC := $(LIB_GUEST) \
		$(filter-out init/main.c,$(wildcard init/*.c server/*.c conn/*.c exec/*.c fs/*.c net/*.c))

obj = $(patsubst %.c,$(1)/%.o,$(2))

GUEST_OBJ := $(call obj,$(BUILD)/guest,$(GUEST_SRC))

.PHONY: all image test unit integration system sdk asan fuzz bench run clean distclean help deps install
all: $(BUILD)/sbx-init $(BUILD)/sbx $(BUILD)/sbx-vsockd $(BUILD)/sbx-oci

help:
	@echo "make            build build/sbx-init (static, musl), build/sbx, build/sbx-vsockd"
	@echo "make image      build the guest kernel, the initramfs and the Debian image in build/"
	@echo "make run        set up, boot a sandbox, run a command in it, shut it down"
	@echo "make test       build everything and run unit, integration and system tests"
	@echo "make sdk        the @deno/sandbox SDK (tests/sdk) and the dashboard in Chromium (tests/dashboard) against sbx serve and real VMs"
	@echo "make asan       the unit and integration tests under ASan + UBSan"
	@echo "make bench      benchmarks; writes bench/results.md"
	@echo "make install    libsbx.a, its headers and sbx.pc into DESTDIR/PREFIX (/usr/local)"

# ---- packages and static libraries ---------------------------------------
$(DEPS_STAMP): scripts/deps.sh
	@mkdir -p $(BUILD)
	scripts/deps.sh --all
	@touch $@

deps: $(DEPS_STAMP)

# One run makes both (a grouped target): with two plain targets, make -j
# would start the script twice at once, and the two runs trip over each
# other's apt-get source. On the script too: a tree built by an older
# recipe (its RECIPE) has the libraries rebuilt.
MUSL_LIBS := $(MUSL)/lib/libsodium.a $(MUSL)/lib/libseccomp.a
$(MUSL_LIBS) &: scripts/musl-libs.sh | $(DEPS_STAMP)
	scripts/musl-libs.sh $(MUSL)

# xxHash (file digests, lib/hasher.c) is used header-only; musl-gcc does
# not search /usr/include, so the guest gets that one header from a
# directory of its own.
XXH_H := $(BUILD)/xxhash/xxhash.h
$(XXH_H): | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	ln -sfn /usr/include/xxhash.h $@

# ---- guest: sbx-init -------------------------------------------------------
# On the Makefile too: a change of GUEST_CFLAGS must reach every object.
$(BUILD)/guest/%.o: %.c Makefile | $(MUSL_LIBS) $(XXH_H)
	@mkdir -p $(dir $@)
	musl-gcc $(GUEST_CFLAGS) -c $< -o $@

$(BUILD)/sbx-init: $(GUEST_OBJ) $(MUSL_LIBS)
	musl-gcc -static -s $(LDHARDEN) -o $@ $(GUEST_OBJ) -L$(MUSL)/lib -lseccomp -lsodium

# ---- host: libsbx, sbx, sbx-vsockd -----------------------------------------
# An archive is made anew from its objects; it also depends on the
# Makefile, so that a source moved from one archive to another (a change
# of the lists above) leaves no archive with the old members.
AR_MEMBERS = @rm -f $@ && ar rcs $@ $(filter %.o,$^)
# $(1) = output dir, $(2) = cflags
define host_rules
$(1)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) -c $$< -o $$@
$(1)/libsbx.a: $(call obj,$(1),$(LIBSBX_SRC)) Makefile
	$$(AR_MEMBERS)
$(1)/liblauncher.a: $(call obj,$(1),$(LAUNCHER_SRC)) Makefile
	$$(AR_MEMBERS)
$(1)/libserve.a: $(call obj,$(1),$(SERVE_SRC)) $(1)/gen/www.o Makefile
	$$(AR_MEMBERS)
$(1)/gen/www.c: $(WWW_FILES) scripts/embed.sh
	@mkdir -p $$(dir $$@)
	scripts/embed.sh $(WWW_FILES) >$$@.new && mv $$@.new $$@
$(1)/gen/www.o: $(1)/gen/www.c
	$$(CC) $(2) -c $$< -o $$@
$(1)/libgateway.a: $(call obj,$(1),$(GATEWAY_SRC)) Makefile
	$$(AR_MEMBERS)
$(1)/libguest.a: $(call obj,$(1),$(GUESTLIB_SRC)) Makefile
	$$(AR_MEMBERS)
$(1)/libvsockd.a: $(call obj,$(1),$(VSOCKD_SRC)) Makefile
	$$(AR_MEMBERS)
endef
$(eval $(call host_rules,$(BUILD)/host,$(HOST_CFLAGS)))
$(eval $(call host_rules,$(BUILD)/asan,$(ASAN_CFLAGS)))

HOST_LIBS := -lsodium
# The secrets of the egress gateway (gateway/tls.c, ca.c, subst.c): OpenSSL
# for TLS and the CA, http-parser for requests.
GATEWAY_LIBS := -lssl -lcrypto -lhttp_parser
# sbx serve (serve/): libwebsockets for HTTP and WebSockets, jansson for
# JSON, OpenSSL (libwebsockets' own TLS library) for exposeHttp's
# certificates, worker threads for the agent calls.
SERVE_LIBS := $(shell pkg-config --libs libwebsockets jansson openssl 2>/dev/null || echo -lwebsockets -ljansson -lssl -lcrypto) -lpthread
# The rooms the sbx command stands on, in link order (each only above the next).
CLI_LIBS = $(addprefix $(1)/,libserve.a liblauncher.a libgateway.a libsbx.a)
$(BUILD)/sbx: $(call obj,$(BUILD)/host,$(CLI_SRC)) $(call CLI_LIBS,$(BUILD)/host)
	$(CC) $(LDHARDEN) -o $@ $^ $(HOST_LIBS) $(GATEWAY_LIBS) $(SERVE_LIBS)
# sbx-oci (oci/): the OCI runtime; jansson reads the bundle's config.json.
$(BUILD)/sbx-oci: $(call obj,$(BUILD)/host,$(OCI_SRC)) $(addprefix $(BUILD)/host/,liblauncher.a libgateway.a libsbx.a)
	$(CC) $(LDHARDEN) -o $@ $^ $(HOST_LIBS) $(GATEWAY_LIBS) $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
$(BUILD)/sbx-vsockd: $(BUILD)/host/vsockd/main.o $(BUILD)/host/libvsockd.a $(BUILD)/host/libsbx.a
	$(CC) $(LDHARDEN) -o $@ $^ $(HOST_LIBS)

# An instrumented sbx-init for `make asan` (glibc, dynamic, no seccomp).
$(BUILD)/asan/sbx-init: $(call obj,$(BUILD)/asan,$(GUEST_SRC))
	$(CC) -fsanitize=address,undefined -o $@ $^ -lsodium -lseccomp
$(BUILD)/asan/sbx: $(call obj,$(BUILD)/asan,$(CLI_SRC)) $(call CLI_LIBS,$(BUILD)/asan)
	$(CC) -fsanitize=address,undefined -o $@ $^ $(HOST_LIBS) $(GATEWAY_LIBS) $(SERVE_LIBS)

# ---- install: libsbx for programs that link it ---------------------------
# PREFIX/lib/libsbx.a, the public headers under PREFIX/include/sbx (kept in
# their folders, so a program includes "libsbx/sbx.h" with the Cflags of
# sbx.pc), and PREFIX/lib/pkgconfig/sbx.pc. DESTDIR for staging.
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
LIBSBX_HEADERS := libsbx/sbx.h libsbx/sbx_fs.h libsbx/sbx_net.h vsock/proto.h \
		  vsock/proto_fs.h vsock/proto_net.h lib/buf.h
SBX_VERSION := 0.1

$(BUILD)/sbx.pc: Makefile
	@mkdir -p $(dir $@)
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCDIR)' '' \
		'Name: sbx' 'Description: client library for sbx sandboxes (libsbx)' \
		'Version: $(SBX_VERSION)' 'Requires.private: libsodium' \
		'Cflags: -I$${includedir}/sbx' 'Libs: -L$${libdir} -lsbx' > $@

install: $(BUILD)/host/libsbx.a $(BUILD)/sbx.pc
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 0644 $(BUILD)/host/libsbx.a $(DESTDIR)$(LIBDIR)/libsbx.a
	install -m 0644 $(BUILD)/sbx.pc $(DESTDIR)$(LIBDIR)/pkgconfig/sbx.pc
	for h in $(LIBSBX_HEADERS); do \
		install -D -m 0644 $$h $(DESTDIR)$(INCDIR)/sbx/$$h || exit 1; \
	done

# ---- unit tests (cmocka, host toolchain) ----------------------------------
# Against glibc, not musl: Debian's libcmocka-dev ships only a glibc shared
# library (no libcmocka.a to link statically with musl-gcc). The guest code
# they exercise is compiled for musl by `make all` with the same warnings,
# and runs under musl in the integration and system tests (build/sbx-init).
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
UNIT_ARCHIVES = $(addprefix $(1)/,libvsockd.a libguest.a liblauncher.a libgateway.a libsbx.a)
$(BUILD)/tests/test_%: tests/unit/test_%.c $(call UNIT_ARCHIVES,$(BUILD)/host)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(call UNIT_ARCHIVES,$(BUILD)/host) -lcmocka -lsodium -lseccomp $(GATEWAY_LIBS)
ASAN_UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/asan/tests/%,$(UNIT_SRC))
$(BUILD)/asan/tests/test_%: tests/unit/test_%.c $(call UNIT_ARCHIVES,$(BUILD)/asan)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -o $@ $< $(call UNIT_ARCHIVES,$(BUILD)/asan) -lcmocka -lsodium -lseccomp $(GATEWAY_LIBS)

# ---- benchmarks -------------------------------------------------------------
BENCH_SRC := $(wildcard bench/*.c)
$(BUILD)/sbx-bench: $(call obj,$(BUILD)/host,$(BENCH_SRC)) $(BUILD)/host/libsbx.a
	$(CC) -o $@ $^ $(HOST_LIBS)

# ---- image ------------------------------------------------------------------
# Real files, rebuilt when one of rootfs/build.sh's inputs in this tree (or
# sbx-init, or the kernel package) is newer. build.sh also hashes what it
# takes from the system (busybox, dropbear, their libraries) and says "up
# to date" when nothing changed; after a system upgrade, or with
# SBX_KERNEL_REFRESH=1, run `make -B image`.
IMAGE_OUT := $(addprefix $(BUILD)/,vmlinuz initramfs.cpio.lz4 baseline-initramfs.cpio.gz \
		mkcpio tsc-khz vsock-tool)
IMAGE_IN  := rootfs/build.sh $(wildcard rootfs/*.c) lib/cpio.c lib/cpio.h lib/util.c launcher/tsc.c launcher/tsc.h \
		tests/system/vsock-tool.c $(BUILD)/sbx-init $(wildcard $(BUILD)/kernel/deb/*.deb)
# The minimal image's busybox: Debian's source and static configuration,
# with wget -T (scripts/busybox.sh).
BUSYBOX := $(BUILD)/busybox/busybox
$(BUSYBOX): scripts/busybox.sh | $(DEPS_STAMP)
	scripts/busybox.sh $(BUILD)/busybox
$(IMAGE_OUT) &: $(IMAGE_IN) $(BUSYBOX) | $(DEPS_STAMP)
	rootfs/build.sh
	@touch $(IMAGE_OUT)
# The Debian image (rootfs/debian.sh, docs/IMAGES.md): needs root; a cold
# build fetches from the Debian archive and the npm registry. The script
# keeps its own stamp of its inputs: an unchanged rebuild does nothing.
DEBIAN_IMAGE := $(BUILD)/images/debian/base.erofs
$(DEBIAN_IMAGE): rootfs/debian.sh $(wildcard rootfs/debian/*) $(BUILD)/sbx-init | $(DEPS_STAMP)
	rootfs/debian.sh $(BUILD)/images/debian $(BUILD)/sbx-init
image: $(IMAGE_OUT) $(DEBIAN_IMAGE)

# ---- tests ------------------------------------------------------------------
# tests/run.sh runs every suite and prints the one summary line.
test: all $(UNIT_BIN) image fuzz-build tools
	tests/run.sh unit integration system sdk fuzz

unit: $(UNIT_BIN)
	tests/run.sh unit

integration: all tools
	tests/run.sh integration

system: all image
	tests/run.sh system

# The @deno/sandbox SDK against sbx serve (tests/sdk; npm ci from its lockfile).
sdk: all image
	tests/run.sh sdk

asan: $(ASAN_UNIT_BIN) $(BUILD)/asan/sbx-init $(BUILD)/asan/sbx tools
	SBX_BUILD=$(BUILD)/asan tests/run.sh unit integration

bench: all image $(BUILD)/sbx-bench $(BUILD)/sbx-bench-static tools
	scripts/deps.sh --bench
	bench/run.sh

run: all image
	tests/demo.sh

clean:
	rm -rf $(BUILD)/guest $(BUILD)/host $(BUILD)/asan $(BUILD)/tests $(BUILD)/fuzz $(BUILD)/sbx $(BUILD)/sbx-init \
		$(BUILD)/sbx-vsockd $(BUILD)/sbx-bench $(BUILD)/sbx-bench-static $(BUILD)/bench-static $(BUILD)/sbx.pc

distclean:
	rm -rf $(BUILD)

# ---- fuzzing and hostile-input tools (issue 7; tests/fuzz, tests/tools) ----
# libFuzzer targets: clang, host glibc, ASan + UBSan, with the codec and
# parser sources compiled in. `make fuzz` runs each target for FUZZ_TIME
# seconds on its corpus (tests/fuzz/corpus/<target>); tests/fuzz/run.sh
# alone is the short CI run. `make fuzz-corpus` rewrites the seeds with the
# real encoders (tests/fuzz/mkcorpus.c). `make tools` builds the drivers
# of tests/integration/hostile.sh and bench/restart.sh.
FUZZ_CC      := clang
FUZZ_TIME    ?= 60
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CFLAGS  := $(filter-out -Wno-format-truncation,$(WARN)) -I. -MMD -MP -g -O1 -fno-omit-frame-pointer -DSBX_NO_SECCOMP \
		-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_CODEC   := lib/buf.c lib/log.c lib/util.c vsock/proto.c vsock/proto_fs.c vsock/proto_net.c
FUZZ_TARGETS := frame exec msgs fs net config cmdline agent dns vsockd gateway
fuzz_src_frame   := $(FUZZ_CODEC) tests/fuzz/decode_all.c
fuzz_src_exec    := $(FUZZ_CODEC)
fuzz_src_msgs    := $(FUZZ_CODEC)
fuzz_src_fs      := $(FUZZ_CODEC)
fuzz_src_net     := $(FUZZ_CODEC)
fuzz_src_config  := $(FUZZ_CODEC) lib/config.c tests/fuzz/config_check.c
fuzz_src_cmdline := $(fuzz_src_config)
fuzz_src_agent   := $(FUZZ_CODEC) lib/config.c lib/loop.c conn/conn.c server/ops.c \
		    server/control.c exec/exec.c exec/output.c lib/user.c fs/path.c tests/fuzz/agent_stubs.c
fuzz_src_dns     := $(FUZZ_CODEC) lib/loop.c net/dns.c
fuzz_src_vsockd  := lib/log.c lib/util.c vsockd/virtq.c vsockd/vsock.c
fuzz_src_gateway := lib/buf.c lib/log.c lib/util.c lib/loop.c lib/relay.c lib/config.c vsock/addr.c \
		    $(wildcard gateway/*.c)
# A table of 64 connections, not 4,096: every input walks it a few times
# (that was most of the run time), and the fuzzer can reach a full table.
$(FUZZ_DIR)/obj/vsockd/%.o $(FUZZ_DIR)/obj/tests/fuzz/fuzz_vsockd.o: FUZZ_CFLAGS += -DVSOCK_MAX_CONNS=64
FUZZ_BIN     := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))

$(FUZZ_DIR)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@
define fuzz_rule
$(FUZZ_DIR)/fuzz_$(1): $(call obj,$(FUZZ_DIR)/obj,tests/fuzz/fuzz_$(1).c $(fuzz_src_$(1)))
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $$@ $$^ -lsodium $(GATEWAY_LIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_rule,$(t))))

$(FUZZ_DIR)/mkcorpus: tests/fuzz/mkcorpus.c $(BUILD)/host/libsbx.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/host/libsbx.a $(HOST_LIBS)

# sbx-hostile is a folder (tests/tools/hostile: a table of cases per area,
# one runner); each other tool is one file.
HOSTILE_SRC := $(wildcard tests/tools/hostile/*.c)
TOOLS_BIN := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c)) \
	     $(BUILD)/tests/tools/sbx-hostile
$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/host/libsbx.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/host/libsbx.a $(HOST_LIBS)
$(BUILD)/tests/tools/sbx-hostile: $(call obj,$(BUILD)/host,$(HOSTILE_SRC)) $(BUILD)/host/libsbx.a
	@mkdir -p $(dir $@)
	rm -f $@.d
	$(CC) $(LDHARDEN) -o $@ $(filter %.o %.a,$^) $(HOST_LIBS)
# A build/ made when sbx-hostile was one file has a .d naming that file (the
# recipe above removes it): an empty rule, as -MP writes for a header.
tests/tools/sbx-hostile.c:

.PHONY: fuzz-build fuzz-corpus tools
fuzz-build: $(FUZZ_BIN)
fuzz: $(FUZZ_BIN)
	FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run.sh
fuzz-corpus: $(FUZZ_DIR)/mkcorpus
	$(FUZZ_DIR)/mkcorpus tests/fuzz/corpus
tools: $(TOOLS_BIN)
# ---- end of the fuzzing and tools block ------------------------------------

# ---- benchmark programs (issue 8; bench/run.sh) -----------------------------
# sbx-bench linked statically with musl, so bench/vm.sh can copy it into a
# guest and measure the agent from inside the VM the same way as from the
# host; and the tools bench/restart.sh drives (`make tools`).
BENCH_STATIC_OBJ := $(call obj,$(BUILD)/bench-static,$(BENCH_SRC) $(LIBSBX_SRC))
$(BUILD)/bench-static/%.o: %.c | $(MUSL_LIBS) $(XXH_H)
	@mkdir -p $(dir $@)
	musl-gcc $(GUEST_CFLAGS) -c $< -o $@
$(BUILD)/sbx-bench-static: $(BENCH_STATIC_OBJ) $(MUSL)/lib/libsodium.a
	musl-gcc -static -s -o $@ $(BENCH_STATIC_OBJ) -L$(MUSL)/lib -lsodium
# ---- end of the benchmark programs block ------------------------------------

-include $(shell find $(BUILD) \( -path $(BUILD)/oci -o -path $(BUILD)/images \) -prune -o -name '*.d' -type f -print 2>/dev/null)
