#!/usr/bin/env python3
"""Verdict stability under CPU load (a script, not a test).

Grades every fixture of the chosen tasks (and the bundled reference of each task) RUNS times
while LOAD busy processes (`yes > /dev/null`) keep the cores saturated, and reports, per
submission, how many distinct verdict sets (scenario -> status) were seen. A stable grader sees
exactly one per submission. Each run uses a different seed, so the payloads differ too.

With --batch, each run grades every task's fixtures as one class with ONE `grader batch` at its
default settings (`--task 1 class-task1/ --task 2 class-task2/ ...`: one admission queue for
every task, gradings admitted by CPU room), so the verdicts are checked at the concurrency a
class is graded with (the references are not in it), as `scripts/bench-batch` measures it.

Usage: scripts/flakiness.py [--runs 20] [--load 2] [--tasks 1,2,3,4,11] [--jobs N] [--batch]
(--tasks defaults to every task with a fixtures/task<N> folder; the grader is built in
$CARGO_TARGET_DIR when that is set, else in target/)
Prints a Markdown table; exit status 1 if any verdict changed.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fixture_tasks():
    """The task numbers that have a fixtures/task<N> folder, in order."""
    found = (d.name.removeprefix("task") for d in (ROOT / "fixtures").glob("task*") if d.is_dir())
    return sorted(int(n) for n in found if n.isdigit())


def submissions(task, work):
    subs = [(f"reference-task{task}", None)]
    folder = ROOT / "fixtures" / f"task{task}"
    for f in sorted(folder.iterdir()) if folder.exists() else []:
        if f.suffix == ".py":
            subs.append((f.name, f))
        elif f.suffix == ".c":
            out = work / f"task{task}-{f.stem}"
            subprocess.run(["cc", "-O1", "-o", out, f], check=True)
            subs.append((f.name, out))
        elif f.suffix == ".rs":
            out = work / f"task{task}-{f.stem}"
            subprocess.run(["rustc", "--edition", "2021", "-O", "-o", out, f], check=True)
            subs.append((f.name, out))
    return subs


def grade(grader, task, path, seed, work):
    out = Path(tempfile.mkdtemp(prefix="flaky-", dir=work))
    cmd = [str(grader), "run", "--task", str(task), "--seed", str(seed), "--out", str(out), "--format", "compact"]
    if path is not None:
        cmd.append(str(path))
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    took = time.monotonic() - t0
    reports = list(out.glob(f"*/task{task}.toml"))
    if not reports:
        shutil.rmtree(out)
        return ("no report: exit %d: %s" % (proc.returncode, proc.stderr.strip()[:200]),), took
    r = tomllib.loads(reports[0].read_text())
    shutil.rmtree(out)
    return tuple(sorted((s["name"], s["status"]) for s in r["scenarios"])), took


def class_folder(task, subs, run):
    """Every fixture file of `task` in one folder (a fixture that imports a sibling still finds it)."""
    klass = run / f"class-task{task}"
    klass.mkdir()
    for name, path in subs:
        if path is None:
            continue
        shutil.copy2(path, klass / name)
        (klass / name).chmod(0o755)
    for f in (ROOT / "fixtures" / f"task{task}").iterdir():
        if f.suffix == ".py" and not (klass / f.name).exists():
            shutil.copy2(f, klass / f.name)
    return klass


def batch_verdicts(grader, classes, seed, work):
    """One `grader batch` of every task's `subs` (name, path): {task: {name: verdicts}}, wall time."""
    run = Path(tempfile.mkdtemp(prefix="flaky-batch-", dir=work))
    out = run / "out"
    cmd = [str(grader), "batch", "--out", str(out), "--seed", str(seed)]
    for task, subs in classes.items():
        cmd += ["--task", str(task), str(class_folder(task, subs, run))]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    took = time.monotonic() - t0
    verdicts = {}
    for task, subs in classes.items():
        verdicts[task] = {}
        for name, path in subs:
            if path is None:
                continue
            rec = next(iter(out.glob(f"{name}/task{task}.toml")), None) or next(iter(out.glob(f"{Path(name).stem}/task{task}.toml")), None)
            if rec is None:
                verdicts[task][name] = ("no report: exit %d: %s" % (proc.returncode, proc.stderr.strip()[-200:]),)
                continue
            r = tomllib.loads(rec.read_text())
            verdicts[task][name] = tuple(sorted((sc["name"], sc["status"]) for sc in r["scenarios"]))
    shutil.rmtree(run, ignore_errors=True)
    return verdicts, took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--load", type=int, default=2, help="busy processes to start (default: 2)")
    ap.add_argument("--tasks", default=",".join(str(n) for n in fixture_tasks()))
    ap.add_argument("--jobs", type=int, default=1, help="gradings at once (default 1)")
    ap.add_argument("--batch", action="store_true", help="grade every task's fixtures as one class with one `grader batch`")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "grader"], cwd=ROOT, check=True)
    work = Path(tempfile.mkdtemp(prefix="flakiness-"))
    # A private copy, so rebuilding while this runs cannot change the binary under test.
    grader = work / "grader"
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    shutil.copy2(target / "release" / "grader", grader)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(args.load)]
    # End the load processes on SIGTERM too, not only on a normal exit or Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    changed = 0
    try:
        print(f"commit {commit}: {args.runs} runs per submission, {args.load} busy processes, {os.cpu_count()} cores\n")
        print("| task | submission | runs | distinct verdict sets | failing scenarios | max wall |")
        print("|---|---|---|---|---|---|")
        tasks = [int(t) for t in args.tasks.split(",")]
        classes = {task: submissions(task, work) for task in tasks}
        if args.batch:
            runs = [batch_verdicts(grader, classes, seed, work) for seed in range(1, args.runs + 1)]
        for task in tasks:
            subs = classes[task]
            if args.batch:
                per_sub = {name: [(v[task][name], took) for v, took in runs] for name, path in subs if path is not None}
            for name, path in subs:
                if args.batch:
                    if path is None:
                        continue
                    results = per_sub[name]
                else:
                    with ThreadPoolExecutor(max_workers=args.jobs) as ex:
                        results = list(ex.map(lambda seed: grade(grader, task, path, seed, work), range(1, args.runs + 1)))
                sets = {v for v, _ in results}
                worst = max(t for _, t in results)
                first = results[0][0]
                failing = sorted(n for n, st in first if st != "passed") if first and isinstance(first[0], tuple) else list(first)
                if len(sets) != 1:
                    changed += 1
                    diffs = []
                    for s in sets:
                        diffs.append(", ".join(f"{n}={st}" for n, st in s if st != "passed") if s and isinstance(s[0], tuple) else str(s))
                    failing = ["VARIES: " + " | ".join(diffs)]
                print(f"| {task} | {name} | {args.runs} | {len(sets)} | {len(failing) if len(sets) == 1 else failing[0]} | {worst:.1f}s |", flush=True)
    finally:
        for h in hogs:
            h.send_signal(signal.SIGTERM)
            h.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nsubmissions whose verdicts changed: {changed}")
    sys.exit(1 if changed else 0)


if __name__ == "__main__":
    main()
