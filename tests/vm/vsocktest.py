#!/usr/bin/env python3
"""The Linux kernel's own AF_VSOCK conformance suite (tools/testing/vsock/vsock_test,
built by scripts/vm/build-vsock-test from Debian's linux-source-6.1) between two Linux
guests through the broker.

Usage: vsocktest.py RTVIO

The broker runs `default = deny` with exactly the flows the suite needs: the client
guest connects to the server guest's port 1234, first with STREAM and then with
SEQPACKET sockets, up to 100 connections at once. The suite's control channel is TCP
between the guests, over a point-to-point virtio-net link (a QEMU socket netdev on the
host's loopback); every vsock byte goes through the broker. One TAP line per test of
the suite, read from the client's console; a failure prints the suite's own output.
Every QEMU runs under a hard timeout and is killed at the end whatever happened.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts", "vm"))
import vmlib  # noqa: E402

RTVIO = sys.argv[1] if len(sys.argv) > 1 else "build/rtvio"
LIMIT = float(os.environ.get("RTVIO_VMTEST_LIMIT", "280"))
SUITE_TESTS = 11  # tools/testing/vsock/vsock_test.c of Linux 6.1
CLIENT_CID, SERVER_CID = 3, 4
CONTROL_PORT = 1234

CONF = """
[broker]
policy = fp
chunk = 4KiB
socket_dir = {dir}
poll = no
default = deny

[cell client]
cid = {client}
vm = yes
memory = 256MiB
[cell server]
cid = {server}
vm = yes
memory = 256MiB

; The suite uses port 1234 for STREAM tests, then for SEQPACKET tests: a port may carry
; flows of both socket types.
[flow suite_stream]
from = client
to = server:1234
type = stream
size = 64KiB
period = 1ms
[flow suite_seqpacket]
from = client
to = server:1234
type = seqpacket
size = 64KiB
period = 1ms
"""


class Fail(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job(*args):
    return ",".join(str(a) for a in args)


def prerequisites():
    if not shutil.which(vmlib.QEMU):
        raise Fail(f"{vmlib.QEMU} is not installed (scripts/install-deps vm)")
    build = os.path.join(vmlib.HERE, "build-image")
    r = subprocess.run([build], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise Fail(f"{build} failed: {r.stderr.strip()[-800:]}")
    if not os.path.exists(os.path.join(vmlib.OUT, "vsock_test")):
        raise Fail("the guest image has no vsock_test: scripts/vm/build-vsock-test could "
                   "not build it (it needs Debian's linux-source-6.1): "
                   + r.stderr.strip()[-800:])


def console(g):
    try:
        with open(g.log_path) as f:
            return f.read()
    except OSError:
        return ""


def wait_console(g, pattern, timeout, what):
    end = time.time() + timeout
    while not re.search(pattern, console(g)):
        if g.p.poll() is not None:
            raise Fail(f"guest {g.name}: QEMU exited before {what}:\n{console(g)[-1500:]}")
        if time.time() > end:
            raise Fail(f"guest {g.name}: no {what} within {timeout} s:\n{console(g)[-1500:]}")
        time.sleep(0.1)


def suite_lines(text):
    """The suite prints 'N - NAME...ok' per test (or the failure's own words)."""
    return re.findall(r"^(\d+) - (.*?)\.\.\.(.*)$", text, re.M)


class Run:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="rtvio-vsocktest-")
        self.conf = os.path.join(self.tmp, "vsocktest.conf")
        with open(self.conf, "w") as f:
            f.write(CONF.format(dir=self.tmp, client=CLIENT_CID, server=SERVER_CID))
        self.guests = []
        self.broker = None

    def start_broker(self):
        err = open(os.path.join(self.tmp, "broker.err"), "w")
        self.broker = subprocess.Popen(
            ["timeout", "-s", "KILL", str(int(LIMIT + 30)), RTVIO, "broker", self.conf],
            stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
            start_new_session=True)
        want = [os.path.join(self.tmp, c + ".sock") for c in ("client", "server", "control")]
        end = time.time() + 10
        while not all(os.path.exists(w) for w in want):
            if self.broker.poll() is not None or time.time() > end:
                with open(os.path.join(self.tmp, "broker.err")) as f:
                    raise Fail("the broker did not start: " + f.read()[-800:])
            time.sleep(0.05)

    def guest(self, name, jobs, net):
        g = vmlib.Guest(name, os.path.join(self.tmp, name + ".sock"), jobs,
                        os.path.join(self.tmp, name + ".console"), LIMIT, net=net)
        self.guests.append(g)
        return g

    def close(self):
        for g in self.guests:
            g.close()
        if self.broker and self.broker.poll() is None:
            os.killpg(self.broker.pid, signal.SIGTERM)
            try:
                self.broker.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.broker.pid, signal.SIGKILL)
                self.broker.wait()


def run_suite(run):
    """Boots the server, then the client once the server's control socket listens.
    Returns the client's console."""
    port = free_port()
    server = run.guest("server", ";".join([
        job("net", "10.9.0.1"),
        job("vsock_test", "--mode=server", f"--control-port={CONTROL_PORT}",
            f"--peer-cid={CLIENT_CID}"),
    ]), vmlib.socket_net(1, port, listen=True))
    wait_console(server, r"Control socket listening", 120, "control socket")
    client = run.guest("client", ";".join([
        job("net", "10.9.0.2"),
        job("vsock_test", "--mode=client", "--control-host=10.9.0.1",
            f"--control-port={CONTROL_PORT}", f"--peer-cid={SERVER_CID}"),
    ]), vmlib.socket_net(2, port, listen=False))
    for g in (server, client):
        g.wait_for(lambda g=g: g.done is not None, LIMIT - 30, "end of the suite")
    for g in (server, client):
        feats = g.boot.get("features", "")
        if not (len(feats) > 1 and feats[1] == "1"):
            raise Fail(f"guest {g.name}: SEQPACKET not negotiated (features {feats!r})")
    return console(client), console(server)


def main():
    try:
        prerequisites()
    except (Fail, subprocess.SubprocessError, OSError) as e:
        print(f"1..1\nnot ok 1 - the guest image with vsock_test builds\n#   {e}", flush=True)
        return 1
    def on_signal(sig, frame):
        raise Fail(f"the suite did not finish within {LIMIT:.0f} s"
                   if sig == signal.SIGALRM else f"stopped by signal {sig}")

    signal.signal(signal.SIGALRM, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.alarm(int(LIMIT))
    run = Run()
    text = server_text = ""
    why = None
    try:
        run.start_broker()
        text, server_text = run_suite(run)
    except (Fail, vmlib.VmError) as e:
        why = str(e)
    finally:
        signal.alarm(0)
        run.close()
    got = suite_lines(text)
    print(f"1..{SUITE_TESTS + 1}", flush=True)
    for i in range(SUITE_TESTS):
        line = next((g for g in got if int(g[0]) == i), None)
        if line and line[2].strip() == "ok":
            print(f"ok {i + 1} - vsock_test {i}: {line[1]}", flush=True)
        else:
            name = line[1] if line else "(not reached)"
            print(f"not ok {i + 1} - vsock_test {i}: {name}", flush=True)
            for out in (text, server_text):
                for s in out[-3000:].splitlines():
                    print("#   " + s, flush=True)
    ok = why is None and "RTVIO-RESULT tag=vsock_test rc=0" in text
    print(("ok" if ok else "not ok") + f" {SUITE_TESTS + 1} - both ends of the suite exit 0",
          flush=True)
    if why:
        print("#   " + why.replace("\n", "\n#   "), flush=True)
    if ok:
        shutil.rmtree(run.tmp, ignore_errors=True)
    else:
        print(f"#   logs in {run.tmp}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
