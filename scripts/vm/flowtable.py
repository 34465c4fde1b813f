"""The per-flow table of `rtvio demo` (cli/cmd_demo.c) for the demos that run
endpoints in VMs: scripts/vm/vmdemo and scripts/vm/hetdemo. A row is a dict:
name, class, messages, lost, corrupt, latency_us {min p50 p99 p999 max},
latency_kind (one-way | round-trip | none), deadline_us, deadline_misses, bound_us,
and optionally ends ("x86_64 -> aarch64"), shown when any row has it.
"""
import json
import subprocess
import sys


def bounds(rtvio, config):
    """{flow: latency bound in us} from `rtvio analyze CONFIG --json` ({} if none).
    Says on stderr when the config is not schedulable with its own [platform] costs,
    naming the flows that miss: their bounds in the table are above their deadlines."""
    an = subprocess.run([rtvio, "analyze", config, "--json"], capture_output=True,
                        text=True, timeout=60)
    try:
        doc = json.loads(an.stdout)
    except ValueError:
        print(f"rtvio analyze {config} gave no bounds: {an.stderr.strip()[-400:]}",
              file=sys.stderr)
        return {}
    flows = doc.get("flows", [])
    if not doc.get("schedulable", True):
        miss = [f"{f['name']} (bound {f.get('latency_bound_us') or 0:.0f} us > deadline "
                f"{f.get('deadline_us') or 0:.0f} us)" for f in flows
                if f.get("deadline_us") and not f.get("schedulable", True)]
        print(f"warning: {config} is not schedulable with its [platform] costs "
              f"(`rtvio analyze {config}`; status {doc.get('status')}): "
              + (", ".join(miss) or "no bound"), file=sys.stderr)
    return {f["name"]: f.get("latency_bound_us") for f in flows}


def row(flow, bound=None):
    """An empty row for a flow of vmlib.Config."""
    return {"name": flow["name"],
            "class": "best-effort" if flow["best_effort"] else "real-time",
            "messages": None, "lost": None, "corrupt": None,
            "latency_us": dict.fromkeys(("min", "p50", "p99", "p999", "max")),
            "latency_kind": "none",
            "deadline_us": None if flow["best_effort"] else
            (flow["deadline"] or flow["period"]) * 1e6,
            "deadline_misses": None, "bound_us": bound}


def num(v, width, prec):
    return f" {v:{width}.{prec}f}" if isinstance(v, (int, float)) else f" {'-':>{width}}"


HEAD = ("latency is one-way, cell to cell, in microseconds\n(* round trip between two "
        "guests, measured in the sender; - not measurable across a guest's clock)")
FOOT = ("max above bound on this machine usually means the host preempted the VM\n"
        "(see `rtvio bench bound`, which tells host stalls apart from misses); a\n"
        "round trip under TCG crosses the broker twice and two emulated guests.")


def print_table(doc, head=HEAD, foot=FOOT):
    """The table of `rtvio demo`, with a mark on round trips."""
    ends = any(f.get("ends") for f in doc["flows"])
    print(f"policy {doc['policy']}, {doc['duration_s']:.0f} s; {head}\n")
    print(f"{'flow':<12} {'class':<11} {'messages':>9} {'lost':>6} {'corrupt':>7} {'min':>8} "
          f"{'p50':>8} {'p99':>8} {'p99.9':>8} {'max':>8} {'deadline':>9} {'misses':>6} "
          f"{'bound':>8}" + ("  ends" if ends else ""))
    for f in doc["flows"]:
        lat = f["latency_us"]
        line = f"{f['name']:<12} {f['class']:<11}"
        line += num(f["messages"], 9, 0) + num(f["lost"], 6, 0) + num(f["corrupt"], 7, 0)
        for k in ("min", "p50", "p99", "p999", "max"):
            line += num(lat[k], 8, 1)
        line += num(f["deadline_us"], 9, 0) + num(f["deadline_misses"], 6, 0)
        line += num(f["bound_us"], 8, 1)
        line += " *" if f["latency_kind"] == "round-trip" else "  "
        if ends:
            line += " " + (f.get("ends") or "")
        print(line.rstrip())
    print("\n" + foot)
