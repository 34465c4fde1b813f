# Front door to the Meson build. Every target installs its own dependencies first.
#   make          build build/rtvio
#   make test     the whole suite: plain build (with the QEMU guests of vmtest),
#                 ASan+UBSan build, TSan build
#   make demo     the broker and process cells on configs/demo.conf
#   make vmtest   real Linux guests (QEMU, TCG) through the broker, and the kernel's
#                 vsock_test suite between two of them; TAP, under 10 minutes
#   make bmtest   bare-metal cells on x86_64, aarch64, riscv64 (QEMU, TCG), TAP
#   make fuzz     each fuzz harness for FUZZ_SECONDS (default 600; clang, libFuzzer)
#   make tcb      the trusted core's functions and line count (docs/security.md)
#   make vmdemo   configs/vmdemo.conf with its control and telemetry ends in Linux guests
#   make prove    Frama-C/WP proof of core/'s trusted functions (docs/verification.md)
#   make slurm-demo  a one-node Slurm cluster on localhost and a broker; one job gets its
#                 rtvio cell and flow by `sbatch --rtvio=FILE`, one is refused, one gets a
#                 Linux guest cell by instant clone (docs/slurm.md)
#   make hetdemo  configs/hetdemo.conf: bare-metal cells on three ISAs, a Linux guest and
#                 a process cell through one broker, per-flow table with the ISA of each end
MESON ?= meson
DEPS  := scripts/install-deps

FUZZ_SECONDS ?= 600

.PHONY: fuzz tcb prove all deps test test-plain test-asan test-tsan demo vmtest bmtest vmdemo hetdemo gwdemo slurm-demo bench provision-bench clean

all: deps build/build.ninja
	ninja -C build

deps:
	@$(DEPS)

build/build.ninja:
	$(MESON) setup build --buildtype=debugoptimized

build-asan/build.ninja:
	$(MESON) setup build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

build-tsan/build.ninja:
	$(MESON) setup build-tsan --buildtype=debug -Db_sanitize=thread -Db_lundef=false

test: test-plain test-asan test-tsan
	@scripts/test-summary build build-asan build-tsan

# The plugin is built only when Slurm's headers are there: install them before `all`.
test-plain:
	@$(DEPS) slurm
	$(MAKE) all
	$(MESON) test -C build --print-errorlogs --no-stdsplit --num-processes 2 || true

test-asan: deps build-asan/build.ninja
	ninja -C build-asan
	ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(MESON) test -C build-asan --print-errorlogs --num-processes 2 --no-suite slow --no-suite prove \
	    --no-suite qemu || true

test-tsan: deps build-tsan/build.ninja
	ninja -C build-tsan
	TSAN_OPTIONS=halt_on_error=1 \
	  $(MESON) test -C build-tsan --print-errorlogs --num-processes 2 --suite threaded || true

prove: deps
	scripts/prove

demo: all
	build/rtvio demo

# The standard benchmark set (under 15 minutes) into bench/results/latest/. iceoryx
# and rt-tests come first so that the build finds iceoryx's C binding.
# The build is reconfigured every time: a peer library that install-deps has just
# added (iceoryx's C binding) is only found by a fresh meson setup.
bench:
	@$(DEPS) bench
	if [ -f build/build.ninja ]; then $(MESON) setup --reconfigure build; fi
	$(MAKE) all
	build/rtvio bench

# The guest image is cached in scripts/vm/out/; timeout(1) is the last resort should a
# QEMU or the driver itself hang (the driver bounds every step well below it). Its
# SIGTERM lets the driver kill its QEMUs and broker; SIGKILL follows 10 s later.
vmtest: all
	@$(DEPS) vm
	scripts/vm/build-image
	timeout -k 10 300 python3 tests/vm/vmtest.py build/rtvio
	timeout -k 10 300 python3 tests/vm/vsocktest.py build/rtvio

# The images are built by `all` (build/baremetal/); the driver stops itself at 240 s.
bmtest: all
	$(MESON) test -C build --suite baremetal --print-errorlogs

# Two brokers joined by DDS gateways on loopback (docs/gateway.md).
gwdemo: all
	timeout -k 10 60 scripts/gwdemo build/rtvio

# Instant clones against cold boots: request -> first message, 10 of each (docs/vm.md).
provision-bench: all
	@$(DEPS) vm
	scripts/vm/build-image
	timeout -k 10 900 nice python3 scripts/vm/provision bench build/rtvio -n 10

vmdemo: all
	@$(DEPS) vm
	scripts/vm/build-image
	timeout -k 10 300 python3 scripts/vm/vmdemo build/rtvio configs/vmdemo.conf

# The harnesses build with clang apart from build/; `make test` runs them briefly
# through the meson test 'fuzz'.
fuzz: deps
	$(MAKE) -C fuzz fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

tcb:
	@scripts/tcb

hetdemo: all
	@$(DEPS) vm
	scripts/vm/build-image
	timeout -k 10 300 python3 scripts/vm/hetdemo build/rtvio configs/hetdemo.conf

# Slurm's daemons run as root from a temporary directory (scripts/slurm/cluster).
slurm-demo:
	@$(DEPS) slurm
	@$(DEPS) vm
	$(MAKE) all
	scripts/vm/build-image
	timeout -k 10 300 python3 tests/slurm/slurmtest.py build/rtvio build/slurm/rtvio_spank.so --demo

clean:
	rm -rf build build-asan build-tsan build-fuzz
