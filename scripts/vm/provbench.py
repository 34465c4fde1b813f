"""Request -> first message delivered, for a cold-booted guest and for an instant
clone, on one broker of its own (scripts/vm/provision bench, tests/vm/clonetest.py).

Both kinds go through the same steps, timed from the request (QEMU about to start):
the guest comes up with its vsock device and prints RTVIO-BOOT, a process cell
(`rtvio cell`, a periodic sender) is started on it, and the guest's receiver prints
its RTVIO-RESULT once the first messages arrived, each checked (sequence, length,
checksum). The clock stops at that line. The template is saved before, once, and
is not counted: it is the booted VM a provisioner keeps at hand.
"""
import os
import statistics
import subprocess
import time

import clone
import vmlib

CONF = """
[broker]
policy = fp
socket_dir = {dir}
poll = no
default = deny
"""
CELLS = """
[cell vm{i}]
cid = {vcid}
vm = yes
memory = {mem}MiB
[cell feed{i}]
cid = {fcid}
region = 1MiB
[flow f{i}]
from = feed{i}
to = vm{i}:1000
type = seqpacket
size = 1KiB
period = 10ms
[workload f{i}]
flow = f{i}
count = {count}
"""
LIMIT = 900  # timeout(1) on the broker and the feeders, should this process die


def recv_job(count, tag="first"):
    return f"recv,--port,1000,--type,seqpacket,--count,{count},--tag,{tag},--timeout,60"


class Bench:
    """A broker with cells vm1..vmK (guests, CIDs 11..) each fed by a process cell
    feedK (CIDs 21..) with `count` messages of 1 KiB."""

    def __init__(self, rtvio, tmp, memory_mib=256, cells=1, count=1, state=None):
        """state: a template saved before (clone.cached_template), kept at close;
        else save() makes one in tmp, removed at close."""
        self.rtvio, self.tmp, self.memory = rtvio, tmp, memory_mib
        self.conf = os.path.join(tmp, "provision.conf")
        self.own_state = state is None
        self.state = state or os.path.join(tmp, "template.state")
        self.samples = {"cold": [], "clone": []}
        with open(self.conf, "w") as f:
            f.write(CONF.format(dir=tmp))
            for i in range(1, cells + 1):
                f.write(CELLS.format(i=i, vcid=10 + i, fcid=20 + i, mem=memory_mib,
                                     count=count))
        self.procs = []
        self.broker = self.spawn([rtvio, "broker", self.conf], "broker")
        want = [self.sock(f"vm{i}") for i in range(1, cells + 1)]
        end = time.monotonic() + 10
        while not all(os.path.exists(w) for w in want):
            if self.broker.poll() is not None or time.monotonic() > end:
                raise vmlib.VmError("the broker did not start: " + self.text("broker"))
            time.sleep(0.05)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def spawn(self, argv, name):
        out = open(os.path.join(self.tmp, name + ".out"), "w")
        p = subprocess.Popen(["timeout", "-s", "KILL", str(LIMIT)] + argv, stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def text(self, name):
        try:
            with open(os.path.join(self.tmp, name + ".out")) as f:
                return f.read()[-800:]
        except OSError:
            return ""

    def sock(self, cell):
        return os.path.join(self.tmp, cell + ".sock")

    def broker_pid(self):
        return vmlib.child_pid(self.broker.pid)

    def save(self):
        return clone.save_template(self.state, self.memory, log_dir=self.tmp)

    def launch(self, kind, cell, jobs, timeout=240):
        """Starts a guest on `cell`: a cold boot of the image, or a clone of the
        template. Returns (guest, the request's time)."""
        t0 = time.monotonic()
        name = f"{cell}-{kind}-{len(self.samples[kind])}"
        if kind == "cold":
            g = vmlib.Guest(name, self.sock(cell), jobs,
                            os.path.join(self.tmp, name + ".console"), timeout, self.memory)
        else:
            g = clone.Clone(name, self.state, self.sock(cell), self.tmp, timeout)
            try:
                g.start(jobs)
            except BaseException:
                g.close()
                raise
        return g, t0

    def feed(self, g, i, timeout=120):
        """Once g is up, starts feeder feed<i>; returns (its process, BOOT's fields)."""
        g.wait_line("RTVIO-BOOT", timeout)
        return self.spawn([self.rtvio, "cell", self.conf, f"feed{i}"], f"feed{i}"), g.boot

    def first_message(self, kind, count=1):
        """One measured request on vm1; appends the seconds to samples[kind]."""
        g, t0 = self.launch(kind, "vm1", recv_job(count))
        try:
            feeder, _ = self.feed(g, 1)
            t1, line = g.wait_line("RTVIO-RESULT tag=first", 120)
        # (count > 1: the clock stops at the last of them, the feeder's period apart)
            r = vmlib.parse_result(line)
            if r.get("status") != "ok" or r.get("corrupt"):
                raise vmlib.VmError(f"{g.name}: {line}")
            if feeder.wait(60) != 0:
                raise vmlib.VmError(f"{g.name}: the feeder failed: {self.text('feed1')}")
            g.wait_exit(60)
        finally:
            g.close()
        self.samples[kind].append(t1 - t0)
        return t1 - t0

    def report(self, save_secs):
        rep = {"template_save_s": round(save_secs, 3)}
        for kind, xs in self.samples.items():
            if xs:
                rep[kind] = {"n": len(xs), "median_s": round(statistics.median(xs), 3),
                             "max_s": round(max(xs), 3),
                             "samples_s": [round(x, 3) for x in xs]}
        if "cold" in rep and "clone" in rep:
            rep["speedup_median"] = round(rep["cold"]["median_s"] /
                                          rep["clone"]["median_s"], 2)
        return rep

    def close(self):
        if self.own_state:
            clone.remove_template(self.state)
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, 9)
                except OSError:
                    pass
                p.wait()


def report_table(rep):
    lines = ["request -> first message delivered (seconds)",
             f"{'kind':<8}{'n':>4}{'median':>10}{'max':>10}"]
    for kind in ("cold", "clone"):
        if kind in rep:
            r = rep[kind]
            lines.append(f"{kind:<8}{r['n']:>4}{r['median_s']:>10.2f}{r['max_s']:>10.2f}")
    if "speedup_median" in rep:
        lines.append(f"clone is {rep['speedup_median']:.2f}x faster (medians); "
                     f"template saved once in {rep['template_save_s']:.1f} s")
    return "\n".join(lines)
