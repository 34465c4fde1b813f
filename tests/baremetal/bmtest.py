#!/usr/bin/env python3
"""Bare-metal rtvio cells on three ISAs (baremetal/), through one real broker.

Usage: bmtest.py [--isa ISA]... [--rounds N] RTVIO ARCH=IMAGE|ARCH=missing:COMPILER ...

--isa ISA (repeatable) runs section 1 for those ISAs only and skips sections 2-4 (to
chase one ISA's failure); --rounds N runs section 1 N times with fresh VMs on the
same broker (consoles NAME.console, NAME.r2.console, ...). Run it next to a CPU load
of your own to look for failures that only a loaded machine shows. --broker-stall S
changes section 1: the client cell starts first (its connects are refused), the
broker is stopped for S s while it keeps trying (nothing it posts is taken: its TX
ring fills with REQUESTs and RSTs), then continued, then the echo cell starts; the
exchanges must still complete (S = 60 left the clients with -EMFILE before gvsock
freed the slots of sockets whose RST waited for ring room).

1. For each ISA, two cells of that ISA: `b` echoes (STREAM, SEQPACKET, and the
   periodic flow), `a` sends rtmsg messages of 1 B .. 256 KiB over STREAM and
   SEQPACKET and checks every byte that comes back, then runs a periodic SEQPACKET
   round-trip task on its executive.
2. The three ISAs in one ring (x86_64 -> aarch64 -> riscv64 -> x86_64): each cell
   echoes for its predecessor and sends 1 B .. 256 KiB to its successor, all at once.
3. Process-cell peers and hostile neighbours, all at once: a bare-metal cell of each
   ISA sends 1 B .. 256 KiB over STREAM and SEQPACKET to its own process cell
   (tests/e2e_tool echo, next to RTVIO) and checks every byte back, while a fourth
   bare-metal cell is SIGKILLed mid-transfer and a fifth scribbles over its own TX
   ring. The three exchanges must complete intact, the broker stay up, and
   `rtvio stat` show the killed cell detached (waiting) and the scribbler broken.
4. Temporal isolation: a bare-metal cell that spins (an echo nobody connects to),
   pinned and given cpu_max = 20%, uses about that much CPU over a window
   (cpubudget: its own cgroup; skipped where no cgroup cpu controller is usable).
Round trips are measured on the sender's own clock (clocks of different VMs are not
comparable); nothing here asserts a speed. TAP output, one line per check. Every
QEMU runs under timeout(1) with SIGKILL and is killed at the end whatever happened;
the run gives up after RTVIO_BMTEST_LIMIT seconds (default 240).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts", "vm"))
import baremetal  # noqa: E402
import cpubudget  # noqa: E402

ISAS = ["x86_64", "aarch64", "riscv64"]
_ap = argparse.ArgumentParser(description="bare-metal cells through one broker (TAP)")
_ap.add_argument("--isa", action="append", choices=ISAS,
                 help="section 1 for this ISA only (repeatable); skips sections 2-4")
_ap.add_argument("--rounds", type=int, default=1, help="run section 1 this many times")
_ap.add_argument("--broker-stall", type=float, default=0, metavar="S",
                 help="section 1 with the client cell first, the broker stopped S s while "
                 "it connects, then the echo cell")
_ap.add_argument("rtvio", nargs="?", default="build/rtvio")
_ap.add_argument("images", nargs="*", metavar="ARCH=IMAGE")
ARGS = _ap.parse_args()
if ARGS.rounds < 1:
    _ap.error(f"--rounds {ARGS.rounds}: must be at least 1")
RTVIO = ARGS.rtvio
IMAGES = dict(a.split("=", 1) for a in ARGS.images)
LIMIT = float(os.environ.get("RTVIO_BMTEST_LIMIT", "240"))
SELECTED = ARGS.isa or ISAS
SHORT = {"x86_64": "x86", "aarch64": "arm", "riscv64": "rv"}
NEXT = {"x86_64": "aarch64", "aarch64": "riscv64", "riscv64": "x86_64"}
SIZES = 24               # messages of the sizes task, 1 B .. 256 KiB
RTT_COUNT, RTT_PERIOD_US, RTT_SIZE = 50, 20000, 256
QEMU_TIMEOUT = 90
E2E_TOOL = os.path.join(os.path.dirname(os.path.abspath(RTVIO)), "tests", "e2e_tool")
PEER_CID = {isa: 30 + i for i, isa in enumerate(ISAS)}  # process echo of each ISA
KILL_CID, KILLPEER_CID, SCRIB_CID, SPIN_CID = 40, 41, 42, 43
BUDGET = (20000, 100000)  # cpu_max = 20ms/100ms
NTESTS = 5 * len(SELECTED) * ARGS.rounds + (6 + 6 + 1 if not ARGS.isa else 0)
START = time.time()


def cid(isa, role):
    return 3 + ISAS.index(isa) * 3 + "abp".index(role)


def conf(tmp):
    out = [f"[broker]\npolicy = fp\nchunk = 4KiB\nsocket_dir = {tmp}\npoll = no\n"
           "default = deny\n"]
    for isa in ISAS:
        for role in "abp":
            out.append(f"[cell {SHORT[isa]}{role}]\ncid = {cid(isa, role)}\nvm = yes\n"
                       "memory = 64MiB\n")
        a, b = SHORT[isa] + "a", SHORT[isa] + "b"
        out.append(f"[flow {a}s]\nfrom = {a}\nto = {b}:1000\ntype = stream\nsize = 64KiB\n"
                   "class = best-effort\n")
        out.append(f"[flow {a}q]\nfrom = {a}\nto = {b}:1001\ntype = seqpacket\n"
                   "size = 256KiB\nclass = best-effort\n")
        out.append(f"[flow {a}t]\nfrom = {a}\nto = {b}:1002\ntype = seqpacket\n"
                   f"size = 1KiB\nperiod = {RTT_PERIOD_US}us\n")
        p, n = SHORT[isa] + "p", SHORT[NEXT[isa]] + "p"
        out.append(f"[flow {p}s]\nfrom = {p}\nto = {n}:2000\ntype = stream\nsize = 64KiB\n"
                   "class = best-effort\n")
        out.append(f"[flow {p}q]\nfrom = {p}\nto = {n}:2001\ntype = seqpacket\n"
                   "size = 256KiB\nclass = best-effort\n")
    out += peers_conf()
    return "\n".join(out)


def peers_conf():
    """Section 3 and 4's cells and flows."""
    out = []
    for isa in ISAS:
        q, pe = SHORT[isa] + "q", SHORT[isa] + "pe"
        out.append(f"[cell {q}]\ncid = {cid(isa, 'p') + 100}\nvm = yes\nmemory = 64MiB\n")
        out.append(f"[cell {pe}]\ncid = {PEER_CID[isa]}\nregion = 8MiB\n")
        out.append(f"[flow {q}s]\nfrom = {q}\nto = {pe}:3000\ntype = stream\nsize = 64KiB\n"
                   "class = best-effort\n")
        out.append(f"[flow {q}q]\nfrom = {q}\nto = {pe}:3001\ntype = seqpacket\n"
                   "size = 256KiB\nclass = best-effort\n")
    out.append(f"[cell victim]\ncid = {KILL_CID}\nvm = yes\nmemory = 64MiB\n")
    out.append(f"[cell vpeer]\ncid = {KILLPEER_CID}\nregion = 8MiB\n")
    out.append("[flow victims]\nfrom = victim\nto = vpeer:3000\ntype = stream\nsize = 64KiB\n"
               "class = best-effort\n")
    out.append("[flow victimq]\nfrom = victim\nto = vpeer:3001\ntype = seqpacket\n"
               "size = 256KiB\nclass = best-effort\n")
    out.append(f"[cell scribbler]\ncid = {SCRIB_CID}\nvm = yes\nmemory = 64MiB\n")
    out.append(f"[cell spinner]\ncid = {SPIN_CID}\nvm = yes\nmemory = 64MiB\ncpu = 0\n"
               f"cpu_max = {BUDGET[0] // 1000}ms/{BUDGET[1] // 1000}ms\n")
    return out


class Tap:
    def __init__(self):
        self.n = self.failed = 0

    def line(self, ok, what, why=""):
        self.n += 1
        self.failed += not ok
        print(f"{'ok' if ok else 'not ok'} {self.n} - {what}" + (f": {why}" if why else ""),
              flush=True)

    def diag(self, text):
        print("# " + text.replace("\n", "\n# "), flush=True)


def unavailable(isa):
    img = IMAGES.get(isa, "missing:(not configured)")
    if img.startswith("missing:"):
        pkg = {"x86_64": "gcc", "aarch64": "gcc-aarch64-linux-gnu",
               "riscv64": "gcc-riscv64-linux-gnu"}[isa]
        return f"cross compiler {img[8:]} not found at configure time: install {pkg} " \
               f"(scripts/install-deps) and reconfigure"
    return baremetal.missing(isa)


class Run:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="rtvio-bm-")
        self.conf = os.path.join(self.tmp, "bm.conf")
        with open(self.conf, "w") as f:
            f.write(conf(self.tmp))
        self.cells, self.broker, self.procs = [], None, []

    def start_broker(self):
        err = open(os.path.join(self.tmp, "broker.err"), "w")
        self.broker = subprocess.Popen(
            ["timeout", "-s", "KILL", str(int(LIMIT + 30)), RTVIO, "broker", self.conf,
             "--verbose"], stdout=err, stderr=err, stdin=subprocess.DEVNULL,
            start_new_session=True)
        end = time.time() + 10
        while not os.path.exists(os.path.join(self.tmp, "control.sock")):
            if self.broker.poll() is not None or time.time() > end:
                with open(os.path.join(self.tmp, "broker.err")) as f:
                    raise baremetal.BmError("broker did not start: " + f.read()[-800:])
            time.sleep(0.05)

    def cell(self, isa, role, words, name=None, log=None, extra=0, **kw):
        """extra: seconds beyond QEMU_TIMEOUT this cell may run (--broker-stall)."""
        name = name or SHORT[isa] + role
        left = max(10, LIMIT - (time.time() - START))
        tmo = min(QEMU_TIMEOUT + extra, left)
        c = baremetal.Cell(name, isa, IMAGES[isa], os.path.join(self.tmp, name + ".sock"),
                           words + [f"limit={int(tmo) - 5}"],
                           os.path.join(self.tmp, (log or name) + ".console"), tmo, **kw)
        self.cells.append(c)
        return c

    def stall_broker(self, seconds):
        """Stops the broker (SIGSTOP to rtvio itself, timeout(1)'s child) for seconds:
        nothing a cell posts is taken or answered meanwhile."""
        with open(f"/proc/{self.broker.pid}/task/{self.broker.pid}/children") as f:
            pid = int(f.read().split()[0])
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)

    def attached(self, name):
        with open(os.path.join(self.tmp, "broker.err")) as f:
            return f"cell {name}: device started" in f.read()

    def process(self, name, argv, timeout):
        """A process under a hard timeout, its output in tmp/NAME.out."""
        p = subprocess.Popen(["timeout", "-s", "KILL", str(int(timeout))] + argv,
                             stdout=open(os.path.join(self.tmp, name + ".out"), "w"),
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def stat(self):
        r = subprocess.run([RTVIO, "stat", "--json", self.tmp], capture_output=True,
                           text=True, timeout=10)
        try:
            return {c["name"]: c for c in json.loads(r.stdout).get("cells", [])}
        except ValueError:
            return {}

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        for c in self.cells:
            c.close()
        if self.broker and self.broker.poll() is None:
            os.killpg(self.broker.pid, signal.SIGKILL)
            self.broker.wait()


def sizes_ok(c, type_):
    r = c.result("sizes", type_)
    if not r:
        return False, "no result"
    r = r[0]
    ok = r.get("status") == "ok" and r.get("ok") == SIZES and not r.get("bad")
    return ok, "" if ok else str(r)


def one_isa(run, tap, isa, rnd=1):
    a, b = SHORT[isa] + "a", SHORT[isa] + "b"
    tag = f".r{rnd}" if rnd > 1 else ""
    why = unavailable(isa)
    checks = [f"{isa}{tag}: boots, self-checks byte order, attaches",
              f"{isa}{tag}: STREAM 1 B..256 KiB out and back, every byte checked",
              f"{isa}{tag}: SEQPACKET 1 B..256 KiB out and back, every byte checked",
              f"{isa}{tag}: echo side returned everything, peer closed cleanly",
              f"{isa}{tag}: periodic SEQPACKET task, round trips on its own clock"]
    if why:
        for c in checks:
            tap.line(False, c, why)
        return
    stall = ARGS.broker_stall
    start_b = (lambda: run.cell(isa, "b", ["echo=stream:1000", "echo=seqpacket:1001",
                                           "echo=seqpacket:1002"], log=b + tag))
    try:
        if not stall:
            cb = start_b()
            cb.wait_for(lambda: {1000, 1001, 1002} <= cb.listening, 30, "listeners")
        ca = run.cell(isa, "a", [f"sizes=stream:{cid(isa, 'b')}:1000",
                                 f"sizes=seqpacket:{cid(isa, 'b')}:1001",
                                 f"rtt={cid(isa, 'b')}:1002:{RTT_PERIOD_US}:{RTT_COUNT}:"
                                 f"{RTT_SIZE}"], log=a + tag, extra=stall)
        if stall:
            # The clients retry refused connects (no echo cell yet), then nothing
            # they post is taken for `stall` s, then the echo cell comes.
            ca.wait_for(lambda: run.attached(a), 60, "attach")
            time.sleep(2)
            run.stall_broker(stall)
            tap.diag(f"broker stopped {stall:.0f} s while {a} was connecting")
            cb = start_b()
        da = ca.wait_done(QEMU_TIMEOUT + stall)
        db = cb.wait_done(30)
    except baremetal.BmError as e:
        for c in checks:
            tap.line(False, c, str(e))
        return
    tap.line(da.get("error") != -5 and db.get("error") != -5 and ca.boot is not None,
             checks[0], "" if ca.boot else "no boot line")
    tap.line(*((sizes_ok(ca, "stream")[0], checks[1], sizes_ok(ca, "stream")[1])))
    tap.line(*((sizes_ok(ca, "seqpacket")[0], checks[2], sizes_ok(ca, "seqpacket")[1])))
    echoes = cb.result("echo")
    tap.line(len(echoes) == 3 and all(e.get("status") == "ok" for e in echoes) and
             not db.get("failed"), checks[3], str(echoes))
    r = (ca.result("rtt") or [{}])[0]
    tap.line(r.get("status") == "ok" and r.get("ok") == RTT_COUNT, checks[4], str(r))
    for c in (ca, cb):  # a client that gave up dumped its stack (rt/diag.c)
        for line in c.diag:
            tap.diag(f"{c.name}{tag}: RTVIO-DIAG {line}")
    tap.diag(f"{isa} boot: {ca.boot}")
    tap.diag(f"{isa} rtt: min {r.get('rtt_min_ns', 0) / 1e3:.0f} us, avg "
             f"{r.get('rtt_avg_ns', 0) / 1e3:.0f} us, max {r.get('rtt_max_ns', 0) / 1e3:.0f} "
             f"us, late {r.get('late')}, late releases {r.get('late_releases')}, "
             f"lost {r.get('lost')}")


def ring(run, tap):
    checks = [f"{isa} -> {NEXT[isa]}: {t} 1 B..256 KiB, every byte checked"
              for isa in ISAS for t in ("STREAM", "SEQPACKET")]
    why = "; ".join(filter(None, (unavailable(i) for i in ISAS)))
    if why:
        for c in checks:
            tap.line(False, c, why)
        return
    cells = {}
    try:
        for isa in ISAS:
            n = cid(NEXT[isa], "p")
            cells[isa] = run.cell(isa, "p", ["echo=stream:2000", "echo=seqpacket:2001",
                                             f"sizes=stream:{n}:2000",
                                             f"sizes=seqpacket:{n}:2001"])
        for isa in ISAS:
            cells[isa].wait_done(QEMU_TIMEOUT)
    except baremetal.BmError as e:
        tap.diag(str(e))
    for isa in ISAS:
        for t in ("stream", "seqpacket"):
            ok, why = sizes_ok(cells[isa], t) if isa in cells else (False, "not started")
            tap.line(ok, f"{isa} -> {NEXT[isa]}: {t.upper()} 1 B..256 KiB, every byte "
                     f"checked", why)


def peers_and_hostiles(run, tap):
    """Section 3 (module docstring): 3 exchanges with process cells, 2 bad cells."""
    checks = [f"{isa} <-> process cell: STREAM and SEQPACKET 1 B..256 KiB, every byte "
              f"checked, next to a killed and a scribbling cell" for isa in ISAS] + [
              "broker alive after a VM was SIGKILLed and another scribbled its ring",
              "rtvio stat: the killed cell detached (waiting)",
              "rtvio stat: the scribbler broken and cut off (broker log says so)"]
    why = "; ".join(filter(None, (unavailable(i) for i in ISAS)))
    if not why and not os.access(E2E_TOOL, os.X_OK):
        why = f"{E2E_TOOL} not built"
    if why:
        for c in checks:
            tap.line(False, c, why)
        return
    qs, killed = {}, False
    try:
        for isa in ISAS:
            run.process(SHORT[isa] + "pe", [E2E_TOOL, "echo", run.tmp, SHORT[isa] + "pe", "3000",
                                            str(QEMU_TIMEOUT)], QEMU_TIMEOUT + 10)
        run.process("vpeer", [E2E_TOOL, "echo", run.tmp, "vpeer", "3000", "60"], 70)
        time.sleep(1)  # the process cells attach and listen
        for isa in ISAS:
            qs[isa] = run.cell(isa, "q", [f"sizes=stream:{PEER_CID[isa]}:3000",
                                          f"sizes=seqpacket:{PEER_CID[isa]}:3001"])
        # A minute of periodic round trips: certainly mid-transfer when killed.
        victim = run.cell("x86_64", "", [f"sizes=stream:{KILLPEER_CID}:3000",
                                         f"rtt={KILLPEER_CID}:3001:20000:3000:256"],
                          name="victim")
        scrib = run.cell("aarch64", "", ["scribble=3000:20000"], name="scribbler")
        # Mid-transfer: once the victim has booted and sent for a while.
        victim.wait_for(lambda: victim.boot is not None, 60, "boot")
        time.sleep(4)
        killed = victim.done is None and victim.kill()
        tap.diag(f"victim {'SIGKILLed' if killed else 'had already exited'} "
                 f"{time.time() - START:.0f} s into the run")
        scrib.wait_for(lambda: scrib.result("scribble"), 60, "scribble")
        for isa in ISAS:
            qs[isa].wait_done(QEMU_TIMEOUT)
    except baremetal.BmError as e:
        tap.diag(str(e))
    for isa in ISAS:
        oks = [sizes_ok(qs[isa], t) if isa in qs else (False, "not started")
               for t in ("stream", "seqpacket")]
        tap.line(oks[0][0] and oks[1][0], checks[ISAS.index(isa)],
                 "; ".join(w for _, w in oks if w))
    tap.line(run.broker.poll() is None, checks[3], f"exit {run.broker.returncode}")
    # The broker sees the killed QEMU's vhost-user socket hang up in its own loop
    # turn: on a loaded machine give it a few seconds to get there.
    end = time.time() + 10
    st = run.stat()
    while killed and st.get("victim", {}).get("state") != "waiting" and time.time() < end:
        time.sleep(0.2)
        st = run.stat()
    tap.line(killed and st.get("victim", {}).get("state") == "waiting", checks[4],
             f"killed mid-transfer: {killed}; {st.get('victim')}")
    with open(os.path.join(run.tmp, "broker.err")) as f:
        logged = any("scribbler" in ln and "broke its ring" in ln for ln in f)
    tap.line(st.get("scribbler", {}).get("state") == "broken" and logged, checks[5],
             f"{st.get('scribbler')}, broker log line: {logged}")


def spin_budget(run, tap):
    """Section 4: cpu_max holds a spinning VM to about its budget."""
    what = f"a spinning VM with cpu_max = {BUDGET[0] // 1000}ms/{BUDGET[1] // 1000}ms uses " \
        f"about that share of a core"
    b = cpubudget.Budget("probe", *BUDGET)
    b.remove()
    if b.mode == "none":
        tap.line(True, what + " # SKIP " + b.why)
        return
    why = unavailable("x86_64")
    if why:
        tap.line(False, what, why)
        return
    try:
        c = run.cell("x86_64", "", ["echo=stream:4000"], name="spinner", cpu=0, cpu_max=BUDGET)
        c.wait_for(lambda: c.boot is not None, 60, "boot")
        pid = c.qemu_pid()
        t0, u0 = time.time(), cpubudget.proc_cpu_s(pid)
        time.sleep(5)
        t1, u1 = time.time(), cpubudget.proc_cpu_s(pid)
        thr = c.budget.throttled()
        c.kill()
    except baremetal.BmError as e:
        tap.line(False, what, str(e))
        return
    share = (u1 - u0) / (t1 - t0) if u0 is not None and u1 is not None else None
    # Generous: a functional check of the cap, not of its precision.
    ok = share is not None and share <= BUDGET[0] / BUDGET[1] * 2 and thr and thr[0] > 0
    tap.line(ok, what, f"share {share}, throttled {thr}")
    tap.diag(f"spinner ({c.budget.mode}): {share and share * 100:.0f}% of a core over "
             f"{t1 - t0:.1f} s; throttled {thr[0] if thr else '?'} periods")


def main():
    tap = Tap()
    print(f"1..{NTESTS}", flush=True)
    run = Run()

    def on_signal(sig, frm):
        run.close()
        sys.exit(1)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(int(LIMIT + 20))
    try:
        run.start_broker()
        for rnd in range(1, ARGS.rounds + 1):
            for isa in SELECTED:
                one_isa(run, tap, isa, rnd)
        if not ARGS.isa:
            ring(run, tap)
            peers_and_hostiles(run, tap)
            spin_budget(run, tap)
    except baremetal.BmError as e:
        tap.diag(str(e))
    finally:
        run.close()
    while tap.n < NTESTS:
        tap.line(False, "not reached", "see the diagnostics above")
    tap.diag(f"consoles and broker log in {run.tmp}; {time.time() - START:.0f} s")
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
