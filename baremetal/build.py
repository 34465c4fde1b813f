#!/usr/bin/env python3
"""Cross-builds one bare-metal cell image (called by baremetal/meson.build).

Usage: build.py ARCH CC OUT ARCH_DIR -- SOURCE...
Every source is compiled with the arch's flags (below) and the common freestanding
ones, then linked with ARCH_DIR/link.ld and libgcc. Include paths: baremetal/include
(string.h), baremetal/rt, and the directory of every source (core/ and wherever
gvsock lives), so the source list in meson.build is the only place that names them.
When CC is missing, exits 1 with the Debian package to install.
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

PACKAGES = {"x86_64": "gcc", "aarch64": "gcc-aarch64-linux-gnu",
            "riscv64": "gcc-riscv64-linux-gnu"}

ARCH_FLAGS = {
    # No red zone, no SSE: there is no interrupt and no FPU state to manage; the
    # image runs at 1 MiB, below 2 GiB, so the small code model fits.
    "x86_64": ["-m64", "-mno-red-zone", "-mgeneral-regs-only", "-mcmodel=small"],
    # FP/SIMD stay off (CPACR untouched); memory is mapped Normal by start.S.
    "aarch64": ["-mcpu=cortex-a53", "-mgeneral-regs-only"],
    # S-mode payload at 0x80200000: medany reaches it pc-relative. lp64d because
    # Debian's libgcc is built for it; no C here uses floating point (FS stays off).
    "riscv64": ["-march=rv64imafdc_zicsr", "-mabi=lp64d", "-mcmodel=medany"],
}

COMMON = ["-std=c11", "-O2", "-g", "-ffreestanding", "-nostdinc", "-fno-pic", "-fno-pie",
          "-fno-stack-protector", "-fno-asynchronous-unwind-tables",
          # The compiler must not turn libc.c's loops into calls to themselves.
          "-fno-tree-loop-distribute-patterns",
          "-ffunction-sections", "-fdata-sections",
          "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wvla", "-Wstrict-prototypes",
          "-Wmissing-prototypes", "-Wpointer-arith", "-Wcast-align", "-Wwrite-strings",
          "-Wundef", "-Wimplicit-fallthrough"]


def main():
    if len(sys.argv) < 6 or sys.argv[5] != "--":
        sys.exit("usage: build.py ARCH CC OUT ARCH_DIR -- SOURCE...")
    arch, cc, out, arch_dir, srcs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], \
        sys.argv[6:]
    if not shutil.which(cc):
        print(f"build.py: {cc} not found: install the Debian package {PACKAGES[arch]} "
              f"(scripts/install-deps does)", file=sys.stderr)
        sys.exit(1)
    gcc_inc = subprocess.run([cc, "-print-file-name=include"], check=True,
                             capture_output=True, text=True).stdout.strip()
    libgcc = subprocess.run([cc] + ARCH_FLAGS[arch] + ["-print-libgcc-file-name"],
                            check=True, capture_output=True, text=True).stdout.strip()
    incs = ["-isystem", gcc_inc, "-I", os.path.join(HERE, "include"),
            "-I", os.path.join(HERE, "rt"), "-I", arch_dir]
    for d in dict.fromkeys(os.path.dirname(os.path.abspath(s)) for s in srcs):
        incs += ["-I", d]
    flags = COMMON + ARCH_FLAGS[arch] + incs
    with tempfile.TemporaryDirectory(prefix="rtvio-bm-") as tmp:
        objs = []
        for i, s in enumerate(srcs):
            o = os.path.join(tmp, f"{i}-{os.path.basename(s)}.o")
            subprocess.run([cc] + flags + ["-c", s, "-o", o], check=True)
            objs.append(o)
        subprocess.run([cc] + ARCH_FLAGS[arch] +
                       ["-nostdlib", "-static", "-no-pie", "-Wl,--gc-sections",
                        "-Wl,--build-id=none", "-Wl,-z,noexecstack", "-Wl,--no-warn-rwx-segments",
                        "-T", os.path.join(arch_dir, "link.ld"), "-o", out] + objs +
                       [libgcc], check=True)


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        sys.exit(e.returncode or 1)
