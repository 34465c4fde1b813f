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
           names the flow, nothing queues and nothing changes.
Must run as root (Slurm's daemons do). Every wait is bounded.
--demo prints what each step did (`make slurm-demo`).
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = os.path.join(HERE, "..", "..", "scripts", "slurm", "cluster")
RTVIO, PLUGIN = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
DEMO = "--demo" in sys.argv[3:]
COUNT = 300

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
        r = subprocess.run([CLUSTER, "start", self.slurm, "--plugin", PLUGIN, "--rtvio",
                            RTVIO, "--broker", self.sock, "--timeout", "60"],
                           capture_output=True, text=True, timeout=90)
        check(r.returncode == 0, "cluster start failed: " + r.stdout + r.stderr)

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


def main():
    if os.geteuid() != 0:
        print("1..0 # SKIP Slurm's daemons need root")
        return 0
    # timeout(1)'s SIGTERM must still stop the cluster and the broker (finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    steps = [("submit", step_submit), ("run", step_run), ("release", step_release),
             ("refuse", step_refuse)]
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
