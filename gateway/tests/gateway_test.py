#!/usr/bin/env python3
"""The gateway end to end (TAP): two brokers on one machine, each with its own socket
directory, a gateway cell on each side joined over Cyclone DDS on loopback (unicast
peers, no multicast), and flows across them.

  broker a: cell ctl sends  control (SEQPACKET 64 B / 2 ms) -> b/act:1000
                            bulk    (STREAM 2 KiB / 5 ms)   -> b/act:2000
  broker b: cell act (gw_sink) checks every byte of both; cell peer sends
            local (SEQPACKET 256 B / 2 ms) -> act2:4000, a flow that never leaves b.

Half way through, broker b's gateway is killed and started again: the flows must
resume, what was lost must be counted (and only counted), nothing may arrive corrupt
or twice, and b's local flow must not notice.

usage: gateway_test.py RTVIO GW_SINK"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

RTVIO, SINK = sys.argv[1], sys.argv[2]
DOMAIN = 20 + os.getpid() % 200  # keep clear of others' tests on the same machine
n_test = 0
failed = 0


def tap(ok, what):
    global n_test, failed
    n_test += 1
    failed += 0 if ok else 1
    print(("ok" if ok else "not ok") + " %d - %s" % (n_test, what), flush=True)


CONF_A = """[broker]
socket_dir = {dir}/a
[cell ctl]
cid = 3
[cell gw]
cid = 4
[remote b]
gateway = gw
domain = {dom}
network_budget = 5ms
remote_bound = 200us
[flow control]
from = ctl
to = b/act:1000
type = seqpacket
size = 64
period = 2ms
[flow bulk]
from = ctl
to = b/act:2000
type = stream
size = 2KiB
period = 5ms
"""
CONF_B = """[broker]
socket_dir = {dir}/b
[cell gw]
cid = 3
[cell act]
cid = 4
[cell peer]
cid = 5
[cell act2]
cid = 6
[remote a]
gateway = gw
domain = {dom}
network_budget = 5ms
remote_bound = 200us
[flow control]
from = a/ctl
to = act:1000
type = seqpacket
size = 64
period = 2ms
[flow bulk]
from = a/ctl
to = act:2000
type = stream
size = 2KiB
period = 5ms
[flow local]
from = peer
to = act2:4000
type = seqpacket
size = 256
period = 2ms
"""


def start(args, out):
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, text=True)


def stop(p, timeout=15):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


def gateway_json(path):
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text[text.index("{"):])
    except ValueError:
        sys.stderr.write(text)
        return {"flows": []}


def main():
    print("1..13", flush=True)
    d = tempfile.mkdtemp(prefix="rtvio-gw-")
    for side in "ab":
        os.mkdir(os.path.join(d, side))
    ca, cb = os.path.join(d, "a.conf"), os.path.join(d, "b.conf")
    open(ca, "w").write(CONF_A.format(dir=d, dom=DOMAIN))
    open(cb, "w").write(CONF_B.format(dir=d, dom=DOMAIN))
    log = lambda name: open(os.path.join(d, name), "w")
    procs = []
    try:
        ba = start([RTVIO, "broker", ca], log("broker-a.log"))
        bb = start([RTVIO, "broker", cb], log("broker-b.log"))
        procs += [ba, bb]
        sink = subprocess.Popen([SINK, d + "/b", "act", "16", "seqpacket:1000", "stream:2000"],
                                stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
        procs.append(sink)
        gwa = start([RTVIO, "gateway", ca, "b", "--json"], log("gw-a.json"))
        gwb1 = start([RTVIO, "gateway", cb, "a", "--json"], log("gw-b1.json"))
        act2 = start([RTVIO, "cell", cb, "act2", "--duration", "13", "--json"], log("act2.json"))
        peer = start([RTVIO, "cell", cb, "peer", "--duration", "12"], log("peer.log"))
        procs += [gwa, gwb1, act2, peer]
        tap(sink.stdout.readline().strip() == "ready", "receiving cell attached to broker b")
        time.sleep(2)  # DDS discovery between the gateways
        ctl = start([RTVIO, "cell", ca, "ctl", "--duration", "10"], log("ctl.log"))
        procs.append(ctl)
        time.sleep(4)
        gwb1.send_signal(signal.SIGKILL)
        gwb1.wait()
        time.sleep(1)
        gwb2 = start([RTVIO, "gateway", cb, "a", "--json"], log("gw-b2.json"))
        procs.append(gwb2)
        tap(ctl.wait(timeout=30) == 0, "sending cell on broker a ran its flows")
        time.sleep(2)
        tap(stop(gwb2) == 0, "restarted gateway on b stopped cleanly")
        tap(stop(gwa) == 0, "gateway on a stopped cleanly")
        out = sink.communicate(timeout=30)[0].strip().splitlines()
        res = {r["port"]: r for r in map(json.loads, out)}
        seq, st = res.get(1000, {}), res.get(2000, {})
        sys.stderr.write("sink: %s\n" % res)
        tap(seq.get("connections", 0) >= 2 and seq.get("messages", 0) > 1000,
            "SEQPACKET flow resumed after the restart (%s connections, %s messages)"
            % (seq.get("connections"), seq.get("messages")))
        tap(st.get("connections", 0) >= 2 and st.get("messages", 0) > 400,
            "STREAM flow resumed after the restart (%s connections, %s messages)"
            % (st.get("connections"), st.get("messages")))
        tap(all(r.get(k, 1) == 0 for r in (seq, st) for k in ("corrupt", "duplicates",
                                                              "reordered")),
            "every byte intact, nothing twice or out of order across the gateway")
        tap(seq.get("lost", 0) > 0 and st.get("lost", 0) > 0,
            "the restart's losses are counted by the receiver (%s, %s)"
            % (seq.get("lost"), st.get("lost")))
        ga = {f["flow"]: f for f in gateway_json(os.path.join(d, "gw-a.json"))["flows"]}
        gb = {f["flow"]: f for f in gateway_json(os.path.join(d, "gw-b2.json"))["flows"]}
        sent = sum(ga.get(f, {}).get("messages", 0) for f in ("control", "bulk"))
        unmatched = sum(ga.get(f, {}).get("unmatched", 0) for f in ("control", "bulk"))
        lost = seq.get("lost", 0) + st.get("lost", 0)
        tap(unmatched > 0 and unmatched <= lost,
            "gateway a counted what it published with no reader (%d of %d lost, %d sent)"
            % (unmatched, lost, sent))
        tap(all(gb.get(f, {}).get("corrupt", 1) == 0 and gb.get(f, {}).get("duplicates", 1) == 0
                for f in ("control", "bulk")),
            "restarted gateway b: no corrupt or duplicated sample passed on")
        tap(stop(act2, 30) == 0, "broker b's local flow undisturbed (its receiver saw "
            "every message intact and in order)")
        rc = subprocess.run([RTVIO, "analyze", ca, "--json", "--platform", "/dev/stdin"],
                            input="[platform]\ncopy_bandwidth = 4GB/s\nchunk_overhead = 300ns\n"
                            "packet_overhead = 1us\ningest_latency = 5us\nnotify_latency = 20us\n"
                            "ingest_step = 2us\nbatch_gap = 10us\n", capture_output=True,
                            text=True)
        doc = json.loads(rc.stdout) if rc.stdout else {"flows": []}
        comp = [f.get("composed") for f in doc["flows"]]
        tap(all(c and abs(c["bound_us"] - (c["local_us"] + 5000 + 200)) < 1e-6 for c in comp)
            and len(comp) == 2, "analyze composes local + network budget + remote bound")
        rca, rcb = stop(ba), stop(bb)
        tap(rca == 0 and rcb == 0, "both brokers with [remote] sections stop cleanly on "
            "SIGTERM (exit %s, %s)" % (rca, rcb))
    finally:
        for p in procs:
            if p.poll() is None:
                stop(p, 5)
    if failed:
        sys.stderr.write("logs in %s\n" % d)
    return 1 if failed else 0


sys.exit(main())
