#!/usr/bin/env bash
# Demonstration (not a test): a class of 40 submissions generated from copies of the Task 1
# fixtures grades in one `grader batch` call; the batch is SIGKILLed once some reports exist and
# rerun, which must skip the finished submissions; then --shard 1/2 + 2/2 + merge is compared with
# the unsharded run, and every export is produced. Prints the measured figures.
#
# Usage: scripts/batch-demo.sh [N=40]   (GRADER=path overrides; default: the newer of
#        target/release/grader and target/debug/grader)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-40}"
if [ -z "${GRADER:-}" ]; then
  GRADER=target/debug/grader
  if [ -x target/release/grader ] && [ target/release/grader -nt "$GRADER" ]; then GRADER=target/release/grader; fi
fi
[ -x "$GRADER" ] || { echo "build the grader first: cargo build -p grader" >&2; exit 2; }
echo "grader: $GRADER"

work=$(mktemp -d /tmp/grader-batch-demo-XXXXXX)
export TMPDIR="$work/tmp"; mkdir -p "$TMPDIR"
class="$work/class"; mkdir -p "$class"
fixtures=(correct_other_style.py no_ack.py single_recv_truncates.py ignores_exit.py
          crashes_on_empty_line.py crashes_on_disconnect.py client_traceback_on_refused.py
          client_exit0_on_refused.py server_exits_after_first_message.py hardcoded_port.py)
for i in $(seq 1 "$N"); do
  f=${fixtures[$(( (i - 1) % ${#fixtures[@]} ))]}
  id=$(printf 'student%02d' "$i")
  if (( i % 4 == 0 )); then       # every fourth student hands in a folder with classchat.toml
    mkdir -p "$class/$id"; cp "fixtures/task1/$f" "$class/$id/chat.py"
    printf 'server = "python3 {dir}/chat.py server --port {port}"\nclient = "python3 {dir}/chat.py client --host {host} --port {port}"\n' > "$class/$id/classchat.toml"
  else
    cp "fixtures/task1/$f" "$class/$id.py"
  fi
done
echo "class of $N submissions in $class"

now() { date +%s.%N; }
count() { find "$1" -name 'task1.toml' 2>/dev/null | wc -l; }

out="$work/out"
t0=$(now)
"$GRADER" batch --task 1 --seed 7 "$class" --out "$out" > "$work/first.log" 2>&1 &
pid=$!
while [ "$(count "$out")" -lt $(( N / 4 )) ]; do
  kill -0 "$pid" 2>/dev/null || { echo "the batch ended early:" >&2; cat "$work/first.log" >&2; exit 2; }
  sleep 0.2
done
kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
t_kill=$(now)
before=$(count "$out")
# SIGKILL gives the grader no chance to end the in-flight student programs: its guard process
# must. Count what is left (HOME inside our TMPDIR), polling up to 10 s.
leftovers() {
  local n=0
  for p in /proc/[0-9]*; do
    if grep -qz "^HOME=$TMPDIR" "$p/environ" 2>/dev/null; then n=$((n + 1)); fi
  done
  echo "$n"
}
for _ in $(seq 50); do [ "$(leftovers)" -eq 0 ] && break; sleep 0.2; done
left=$(leftovers)
echo "killed after $(echo "$t_kill - $t0" | bc) s with $before of $N reports written; student processes left: $left (expected 0)"
stat -c '%n %Y' "$out"/*/task1.toml | sort > "$work/before.mtimes"

t1=$(now)
"$GRADER" batch --task 1 --seed 7 "$class" --out "$out" --export csv --export summary > "$work/resume.log" 2>&1 || true
t2=$(now)
skipped=$(grep -c 'up to date, not regraded' "$work/resume.log" || true)
echo "resume: $(echo "$t2 - $t1" | bc) s, $skipped skipped (expected $before), $(count "$out") reports"
changed=$(stat -c '%n %Y' $(cut -d' ' -f1 "$work/before.mtimes") | sort | diff - "$work/before.mtimes" | grep -c '^<' || true)
echo "finished reports rewritten by the resume: $changed (expected 0)"
tail -n 4 "$work/resume.log"

t3=$(now)
"$GRADER" batch --task 1 --seed 7 "$class" --out "$work/s1" --shard 1/2 > /dev/null 2>&1 || true
"$GRADER" batch --task 1 --seed 7 "$class" --out "$work/s2" --shard 2/2 > /dev/null 2>&1 || true
t4=$(now)
"$GRADER" merge "$work/s1" "$work/s2" --out "$work/merged" > /dev/null
"$GRADER" export --format csv "$out" --out "$work/a.csv" 2>/dev/null
"$GRADER" export --format csv "$work/merged" --out "$work/b.csv" 2>/dev/null
if cmp -s "$work/a.csv" "$work/b.csv"; then same=yes; else same=NO; fi
echo "shards 1/2 + 2/2 (sequential): $(echo "$t4 - $t3" | bc) s; merged CSV equals unsharded CSV: $same"
"$GRADER" export --format summary "$out" --out "$work/summary.html" 2>/dev/null
"$GRADER" export --format markdown "$out" --out "$work/summary.md" 2>/dev/null
echo "exports: $out/grades.csv $work/summary.html $work/summary.md"
