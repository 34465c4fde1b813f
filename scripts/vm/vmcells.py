"""Any VM cell of a config, started by its `kind`: a Linux guest (vmlib.Guest,
virtio-pci, the image of scripts/vm/build-image) or a bare-metal cell
(baremetal.Cell, virtio-mmio, build/baremetal/rtvio-bm-<arch>.elf), each pinned to
its `cpu` and held to its `cpu_max` (cpubudget), each under a hard timeout.
Shared by scripts/vm/launch, scripts/vm/hetdemo and tests/baremetal/bmtest.py.
"""
import os

import baremetal
import vmlib

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def bm_image(cell, build_dir=None):
    """The cell's `image`, else the one the build made for its arch."""
    return cell["image"] or os.path.join(build_dir or os.path.join(ROOT, "build"),
                                         "baremetal", f"rtvio-bm-{cell['arch']}.elf")


def check(cfg, name, build_dir=None):
    """Raises vmlib.VmError when cell `name` cannot be started here."""
    c = cfg.cells[name]
    if c["kind"] == "baremetal":
        why = baremetal.missing(c["arch"])
        if why:
            raise vmlib.VmError(f"cell {name}: {why}")
        if not os.path.exists(bm_image(c, build_dir)):
            raise vmlib.VmError(f"cell {name}: no image {bm_image(c, build_dir)} (build "
                                f"with ninja, or set image =)")
    elif c["kind"] == "linux":
        vmlib.image()
    else:
        raise vmlib.VmError(f"cell {name}: kind '{c['kind']}' (expected linux or baremetal)")


def start(cfg, name, log_path, timeout, jobs=None, duration=None, build_dir=None):
    """Starts VM cell `name`; jobs (Linux) default to cfg.auto_jobs, a bare-metal
    cell runs its `args` (with limit= a little under timeout unless given)."""
    c = cfg.cells[name]
    if c["kind"] == "baremetal":
        words = list(c["args"])
        if not any(w.startswith("limit=") for w in words):
            words.append(f"limit={max(5, int(timeout) - 10)}")
        return baremetal.Cell(name, c["arch"], bm_image(c, build_dir), cfg.sock(name), words,
                              log_path, timeout, c["memory"] >> 20, c["cpu"], c["cpu_max"])
    if jobs is None:
        jobs = cfg.auto_jobs(name, duration)
    return vmlib.Guest(name, cfg.sock(name), jobs, log_path, timeout, c["memory"] >> 20,
                       c["cpu"], cpu_max=c["cpu_max"])


def finish(vm, timeout):
    """Waits for vm to end its work: (ok, result lines for printing)."""
    if isinstance(vm, baremetal.Cell):
        try:
            done = vm.wait_done(timeout)
        except baremetal.BmError as e:
            return False, [str(e)]
        return not done.get("failed"), [f"{vm.name}: RTVIO-RESULT {r}" for r in vm.results]
    vm.wait_for(lambda: vm.done is not None, timeout, "end of its jobs")
    rc = vm.wait_exit(min(30, timeout))
    lines = [f"{vm.name}: RTVIO-RESULT " + " ".join(f"{k}={v}" for k, v in r.items())
             for r in vm.results]
    return vm.done == 0 and rc == 0, lines
