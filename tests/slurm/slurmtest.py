#!/usr/bin/env python3
"""Jobs through Slurm get their rtvio cells and flows (docs/slurm.md).

Usage: slurmtest.py RTVIO RTVIO_SPANK_SO [--demo]

One broker and one one-node Slurm cluster on localhost (scripts/slurm/cluster, with
the rtvio SPANK plugin), both in a temporary directory and torn down at the end. TAP,
one line per step:
  submit   `sbatch --rtvio=job.conf` admits the job's cell and flow (generation + 1);
  run      the job's process cell sends through the admitted flow to a cell the broker
           already had; the receiver checks every byte of every message;
  release  after the job, the Epilog removes the cell: gone from `rtvio stat`, the
           generation advanced again, its socket unlinked;
  refuse   a job whose flow overloads the broker fails at submission, sbatch's error
           names the flow, nothing queues and nothing changes;
  vm-submit  a job whose cell is a Linux guest (`vm = yes`) is admitted the same way;
  vm-run   the Prolog starts that cell as an instant clone of the saved template
           (scripts/vm/provision clone); the guest and a cell the broker already had
           exchange messages both ways, every byte checked at both ends;
  vm-release  the Epilog removes the cell: gone from `rtvio stat`, no driver or
           QEMU left, its RAM file neither in /dev/shm nor mapped by the broker;
  vm-cancel  the same when the job is cancelled while its clone still serves.
The template is the one tests/vm/clonetest.py uses (scripts/vm/provision's
cached_template: saved once per guest image). Must run as root (Slurm's daemons do).
Every wait is bounded; every QEMU runs under a hard timeout.
--demo prints what each step did (`make slurm-demo`).
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = os.path.join(HERE, "..", "..", "scripts", "slurm", "cluster")
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "vm"))
import clone  # noqa: E402
import vmlib  # noqa: E402

RTVIO, PLUGIN = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
DEMO = "--demo" in sys.argv[3:]
COUNT = 300
VM_COUNT = 50
VM_MEMORY = 256  # MiB: the template's, and the job's VM cell's

CONF = """[broker]
policy = fp
chunk = 4KiB
socket_dir = {dir}
poll = no
default = deny
max_cells = 8
max_flows = 8
[cell a]
cid = 3
region = 8MiB
[cell b]
cid = 4
region = 8MiB
[flow ctl]
from = a
to = b:1000
type = seqpacket
size = 64
period = 1ms
[platform]
copy_bandwidth = 1GB/s
chunk_overhead = 100ns
packet_overhead = 1us
ingest_latency = 5us
notify_latency = 20us
ingest_step = 2us
batch_gap = 1us
"""

JOB = """[cell job]
cid = 9
region = 4MiB
[flow jobdata]
from = job
to = b:2000
type = seqpacket
size = 1000
period = 2ms
[workload jobdata]
flow = jobdata
count = {count}
"""

HOG = """[cell hogjob]
cid = 10
region = 4MiB
[flow hog]
from = hogjob
to = a:3000
type = stream
size = 10MB
period = 1ms
"""

# A job whose cell is a Linux guest, cloned from the template by the Prolog: it sends
# to the existing cell b and receives from it (the guest's jobs are what `rtvio cell`
# would run for its flows: scripts/vm/vmlib.py, auto_jobs).
VMJOB = """[cell jobvm]
cid = 30
vm = yes
memory = {mem}MiB
[flow vmdata]
from = jobvm
to = b:2100
type = seqpacket
size = 1000
period = 5ms
[workload vmdata]
flow = vmdata
count = {count}
[flow tovm]
from = b
to = jobvm:1100
type = seqpacket
size = 700
period = 5ms
[workload tovm]
flow = tovm
count = {count}
"""

# The VM job's script: its cell is the clone the Prolog started; the job lasts until
# the guest has done its jobs and powered off, then shows what the guest reported.
VMSCRIPT = """#!/bin/sh
run="$RTVIO_BROKER/slurm-job-$SLURM_JOB_ID"
for c in $RTVIO_VM_CELLS; do
	pid=$(cat "$run/$c.pid") || exit 1
	n=0
	while kill -0 "$pid" 2>/dev/null; do
		n=$((n + 1)); [ $n -lt 1200 ] || exit 1
		sleep 0.1
	done
	cat "$run/$c.out"
done
"""

# The job: its cell's config is the broker's configuration now in force.
SCRIPT = """#!/bin/sh
set -e
conf=$(mktemp)
"{rtvio}" config dump "$RTVIO_BROKER" > "$conf"
"{rtvio}" cell "$conf" "$RTVIO_CELLS" --json --duration 30
rm -f "$conf"
"""


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def say(*a):
    if DEMO:
        print("#", *a, flush=True)


class World:
    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="rtvio-slurm-")
        self.dir = self.tmp.name
        self.sock = os.path.join(self.dir, "rtvio")
        self.slurm = os.path.join(self.dir, "slurm")
        os.makedirs(self.sock)
        self.conf = os.path.join(self.dir, "broker.conf")
        with open(self.conf, "w") as f:
            f.write(CONF.format(dir=self.sock))
        self.procs = []
        self.env = dict(os.environ, SLURM_CONF=os.path.join(self.slurm, "slurm.conf"))

    def spawn(self, argv):
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        return p

    def start(self):
        self.broker = self.spawn([RTVIO, "broker", self.conf])
        ctl = os.path.join(self.sock, "control.sock")
        end = time.time() + 10
        while not os.path.exists(ctl):
            if self.broker.poll() is not None:
                raise Fail("broker exited: " + self.broker.stderr.read())
            check(time.time() < end, "broker's control socket did not appear")
            time.sleep(0.05)
        # The template's path is fixed here (the plugin's arguments); it is saved, or
        # found saved, before the VM job (template()).
        self.state = os.path.join(vmlib.OUT, f"template-{VM_MEMORY}.state")
        r = subprocess.run([CLUSTER, "start", self.slurm, "--plugin", PLUGIN, "--rtvio",
                            RTVIO, "--broker", self.sock, "--timeout", "60",
                            "--state", self.state],
                           capture_output=True, text=True, timeout=90)
        check(r.returncode == 0, "cluster start failed: " + r.stdout + r.stderr)

    def template(self):
        state, secs = clone.cached_template(VM_MEMORY, log_dir=self.dir)
        check(state == self.state, f"template saved in {state}, not {self.state}")
        return secs

    def stat(self):
        r = subprocess.run([RTVIO, "stat", "--json", self.sock], capture_output=True,
                           text=True, timeout=10)
        check(r.returncode == 0, "rtvio stat: " + r.stderr)
        return json.loads(r.stdout)

    def slurm_cmd(self, *argv, timeout=30):
        return subprocess.run(list(argv), capture_output=True, text=True, env=self.env,
                              timeout=timeout, cwd=self.dir)

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def job_state(self, jid):
        r = self.slurm_cmd("scontrol", "show", "job", jid)
        for word in r.stdout.split():
            if word.startswith("JobState="):
                return word.split("=", 1)[1]
        return "?"

    def close(self):
        subprocess.run([CLUSTER, "stop", self.slurm], timeout=30)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if os.environ.get("RTVIO_SLURMTEST_KEEP"):
            self.tmp._finalizer.detach()  # TemporaryDirectory would remove it at exit
            print(f"# kept {self.dir}", flush=True)
        else:
            self.tmp.cleanup()


def cell_names(st):
    return {c.get("name") for c in st.get("cells", [])}


def step_submit(w, ctx):
    job = w.write("job.conf", JOB.format(count=COUNT))
    script = w.write("job.sh", SCRIPT.format(rtvio=RTVIO), 0o755)
    g0 = w.stat()["generation"]
    r = w.slurm_cmd("sbatch", "--parsable", "--rtvio=" + job, "-o",
                    os.path.join(w.dir, "job-%j.out"), "-e", os.path.join(w.dir, "job-%j.err"),
                    script)
    check(r.returncode == 0, f"sbatch --rtvio refused an admissible job: {r.stderr}")
    ctx["jid"] = r.stdout.strip().split(";")[0]
    st = w.stat()
    check(st["generation"] == g0 + 1, f"generation {g0} -> {st['generation']}, want +1")
    check("job" in cell_names(st), "the job's cell is not in rtvio stat: " + json.dumps(st)[:400])
    ctx["gen"] = st["generation"]
    say(f"job {ctx['jid']} submitted; broker admitted cell job and flow jobdata "
        f"(generation {st['generation']}); sbatch said: "
        + r.stderr.strip().replace("\n", " | "))


def step_run(w, ctx):
    # The receiving cell b has been in the broker since start; its process learns
    # of the new flow from the configuration in force.
    dump = w.write("now.conf", subprocess.run([RTVIO, "config", "dump", w.sock],
                                              capture_output=True, text=True,
                                              timeout=10).stdout)
    rx = w.spawn([RTVIO, "cell", dump, "b", "--json", "--duration", "40"])
    end = time.time() + 60
    while w.job_state(ctx["jid"]) in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING"):
        check(time.time() < end, "the job did not finish in 60 s")
        time.sleep(0.5)
    state = w.job_state(ctx["jid"])
    out = open(os.path.join(w.dir, f"job-{ctx['jid']}.out")).read()
    err = open(os.path.join(w.dir, f"job-{ctx['jid']}.err")).read()
    check(state == "COMPLETED", f"job ended {state}: {err[-800:]}")
    rx.terminate()
    o, e = rx.communicate(timeout=30)
    rep = json.loads(o)
    got = [f for f in rep.get("flows", []) if f.get("name") == "jobdata" and f.get("role") == "recv"]
    check(got, "the receiver has no jobdata flow: " + o[:400])
    f = got[0]
    check(f["messages"] == COUNT and f["bytes"] == COUNT * 1000 and f["lost"] == 0 and
          f["corrupt"] == 0 and f["reordered"] == 0,
          "jobdata not whole: " + json.dumps(f)[:400])
    say(f"job {ctx['jid']} {state}; cell b received {f['messages']} messages, "
        f"{f['bytes']} bytes, lost {f['lost']}, corrupt {f['corrupt']}; job's report: "
        + out.strip().replace("\n", " ")[:300])


def step_release(w, ctx):
    end = time.time() + 30
    while "job" in cell_names(w.stat()):
        check(time.time() < end, "the Epilog did not remove the job's cell in 30 s")
        time.sleep(0.2)
    st = w.stat()
    check(st["generation"] > ctx["gen"], "generation did not advance on release")
    check(not os.path.exists(os.path.join(w.sock, "job.sock")), "job.sock left behind")
    left = {f["name"] for f in st["flows"] if f.get("class") != "best-effort"}
    check(left == {"ctl"}, f"flows left: {sorted(left)}")
    ctx["gen"] = st["generation"]
    say(f"released: cell job gone from rtvio stat, generation {st['generation']}")


def step_refuse(w, ctx):
    job = w.write("hog.conf", HOG)
    script = w.write("hog.sh", "#!/bin/sh\necho must not run\n", 0o755)
    before = w.slurm_cmd("squeue", "-h", "-o", "%i").stdout.split()
    r = w.slurm_cmd("sbatch", "--parsable", "--rtvio=" + job, script)
    check(r.returncode != 0, "an overloading job was accepted: " + r.stdout)
    check("flow hog" in r.stderr, "sbatch's error does not name flow hog: " + r.stderr)
    st = w.stat()
    check(st["generation"] == ctx["gen"], "a refusal changed the generation")
    check("hogjob" not in cell_names(st), "the refused cell is in the broker")
    after = w.slurm_cmd("squeue", "-h", "-o", "%i").stdout.split()
    check(after == before, "a refused job queued")
    say("refused at submission; sbatch said: " + r.stderr.strip().replace("\n", " | "))


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return f"({e})"


def vm_results(text):
    """The guest's RTVIO-RESULT lines in the clone driver's output, by tag."""
    out = {}
    for line in text.splitlines():
        m = re.search(r"RTVIO-RESULT .*", line)
        if m:
            r = vmlib.parse_result(m.group(0))
            out[r.get("tag")] = r
    return out


def step_vm_submit(w, ctx):
    secs = w.template()
    job = w.write("vmjob.conf", VMJOB.format(mem=VM_MEMORY, count=VM_COUNT))
    script = w.write("vmjob.sh", VMSCRIPT, 0o755)
    g0 = w.stat()["generation"]
    r = w.slurm_cmd("sbatch", "--parsable", "--rtvio=" + job, "-o",
                    os.path.join(w.dir, "job-%j.out"), "-e", os.path.join(w.dir, "job-%j.err"),
                    script)
    check(r.returncode == 0, f"sbatch --rtvio refused an admissible VM job: {r.stderr}")
    ctx["vmjid"] = r.stdout.strip().split(";")[0]
    st = w.stat()
    check(st["generation"] == g0 + 1, f"generation {g0} -> {st['generation']}, want +1")
    check("jobvm" in cell_names(st), "the job's VM cell is not in rtvio stat")
    ctx["gen"] = st["generation"]
    # b, which the broker had from the start, runs on the configuration now in force.
    dump = w.write("vmnow.conf", subprocess.run([RTVIO, "config", "dump", w.sock],
                                                capture_output=True, text=True,
                                                timeout=10).stdout)
    ctx["vmrx"] = w.spawn([RTVIO, "cell", dump, "b", "--json", "--duration", "120"])
    say(f"job {ctx['vmjid']} submitted; broker admitted VM cell jobvm and flows vmdata, "
        f"tovm (generation {st['generation']}); template "
        + (f"saved in {secs:.1f} s" if secs else "reused"))


def step_vm_run(w, ctx):
    jid = ctx["vmjid"]
    end = time.time() + 150
    while w.job_state(jid) in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING"):
        check(time.time() < end, "the VM job did not finish in 150 s")
        time.sleep(0.5)
    state = w.job_state(jid)
    out = read(os.path.join(w.dir, f"job-{jid}.out"))
    run = os.path.join(w.sock, f"slurm-job-{jid}")
    why = ("job's stderr: " + read(os.path.join(w.dir, f"job-{jid}.err"))[-400:] +
           " | Prolog/Epilog: " + read(os.path.join(w.sock, f"rtvio-job-{jid}.log"))[-400:] +
           " | clone: " + read(os.path.join(run, "jobvm.out"))[-600:])
    check(os.path.exists(os.path.join(run, "jobvm.pid")), "the Prolog started no clone: " + why)
    check(state == "COMPLETED", f"VM job ended {state}: {why}")
    g = vm_results(out)
    boot = re.search(r"RTVIO-BOOT .*", out)
    check(boot and "cid=30" in boot.group(0), "the clone did not come up as CID 30: " + out[-600:])
    for tag, role in (("vmdata", "send"), ("tovm", "recv")):
        r = g.get(tag, {})
        check(r.get("status") == "ok" and r.get("messages") == VM_COUNT and
              not r.get("corrupt") and not r.get("lost"),
              f"guest's {role} of {tag}: {r or 'no result'} ({out[-600:]})")
    rx = ctx["vmrx"]
    rx.terminate()
    o, _ = rx.communicate(timeout=30)
    rep = json.loads(o)
    by = {(f.get("name"), f.get("role")): f for f in rep.get("flows", [])}
    f = by.get(("vmdata", "recv"))
    check(f and f["messages"] == VM_COUNT and f["bytes"] == VM_COUNT * 1000 and
          f["lost"] == 0 and f["corrupt"] == 0 and f["reordered"] == 0,
          "vmdata not whole at b: " + json.dumps(f)[:400])
    t = by.get(("tovm", "send"))
    check(t and t["messages"] == VM_COUNT, "b did not send all of tovm: " + json.dumps(t)[:400])
    say(f"job {jid} {state}; the clone (CID 30) sent {VM_COUNT} x 1000 B to b, all whole "
        f"at b, and received b's {VM_COUNT} x 700 B, all whole in the guest")


def broker_maps_clone(w):
    with open(f"/proc/{w.broker.pid}/maps") as f:
        return [ln.strip() for ln in f if "rtvio-clone-jobvm" in ln]


def clone_qemus():
    """PIDs of the QEMUs running a clone of cell jobvm (their RAM file names it)."""
    pids = []
    for d in os.listdir("/proc"):
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"rtvio-clone-jobvm" in cmd and b"qemu" in cmd:
            pids.append(int(d))
    return pids


def check_released(w, ctx, jid):
    """The Epilog gave everything of the VM job back; returns the generation."""
    end = time.time() + 30
    while "jobvm" in cell_names(w.stat()):
        check(time.time() < end, "the Epilog did not remove the VM cell in 30 s")
        time.sleep(0.2)
    st = w.stat()
    check(st["generation"] > ctx["gen"], "generation did not advance on release")
    left = {f["name"] for f in st["flows"] if f.get("class") != "best-effort"}
    check(left == {"ctl"}, f"flows left: {sorted(left)}")
    check(not os.path.exists(os.path.join(w.sock, "jobvm.sock")), "jobvm.sock left behind")
    pid = int(open(os.path.join(w.sock, f"slurm-job-{jid}", "jobvm.pid")).read())
    try:
        os.killpg(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    check(not alive, f"the clone driver's process group {pid} is still there")
    check(not clone_qemus(), f"a clone's QEMU is still running: {clone_qemus()}")
    check(not [f for f in os.listdir("/dev/shm") if f.startswith("rtvio-clone-jobvm")],
          "the clone's RAM file is left in /dev/shm")
    maps = broker_maps_clone(w)
    check(not maps, "the broker still maps the clone's RAM: " + (maps[0] if maps else ""))
    ctx["gen"] = st["generation"]
    return st["generation"]


def step_vm_release(w, ctx):
    gen = check_released(w, ctx, ctx["vmjid"])
    say(f"released: cell jobvm gone (generation {gen}), the clone's driver and QEMU "
        "gone, its RAM neither in /dev/shm nor mapped by the broker")


def step_vm_cancel(w, ctx):
    """A VM job cancelled while its guest still works: the Epilog takes the clone
    down (its QEMU included) and the cell back."""
    job = w.write("vmlong.conf", VMJOB.format(mem=VM_MEMORY, count=100000))
    script = w.write("vmlong.sh", VMSCRIPT, 0o755)
    r = w.slurm_cmd("sbatch", "--parsable", "--rtvio=" + job, "-o", "/dev/null", script)
    check(r.returncode == 0, f"sbatch --rtvio refused the VM job: {r.stderr}")
    jid = r.stdout.strip().split(";")[0]
    ctx["gen"] = w.stat()["generation"]
    end = time.time() + 60
    # Serving: the broker maps the clone's RAM once its vsock device is attached.
    while not broker_maps_clone(w):
        check(time.time() < end, "the clone did not attach within 60 s")
        time.sleep(0.2)
    check(clone_qemus(), "no clone QEMU while the broker maps its RAM")
    c = w.slurm_cmd("scancel", jid)
    check(c.returncode == 0, "scancel: " + c.stderr)
    gen = check_released(w, ctx, jid)
    say(f"job {jid} cancelled while its clone served: cell jobvm gone (generation {gen}), "
        "QEMU and driver gone, RAM released")


def main():
    if os.geteuid() != 0:
        print("1..0 # SKIP Slurm's daemons need root")
        return 0
    # timeout(1)'s SIGTERM must still stop the cluster and the broker (finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    steps = [("submit", step_submit), ("run", step_run), ("release", step_release),
             ("refuse", step_refuse), ("vm-submit", step_vm_submit), ("vm-run", step_vm_run),
             ("vm-release", step_vm_release), ("vm-cancel", step_vm_cancel)]
    print(f"1..{len(steps)}", flush=True)
    w, ctx, failed = World(), {}, 0
    try:
        w.start()
        for i, (name, fn) in enumerate(steps, 1):
            try:
                fn(w, ctx)
                print(f"ok {i} - {name}", flush=True)
            except Exception as e:  # noqa: BLE001 - one step's failure is its line
                failed += 1
                print(f"not ok {i} - {name}\n# {e}", flush=True)
    except Exception as e:  # noqa: BLE001
        print(f"not ok 1 - cluster\n# {e}", flush=True)
        failed += 1
    finally:
        w.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
