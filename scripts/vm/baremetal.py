#!/usr/bin/env python3
"""Bare-metal rtvio cells (baremetal/): one QEMU system VM per cell, attached to a
running broker through vhost-user-vsock-device (the virtio-mmio variant).

As a module (tests/baremetal/bmtest.py): argv() builds the command line, Cell runs
one VM under timeout(1) and parses its console. As a program:

    scripts/vm/baremetal.py ARCH IMAGE SOCKET [--timeout S] [--memory MiB] [--cpu N]
                            [--cpu-max 50%|5ms/10ms] -- WORDS...

boots IMAGE (build/baremetal/rtvio-bm-ARCH.elf) on SOCKET (<socket_dir>/<cell>.sock
of a `vm = yes` cell) with WORDS as its command line (docs/baremetal.md), prints its
console and exits 0 when the cell reported no failure.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys

import cpubudget
import vmlib

# ISA -> (QEMU binary, Debian package, machine options). Every machine gets its RAM
# from a shared memfd (the broker maps it) and virtio-mmio version 2 (QEMU 7.2
# still defaults to the legacy register layout on these machines).
ARCHES = {
    "x86_64": ("qemu-system-x86_64", "qemu-system-x86",
               # PVH boot of the ELF; isa-debug-exit is the cell's power switch.
               ["-M", "microvm", "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]),
    "aarch64": ("qemu-system-aarch64", "qemu-system-arm",
                ["-M", "virt", "-cpu", "cortex-a53"]),
    "riscv64": ("qemu-system-riscv64", "qemu-system-misc",
                # OpenSBI (QEMU's default firmware, from the opensbi package) runs
                # the image in S-mode at 0x80200000.
                ["-M", "virt", "-bios", "default"]),
}


BmError = vmlib.VmError


def missing(arch):
    """None, or what to install to run `arch`."""
    binary, package, _ = ARCHES[arch]
    return None if shutil.which(binary) else f"{binary} not found: install {package}"


def argv(arch, image, sock, words, memory_mib=64):
    binary, _, machine = ARCHES[arch]
    return [binary] + machine + [
        "-accel", "tcg", "-m", f"{memory_mib}M", "-smp", "1", "-nographic", "-no-reboot",
        "-global", "virtio-mmio.force-legacy=false",
        "-object", f"memory-backend-memfd,id=mem,size={memory_mib}M,share=on",
        "-machine", "memory-backend=mem",
        "-chardev", f"socket,id=vs0,path={sock}",
        "-device", "vhost-user-vsock-device,chardev=vs0,seqpacket=on",
        "-kernel", image, "-append", " ".join(words)]


class Cell(vmlib.ConsoleVM):
    """One bare-metal VM. Its console goes to log_path; RTVIO-BOOT, RTVIO-LISTEN,
    RTVIO-RESULT {json}, RTVIO-DIAG {json} and RTVIO-DONE {json} lines become
    state. QEMU runs under timeout(1) with SIGKILL in its own process group;
    close() kills the group.
    cpu pins it, cpu_max = (quota_us, period_us) bounds its CPU time (cpubudget)."""

    def __init__(self, name, arch, image, sock, words, log_path, timeout, memory_mib=64,
                 cpu=None, cpu_max=None):
        self.name, self.arch = name, arch
        self.budget = cpubudget.Budget(name, *(cpu_max or (None,)))
        self.boot, self.done = None, None
        self.results, self.listening, self.diag = [], set(), []
        cmd = self.budget.wrap(["timeout", "-k", "5", "-s", "KILL", str(int(timeout))] +
                               argv(arch, image, sock, words, memory_mib), cpu)
        self._start(cmd, log_path, subprocess.DEVNULL, "# " + " ".join(cmd) + "\n")

    what = "bare-metal cell"

    def _event(self, line):
        kind, _, rest = line.partition(" ")
        if kind == "RTVIO-BOOT":
            self.boot = rest
        elif kind == "RTVIO-DIAG":  # a task gave up: the stack's state (rt/diag.c)
            self.diag.append(rest)
        elif kind == "RTVIO-LISTEN":
            self.listening.add(int(rest.partition("=")[2] or 0))
        elif kind in ("RTVIO-RESULT", "RTVIO-DONE"):
            try:
                d = json.loads(rest)
            except ValueError:
                d = {"status": "unparsable", "line": rest}
            if kind == "RTVIO-DONE":
                self.done = d
            else:
                self.results.append(d)

    def wait_done(self, timeout):
        self.wait_for(lambda: self.done is not None, timeout, "RTVIO-DONE")
        return self.done

    def result(self, task, type_=None):
        return [r for r in self.results if r.get("task") == task and
                (type_ is None or r.get("type") == type_)]

    def qemu_pid(self):
        """QEMU's pid (timeout(1)'s child), or None once it has exited."""
        if self.p.poll() is not None:
            return None
        try:
            with open(f"/proc/{self.p.pid}/task/{self.p.pid}/children") as f:
                kids = f.read().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def kill(self):
        """SIGKILLs QEMU alone (timeout(1) then exits too): a VM dying mid-transfer."""
        pid = self.qemu_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
        return pid is not None

    def close(self):
        """Ends QEMU whatever state it is in (it powers itself off after DONE)."""
        try:
            self.p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except OSError:
                pass
            self.p.wait()
        self.t.join(5)
        self.log.close()
        self.budget.remove()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("arch", choices=sorted(ARCHES))
    ap.add_argument("image")
    ap.add_argument("socket")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--memory", type=int, default=64, help="MiB of guest RAM")
    ap.add_argument("--cpu", type=int, default=None, help="core to pin QEMU to")
    ap.add_argument("--cpu-max", default=None, metavar="BUDGET",
                    help="CPU budget as in the config: 50%% or 5ms/10ms")
    ap.add_argument("words", nargs="*")
    a = ap.parse_args()
    why = missing(a.arch)
    if why:
        sys.exit(why)
    log = f"/tmp/rtvio-bm-{os.getpid()}.console"
    import vmlib
    c = Cell(a.arch, a.arch, a.image, a.socket, a.words, log, a.timeout, a.memory, a.cpu,
             vmlib.cpu_max(a.cpu_max) if a.cpu_max else None)
    try:
        done = c.wait_done(a.timeout)
    except BmError as e:
        print(e, file=sys.stderr)
        done = None
    finally:
        c.close()
    with open(log) as f:
        sys.stdout.write(f.read())
    os.unlink(log)
    sys.exit(0 if done and not done.get("failed") else 1)


if __name__ == "__main__":
    main()
