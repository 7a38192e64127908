#!/usr/bin/env python3
"""cpuparts.py PROFILE...: CPU seconds of a simswarm process by part, from
its CPU profiles (SIMSWARM_CPUPROFILE, internal/cpuprof): engine (the
NATS server and every connection's protocol work; samples the server
labels itself count here too), runner, builder, gc (the Go runtime's
own goroutines: garbage collector, scheduler) and client (the rest).
Prints "engine runner builder gc client total", summed over the profiles.
Used by pairs.sh."""
import re
import subprocess
import sys

PARTS = ["engine", "runner", "builder", "gc", "client"]


def parts(path):
    raw = subprocess.run(["go", "tool", "pprof", "-raw", path], capture_output=True, text=True, check=True).stdout
    samples, locs = raw.split("\nLocations\n", 1)
    funcs = {}
    for m in re.finditer(r"^\s+(\d+): 0x[0-9a-f]+ M=\d+ (\S+)", locs, re.M):
        funcs[m.group(1)] = m.group(2)
    out = dict.fromkeys(PARTS, 0.0)
    stack = None
    ns = 0
    pending = []

    def settle(stack, ns, labels):
        if stack is None:
            return
        m = re.search(r"part:\[(\w+)\]", labels)
        if m and m.group(1) in out:
            part = m.group(1)
        elif re.search(r"\b(account|stream|consumer|type):\[", labels):
            part = "engine"
        else:
            root = funcs.get(stack[-1], "") if stack else ""
            part = "gc" if root.startswith("runtime.") and root != "runtime.main" else "client"
        out[part] += ns / 1e9

    labels = ""
    for line in samples.splitlines():
        m = re.match(r"^\s+\d+\s+(\d+): ([\d ]+)$", line.rstrip() + " ")
        if m:
            settle(stack, ns, labels)
            ns, stack, labels = int(m.group(1)), m.group(2).split(), ""
        elif stack is not None and line.startswith("                "):
            labels += line
    settle(stack, ns, labels)
    return out


total = dict.fromkeys(PARTS, 0.0)
for p in sys.argv[1:]:
    for k, v in parts(p).items():
        total[k] += v
print(" ".join("%.3f" % total[k] for k in PARTS), "%.3f" % sum(total.values()))
