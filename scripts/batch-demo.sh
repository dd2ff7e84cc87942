#!/usr/bin/env bash
# Checks batch grading's "done when" end to end, and fails (non-zero exit, saying what) when any
# part does not hold:
#   1. a class of N (default 40) submissions, generated from copies of the Task 1 fixtures (files,
#      and folders with a classchat.toml), grades in one `grader batch` call, under a
#      pseudo-terminal so that the progress bar is drawn (its "done/total · ... below full marks"
#      text must appear);
#   2. that batch is SIGKILLed once a quarter of the reports exist; no student program and no
#      temporary folder of the grader may be left;
#   3. a rerun skips every finished submission ("<n> up to date (skipped)" equals the reports
#      written before the kill, none of them rewritten) and grades the rest;
#   4. --shard 1/2 + --shard 2/2 + `grader merge` give the same per-student scores as the
#      unsharded run (the CSV exports of both are compared);
#   5. the summary and Markdown exports are produced.
# Prints the measured figures. Without `script` (util-linux) the first batch runs without a
# terminal and the progress-bar check is skipped, saying so.
#
# Usage: scripts/batch-demo.sh [GRADER-BINARY]   (default: $GRADER, else
#        ${CARGO_TARGET_DIR:-target}/debug/grader;
#        N=40 in the environment sets the class size)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-40}"
GRADER="${1:-${GRADER:-${CARGO_TARGET_DIR:-target}/debug/grader}}"
[ -x "$GRADER" ] || { echo "batch-demo: no grader binary at $GRADER (build it first: cargo build -p grader)" >&2; exit 2; }
GRADER=$(realpath "$GRADER")
echo "grader: $GRADER"

fail() {
  echo "batch-demo: FAILED: $*" >&2
  echo "batch-demo: the files are kept in $work" >&2
  exit 1
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }
t_start=$(now_ms)

work=$(mktemp -d "${TMPDIR:-/tmp}/grader-batch-demo-XXXXXX")
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

count() { find "$1" -name 'task1.toml' 2>/dev/null | wc -l; }
# Live student programs of our gradings: every one has its HOME inside our TMPDIR.
leftovers() {
  local n=0 p
  for p in /proc/[0-9]*; do
    if grep -qz "^HOME=$TMPDIR" "$p/environ" 2>/dev/null; then n=$((n + 1)); fi
  done
  echo "$n"
}
temp_folders() { find "$TMPDIR" -mindepth 1 -maxdepth 1 \( -name 'grader-home-*' -o -name 'grader-cwd-*' \) | wc -l; }

# 1. The first batch, under a pseudo-terminal when `script` is there.
out="$work/out"
batch=("$GRADER" batch --task 1 --seed 7 "$class" --out "$out")
t0=$(now_ms)
if command -v script >/dev/null 2>&1; then
  tty=yes
  # The shell writes its pid and execs the grader, so that pid is the grader's.
  script -qec "echo \$\$ > $(printf %q "$work/grader.pid"); exec $(printf '%q ' "${batch[@]}")" /dev/null \
    > "$work/first.log" 2>&1 &
  runner=$!
  for _ in $(seq 100); do [ -s "$work/grader.pid" ] && break; sleep 0.1; done
  [ -s "$work/grader.pid" ] || fail "the batch did not start under script(1): $(cat "$work/first.log")"
  pid=$(cat "$work/grader.pid")
else
  tty=no
  echo "note: script(1) from util-linux is missing: the first batch runs without a terminal, so the progress-bar check is skipped"
  "${batch[@]}" > "$work/first.log" 2>&1 &
  runner=$!
  pid=$runner
fi
while [ "$(count "$out")" -lt $(( N / 4 )) ]; do
  kill -0 "$pid" 2>/dev/null || fail "the first batch ended before a quarter of the reports existed: $(cat "$work/first.log")"
  sleep 0.2
done

# 2. SIGKILL, mid-run: only the grader we started.
kill -KILL "$pid"
wait "$runner" 2>/dev/null || true
t_kill=$(now_ms)
before=$(count "$out")
[ "$before" -lt "$N" ] || fail "all $N reports were written before the kill: nothing to resume"
if [ "$tty" = yes ]; then
  grep -aqE "[0-9]+/$N · [0-9]+ below full marks, [0-9]+ errors" "$work/first.log" \
    || fail "no progress bar (done/$N · ... below full marks) in the first batch's terminal output: $work/first.log"
  echo "progress bar drawn on the terminal: yes"
fi
# SIGKILL gives the grader no chance to end its student programs: its guard process must, and
# remove its temporary folders. Poll up to 10 s.
for _ in $(seq 50); do [ "$(leftovers)" -eq 0 ] && [ "$(temp_folders)" -eq 0 ] && break; sleep 0.2; done
left=$(leftovers)
[ "$left" -eq 0 ] || fail "$left student process(es) outlived the SIGKILLed grader"
[ "$(temp_folders)" -eq 0 ] || fail "temporary folders outlived the SIGKILLed grader: $(find "$TMPDIR" -mindepth 1 -maxdepth 1)"
echo "killed after $(secs $(( t_kill - t0 ))) s with $before of $N reports written; no student process or temporary folder left"
stat -c '%n %y' "$out"/*/task1.toml | sort > "$work/before.mtimes"

# 3. Resume: the finished ones are skipped, the rest graded.
t1=$(now_ms)
rc=0
"${batch[@]}" --export csv --export summary > "$work/resume.log" 2>&1 || rc=$?
t2=$(now_ms)
[ "$rc" -eq 0 ] || fail "the resumed batch exited with $rc (expected 0): $(cat "$work/resume.log")"
done_line=$(grep -E '^Done in .* graded, [0-9]+ up to date \(skipped\)' "$work/resume.log") \
  || fail "no summary line in the resumed batch's output: $(cat "$work/resume.log")"
skipped=$(sed -E 's/.* ([0-9]+) up to date \(skipped\).*/\1/' <<< "$done_line")
graded=$(sed -E 's/^Done in [^:]*: ([0-9]+) graded.*/\1/' <<< "$done_line")
[ "$skipped" -eq "$before" ] || fail "the resume skipped $skipped submissions, expected the $before finished before the kill: $done_line"
[ "$graded" -eq $(( N - before )) ] || fail "the resume graded $graded submissions, expected $(( N - before )): $done_line"
[ "$(count "$out")" -eq "$N" ] || fail "$(count "$out") reports after the resume, expected $N"
changed=$(stat -c '%n %y' $(cut -d' ' -f1 "$work/before.mtimes") | sort | diff - "$work/before.mtimes" | grep -c '^<' || true)
[ "$changed" -eq 0 ] || fail "$changed finished report(s) were rewritten by the resume"
echo "resume: $(secs $(( t2 - t1 ))) s; $done_line"

# 4. Two shards, merged, equal the unsharded run.
t3=$(now_ms)
for k in 1 2; do
  rc=0
  "$GRADER" batch --task 1 --seed 7 "$class" --out "$work/s$k" --shard "$k/2" > "$work/shard$k.log" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || fail "shard $k/2 exited with $rc: $(cat "$work/shard$k.log")"
done
t4=$(now_ms)
"$GRADER" merge "$work/s1" "$work/s2" --out "$work/merged" > "$work/merge.log" 2>&1 \
  || fail "merge failed: $(cat "$work/merge.log")"
"$GRADER" export --format csv "$out" --out "$work/unsharded.csv" 2>/dev/null
"$GRADER" export --format csv "$work/merged" --out "$work/merged.csv" 2>/dev/null
rows=$(( $(wc -l < "$work/unsharded.csv") - 1 ))
[ "$rows" -eq "$N" ] || fail "the unsharded CSV has $rows students, expected $N"
diff "$work/unsharded.csv" "$work/merged.csv" > "$work/csv.diff" \
  || fail "shards 1/2 + 2/2 merged differ from the unsharded run:
$(cat "$work/csv.diff")"
echo "shards 1/2 + 2/2 (one after the other): $(secs $(( t4 - t3 ))) s; merged per-student scores equal the unsharded run's ($N students)"

# 5. Exports.
"$GRADER" export --format summary "$out" --out "$work/summary.html" 2>/dev/null
"$GRADER" export --format markdown "$out" --out "$work/summary.md" 2>/dev/null
for f in "$out/grades.csv" "$out/summary.html" "$work/summary.html" "$work/summary.md"; do
  [ -s "$f" ] || fail "export $f is missing or empty"
done
left=$(leftovers)
[ "$left" -eq 0 ] || fail "$left student process(es) left after the demo"

echo "batch-demo: all checks passed in $(secs $(( $(now_ms) - t_start ))) s"
rm -rf "$work"
