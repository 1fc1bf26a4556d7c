#!/usr/bin/env bash
# End-to-end smoke test of the console in a private tmux server.
#   .ci/console-smoke.sh BINARY [ARGS...]      e.g. .ci/console-smoke.sh .build/debug/xds console (as .ci/e2e runs it)
# Checks: header, the six views, a command and its reply, a rejected command, hostile commands,
# the / filter in Requests (letters after / never act), drain only after its y/n confirmation,
# help's : command page, request detail (engine times), paging Requests past the snapshot's 200
# with End/PgUp/Home, a fault on the Pod view at 120×40, header vitals and a
# fault ticker at 80×24,
# answered while the clock keeps moving, and that q, Ctrl-C and SIGTERM each exit 0 within 5 s
# with the terminal settings restored. Under TERM=xterm-256color (whose entry lists End as ESC O F,
# while tmux sends ESC [ 4 ~): End/Home as raw vt220/rxvt/xterm sequences page Requests and never
# switch views, unknown sequences do nothing, and a lone Esc still closes the / prompt.
# Bracketed paste: a multi-line paste of hotkeys (tmux paste-buffer -p, and the same bytes as keys)
# into the : prompt, with no prompt and at a y/n question runs nothing; SIGTSTP/SIGCONT and q switch
# the mode off (and on again).
# Prints "N passed, N failed"; exits non-zero if anything failed.
set -u
[ $# -ge 1 ] || { echo "usage: $0 BINARY [ARGS...]" >&2; exit 2; }
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); shift
ARGS="$*"
# One private tmux server per run (restarting one server races with its shutdown).
SOCKETS=()
T=true
WORK=$(mktemp -d)
cleanup() {
  for s in "${SOCKETS[@]}"; do tmux -L "$s" kill-server 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
PASS=0; FAIL=0
ok()   { PASS=$((PASS + 1)); echo "ok   $1"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL $1"; $T capture-pane -p -t main 2>/dev/null | sed 's/^/     | /' | head -40; }

screen() { $T capture-pane -p -t main 2>/dev/null; }
# wait_for PATTERN [SECONDS]: poll the pane until grep -E matches (no blind sleeps).
wait_for() {
  local deadline=$(( $(date +%s) + ${2:-10} ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    screen | grep -qE -- "$1" && return 0
    sleep 0.1
  done
  return 1
}
wait_file() {
  local deadline=$(( $(date +%s) + ${2:-10} ))
  while [ "$(date +%s)" -le "$deadline" ]; do [ -s "$1" ] && return 0; sleep 0.1; done
  return 1
}

# start NAME: runs the console in a fresh pane; records stty before/after, pid and exit status.
# CONSOLE_ENV (e.g. TERM=xterm-256color) is added to the console's environment.
start() {
  local d="$WORK/$1"; mkdir -p "$d"
  [ "$T" = true ] || $T kill-server 2>/dev/null
  SOCKETS+=("xds-console-smoke-$$-$1")
  T="tmux -L xds-console-smoke-$$-$1 -f /dev/null"
  $T new-session -d -s main -x 100 -y 30 \
    "stty -g > '$d/before'; env LANG=C.UTF-8 ${CONSOLE_ENV:-} sh -c 'echo \$\$ > \"$d/pid\"; exec \"$BIN\" $ARGS'; echo \$? > '$d/exit'; stty -g > '$d/after'; echo SHELL-BACK; sleep 60"
  wait_for ' xds ' 30
}
finished() { # NAME WHAT
  local d="$WORK/$1"
  if wait_file "$d/exit" 5 && [ "$(cat "$d/exit")" = 0 ]; then ok "$2 exits 0 within 5 s"; else fail "$2 exits 0 within 5 s (got $(cat "$d/exit" 2>/dev/null || echo nothing))"; fi
  if wait_file "$d/after" 5 && cmp -s "$d/before" "$d/after" && wait_for SHELL-BACK 5; then ok "$2 restores the terminal"
  else fail "$2 restores the terminal"; fi
}

# 1. q, after walking through the views and sending commands.
if start q; then ok "header visible"; else fail "header visible"; fi
wait_for 'sim [0-9]+:[0-9]{2}:[0-9]{2}' 5 && ok "header shows sim time" || fail "header shows sim time"
i=1
for title in 'Pod ·' 'Expert heat' 'Decode DP groups' 'Over time' 'In flight' 'Events ·'; do
  $T send-keys -t main "$i"
  wait_for "$title" 5 && ok "view $i shows '$title'" || fail "view $i shows '$title'"
  i=$((i + 1))
done
$T send-keys -t main 1 ':' 'drain node 3' Enter
wait_for '^[✓✗] .*drain' 5 && ok ":drain node 3 shows the link's reply" || fail ":drain node 3 shows the link's reply"
wait_for '│ ?[⊘~]03 ' 5 && ok "the Pod view marks node 3 drained or draining" || fail "the Pod view marks node 3 drained or draining"
$T send-keys -t main 6
wait_for 'drain node 3' 5 && ok "Events shows the drain" || fail "Events shows the drain"
$T send-keys -t main 1
$T send-keys -t main ':' 'explode' Enter
wait_for "^✗ .*explode" 5 && ok "a bad command shows the rejection" || fail "a bad command shows the rejection"
# Hostile commands get an answer, and the simulated clock keeps moving afterwards.
# Each with a word its answer must contain (a refusal names the field, e.g. 'degrade').
for pair in 'speed 1e-300|speed' 'speed 1e300|speed' 'rate 1e308|rate' 'fault link 0-1 degrade 1e300|degrade' \
            'heal all|no active faults|healed' 'speed 1|speed' 'rate 40|rate'; do
  cmd=${pair%%|*}; want=${pair#*|}
  $T send-keys -t main ':' "$cmd" Enter
  wait_for "^[✓✗] .*($want)" 8 && ok ":$cmd is answered" || fail ":$cmd is answered"
done
clock() { screen | grep -oE 'sim [0-9]+:[0-9]{2}:[0-9]{2}' | head -1; }
c0=$(clock); sleep 2.5; c1=$(clock)
[ -n "$c0" ] && [ "$c0" != "$c1" ] && ok "the clock moves after hostile commands ($c0 → $c1)" || fail "the clock moves after hostile commands ($c0 → $c1)"
# Safe keys: / in Requests filters live, and the letters typed after it never act
# (k9s habit: '/dp240' once drained node 0). Then d asks before draining.
$T send-keys -t main 5 '/' 'dp240'
wait_for '^/dp240█' 5 && ok "/ in Requests opens the filter prompt" || fail "/ in Requests opens the filter prompt"
wait_for 'filter "dp240"' 5 && ok "Requests filters as you type" || fail "Requests filters as you type"
$T send-keys -t main Escape 1
wait_for 'Pod ·' 5
sleep 0.5
if screen | grep -qE '│ ?[⊘~]00 '; then fail "letters after / did not drain node 0"; else ok "letters after / did not drain node 0"; fi
$T send-keys -t main d
wait_for '^drain node 0\? y/n' 5 && ok "d asks 'drain node 0? y/n'" || fail "d asks 'drain node 0? y/n'"
$T send-keys -t main n
wait_for 'cancelled: drain node 0' 5 && ok "n cancels the drain" || fail "n cancels the drain"
$T send-keys -t main d y
wait_for '│ ?[⊘~]00 ' 5 && ok "d then y drains node 0" || fail "d then y drains node 0"
$T send-keys -t main ':' 'undrain node 0' Enter
$T send-keys -t main '?'
wait_for 'Help' 5 && ok "? opens help" || fail "? opens help"
$T send-keys -t main Tab
wait_for 'fault link A-B \[degrade F\]' 5 && ok "help lists the : commands (Tab)" || fail "help lists the : commands (Tab)"
$T send-keys -t main Escape
# Request detail: Enter on the selected row opens its timeline; any key closes it.
$T send-keys -t main 5
wait_for 'In flight' 5
$T send-keys -t main Enter
wait_for 'Request #[0-9]+ · any key closes' 5 && ok "Enter opens a request's detail" || fail "Enter opens a request's detail"
wait_for 'Timeline' 2 && ok "the request detail has a timeline" || fail "the request detail has a timeline"
wait_for 'Timeline \(engine-recorded' 5 && wait_for '  arrived   [0-9]+:[0-9]{2}:[0-9]{2}\.[0-9]{3}' 2 \
  && ok "the detail shows the engine's own stage times" || fail "the detail shows the engine's own stage times"
$T send-keys -t main Escape
# Requests without a cap: at 400 req/s more are in flight than a snapshot lists (200); paused so
# the table holds still, End, PgUp and Home page through the engine's whole table, the sort
# marker stays, and Enter opens a row far past the snapshot's 200.
$T send-keys -t main ':' 'rate 400' Enter
wait_for 'In flight · .*\(rows 1–[0-9]+ of ([3-9][0-9]{2}|[0-9]{4,})\)' 20 \
  && ok "Requests pages the engine's table past the snapshot's 200" || fail "Requests pages the engine's table past the snapshot's 200"
$T send-keys -t main Space
wait_for '⏸' 5
sleep 1  # the page of the paused table arrives
$T send-keys -t main End
wait_for '\(rows [0-9]+–([0-9]+) of \1\)' 5 && ok "End reaches the last request in flight" || fail "End reaches the last request in flight"
span() { screen | grep -oE '\(rows [0-9]+–[0-9]+ of [0-9]+\)' | head -1; }
first() { span | grep -oE '[0-9]+' | sed -n 1p; }
end=$(span); last=$(first)
$T send-keys -t main PPage PPage PPage PPage PPage PPage  # past the 50 recent rows, into the table
sleep 1
now=$(span); up=$(first); total=$(echo "$now" | grep -oE '[0-9]+' | sed -n 3p); shown=$(echo "$now" | grep -oE '[0-9]+' | sed -n 2p)
[ -n "$up" ] && [ "$up" -lt "$last" ] && [ "$shown" -lt "$total" ] && [ "$total" -gt 200 ] \
  && ok "PgUp scrolls back through the table ($end → $now)" || fail "PgUp scrolls back through the table ($end → $now)"
screen | grep -q 'age▼' && ok "the sort marker stays while scrolling" || fail "the sort marker stays while scrolling"
$T send-keys -t main Enter
wait_for 'Request #[0-9]+ · any key closes' 5 && wait_for '  arrived   [0-9:.]+' 5 \
  && ok "Enter on a row deep in the table opens its engine timeline" || fail "Enter on a row deep in the table opens its engine timeline"
$T send-keys -t main Escape Home
wait_for '\(rows 1–' 5 && ok "Home goes back to the first row" || fail "Home goes back to the first row"
$T send-keys -t main Space
$T send-keys -t main ':' 'rate 40' Enter
# A fault stays on the Pod view at 120×40, and the header keeps its vitals at 80×24.
$T resize-window -t main -x 120 -y 40 2>/dev/null
$T send-keys -t main 1 ':' 'fault npu 163' Enter
wait_for 'Faults · drains' 5 && ok "the Faults panel is on the Pod view at 120×40" || fail "the Faults panel is on the Pod view at 120×40"
wait_for '#[0-9]+ (undetected|detected|recovered)' 8 && ok "the injected fault is listed at 120×40" || fail "the injected fault is listed at 120×40"
$T resize-window -t main -x 80 -y 24 2>/dev/null
wait_for '^ [0-9.]+k? tok/s .*(faults |⚠|!)[0-9–].* so far: TTFT99 .*TPOT99 .*SLO [0-9]+%' 5 && ok "header vitals (tok/s, faults, TTFT, TPOT, SLO; their scope) at 80×24" || fail "header vitals (tok/s, faults, TTFT, TPOT, SLO; their scope) at 80×24"
wait_for '⚠ ' 5 && ok "a fault ticker at 80×24" || fail "a fault ticker at 80×24"
$T resize-window -t main -x 100 -y 30 2>/dev/null
$T send-keys -t main q
finished q "q"

# 2. Ctrl-C (raw mode: arrives as a key, not SIGINT).
start ctrlc >/dev/null
$T send-keys -t main C-c
finished ctrlc "Ctrl-C"

# 3. SIGTERM from outside.
start term >/dev/null
wait_file "$WORK/term/pid" 5 && kill -TERM "$(cat "$WORK/term/pid")"
finished term "SIGTERM"

# 4. Raw key sequences with TERM=xterm-256color inside tmux (the screenshot-review bug: End came
# as ESC [ 4 ~, which that entry does not list, and its "4" switched to view 4).
CONSOLE_ENV=TERM=xterm-256color start rawkeys >/dev/null
$T send-keys -t main 5 ':' 'rate 400' Enter
wait_for 'In flight · .*\(rows 1–[0-9]+ of ([6-9][0-9]|[0-9]{3,})\)' 20 \
  && ok "raw keys: Requests has more rows than fit (TERM=xterm-256color)" || fail "raw keys: Requests has more rows than fit (TERM=xterm-256color)"
$T send-keys -t main Space
wait_for '⏸' 5
sleep 1  # the page of the paused table arrives
# raw NAME END|HOME HEX...: sends the bytes; the view stays Requests and the rows are at the end / start.
raw() {
  local name=$1 want=$2; shift 2
  $T send-keys -t main -H "$@"
  local pattern='\(rows [0-9]+–([0-9]+) of \1\)'
  [ "$want" = HOME ] && pattern='\(rows 1–'
  if wait_for "$pattern" 5 && screen | grep -q 'In flight' && ! screen | grep -qE 'Over time|Pod ·|Decode DP groups'; then
    ok "raw $name moves to the $(echo "$want" | tr A-Z a-z) and stays on Requests"
  else fail "raw $name moves to the $(echo "$want" | tr A-Z a-z) and stays on Requests"; fi
}
raw 'ESC [ 4 ~' END 1b 5b 34 7e
raw 'ESC [ 1 ~' HOME 1b 5b 31 7e
raw 'ESC [ 8 ~ (rxvt)' END 1b 5b 38 7e
raw 'ESC [ 7 ~ (rxvt)' HOME 1b 5b 37 7e
raw 'ESC O F' END 1b 4f 46
raw 'ESC O H' HOME 1b 4f 48
raw 'ESC [ F' END 1b 5b 46
raw 'ESC [ H' HOME 1b 5b 48
raw 'ESC [ 1 ; 5 F (Ctrl-End)' END 1b 5b 31 3b 35 46
raw 'ESC [ 1 ; 5 H (Ctrl-Home)' HOME 1b 5b 31 3b 35 48
# Unknown or unbound sequences whose bytes are view numbers and hotkeys: nothing happens.
before=$(screen | grep -oE '\(rows [0-9]+–[0-9]+ of [0-9]+\)' | head -1)
$T send-keys -t main -H 1b 5b 33 7e              # Delete: '3' would be view 3
$T send-keys -t main -H 1b 5b 31 35 7e           # F5: '1' would be view 1
$T send-keys -t main -H 1b 5b 32 34 3b 38 30 52  # a cursor report: '2', '4'
$T send-keys -t main -H 1b 5b 39 39 7e           # unknown ESC [ 99 ~
$T send-keys -t main -H 1b 5b 3f 36 63           # unknown ESC [ ? 6 c
sleep 1
after=$(screen | grep -oE '\(rows [0-9]+–[0-9]+ of [0-9]+\)' | head -1)
if screen | grep -q 'In flight' && ! screen | grep -qE 'Over time|Pod ·|Decode DP groups|Expert heat' \
   && [ -n "$before" ] && [ "$before" = "$after" ] && screen | grep -q '⏸'; then
  ok "unknown and unbound sequences do nothing ($before)"
else fail "unknown and unbound sequences do nothing ($before → $after)"; fi
# A lone Esc is still Esc: it closes the / prompt, and the next key acts as usual.
$T send-keys -t main '/'
wait_for '^/█' 5
$T send-keys -t main Escape
sleep 0.3
$T send-keys -t main 4
wait_for 'Over time' 5 && ! screen | grep -q '^/' && ok "a lone Esc closes the / prompt under TERM=xterm-256color" \
  || fail "a lone Esc closes the / prompt under TERM=xterm-256color"
$T send-keys -t main q
finished rawkeys "q (TERM=xterm-256color)"

# 5. Bracketed paste. tmux's paste-buffer -p wraps the text in ESC [ 200 ~ … ESC [ 201 ~ only when
# the console switched the mode on, so these checks fail if it did not. A multi-line paste full of
# hotkeys (d drain, space pause, r rebalance, t theme, f1y fault) into the : prompt keeps its first
# line as text and runs nothing; with no prompt, or at a y/n question, it is ignored; the same
# bytes sent as keys (send-keys -H) too. SIGTSTP hands the mode back, SIGCONT takes it again,
# and q leaves it off.
start paste >/dev/null
$T pipe-pane -t main -o "cat >> '$WORK/paste/out'"
$T set-buffer -b xds "$(printf 'speed 2\n d r t f1y  \nrate 31\npause\n')"
$T send-keys -t main ':'
wait_for '^:█' 5
$T paste-buffer -p -b xds -t main
wait_for '^:speed 2█  pasted 4 lines: kept the first only' 5 && ok "a paste into : keeps its first line as text and says so" \
  || fail "a paste into : keeps its first line as text and says so"
$T send-keys -t main Escape
wait_for '^q quit' 5
$T paste-buffer -p -b xds -t main
wait_for '^✗ paste ignored — press : to type a command' 5 && ok "a paste with no prompt open is ignored and says so" \
  || fail "a paste with no prompt open is ignored and says so"
$T send-keys -t main -H 1b 5b 32 30 30 7e
$T send-keys -t main -l 'd r t f1y'
$T send-keys -t main -H 0d 1b 5b 32 30 31 7e
$T send-keys -t main d
wait_for '^drain node 0\? y/n' 5
$T paste-buffer -p -b xds -t main
$T send-keys -t main -H 1b 5b 32 30 30 7e 79 0d 1b 5b 32 30 31 7e  # a bracketed "y⏎"
wait_for '^drain node 0\? y/n  paste ignored — answer with y or n' 5 && ok "a paste does not answer the drain question" \
  || fail "a paste does not answer the drain question"
$T send-keys -t main n
wait_for 'cancelled: drain node 0' 5
sleep 1  # anything wrongly sent would show by now
head=$(screen | head -3)
if echo "$head" | grep -qE 'faults 0  (drained 0|⊘0)' && echo "$head" | grep -q '▶ 1×' && ! echo "$head" | grep -q '⏸' \
   && echo "$head" | grep -q 'theme dark'; then ok "after the pastes: not paused, no fault, no drain, speed and theme unchanged"
else fail "after the pastes: not paused, no fault, no drain, speed and theme unchanged"; fi
$T send-keys -t main 6
wait_for 'Events ·' 5
if screen | grep -qE 'command +(speed|pause|resume|fault|drain|rebalance|rate 31)'; then fail "Events lists no pasted command"
else ok "Events lists no pasted command"; fi
$T send-keys -t main 1
wait_file "$WORK/paste/pid" 5 && P=$(cat "$WORK/paste/pid")
modes() { LC_ALL=C grep -aoE '\[\?2004[hl]' "$WORK/paste/out" 2>/dev/null | tr -d '[?' | tr '\n' ' '; }
kill -TSTP "$P"
# Stopped, and its last mode switch through tmux's pipe into the file (the pipe lags the process:
# read at once, the 2004l the console wrote before it stopped was sometimes not there yet).
deadline=$(( $(date +%s) + 5 ))
while [ "$(date +%s)" -le "$deadline" ] && ! { ps -o stat= -p "$P" | grep -q T && modes | grep -qE '2004l $'; }; do sleep 0.1; done
ps -o stat= -p "$P" | grep -q T && modes | grep -qE '2004l $' && ok "SIGTSTP stops the console with bracketed paste off ($(modes))" \
  || fail "SIGTSTP stops the console with bracketed paste off ($(modes))"
kill -CONT "$P"
wait_for ' xds ' 5
$T send-keys -t main ':'
wait_for '^:█' 5
$T paste-buffer -p -b xds -t main
wait_for '^:speed 2█  pasted 4 lines' 5 && ok "after SIGCONT pastes are bracketed again ($(modes))" \
  || fail "after SIGCONT pastes are bracketed again ($(modes))"
$T send-keys -t main Escape q
finished paste "q (after pastes)"
deadline=$(( $(date +%s) + 5 ))  # the pipe lags the process (above)
while [ "$(date +%s)" -le "$deadline" ] && ! modes | grep -qE '2004l $'; do sleep 0.1; done
modes | grep -qE '2004l $' && ok "q leaves bracketed paste off ($(modes))" || fail "q leaves bracketed paste off ($(modes))"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
