#!/usr/bin/env python3
"""Wake-ups and CPU ticks of one process, per thread name, over a window.

    python3 bench/wakeups.py PID [--seconds 10] [--repeat 3]

For each window it prints, per thread name (threads of one name summed),
voluntary context switches per second (a thread blocking: epoll_wait,
futex, ...; each one is a wake-up) and involuntary ones (preempted; these
depend on how loaded the machine is), then the process's CPU ticks
(utime+stime, 10 ms each) over the window. Wake-ups do not depend on the
machine's load the way CPU % does, so before/after comparisons stay
meaningful on a busy machine. At the end: min / median per thread name over
the repeats. It only reads /proc; it never touches the process.
"""
import argparse
import os
import statistics
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def tasks(pid):
    """{tid: (name, voluntary, involuntary)}"""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        name, vol, invol = "?", 0, 0
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("Name:"):
                        name = line.split(None, 1)[1].strip()
                    elif line.startswith("voluntary_ctxt_switches:"):
                        vol = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol = int(line.split()[1])
        except OSError:
            continue
        out[tid] = (name, vol, invol)
    return out


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def window(pid, seconds):
    t0, k0, s0 = time.monotonic(), ticks(pid), tasks(pid)
    time.sleep(seconds)
    t1, k1, s1 = time.monotonic(), ticks(pid), tasks(pid)
    wall = t1 - t0
    per = {}
    for tid, (name, vol, invol) in s1.items():
        _, v0, i0 = s0.get(tid, (name, 0, 0))
        p = per.setdefault(name, [0, 0, 0])
        p[0] += vol - v0
        p[1] += invol - i0
        p[2] += 1
    return wall, k1 - k0, {n: (v / wall, i / wall, c) for n, (v, i, c) in per.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pid", type=int)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    runs = []
    for r in range(a.repeat):
        wall, k, per = window(a.pid, a.seconds)
        runs.append((k, per))
        total = sum(v for v, _, _ in per.values())
        print(f"window {r + 1}: {wall:.1f} s, CPU {k} ticks = {k / CLK_TCK / wall * 100:.2f} % "
              f"of a core, wake-ups {total:.1f}/s, load {open('/proc/loadavg').read().split()[:3]}")
        for name, (v, i, c) in sorted(per.items(), key=lambda x: -x[1][0]):
            print(f"  {name:<20} x{c:<3} voluntary {v:8.1f}/s  involuntary {i:6.1f}/s")
    names = sorted({n for _, per in runs for n in per})
    print("\nthread name          wake-ups/s min / median (voluntary)")
    for n in names:
        vs = [per.get(n, (0, 0, 0))[0] for _, per in runs]
        print(f"  {n:<20} {min(vs):8.1f} / {statistics.median(vs):8.1f}")
    tot = [sum(v for v, _, _ in per.values()) for _, per in runs]
    ks = [k for k, _ in runs]
    print(f"  {'TOTAL':<20} {min(tot):8.1f} / {statistics.median(tot):8.1f}")
    print(f"CPU ticks per {a.seconds:.0f} s window min / median: {min(ks)} / {statistics.median(ks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
