#!/usr/bin/env python3
"""rtvio with real Linux guests: one broker, two QEMU guests (TCG) using Linux's own
virtio-vsock driver through vhost-user-vsock-pci, one process cell, and host programs
behind the broker's host endpoint (socat and tests/host_client.c).

Usage: vmtest.py RTVIO [HOST_CLIENT]   (HOST_CLIENT default: tests/host_client next to
RTVIO)
Fails when QEMU or busybox-static is not installed (scripts/install-deps installs
both, for `make test` as for `make vmtest`); the guest image is built first if
scripts/vm/out/ has none (scripts/vm/build-image).

One boot of each guest carries several checks (TCG boots are slow), so the checks
follow one scenario; each is one TAP line, and a check whose scenario step could not
run is reported as failed with the reason. Every wait is bounded, every QEMU runs under
timeout(1) and is SIGKILLed at the end whatever happened, and the whole run stops
itself after RTVIO_VMTEST_LIMIT seconds (default 280) or on SIGTERM, cleaning up.
Nothing here asserts a speed.
"""
import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts", "vm"))
import vmlib  # noqa: E402

RTVIO = sys.argv[1] if len(sys.argv) > 1 else "build/rtvio"
CLIENT = sys.argv[2] if len(sys.argv) > 2 else \
    os.path.join(os.path.dirname(RTVIO), "tests", "host_client")
LIMIT = float(os.environ.get("RTVIO_VMTEST_LIMIT", "280"))
BULK_MSGS, BULK_SIZE = 160, 65536          # 10 MiB guest to guest
UP_MSGS, DOWN_MSGS, LATE_MSGS, AGAIN_MSGS = 300, 300, 200, 100
HOST_IN_BYTES, HOST_OUT_MSGS = 1 << 20, 200  # host program <-> guest g2, both ways

CONF = """
[broker]
policy = fp
chunk = 4KiB
socket_dir = {dir}
poll = no
default = deny

[cell g1]
cid = 3
vm = yes
; Above 3 GiB QEMU's memory table has three regions (below 640 KiB, up to the PCI
; hole, above 4 GiB); the memfd is filled lazily, so this costs little.
memory = 4GiB
[cell g2]
cid = 4
vm = yes
memory = 256MiB
[cell p]
cid = 5
region = 8MiB
[host h]
uds_path = {dir}/h.vsock
connections = 4

[flow bulk]
from = g1
to = g2:1000
type = stream
size = 64KiB
class = best-effort
[flow seq]
from = g1
to = g2:1001
type = seqpacket
size = 200000
class = best-effort
[flow rtt]
from = g1
to = g2:1002
type = stream
size = 4KiB
class = best-effort
[flow up]
from = g1
to = p:2000
type = stream
size = 4KiB
class = best-effort
[workload up]
flow = up
count = {up}
[flow down]
from = p
to = g1:2001
type = seqpacket
size = 1KiB
class = best-effort
[workload down]
flow = down
count = {down}
[flow late]
from = g2
to = p:2003
type = stream
size = 4KiB
class = best-effort
[workload late]
flow = late
count = {late}
[flow again]
from = g2
to = p:2004
type = stream
size = 4KiB
class = best-effort
[workload again]
flow = again
count = {again}
[flow doomed]
from = g2
to = p:2005
type = stream
size = 4KiB
class = best-effort
; host_client -> CONNECT 3000 -> g2's echo; it checks every byte that comes back
[flow hostin]
from = h
to = g2:3000
type = stream
size = 64KiB
class = best-effort
; g2 -> CID 2 port 3001 -> socat on h.vsock_3001 (EXEC:cat); g2 checks every echo
[flow hostout]
from = g2
to = h:3001
type = stream
size = 4KiB
class = best-effort
"""


def job(*args):
    return ",".join(str(a) for a in args)


# A refused connection proves the policy only if its target is attached and listens
# on that port with the same socket type: otherwise the target's own stack (or the
# broker, for a target not attached) resets it whatever the flows say. The host
# sequences both with "go" steps.
G1_JOBS = ";".join(["+".join([
    # Listens from boot; the process cell, its only permitted sender, starts after
    # g2's deny_guest.
    job("recv", "--port", 2001, "--type", "seqpacket", "--count", DOWN_MSGS, "--tag", "down"),
    job("send", "--cid", 4, "--port", 1000, "--size", BULK_SIZE, "--count", BULK_MSGS,
        "--tag", "bulk"),
    job("seqsizes", "--cid", 4, "--port", 1001, "--tag", "seq"),
    job("send", "--cid", 4, "--port", 1002, "--size", 4096, "--count", 200, "--rtt",
        "--tag", "rtt"),
    job("send", "--cid", 5, "--port", 2000, "--size", 4096, "--count", UP_MSGS, "--tag", "up"),
]),
    "go",
    # `rtvio cell p` listens on all its ports until it exits (after the reattach);
    # 2003 is g2's flow.
    job("connect-expect-refused", "--cid", 5, "--port", 2003, "--tag", "deny_cell"),
    # The device is reset and started again on the same vhost-user connection.
    "reload",
    job("send", "--cid", 4, "--port", 1002, "--size", 4096, "--count", 50, "--rtt",
        "--tag", "after_reset"),
])
G2_JOBS = ";".join([
    "go",
    # g1 listens on 2001 (SEQPACKET) for the process cell's flow; no flow is g2's.
    job("connect-expect-refused", "--cid", 3, "--port", 2001, "--type", "seqpacket",
        "--tag", "deny_guest"),
    "+".join([
        job("recv", "--port", 1000, "--count", BULK_MSGS, "--tag", "bulk"),
        job("seqsizes", "--listen", "--port", 1001, "--tag", "seq"),
        job("echo", "--port", 1002, "--tag", "rtt"),
        job("echo", "--port", 3000, "--tag", "hostin"),
        job("send", "--cid", 2, "--port", 3001, "--size", 4096, "--count", HOST_OUT_MSGS,
            "--rtt", "--tag", "hostout"),
    ]),
    job("echo", "--port", 1002, "--tag", "after_reset"),
    "go",
    job("send", "--cid", 5, "--port", 2003, "--size", 4096, "--count", LATE_MSGS,
        "--tag", "late"),
    "go",
    # Sends until its QEMU is killed.
    job("send", "--cid", 5, "--port", 2005, "--size", 4096, "--count", 10**9,
        "--tag", "doomed"),
])
G2B_JOBS = job("send", "--cid", 5, "--port", 2004, "--size", 4096, "--count", AGAIN_MSGS,
               "--tag", "again")


class Fail(Exception):
    pass


class Stop(BaseException):
    """The time limit or a signal: ends the scenario whatever check is running (a
    check's own failure handling catches Exception only)."""


def check(cond, what):
    if not cond:
        raise Fail(what)


class Run:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="rtvio-vm-")
        self.conf = os.path.join(self.tmp, "vmtest.conf")
        with open(self.conf, "w") as f:
            f.write(CONF.format(dir=self.tmp, up=UP_MSGS, down=DOWN_MSGS, late=LATE_MSGS,
                                again=AGAIN_MSGS))
        self.guests, self.procs = [], []
        self.broker = self.cell = None

    def spawn(self, argv, name):
        out = open(os.path.join(self.tmp, name + ".out"), "w")
        err = open(os.path.join(self.tmp, name + ".err"), "w")
        # timeout(1) forwards SIGTERM to the program and kills it should this driver
        # itself be killed before its clean-up runs.
        argv = ["timeout", "-s", "KILL", str(int(LIMIT + 30))] + argv
        p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        p.name = name
        self.procs.append(p)
        return p

    def text(self, name, ext):
        try:
            with open(os.path.join(self.tmp, f"{name}.{ext}")) as f:
                return f.read()
        except OSError:
            return ""

    def start_broker(self):
        self.broker = self.spawn([RTVIO, "broker", self.conf, "--verbose"], "broker")
        want = [os.path.join(self.tmp, c + ".sock") for c in ("g1", "g2", "p", "control")]
        want.append(os.path.join(self.tmp, "h.vsock"))
        end = time.time() + 10
        while not all(os.path.exists(w) for w in want):
            check(self.broker.poll() is None,
                  "broker exited at start: " + self.text("broker", "err")[-800:])
            check(time.time() < end, "broker sockets did not appear")
            time.sleep(0.05)

    def guest(self, name, cell, jobs, timeout=200, memory_mib=256):
        g = vmlib.Guest(name, os.path.join(self.tmp, cell + ".sock"), jobs,
                        os.path.join(self.tmp, name + ".console"), timeout, memory_mib)
        self.guests.append(g)
        return g

    def broker_pid(self):
        pid = vmlib.child_pid(self.broker.pid)
        check(pid is not None, "the broker is not running")
        return pid

    def stat(self):
        r = subprocess.run([RTVIO, "stat", "--json", self.tmp], capture_output=True,
                           text=True, timeout=10)
        check(r.returncode == 0, "rtvio stat failed: " + r.stderr.strip())
        return json.loads(r.stdout)

    def flow_bytes(self, name):
        for f in self.stat().get("flows", []):
            if f.get("name") == name:
                return f.get("bytes", 0)
        raise Fail(f"rtvio stat does not list flow {name}")

    def cell_state(self, name):
        for c in self.stat().get("cells", []):
            if c.get("name") == name:
                return c
        raise Fail(f"rtvio stat does not list cell {name}")

    def wait_state(self, name, pred, timeout, what):
        end = time.time() + timeout
        while True:
            c = self.cell_state(name)
            if pred(c.get("state")):
                return c
            check(time.time() < end, f"cell {name}: {what} (state {c.get('state')!r} "
                  f"after {timeout} s)")
            time.sleep(0.1)

    def resets(self, cell):
        return self.cell_state(cell).get("resets", 0)

    def close(self):
        for g in self.guests:
            g.close()
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait()


def broker_holds(pid):
    """What the broker process holds: its open files by kind (a socket, an eventfd,
    a memfd by name...) and the memfd mappings in its address space. A guest's RAM
    is a memfd QEMU made; a process cell's region is the memfd "rtvio-cell"."""
    kinds = collections.Counter()
    d = f"/proc/{pid}/fd"
    for fd in os.listdir(d):
        try:
            kinds[re.sub(r":\[\d+\]$", ":", os.readlink(os.path.join(d, fd)))] += 1
        except OSError:
            pass  # closed since the listing
    with open(f"/proc/{pid}/maps") as f:
        maps = [line.split(None, 5)[-1].strip() for line in f if "/memfd:" in line]
    return kinds, maps


def guest_memory(held):
    kinds, maps = held
    return [m for m in maps if "rtvio-cell" not in m] + \
        [k for k in kinds if k.startswith("/memfd:") and "rtvio-cell" not in k]


def wait_released(run, pred, what, timeout=5):
    """The broker lets go of a leaving peer as it sees the hang-up; a control
    client it has answered is closed when the client's end is seen: poll a while."""
    end = time.time() + timeout
    while True:
        held = broker_holds(run.broker_pid())
        why = pred(held)
        if not why:
            return held
        check(time.time() < end, f"the broker still holds {what} after {timeout} s: {why}")
        time.sleep(0.1)


def seqpacket_negotiated(bits):
    """Linux lists a device's negotiated features as a string of 0/1, bit 0 first;
    VIRTIO_VSOCK_F_SEQPACKET is bit 1."""
    return isinstance(bits, str) and len(bits) > 1 and bits[1] == "1"


def guest_ok(g, tag, **want):
    r = g.result(tag)
    check(r is not None, f"guest {g.name}: no result for {tag} (console {g.log_path})")
    check(r.get("status") == "ok", f"guest {g.name} {tag}: {r}")
    for k, v in want.items():
        check(r.get(k) == v, f"guest {g.name} {tag}: {k} = {r.get(k)}, want {v}: {r}")
    return r


def flow_rep(rep, name, role="recv"):
    for f in rep.get("flows", []):
        if f.get("name") == name and f.get("role") == role:
            return f
    raise Fail(f"process cell reports no {role} entry for {name}: {json.dumps(rep)[:600]}")


def intact(rep, name, count):
    f = flow_rep(rep, name)
    check(f.get("messages") == count and f.get("lost") == 0 and f.get("corrupt") == 0
          and f.get("reordered") == 0,
          f"flow {name}: want {count} intact messages, got {json.dumps(f)[:400]}")


class Tap:
    def __init__(self, names):
        self.names = names
        self.n = 0
        self.failed = 0
        print(f"1..{len(names)}", flush=True)

    def ok(self, key, note=""):
        self.n += 1
        print(f"ok {self.n} - {self.names[key]}" + (f" # {note}" if note else ""), flush=True)

    def fail(self, key, why):
        self.n += 1
        self.failed += 1
        print(f"not ok {self.n} - {self.names[key]}", flush=True)
        for line in str(why).splitlines():
            print("#   " + line, flush=True)


CHECKS = {
    "boot": "two guests boot, load the vsock stack, get their CIDs from the broker and "
            "negotiate SEQPACKET",
    "regions": "QEMU's memory tables are mapped: 3 regions (4 GiB guest) and 2 (256 MiB)",
    "bulk": f"guest to guest STREAM, {BULK_MSGS * BULK_SIZE} bytes, every byte checked",
    "seq": "guest to guest SEQPACKET boundaries, 1 B to 200000 B",
    "rtt": "guest to guest round trips (echo), every echo checked",
    "up": "guests to process cell STREAM, checked by `rtvio cell` (before and after the "
          "power-off and the restart); the killed guest's connection is reset there",
    "down": "process cell to guest SEQPACKET, checked in the guest",
    "host": f"host programs and a guest through the host endpoint, STREAM both ways: "
            f"host_client sends {HOST_IN_BYTES} B to the guest's echo and checks every byte "
            f"back; the guest sends {HOST_OUT_MSGS} messages of 4 KiB to socat (EXEC:cat) on "
            f"<uds_path>_3001 and checks every echo",
    "deny": "connections to a listening port that no flow permits are reset by the broker "
            "(guest to guest, guest to another cell's flow)",
    "reset": "a guest's device reset (driver unbound, bound again) is served again on "
             "the same connection",
    "poweroff": "a guest that powers off exits cleanly and the broker releases it",
    "carry": "the other guest carries on after the power-off",
    "sigkill": "a QEMU killed with SIGKILL mid-transfer is cleaned up (QEMU gone at once, "
               "broker alive, cell not connected, the guest's memory unmapped)",
    "reattach": "a new QEMU (scripts/vm/launch) reattaches to the same socket and carries "
                "traffic",
    "release": "once every peer has left, the broker holds the same files and mappings as "
               "before any attached",
    "shutdown": "the broker stays healthy and exits 0 on SIGTERM",
}


def prerequisites():
    """Raises Fail when vmtest cannot run. scripts/install-deps installs QEMU and
    busybox-static for `make test` as for `make vmtest`, so a missing one is an
    error, not a reason to skip. Builds a missing image."""
    import shutil
    if not shutil.which(vmlib.QEMU):
        raise Fail(f"{vmlib.QEMU} is not installed (scripts/install-deps vm)")
    if not os.path.exists("/bin/busybox"):
        raise Fail("busybox-static is not installed (scripts/install-deps vm)")
    if not shutil.which("socat"):
        raise Fail("socat is not installed (scripts/install-deps)")
    if not os.access(CLIENT, os.X_OK):
        raise Fail(f"{CLIENT} is not built (ninja -C build)")
    try:
        vmlib.image()
    except vmlib.VmError:
        build = os.path.join(vmlib.HERE, "build-image")
        r = subprocess.run([build], capture_output=True,
                           text=True, timeout=600)
        if r.returncode != 0:
            raise Fail(f"{build} failed: {r.stderr.strip()[-800:]}")


class Skip(Exception):
    """A check failed (and was reported) and the scenario cannot go on."""


def report_soft(report, key, fn):
    """A check whose failure does not stop the scenario."""
    try:
        report(key, fn)
    except Skip:
        pass


def held_diff(before, after):
    """What `after` holds beyond (or short of) `before`, '' when the same."""
    (k0, m0), (k1, m1) = before, after
    out = [f"{k} x{n:+d}" for k, n in sorted(((k, k1[k] - k0[k]) for k in set(k0) | set(k1)))
           if n]
    out += [f"mapping {m} x{n:+d}" for m, n in
            sorted(((m, m1.count(m) - m0.count(m)) for m in set(m0) | set(m1))) if n]
    return ", ".join(out)


def main():
    try:
        prerequisites()
    except (Fail, subprocess.SubprocessError) as e:
        print("1..1\nnot ok 1 - QEMU and busybox-static are installed and the guest image "
              "builds\n#   " + str(e), flush=True)
        return 1
    tap = Tap(CHECKS)
    done = set()

    def report(key, fn):
        if key in done:
            return
        done.add(key)
        try:
            note = fn()
            tap.ok(key, note or "")
        except Stop as e:
            tap.fail(key, e)
            raise
        except Exception as e:  # noqa: BLE001 - every failure is reported
            tap.fail(key, e if isinstance(e, (Fail, vmlib.VmError))
                     else traceback.format_exc())
            raise Skip(key)

    def on_signal(sig, frm):
        if sig == signal.SIGALRM:
            raise Stop(f"vmtest did not finish within {LIMIT:.0f} s")
        raise Stop(f"vmtest stopped by signal {sig}")

    signal.signal(signal.SIGALRM, on_signal)
    # make's timeout or an impatient user: stop, and still kill every QEMU.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.alarm(int(LIMIT))
    run = None
    try:
        vmlib.image()
        run = Run()
        run.start_broker()
        idle = broker_holds(run.broker_pid())
        # The host program g2's hostout connection reaches: an echo on <uds_path>_3001.
        socat = run.spawn(["socat", "UNIX-LISTEN:" + os.path.join(run.tmp, "h.vsock_3001"),
                           "EXEC:cat"], "socat")
        g1 = run.guest("g1", "g1", G1_JOBS, memory_mib=4096)
        g2 = run.guest("g2", "g2", G2_JOBS)

        def boot():
            g1.wait_for(lambda: g1.booted, 90, "boot")
            g2.wait_for(lambda: g2.booted, 90, "boot")
            for g, cid in ((g1, 3), (g2, 4)):
                with open(g.log_path) as f:
                    check(f"RTVIO-BOOT cid={cid}" in f.read(),
                          f"guest {g.name} does not have CID {cid} (console {g.log_path})")
                check(seqpacket_negotiated(g.boot.get("features")),
                      f"guest {g.name}: the driver did not negotiate SEQPACKET (feature "
                      f"bits {g.boot.get('features')!r}, console {g.log_path})")
        report("boot", boot)

        def regions():
            end = time.time() + 60
            while True:
                log = run.text("broker", "err")
                if "cell g1: memory table: 3 region(s)" in log and \
                        "cell g2: memory table: 2 region(s)" in log:
                    return
                check(time.time() < end, "the broker did not log 3 regions for g1 and 2 "
                      "for g2: " + "; ".join(l for l in log.splitlines() if "memory" in l))
                time.sleep(0.2)
        report_soft(report, "regions", regions)

        # g2 tries g1's listener on 2001 while the process cell, that port's only
        # permitted sender, has not started: only the broker can refuse it.
        deny_resets = {}
        g1.wait_listen(2001, 60)
        g2.wait_waiting(1, 60)
        before = run.resets("g2")
        g2.go()
        g2.wait_for(lambda: g2.result("deny_guest") is not None, 60, "result of deny_guest")
        deny_resets["g2"] = run.resets("g2") - before
        # The process cell's sender gives up after a few seconds: start it once
        # g1 listens on the port it sends to.
        run.cell = run.spawn([RTVIO, "cell", run.conf, "p", "--json"], "cell-p")
        # g2 echoes on 3000 from the step after deny_guest on.
        g2.wait_listen(3000, 60)
        client = run.spawn([CLIENT, "echo", os.path.join(run.tmp, "h.vsock"), "3000",
                            str(HOST_IN_BYTES)], "host-client")

        # g1's first step ends after `up` reached the process cell: p is attached and
        # listens on all its ports.
        g1.wait_waiting(1, 150)
        p_state = run.cell_state("p").get("state")
        before = run.resets("g1")
        g1.go()
        g1.wait_for(lambda: g1.result("deny_cell") is not None, 60, "result of deny_cell")
        deny_resets["g1"] = run.resets("g1") - before

        g1.wait_for(lambda: g1.done is not None, 150, "end of its jobs")
        rc1 = g1.wait_exit(30)
        g2.wait_waiting(2, 60)

        def bulk():
            t = guest_ok(g1, "bulk", messages=BULK_MSGS)
            guest_ok(g2, "bulk", messages=BULK_MSGS, bytes=BULK_MSGS * BULK_SIZE,
                     corrupt=0, lost=0, reordered=0)
            # The sender's run, from connect to its close, next to its other jobs.
            return f"sender {t['bytes'] / max(t['secs'], 0.01) / 1e6:.1f} MB/s under TCG"
        report_soft(report, "bulk", bulk)

        def seq():
            a = guest_ok(g1, "seq")
            b = guest_ok(g2, "seq", corrupt=0)
            check(a["messages"] == b["messages"] and b["messages"] > 100,
                  f"sent {a['messages']}, received {b['messages']}")
            return f"{b['messages']} sizes"
        report_soft(report, "seq", seq)

        def rtt():
            r = guest_ok(g1, "rtt", messages=200, rtt_n=200, corrupt=0)
            guest_ok(g2, "rtt")
            return (f"round trip in the guest's clock: p50 {r['rtt_p50_us']:.0f} us, "
                    f"p99 {r['rtt_p99_us']:.0f} us, max {r['rtt_max_us']:.0f} us (TCG)")
        report_soft(report, "rtt", rtt)

        def down():
            guest_ok(g1, "down", messages=DOWN_MSGS, corrupt=0, lost=0, reordered=0)
        report_soft(report, "down", down)

        def host():
            try:
                rc = client.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise Fail("host_client did not finish: " + run.text("host-client", "out"))
            out = run.text("host-client", "out").strip()
            check(rc == 0, f"host_client exited {rc}: {out} {run.text('host-client', 'err')}")
            guest_ok(g2, "hostin", bytes=HOST_IN_BYTES)
            r = guest_ok(g2, "hostout", messages=HOST_OUT_MSGS, rtt_n=HOST_OUT_MSGS,
                         corrupt=0)
            return (f"{out}; guest -> socat -> guest: {r['rtt_n']} echoes, p50 "
                    f"{r['rtt_p50_us']:.0f} us (TCG)")
        report_soft(report, "host", host)

        def deny():
            guest_ok(g2, "deny_guest")
            guest_ok(g1, "deny_cell")
            check(p_state == "connected", f"cell p was {p_state!r}, not connected, when g1 "
                  "tried its port 2003")
            # The broker counts the resets it makes itself; the target's resets would
            # pass through it as ordinary packets.
            check(deny_resets["g2"] >= 1 and deny_resets["g1"] >= 1,
                  f"the broker's reset count went up by {deny_resets['g2']} for g2 and "
                  f"{deny_resets['g1']} for g1, want at least 1 each")
        report_soft(report, "deny", deny)

        def reset():
            with open(g1.log_path) as f:
                check("RTVIO-RELOADED cid=3" in f.read(), "the guest could not reset its "
                      f"device (console {g1.log_path})")
            guest_ok(g1, "after_reset", messages=50, rtt_n=50, corrupt=0)
            guest_ok(g2, "after_reset")
        report_soft(report, "reset", reset)

        def poweroff():
            check(g1.done == 0, f"guest g1: {g1.done} job(s) failed")
            check(rc1 == 0, f"QEMU of g1 exited with {rc1}")
            c = run.wait_state("g1", lambda s: s != "connected", 10, "still attached")
            return f"state {c.get('state')}"
        report_soft(report, "poweroff", poweroff)

        def carry():
            check(run.cell_state("g1").get("state") != "connected", "g1 still attached")
            g2.go()
            g2.wait_for(lambda: g2.result("late") is not None, 60, "result of late")
            guest_ok(g2, "late", messages=LATE_MSGS)
            g2.wait_waiting(3, 30)
        report("carry", carry)

        def sigkill():
            check(run.cell_state("g2").get("state") == "connected", "g2 not attached")
            g2.go()
            end = time.time() + 60
            while run.flow_bytes("doomed") < 256 * 1024:
                check(time.time() < end, "flow doomed did not start")
                time.sleep(0.2)
            nfds = sum(broker_holds(run.broker_pid())[0].values())
            pid = g2.qemu_pid()
            check(pid is not None, "QEMU of g2 is not running")
            check(g2.kill(signal.SIGKILL), f"QEMU of g2 (pid {pid}) did not end within 5 s "
                  "of its SIGKILL")
            check(not os.path.exists(f"/proc/{pid}"), f"QEMU of g2 (pid {pid}) still exists")
            c = run.wait_state("g2", lambda s: s != "connected", 10, "still attached")
            check(run.broker.poll() is None, "broker died: " + run.text("broker", "err")[-800:])
            held = wait_released(run, guest_memory, "a guest's memory")
            left = sum(held[0].values())
            check(left < nfds, f"the broker held {nfds} files before the kill and {left} "
                  "after it")
            return f"state {c.get('state')}, broker files {nfds} -> {left}"
        report("sigkill", sigkill)

        def reattach():
            # Through scripts/vm/launch, the way a user starts a guest on a config.
            argv = [os.path.join(vmlib.HERE, "launch"), run.conf, "g2", "--jobs",
                    "g2=" + G2B_JOBS, "--timeout", "150", "--log-dir", run.tmp]
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, text=True, start_new_session=True)
            try:
                out, err = p.communicate(timeout=170)
            except subprocess.TimeoutExpired:
                raise Fail("scripts/vm/launch did not return within 170 s")
            finally:
                # Stopped (a timeout, the limit, SIGTERM): launch kills its QEMU
                # on SIGTERM; a SIGKILL would leave it running.
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait()
            check(p.returncode == 0, f"scripts/vm/launch exited {p.returncode}: "
                  f"{(out + err).strip()[-800:]}")
            res = [vmlib.parse_result(line.partition(": ")[2]) for line in out.splitlines()
                   if line.startswith("g2: RTVIO-RESULT")]
            check(len(res) == 1 and res[0].get("tag") == "again"
                  and res[0].get("status") == "ok" and res[0].get("messages") == AGAIN_MSGS,
                  f"scripts/vm/launch printed {out.strip()[-600:]!r}")
        report("reattach", reattach)

        # The process cell's own verdict on everything that came to it.
        try:
            rc = run.cell.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.cell.kill()
            rc = None
        try:
            rep = json.loads(run.text("cell-p", "out"))
        except ValueError:
            rep = None
        err = run.text("cell-p", "err")[-800:]

        def up():
            check(rep is not None, f"process cell (status {rc}) gave no report: {err}")
            intact(rep, "up", UP_MSGS)
            intact(rep, "late", LATE_MSGS)
            intact(rep, "again", AGAIN_MSGS)
            d = flow_rep(rep, "doomed")
            check(d.get("messages", 0) > 0 and d.get("corrupt") == 0
                  and d.get("status") == "reset",
                  "the killed guest's connection was not reset cleanly: " + json.dumps(d))
            check(rc in (0, 1), f"process cell exited {rc}: {err}")
            return f"process cell exit {rc} (a reset flow counts as not completed)"
        report_soft(report, "up", up)

        def release():
            for c in ("g1", "g2", "p"):
                check(run.cell_state(c).get("state") != "connected", f"{c} still attached")
            held = wait_released(run, lambda h: held_diff(idle, h),
                                 "other files or mappings than before any peer attached")
            return f"{sum(held[0].values())} files"
        report_soft(report, "release", release)

        def shutdown():
            check(run.broker.poll() is None, "broker died: " + run.text("broker", "err")[-800:])
            run.broker.send_signal(signal.SIGTERM)
            rc = run.broker.wait(timeout=15)
            check(rc == 0, f"broker exit status {rc}: " + run.text("broker", "err")[-800:])
            for name in ("broker", "cell-p"):
                e = run.text(name, "err")
                check("Sanitizer" not in e and "runtime error" not in e,
                      f"{name}: sanitizer report: " + e[-1500:])
        report("shutdown", shutdown)
    except Skip:
        pass
    except (Exception, Stop) as e:  # noqa: BLE001 - a scenario step failed outside a check
        why = e if isinstance(e, (Fail, vmlib.VmError, Stop)) else traceback.format_exc()
        for key in CHECKS:
            if key not in done:
                done.add(key)
                tap.fail(key, f"not run: {why}")
    finally:
        # The clean-up runs to its end: a second SIGTERM (timeout -k) or ^C must not
        # leave a QEMU or a spinning broker behind.
        signal.alarm(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for key in CHECKS:
            if key not in done:
                tap.fail(key, "not run: an earlier step of the scenario failed")
        if run:
            run.close()
            if tap.failed:
                print(f"# logs kept in {run.tmp}", flush=True)
            else:
                subprocess.run(["rm", "-rf", run.tmp])
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
