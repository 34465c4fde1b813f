#!/usr/bin/env python3
"""The Slurm Prolog/Epilog (scripts/slurm/rtvio-job) runs as root with the job's
control environment, which the job's submitter can write: it must run nothing the
job names, use no path the job names, and pass on only names that are configuration
names. A stand-in rtvio records its calls; the job's environment names a program of
its own for every path the hook once took from it. TAP output.

usage: slurm_hook.py HOOK"""
import os
import subprocess
import sys
import tempfile

HOOK = sys.argv[1]


def run_hook(tmp, context, job_env):
    calls = os.path.join(tmp, "calls")
    fake = os.path.join(tmp, "rtvio")
    with open(fake, "w") as f:
        f.write(f'#!/bin/sh\necho "$@" >>{calls}\n[ "$1" = config ] && echo "[broker]"\nexit 0\n')
    os.chmod(fake, 0o755)
    broker = os.path.join(tmp, "broker")
    os.makedirs(broker, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SLURM_JOB_ID": "7",
           "SLURM_SCRIPT_CONTEXT": context, "RTVIO_JOB_BIN": fake,
           "RTVIO_JOB_BROKER": broker, "RTVIO_JOB_PROVISION": "",
           "RTVIO_JOB_STATE": ""}
    env.update(job_env)
    subprocess.run(["sh", HOOK], env=env, timeout=60, check=True)
    if not os.path.exists(calls):
        return []
    with open(calls) as f:
        return [line.split() for line in f]


def hostile_env(tmp):
    """Every path the job's environment could name points at a program that leaves a
    mark when run."""
    mark = os.path.join(tmp, "pwned")
    pwn = os.path.join(tmp, "pwn")
    with open(pwn, "w") as f:
        f.write(f"#!/bin/sh\ntouch {mark}\n")
    os.chmod(pwn, 0o755)
    return mark, {"SPANK_RTVIO_BIN": pwn, "SPANK_RTVIO_PROVISION": pwn,
                  "SPANK_RTVIO_BROKER": os.path.join(tmp, "elsewhere"),
                  "SPANK_RTVIO_STATE": pwn,
                  "SPANK_RTVIO_CELLS": "good * ../x a;b", "SPANK_RTVIO_FLOWS": "f1 $(id)",
                  "SPANK_RTVIO_VM_CELLS": "good"}


def case_epilog():
    with tempfile.TemporaryDirectory() as tmp:
        mark, env = hostile_env(tmp)
        calls = run_hook(tmp, "epilog_slurmd", env)
        assert not os.path.exists(mark), "the Epilog ran a program the job named"
        assert not os.path.exists(os.path.join(tmp, "elsewhere")), \
            "the Epilog wrote where the job said"
        want = [["flow", "remove", "--broker", os.path.join(tmp, "broker"), "f1"],
                ["cell", "remove", "--broker", os.path.join(tmp, "broker"), "good"]]
        assert calls == want, f"calls {calls}, want {want}"
        return "only f1 and good removed, through the configured rtvio"


def case_prolog():
    with tempfile.TemporaryDirectory() as tmp:
        mark, env = hostile_env(tmp)
        calls = run_hook(tmp, "prolog_slurmd", env)
        assert not os.path.exists(mark), "the Prolog ran a program the job named"
        # No provision script configured: no clone, and nothing asked of rtvio.
        assert calls == [], f"calls {calls}"
        return "no clone without a configured provision script"


def case_no_wrapper():
    with tempfile.TemporaryDirectory() as tmp:
        mark, env = hostile_env(tmp)
        env.update({"RTVIO_JOB_BIN": "", "RTVIO_JOB_BROKER": ""})
        calls = run_hook(tmp, "epilog_slurmd", env)
        assert not os.path.exists(mark) and calls == [], "ran without its configuration"
        return "does nothing without the wrapper's settings"


CASES = [case_epilog, case_prolog, case_no_wrapper]


def main():
    print(f"1..{len(CASES)}")
    failed = 0
    for i, case in enumerate(CASES, 1):
        try:
            print(f"ok {i} - {case.__name__[5:]}: {case()}")
        except Exception as e:  # noqa: BLE001 - any failure is the case's
            failed += 1
            print(f"not ok {i} - {case.__name__[5:]}: {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
