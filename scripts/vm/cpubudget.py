"""Temporal isolation of one VM: its QEMU pinned to a core and its CPU time bounded,
so that a runaway VM cannot take another's core time (docs/baremetal.md).

The budget is a cgroup of its own per VM, created before QEMU starts and removed
after it ends:
  cgroup v2  <the v2 mount>/rtvio-<name>-<pid>, cpu.max = "QUOTA PERIOD"
             (needs the cpu controller in the root's cgroup.subtree_control);
  cgroup v1  <the cpu controller's mount>/rtvio-<name>-<pid>, cpu.cfs_quota_us and
             cpu.cfs_period_us (the same CFS bandwidth control under older names).
QEMU enters the cgroup before it execs (wrap() writes the shell's own pid into
cgroup.procs, then execs), so every thread it ever creates is inside: no thread can
escape by being created between a start and a move. Neither available (no cgroup
fs, or not permitted): Budget.mode is "none" and the VM runs unbounded; callers
say so. Pinning is taskset(1) on the whole QEMU (the vCPU thread is the one that
runs under TCG; QEMU's I/O threads mostly sleep).
"""
import os
import time

V2_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
V1_CPU = ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _v2_root():
    for r in V2_ROOTS:
        if "cpu" in _read(os.path.join(r, "cgroup.subtree_control")).split():
            return r
    return None


def _v1_root():
    for r in V1_CPU:
        if os.path.exists(os.path.join(r, "cpu.cfs_quota_us")):
            return r
    return None


class Budget:
    """One VM's cgroup. quota_us/period_us None: no cgroup at all (mode 'off')."""

    def __init__(self, name, quota_us=None, period_us=100000):
        self.path, self.mode, self.why = None, "off", ""
        if quota_us is None:
            return
        self.quota_us, self.period_us = int(quota_us), int(period_us)
        leaf = f"rtvio-{name}-{os.getpid()}"
        try:
            root = _v2_root()
            if root:
                self.path, self.mode = os.path.join(root, leaf), "cgroup2"
                os.mkdir(self.path)
                _write(os.path.join(self.path, "cpu.max"), f"{self.quota_us} {self.period_us}")
                return
            root = _v1_root()
            if root:
                self.path, self.mode = os.path.join(root, leaf), "cgroup1"
                os.mkdir(self.path)
                _write(os.path.join(self.path, "cpu.cfs_period_us"), str(self.period_us))
                _write(os.path.join(self.path, "cpu.cfs_quota_us"), str(self.quota_us))
                return
            self.why = "no cgroup cpu controller (v2 cpu.max or v1 cpu.cfs_quota_us)"
        except OSError as e:
            self.why = f"cgroup {self.path}: {e.strerror}"
            self.remove()
        self.mode, self.path = "none", None

    def wrap(self, argv, cpu=None):
        """argv run inside this cgroup (entered before exec) and pinned to cpu."""
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + argv
        if not self.path:
            return argv
        procs = os.path.join(self.path, "cgroup.procs")
        return ["sh", "-c", f'echo $$ > "{procs}" && exec "$@"', "sh"] + argv

    def usage_s(self, pid=None):
        """CPU seconds used inside the cgroup (cgroup v2 cpu.stat usage_usec; v1: the
        process's own utime + stime from /proc, pid being QEMU's or its parent's)."""
        if self.mode == "cgroup2":
            for line in _read(os.path.join(self.path, "cpu.stat")).splitlines():
                k, _, v = line.partition(" ")
                if k == "usage_usec":
                    return int(v) / 1e6
        return proc_cpu_s(pid) if pid else None

    def throttled(self):
        """(periods throttled, seconds throttled) from cpu.stat, or None."""
        if not self.path:
            return None
        st = dict(line.split(" ", 1) for line in
                  _read(os.path.join(self.path, "cpu.stat")).splitlines() if " " in line)
        n = int(st.get("nr_throttled", 0))
        t = int(st["throttled_usec"]) / 1e6 if "throttled_usec" in st else \
            int(st.get("throttled_time", 0)) / 1e9
        return n, t

    def remove(self):
        """Moves whatever is left to the parent and removes the cgroup (a VM's QEMU
        has normally exited by now)."""
        if not self.path or not os.path.isdir(self.path):
            return
        parent = os.path.join(os.path.dirname(self.path), "cgroup.procs")
        for _ in range(50):
            pids = _read(os.path.join(self.path, "cgroup.procs")).split()
            for p in pids:
                try:
                    _write(parent, p)
                except OSError:
                    pass
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)


def proc_cpu_s(pid):
    """utime + stime of pid and its reaped children, seconds; None when unreadable."""
    s = _read(f"/proc/{pid}/stat")
    if not s:
        return None
    f = s.rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in f[11:15]) / ticks
