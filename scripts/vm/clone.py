"""Instant clones of a booted Linux guest (docs/vm.md, "Instant clones").

A template guest boots once without a vsock device (QEMU 7.2 refuses to migrate
vhost-user-vsock), its init says it is ready and waits on the console, and QEMU's
migration stream saves it to a file. A clone is a new QEMU that takes that stream
with -incoming into its own shared memfd (the broker must map the RAM: a private
copy-on-write mapping of the template would not do), gets its vsock device
hot-plugged over QMP on its cell's broker socket (the broker's GET_CONFIG gives it
the cell's CID) and then its jobs as one console line; the guest's init probes the
device and runs them. Every QEMU runs under vmlib.Guest's hard timeout.
"""
import json
import os
import socket
import time

import vmlib

STATE_META = ".json"  # beside the state file: how the template's QEMU was started


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


def _argv(qmp_path, memory_mib, incoming_fd=None):
    """Template and clones run the same machine (same RAM blocks, same ROMs: the
    migration stream must match), minus the vsock device, plus a QMP socket.
    init_on_free: the pages the guest freed after boot (the unpacked initrd, most
    of all) are zero, and a zero page costs the stream a few bytes, not 4 KiB."""
    argv = vmlib.qemu_argv(None, "clone", memory_mib, append="init_on_free=1") + [
        "-qmp", f"unix:{qmp_path},server=on,wait=off"]
    if incoming_fd is not None:
        # The state file itself, inherited: QEMU reads it without a pipe and a cat(1)
        # that would have to be scheduled for every 64 KiB.
        argv += ["-incoming", f"fd:{incoming_fd}"]
    return argv


def save_template(state, memory_mib=256, timeout=240, log_dir="/tmp"):
    """Boots the template, waits for its init, saves it to `state` and stops it.
    Returns the seconds it took."""
    t0 = time.monotonic()
    qmp_path = state + ".qmp"
    g = vmlib.Guest("template", None, "", os.path.join(log_dir, "template.console"),
                    timeout, memory_mib, argv=_argv(qmp_path, memory_mib))
    try:
        g.wait_line("RTVIO-TEMPLATE", timeout)
        q = Qmp(qmp_path, 10)
        q.cmd("stop")
        # exec: QEMU 7.2 has no file: migration URI. The paused guest goes out in one
        # pass; zero pages cost a few bytes each.
        tmp = state + ".tmp"
        q.cmd("migrate", uri=f"exec:cat > {tmp}")
        end = time.monotonic() + timeout
        while True:
            st = q.cmd("query-migrate").get("status")
            if st == "completed":
                break
            if st in ("failed", "cancelled") or time.monotonic() > end:
                raise vmlib.VmError(f"saving the template: migration {st}")
            time.sleep(0.05)
        q.cmd("quit")
        q.close()
        os.replace(tmp, state)
        with open(state + STATE_META, "w") as f:
            json.dump({"memory_mib": memory_mib, "image": vmlib.image()}, f)
        g.wait_exit(10)
    finally:
        g.close()
        try:
            os.unlink(qmp_path)
        except OSError:
            pass
    return time.monotonic() - t0


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
        self.sock = sock
        self.qmp_path = os.path.join(log_dir, name + ".qmp")
        fd = os.open(state, os.O_RDONLY | os.O_CLOEXEC)
        try:
            super().__init__(name, None, "", os.path.join(log_dir, name + ".console"),
                             timeout, self.memory_mib, pass_fds=(fd,),
                             argv=_argv(self.qmp_path, self.memory_mib, incoming_fd=fd))
        finally:
            os.close(fd)

    def start(self, jobs, timeout=60):
        q = Qmp(self.qmp_path, timeout)
        try:
            end = time.monotonic() + timeout
            # The template was saved paused, and the clone keeps that state: the
            # device goes in before the guest runs again.
            while q.cmd("query-status").get("status") not in ("paused", "running"):
                if time.monotonic() > end or self.p.poll() is not None:
                    raise vmlib.VmError(f"clone {self.name}: the incoming migration did not "
                                        f"finish (console in {self.log_path})")
                time.sleep(0.01)
            q.cmd("chardev-add", id="vs0", backend={"type": "socket", "data": {
                "addr": {"type": "unix", "data": {"path": self.sock}}, "server": False}})
            q.cmd("device_add", driver="vhost-user-vsock-pci", id="vsock0",
                  chardev="vs0", seqpacket="on")
            q.cmd("cont")
        finally:
            q.close()
        self.send_line(jobs)

    def close(self):
        super().close()
        try:
            os.unlink(self.qmp_path)
        except OSError:
            pass
