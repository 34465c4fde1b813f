"""Starting rtvio guests: one QEMU (TCG) per VM cell, attached to a broker's socket.

Shared by scripts/vm/launch, scripts/vm/vmdemo and tests/vm/vmtest.py. Every QEMU runs
under timeout(1) with SIGKILL and in its own process group, and Guest.kill() ends it
whatever state it is in: a hung QEMU (say, a back end that never answers
GET_VRING_BASE) fails the caller instead of stalling it.
"""
import configparser
import os
import re
import signal
import subprocess
import threading
import time

import cpubudget

HERE = os.path.dirname(os.path.abspath(__file__))
# Where scripts/vm/build-image puts the image; RTVIO_VM_OUT points at another
# checkout's (a git worktree shares the image of the main one).
OUT = os.environ.get("RTVIO_VM_OUT") or os.path.join(HERE, "out")
QEMU = "qemu-system-x86_64"


class VmError(Exception):
    pass


def child_pid(pid):
    """The one child of process pid (the program a timeout(1) runs), or None."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN
        try:
            kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                  text=True, timeout=5).stdout.split()
        except (OSError, subprocess.SubprocessError):
            return None
    return int(kids[0]) if kids else None


def image():
    """(kernel, initrd) built by scripts/vm/build-image: the uncompressed vmlinux
    when there is one (QEMU boots it through PVH, faster under TCG), else vmlinuz.
    RTVIO_VM_KERNEL overrides the choice."""
    i = os.path.join(OUT, "initrd.img")
    k = os.environ.get("RTVIO_VM_KERNEL") or os.path.join(OUT, "vmlinux")
    if not os.path.exists(k):
        k = os.path.join(OUT, "vmlinuz")
    if not (os.path.exists(k) and os.path.exists(i)):
        raise VmError(f"no guest image in {OUT}: run scripts/vm/build-image")
    return k, i


_UNITS = {"": 1, "B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10,
          "MiB": 2**20, "GiB": 2**30}
_TUNITS = {"": 1, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def size(v):
    m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", v)
    if not m or m.group(2) not in _UNITS:
        raise VmError(f"'{v}': expected a size such as 256MiB")
    return int(m.group(1)) * _UNITS[m.group(2)]


def seconds(v):
    m = re.fullmatch(r"\s*([\d.]+)\s*([a-z]*)\s*", v)
    if not m or m.group(2) not in _TUNITS:
        raise VmError(f"'{v}': expected a time such as 1ms")
    return float(m.group(1)) * _TUNITS[m.group(2)]


def cpu_max(v):
    """'50%' (of 100 ms) or 'QUOTA/PERIOD' -> (quota_us, period_us), as config_vm.c."""
    v = v.strip()
    if v.endswith("%"):
        return int(v[:-1]) * 1000, 100000
    q, slash, p = v.partition("/")
    if not slash:
        raise VmError(f"cpu_max '{v}': expected 50% or 5ms/10ms")
    return int(seconds(q) * 1e6), int(seconds(p) * 1e6)


class Config:
    """What the VM side needs from an rtvio config: the broker's socket_dir, the
    cells (cid, vm, memory) and the flows. The broker itself validates the file;
    this reads it with the same INI rules (';' and '#' start comments)."""

    def __init__(self, path):
        cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"),
                                       comment_prefixes=(";", "#"), strict=False,
                                       interpolation=None)
        try:
            with open(path) as f:
                cp.read_file(f)
        except (OSError, configparser.Error) as e:
            raise VmError(f"{path}: {e}")
        self.path = path
        self.socket_dir = cp.get("broker", "socket_dir", fallback="/tmp/rtvio")
        self.policy = cp.get("broker", "policy", fallback="fp").strip()
        self.cells, self.flows, workloads = {}, {}, {}
        for sec in cp.sections():
            kind, _, name = " ".join(sec.split()).partition(" ")
            if kind == "workload":
                w = cp[sec]
                workloads[w.get("flow", "").strip()] = w
            elif kind == "cell":
                c = cp[sec]
                self.cells[name] = {
                    "name": name, "cid": int(c.get("cid", "0")),
                    "vm": c.get("vm", "no").strip().lower() in ("yes", "true", "1", "on"),
                    "memory": size(c.get("memory", "256MiB")),
                    "cpu": c.get("cpu", "").strip() or None,
                    # Launch keys (docs/baremetal.md); the broker validates them.
                    "arch": c.get("arch", "x86_64").strip(),
                    "kind": c.get("kind", "linux").strip(),
                    "image": c.get("image", "").strip() or None,
                    "args": c.get("args", "").split(),
                    "cpu_max": cpu_max(c["cpu_max"]) if "cpu_max" in c else None,
                }
            elif kind == "flow":
                f = cp[sec]
                to, _, port = f.get("to", "").partition(":")
                self.flows[name] = {
                    "name": name, "from": f.get("from", "").partition(":")[0], "to": to,
                    "port": int(port or 0), "type": f.get("type", "stream").strip(),
                    "size": size(f.get("size", "1")),
                    "period": seconds(f["period"]) if "period" in f else None,
                    "best_effort": f.get("class", "real-time").strip() == "best-effort",
                    "deadline": seconds(f["deadline"]) if "deadline" in f else None,
                }
        for name, w in workloads.items():
            f = self.flows.get(name)
            if not f:
                continue
            f["pattern"] = w.get("pattern", "").strip() or None
            if "size" in w:
                f["size"] = size(w["size"])
            if "period" in w:
                f["period"] = seconds(w["period"])
            if "count" in w:
                f["count"] = int(w["count"])

    def vm_cells(self):
        return [c for c in self.cells.values() if c["vm"]]

    def sock(self, cell):
        return os.path.join(self.socket_dir, cell + ".sock")

    def auto_jobs(self, cell, duration=None, count=1000):
        """What `rtvio cell` would run for `cell`, as rtvio-guest jobs (one parallel
        step): a sender on each flow it starts (periodic for real-time flows, as fast
        as credit allows for best-effort ones) and a receiver on each flow it ends.
        Between two guests the receiver echoes and the sender measures round trips:
        the guests' clocks are not the host's, so one-way latency cannot be measured
        there. Each job is tagged with its flow's name."""
        jobs = []
        for f in self.flows.values():
            if f.get("pattern") == "off" or cell not in (f["from"], f["to"]):
                continue
            src, dst = self.cells.get(f["from"]), self.cells.get(f["to"])
            if not src or not dst:
                continue
            n = f.get("count", count)
            span = ["--duration", duration] if duration and "count" not in f else ["--count", n]
            if f["from"] == cell:
                sz = max(f["size"], 32) if f["type"] == "stream" else f["size"]
                a = ["send", "--cid", dst["cid"], "--port", f["port"], "--type", f["type"],
                     "--size", min(sz, 200000), "--tag", f["name"]] + span
                periodic = f.get("pattern") == "periodic" or (
                    f.get("pattern") is None and not f["best_effort"])
                if periodic and f["period"]:
                    a += ["--period", int(f["period"] * 1e9)]
                if dst["vm"]:
                    a.append("--rtt")
            elif src["vm"]:
                a = ["echo", "--port", f["port"], "--type", f["type"], "--tag", f["name"]]
            else:
                a = ["recv", "--port", f["port"], "--type", f["type"], "--tag", f["name"]] + span
            if duration:
                a += ["--timeout", int(float(duration) + 120)]
            jobs.append(",".join(str(x) for x in a))
        return "+".join(jobs)


def socket_net(index, port, listen):
    """QEMU options for a point-to-point Ethernet link between two guests over a TCP
    socket on the host's loopback (`listen` on one end, connect on the other): a
    virtio-net-pci NIC with a MAC derived from index."""
    end = "listen" if listen else "connect"
    return ["-netdev", f"socket,id=n0,{end}=127.0.0.1:{port}",
            "-device", f"virtio-net-pci,netdev=n0,mac=52:54:00:12:34:{index:02x}"]


def qemu_argv(sock, jobs="", memory_mib=256, append="", net=None, ram_file=None):
    """The command line docs/vm.md explains: TCG, memory from a shared memfd (the
    broker maps it), vhost-user-vsock-pci on the broker's socket for this cell. No
    network unless net (socket_net()) gives one. sock=None leaves the vsock device
    out (an instant clone's template: scripts/vm/clone.py hot-plugs it); ram_file
    puts the RAM in that file (on tmpfs, shared) instead of a memfd."""
    kernel, initrd = image()
    cmdline = "console=ttyS0 quiet panic=-1"
    if jobs:
        cmdline += " rtvio.jobs=" + jobs
    if append:
        cmdline += " " + append
    # x86 Linux truncates its command line at 2048 bytes: the jobs would be cut.
    if len(cmdline) >= 2048:
        raise VmError(f"the guest's kernel command line would be {len(cmdline)} bytes "
                      f"(at most 2047): give the guest fewer or shorter jobs")
    vsock = [] if sock is None else [
        "-chardev", f"socket,id=vs0,path={sock}",
        "-device", "vhost-user-vsock-pci,chardev=vs0,seqpacket=on"]
    return [QEMU, "-accel", "tcg", "-m", f"{memory_mib}M", "-smp", "1", "-nographic",
            "-no-reboot"] + (net or ["-net", "none"]) + [
            "-object", (f"memory-backend-file,id=mem,size={memory_mib}M,share=on,"
                        f"mem-path={ram_file}" if ram_file else
                        f"memory-backend-memfd,id=mem,size={memory_mib}M,share=on"),
            "-numa", "node,memdev=mem"] + vsock + [
            "-kernel", kernel, "-initrd", initrd, "-append", cmdline]


def parse_result(line):
    """'RTVIO-RESULT k=v k=v ...' -> dict (numbers converted)."""
    d = {}
    for tok in line.split()[1:]:
        k, _, v = tok.partition("=")
        try:
            d[k] = int(v)
        except ValueError:
            try:
                d[k] = float(v)
            except ValueError:
                d[k] = v
    return d


class ConsoleVM:
    """A QEMU whose console is logged to a file and parsed as it arrives: every line
    holding an RTVIO- marker goes to self._event (under self.cond) and wakes the
    waiters. Subclasses start QEMU through _start and say what each marker means."""

    what = "VM"  # how messages name this kind of VM

    def _start(self, argv, log_path, stdin, header="", pass_fds=()):
        self.events = []  # (time.monotonic(), line) of every RTVIO- line, in order
        self.log_path = log_path
        self.cond = threading.Condition()
        self.log = open(log_path, "w")
        self.log.write(header)
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True,
                                  pass_fds=pass_fds)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _event(self, line):
        raise NotImplementedError

    def _read(self):
        for raw in self.p.stdout:
            line = raw.decode("utf-8", "replace").replace("\r", "")
            self.log.write(line)
            self.log.flush()
            i = line.find("RTVIO-")
            if i < 0:
                continue
            with self.cond:
                line = line[i:].strip()
                self.events.append((time.monotonic(), line))
                self._event(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, pred, timeout, what):
        end = time.time() + timeout
        with self.cond:
            while not pred():
                left = end - time.time()
                if left <= 0:
                    raise VmError(f"{self.what} {self.name}: no {what} within {timeout:.0f} s "
                                  f"(console in {self.log_path})")
                if self.p.poll() is not None and not self.t.is_alive() and not pred():
                    raise VmError(f"{self.what} {self.name}: QEMU exited ({self.p.returncode}) "
                                  f"before {what} (console in {self.log_path})")
                self.cond.wait(min(left, 0.2))


class Guest(ConsoleVM):
    """One QEMU guest. Its console goes to a log file and is parsed as it arrives:
    RTVIO-LISTEN, RTVIO-RESULT, RTVIO-WAIT and RTVIO-DONE lines become events."""

    def __init__(self, name, sock, jobs, log_path, timeout, memory_mib=256, cpu=None,
                 net=None, cpu_max=None, argv=None, pass_fds=()):
        """argv: the QEMU command line to run instead of qemu_argv()'s (an instant
        clone's, scripts/vm/clone.py), pass_fds: descriptors QEMU inherits."""
        self.name = name
        self.results, self.listening = [], set()
        self.waits = 0
        self.done = None  # failed count once RTVIO-DONE was seen
        self.booted = False
        self.boot = {}  # RTVIO-BOOT's fields: cid, features
        # timeout(1) is the last resort should this process itself die.
        # cpu_max = (quota_us, period_us): its own cgroup (cpubudget), entered before
        # exec so every QEMU thread is inside.
        self.budget = cpubudget.Budget(name, *(cpu_max or (None,)))
        qemu = argv or qemu_argv(sock, jobs, memory_mib, net=net)
        argv = ["timeout", "-s", "KILL", str(int(timeout))]
        if cpu is not None:
            argv += ["taskset", "-c", str(cpu)]
        self._start(self.budget.wrap(argv + qemu), log_path, subprocess.PIPE,
                    pass_fds=pass_fds)

    what = "guest"

    def _event(self, line):
        if line.startswith("RTVIO-RESULT"):
            self.results.append(parse_result(line))
        elif line.startswith("RTVIO-LISTEN"):
            self.listening.add(parse_result(line).get("port"))
        elif line.startswith("RTVIO-WAIT"):
            self.waits += 1
        elif line.startswith("RTVIO-BOOT"):
            self.booted = True
            # As text: the feature bits are a string of 0/1, not a number.
            self.boot = dict(t.partition("=")[::2] for t in line.split()[1:])
        elif line.startswith("RTVIO-DONE"):
            self.done = parse_result(line).get("failed", -1)

    def wait_line(self, prefix, timeout, start=0):
        """The first RTVIO- line from events[start:] that starts with prefix, as
        (time.monotonic() it arrived, line)."""
        def find():
            return next((e for e in self.events[start:] if e[1].startswith(prefix)), None)
        self.wait_for(lambda: find() is not None, timeout, prefix)
        return find()

    def send_line(self, text):
        """One line on the guest's console (ttyS0)."""
        self.p.stdin.write(text.encode() + b"\n")
        self.p.stdin.flush()

    def wait_listen(self, port, timeout):
        self.wait_for(lambda: port in self.listening, timeout, f"listener on port {port}")

    def wait_waiting(self, n, timeout):
        self.wait_for(lambda: self.waits >= n, timeout, "wait for the host")

    def go(self):
        """Lets a guest that printed RTVIO-WAIT run its next step."""
        self.p.stdin.write(b"go\n")
        self.p.stdin.flush()

    def wait_exit(self, timeout):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise VmError(f"guest {self.name}: QEMU still running after {timeout:.0f} s "
                          f"(console in {self.log_path})")
        self.t.join(5)
        return self.p.returncode

    def result(self, tag):
        for r in self.results:
            if r.get("tag") == tag:
                return r
        return None

    def qemu_pid(self):
        """QEMU's own pid: the child of timeout(1) (taskset execs QEMU). None once it
        has exited, or before taskset has become QEMU."""
        pid = child_pid(self.p.pid) if self.p.poll() is None else None
        if pid is None:
            return None
        try:
            with open(f"/proc/{pid}/comm") as f:
                # Linux keeps 15 characters of a name: "qemu-system-x86".
                return pid if QEMU.startswith(f.read().strip()) else None
        except OSError:
            return None

    def kill(self, sig=signal.SIGKILL):
        """Signals QEMU itself, then (for SIGKILL) its whole group, timeout(1) with
        it. True when QEMU was signalled and timeout(1) then ended within 5 s,
        which it does only once QEMU has exited."""
        if self.p.poll() is not None:
            return False
        pid = self.qemu_pid()
        if pid is not None:
            try:
                os.kill(pid, sig)
            except OSError:
                pid = None
        if sig != signal.SIGKILL:
            return pid is not None
        ended = False
        if pid is not None:
            try:
                self.p.wait(timeout=5)
                ended = True
            except subprocess.TimeoutExpired:
                pass
        if not ended:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except OSError:
                pass
            self.p.wait()
        return ended

    def close(self):
        self.kill()
        self.t.join(5)
        self.log.close()
        self.budget.remove()
