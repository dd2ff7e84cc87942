#!/usr/bin/env python3
"""Benchmark (not a test): wall time to grade Task 1 against the reference and every Task 1
fixture, compared with the floor.

The floor is the time the scenarios inherently must wait: for each scenario the sum of its
windows (expect_silence `for`, expect_cpu_below `window`, expect_running's 0.2 s grace), and for a grading
the longest scenario's (scenarios run in parallel). For a failing submission a timed-out step
waits its whole deadline by design, so for fixtures the table also shows the slowest scenario
(the critical path) and the grader's overhead beyond it.

Usage: scripts/bench-task1.py [RUNS]   (default 5; prints a Markdown table)
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
RUNNING_GRACE = 0.2


def seconds(v):
    if isinstance(v, (int, float)):
        return float(v)
    v = v.strip()
    if v.endswith("ms"):
        return float(v[:-2]) / 1000
    if v.endswith("s"):
        return float(v[:-1])
    raise ValueError(v)


def windows(steps):
    total = 0.0
    for s in steps:
        kind = s.get("do")
        if kind in ("expect_silence", "expect_not"):
            total += seconds(s["for"])
        elif kind == "expect_cpu_below":
            total += seconds(s["window"])
        elif kind == "expect_running":
            # RUNNING_GRACE in grader/src/engine/scenario/mod.rs: how long it watches for a crash.
            total += RUNNING_GRACE
        elif kind == "repeat":
            total += s["count"] * windows(s["steps"])
        elif kind == "parallel":
            total += windows(s["steps"])
    return total


def floor(task):
    spec = tomllib.loads((ROOT / "tasks" / f"task{task}.toml").read_text())
    return max(windows(sc["steps"]) for sc in spec["scenario"])


def main():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "grader"], cwd=ROOT, check=True)
    grader = ROOT / "target" / "release" / "grader"
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    subs = [("reference (bundled)", None)]
    for f in sorted((ROOT / "fixtures" / "task1").iterdir()):
        if f.suffix == ".py":
            subs.append((f.name, f))
        elif f.suffix == ".c":
            out = work / f.stem
            subprocess.run(["cc", "-O1", "-o", out, f], check=True)
            subs.append((f.name, out))
        elif f.suffix == ".rs":
            out = work / f.stem
            subprocess.run(["rustc", "--edition", "2021", "-O", "-o", out, f], check=True)
            subs.append((f.name, out))
    fl = floor(1)
    print(f"Task 1 floor (longest scenario's inherent windows): {fl:.3f}s; {RUNS} runs each, median\n")
    print("| submission | score | wall (median) | slowest scenario | wall / floor | wall − slowest |")
    print("|---|---|---|---|---|---|")
    for name, path in subs:
        walls, slowest, score = [], [], ""
        for i in range(RUNS):
            out = work / f"out-{i}"
            cmd = [str(grader), "run", "--task", "1", "--out", str(out), "--format", "compact", "--seed", str(i + 1)]
            if path is not None:
                cmd.append(str(path))
            t0 = time.monotonic()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            walls.append(time.monotonic() - t0)
            rep = next(out.glob("*/task1.toml"))
            r = tomllib.loads(rep.read_text())
            score = f"{r['score']:g}/{r['max_score']:g}"
            slowest.append(max(s["duration_ms"] for s in r["scenarios"]) / 1000)
            shutil.rmtree(out)
        w, s = statistics.median(walls), statistics.median(slowest)
        ratio = f"{w / fl:.2f}×" if fl > 0 else "n/a"
        print(f"| {name} | {score} | {w:.3f}s | {s:.3f}s | {ratio} | {w - s:.3f}s |")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
