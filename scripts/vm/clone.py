"""Instant clones of a booted Linux guest (docs/vm.md, "Instant clones").

A template guest boots once without a vsock device (QEMU 7.2 refuses to migrate
vhost-user-vsock), its RAM in a shared file on tmpfs; its init says it is ready and
waits on the console, and QEMU saves the device state to a file with the
x-ignore-shared capability: the RAM stays in its file instead of going through the
stream. A clone gets its own copy of that file (only the pages the template used:
tmpfs keeps the rest as holes), shared with the broker, which maps it like any
guest's RAM; a new QEMU takes the device state with -incoming, gets its vsock device
hot-plugged over QMP on its cell's broker socket (the broker's GET_CONFIG gives it
the cell's CID) and then its jobs as one console line; the guest's init probes the
device and runs them. Every QEMU runs under vmlib.Guest's hard timeout.
"""
import fcntl
import hashlib
import json
import os
import socket
import time

import vmlib

STATE_META = ".json"  # beside the state file: how the template's QEMU was started
SHM = "/dev/shm"  # tmpfs: the broker maps a guest's RAM file only from tmpfs or hugetlbfs


class Qmp:
    """A minimal QMP client on QEMU's Unix socket: one command at a time."""

    def __init__(self, path, timeout):
        end = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.settimeout(max(1.0, timeout))
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > end:
                    raise vmlib.VmError(f"no QMP socket at {path} within {timeout:.0f} s")
                time.sleep(0.01)
        self.f = self.s.makefile("rb")
        self._reply()  # the greeting
        self.cmd("qmp_capabilities")

    def _reply(self):
        while True:
            line = self.f.readline()
            if not line:
                raise vmlib.VmError("QMP: QEMU closed the monitor")
            msg = json.loads(line)
            if "event" not in msg:  # events are not replies
                return msg

    def cmd(self, name, **args):
        self.s.sendall(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        r = self._reply()
        if "error" in r:
            raise vmlib.VmError(f"QMP {name}: {r['error'].get('desc', r['error'])}")
        return r.get("return")

    def close(self):
        self.f.close()
        self.s.close()


def _argv(qmp_path, memory_mib, ram_file, incoming_fd=None):
    """Template and clones run the same machine (same RAM blocks, same ROMs: the
    migration stream must match), minus the vsock device, plus a QMP socket. (No
    init_on_free: zeroing every free page at boot would make the whole RAM file
    data, and every clone's copy as large as the guest.)"""
    argv = vmlib.qemu_argv(None, "clone", memory_mib, ram_file=ram_file) + [
        "-qmp", f"unix:{qmp_path},server=on,wait=off"]
    if incoming_fd is not None:
        # Deferred: x-ignore-shared must be set on this side too before the stream.
        argv += ["-incoming", "defer"]
    return argv


def template_ram(state):
    """The template's RAM file, in /dev/shm, named after the state file's path."""
    h = hashlib.sha1(os.path.realpath(state).encode()).hexdigest()[:12]
    return os.path.join(SHM, f"rtvio-template-{h}.ram")


def copy_ram(src, dst):
    """A private copy of the template's RAM file: the data extents only (tmpfs
    keeps the never-touched pages as holes, which stay holes here)."""
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        size = os.fstat(fi.fileno()).st_size
        os.ftruncate(fo.fileno(), size)
        off = 0
        while off < size:
            try:
                off = os.lseek(fi.fileno(), off, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after off
                break
            end = os.lseek(fi.fileno(), off, os.SEEK_HOLE)
            while off < end:
                n = os.copy_file_range(fi.fileno(), fo.fileno(), end - off, off, off)
                if n <= 0:
                    raise vmlib.VmError(f"copying {src}: short copy at {off}")
                off += n


def _migrate_wait(q, timeout, what):
    end = time.monotonic() + timeout
    while True:
        st = q.cmd("query-migrate").get("status")
        if st == "completed":
            return
        if st in ("failed", "cancelled") or time.monotonic() > end:
            raise vmlib.VmError(f"{what}: migration {st}")
        time.sleep(0.01)


def save_template(state, memory_mib=256, timeout=240, log_dir="/tmp"):
    """Boots the template, waits for its init, saves it to `state` (and its RAM to
    template_ram(state)) and stops it. Returns the seconds it took."""
    t0 = time.monotonic()
    qmp_path = state + ".qmp"
    ram = template_ram(state)
    remove_template(state)  # QEMU would reuse an old RAM file's pages as they are
    g = vmlib.Guest("template", None, "", os.path.join(log_dir, "template.console"),
                    timeout, memory_mib, argv=_argv(qmp_path, memory_mib, ram))
    try:
        g.wait_line("RTVIO-TEMPLATE", timeout)
        q = Qmp(qmp_path, 10)
        q.cmd("stop")
        q.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "x-ignore-shared", "state": True}])
        # exec: QEMU 7.2 has no file: migration URI.
        tmp = state + ".tmp"
        q.cmd("migrate", uri=f"exec:cat > {tmp}")
        _migrate_wait(q, timeout, "saving the template")
        q.cmd("quit")
        q.close()
        os.replace(tmp, state)
        with open(state + STATE_META, "w") as f:
            json.dump({"memory_mib": memory_mib, "image": vmlib.image(), "ram": ram}, f)
        g.wait_exit(10)
    finally:
        g.close()
        try:
            os.unlink(qmp_path)
        except OSError:
            pass
    return time.monotonic() - t0


def remove_template(state):
    for f in (state, state + STATE_META, template_ram(state)):
        try:
            os.unlink(f)
        except OSError:
            pass


def template_ready(state, memory_mib):
    """Whether `state` holds a template of this guest image with memory_mib of RAM,
    its RAM file still in /dev/shm (tmpfs does not outlive a reboot)."""
    try:
        with open(state + STATE_META) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    return (os.path.exists(state) and os.path.exists(template_ram(state)) and
            meta.get("memory_mib") == memory_mib and
            list(meta.get("image", [])) == list(vmlib.image()))


def cached_template(memory_mib=256, timeout=240, log_dir="/tmp"):
    """The template the tests share (tests/vm/clonetest.py, tests/slurm/slurmtest.py):
    saved once beside the guest image (scripts/vm/out/template-MIB.state, its RAM in
    /dev/shm), again only when the image changed or the RAM file is gone. Concurrent
    callers are serialised by a lock in the same directory. Returns (path, seconds
    spent saving: 0 when it was there)."""
    state = os.path.join(vmlib.OUT, f"template-{memory_mib}.state")
    with open(os.path.join(vmlib.OUT, "template.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if template_ready(state, memory_mib):
            return state, 0.0
        return state, save_template(state, memory_mib, timeout, log_dir)


def template_memory(state):
    """The template's RAM size; refuses a state saved from another guest image."""
    try:
        with open(state + STATE_META) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise vmlib.VmError(f"{state}: no template saved there ({e})")
    if list(meta.get("image", [])) != list(vmlib.image()):
        raise vmlib.VmError(f"{state} was saved from another guest image: save it again")
    return meta["memory_mib"]


class Clone(vmlib.Guest):
    """One clone of the template in `state`, attached to the broker's socket `sock`.
    start() returns once its jobs are sent: the guest then prints RTVIO-BOOT with the
    cell's CID and runs them; everything else is vmlib.Guest's."""

    def __init__(self, name, state, sock, log_dir, timeout=120):
        self.memory_mib = template_memory(state)
        self.sock, self.state = sock, state
        self.qmp_path = os.path.join(log_dir, name + ".qmp")
        self.phases = {"request": time.monotonic()}
        # The clone's own RAM, shared with the broker; unlinked once QEMU holds it.
        self.ram = os.path.join(SHM, f"rtvio-clone-{name}-{os.getpid()}.ram")
        copy_ram(template_ram(state), self.ram)
        self.phases["copied"] = time.monotonic()
        self.fd = os.open(state, os.O_RDONLY | os.O_CLOEXEC)
        try:
            super().__init__(name, None, "", os.path.join(log_dir, name + ".console"),
                             timeout, self.memory_mib, pass_fds=(self.fd,),
                             argv=_argv(self.qmp_path, self.memory_mib, self.ram, self.fd))
        except BaseException:
            self._forget()
            raise

    def start(self, jobs, timeout=60):
        q = Qmp(self.qmp_path, timeout)
        self.phases["qmp"] = time.monotonic()
        try:
            # QEMU has mapped the RAM file by now (memory backends come first).
            self._forget()
            q.cmd("migrate-set-capabilities", capabilities=[
                {"capability": "x-ignore-shared", "state": True}])
            q.cmd("migrate-incoming", uri=f"fd:{self.fd}")
            # The template was saved paused, and the clone keeps that state: the
            # device goes in before the guest runs again.
            end = time.monotonic() + timeout
            while q.cmd("query-status").get("status") not in ("paused", "running"):
                if time.monotonic() > end or self.p.poll() is not None:
                    raise vmlib.VmError(f"clone {self.name}: the incoming migration did not "
                                        f"finish (console in {self.log_path})")
                time.sleep(0.005)
            self.phases["loaded"] = time.monotonic()
            q.cmd("chardev-add", id="vs0", backend={"type": "socket", "data": {
                "addr": {"type": "unix", "data": {"path": self.sock}}, "server": False}})
            q.cmd("device_add", driver="vhost-user-vsock-pci", id="vsock0",
                  chardev="vs0", seqpacket="on")
            q.cmd("cont")
            self.phases["running"] = time.monotonic()
        finally:
            q.close()
        self.send_line(jobs)

    def _forget(self):
        for f in (self.ram,):
            try:
                os.unlink(f)
            except OSError:
                pass

    def close(self):
        super().close()
        self._forget()
        try:
            os.close(self.fd)
        except OSError:
            pass
        try:
            os.unlink(self.qmp_path)
        except OSError:
            pass
