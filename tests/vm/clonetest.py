#!/usr/bin/env python3
"""Instant clones (scripts/vm/provision, docs/vm.md "Instant clones"): one broker, a
template (saved once per guest image: scripts/vm/clone.py cached_template), two clones
alive at once and one cold boot.

Usage: clonetest.py RTVIO. TAP. Every QEMU runs under a hard timeout; the whole run
stops itself after RTVIO_CLONETEST_LIMIT seconds (default 170). The figures are
printed, not asserted: the machine is shared.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts", "vm"))
import clone  # noqa: E402
import provbench  # noqa: E402
import vmlib  # noqa: E402
from vmtest import broker_holds, held_diff, prerequisites  # noqa: E402

RTVIO = sys.argv[1] if len(sys.argv) > 1 else "build/rtvio"
LIMIT = int(os.environ.get("RTVIO_CLONETEST_LIMIT", "170"))
COUNT = 5
CHECKS = ["template", "cid", "memory", "first", "released", "cold"]


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def guest_ram_inodes(pid):
    """The inodes of the guest RAM files the broker maps (not process cells')."""
    with open(f"/proc/{pid}/maps") as f:
        return {ln.split()[4] for ln in f
                if ("/memfd:" in ln or "/dev/shm/" in ln) and "rtvio-cell" not in ln}


def scenario(b, ok, secs):
    idle = broker_holds(b.broker_pid())
    ok("template", f"saved in {secs:.1f} s" if secs else
       f"saved before for this guest image ({b.state})")
    g1, _ = b.launch("clone", "vm1", f"mark,vm1;go;{provbench.recv_job(COUNT)}", 120)
    g2 = None
    try:
        g1.wait_line("RTVIO-MARK", 60)
        # The second clone starts after the first wrote its marker in its RAM.
        g2, _ = b.launch("clone", "vm2", f"mark,vm2;go;{provbench.recv_job(COUNT)}", 120)
        _, m2 = g2.wait_line("RTVIO-MARK", 60)
        _, m1 = g1.wait_line("RTVIO-MARK", 1)
        check(g1.boot.get("cid") == "11" and g2.boot.get("cid") == "12",
              f"CIDs {g1.boot.get('cid')}, {g2.boot.get('cid')} (want 11, 12)")
        ok("cid", "clones of one template got CIDs 11 and 12 from the broker")
        inodes = guest_ram_inodes(b.broker_pid())
        check("seen=none" in m1 and "seen=none" in m2, f"markers: {m1!r}, {m2!r}")
        check(len(inodes) == 2, f"the broker maps {len(inodes)} guest RAM files, want 2")
        ok("memory", "each clone saw no marker but its own; two RAM files in the broker")
        feeders = []
        for i, g in ((1, g1), (2, g2)):
            g.wait_waiting(1, 30)
            g.go()
            feeders.append(b.spawn([RTVIO, "cell", b.conf, f"feed{i}"], f"feed{i}"))
        for g in (g1, g2):
            _, line = g.wait_line("RTVIO-RESULT tag=first", 60)
            r = vmlib.parse_result(line)
            check(r.get("status") == "ok" and r.get("messages") == COUNT and
                  r.get("corrupt") == 0 and r.get("lost") == 0, f"{g.name}: {line}")
        for i, p in enumerate(feeders, 1):
            check(p.wait(60) == 0, f"feed{i} failed: {b.text(f'feed{i}')}")
        ok("first", f"{COUNT} messages each, every byte checked, in the guests and the feeders")
        for g in (g1, g2):
            check(g.wait_exit(60) == 0 and g.done == 0, f"{g.name} did not power off cleanly")
            check(g.qemu_pid() is None, f"{g.name}: QEMU still there")
    finally:
        for g in (g1, g2):
            if g:
                g.close()
    why = "?"
    for _ in range(50):
        why = held_diff(idle, broker_holds(b.broker_pid()))
        if not why:
            break
        time.sleep(0.1)
    check(not why, f"the broker still holds: {why}")
    check(not [f for f in os.listdir("/dev/shm") if f.startswith("rtvio-clone-")],
          "a clone's RAM file is left in /dev/shm")
    ok("released", "QEMUs gone; the broker holds what it held before any clone")
    cold = b.first_message("cold", COUNT)
    clone = b.first_message("clone", COUNT)
    ok("cold", f"request -> first message: cold boot {cold:.2f} s, clone {clone:.2f} s "
       f"({cold / clone:.1f}x)")


def main():
    print(f"1..{len(CHECKS)}", flush=True)
    done = []

    def ok(key, note):
        done.append(key)
        print(f"ok {len(done)} - {key}: {note}", flush=True)

    def on_alarm(sig, frm):
        raise Fail(f"clonetest did not finish within {LIMIT} s")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_alarm)
    signal.alarm(LIMIT)
    tmp = tempfile.mkdtemp(prefix="rtvio-clone-")
    b = None
    failed = False
    try:
        prerequisites()
        # The template tests/slurm/slurmtest.py clones too: saved once per image.
        state, secs = clone.cached_template(256, log_dir=tmp)
        b = provbench.Bench(RTVIO, tmp, cells=2, count=COUNT, state=state)
        scenario(b, ok, secs)
    except (Fail, vmlib.VmError, Exception) as e:  # noqa: BLE001 - reported as TAP
        failed = True
        for key in CHECKS[len(done):]:
            done.append(key)
            print(f"not ok {len(done)} - {key}: {e}", flush=True)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if b:
            b.close()
        if failed:
            print(f"# logs kept in {tmp}", flush=True)
        else:
            subprocess.run(["rm", "-rf", tmp])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
