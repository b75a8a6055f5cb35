#!/usr/bin/env bash
# cmd/publisher/targets.sh measures the four performance targets of
# README.md ("The targets on this machine") the way the table there was
# measured, and prints each run's figures and whether the target was met.
#
#   cmd/publisher/targets.sh                  # all four, RUNS runs each
#   cmd/publisher/targets.sh ratio open       # only those
#
# Targets:
#   ratio  default mode, N_RATIO requests, --baseline: ratio >= 0.5
#   slow   external NATS (sync always) and sandbox at LATENCY, N_SLOW
#          requests: throughput >= 90% of workers / (calls a result x LATENCY)
#   open   external NATS (default sync) and sandbox, jumdata only, RATE/s open
#          loop, N_OPEN requests, --store-busy-delay 0, the consumer on core 1
#          and the rest on core 0 (taskset): p99 <= 5 ms; every order claimed
#          (the default) and --jumdata-no-claim, alternating. bench runs
#          with --baseline, and the bare relay's p99 at the same rate (before
#          and after the consumer's run, in bench on core 0 beside NATS) is
#          printed beside it: the floor the hour allows; so is a lower bound
#          of the mean time the consumer's runnable goroutines waited to run
#          (Go's scheduler)
#   drain  external NATS (sync always) and sandbox, a backlog of N_DRAIN
#          requests: peak RSS (VmHWM) < 256 MiB and 0 redelivered
#
# Settings (environment): RUNS (3), N_RATIO (50000), N_SLOW (10000),
# N_OPEN (20000), N_DRAIN (200000), RATE (1000), LATENCY (200ms),
# WORKERS (128), NATS_PORT (4222), SANDBOX_PORT (9100), HTTP_PORT (8080),
# OUT (a new temporary directory: binaries, data, every log and bench's
# whole output, kept after the run).
#
# It first reads the machine's speed for the hour (go test -bench
# Decode/typical ./schemas/ for the CPU, and go test -bench PutPerTx
# ./store/, an order-store commit, for the kernel and the disk; three times
# each) and again at the end: the figures depend on it (README.md, "How to
# read the figures"). Every process it
# starts listens on 127.0.0.1 only and is stopped when it exits. The exit
# status is 0 when every run completed, whether or not it met its target,
# and 1 when one could not be run.
set -euo pipefail

RUNS=${RUNS:-3}
N_RATIO=${N_RATIO:-50000}
N_SLOW=${N_SLOW:-10000}
N_OPEN=${N_OPEN:-20000}
N_DRAIN=${N_DRAIN:-200000}
RATE=${RATE:-1000}
LATENCY=${LATENCY:-200ms}
WORKERS=${WORKERS:-128}
NATS_PORT=${NATS_PORT:-4222}
SANDBOX_PORT=${SANDBOX_PORT:-9100}
HTTP_PORT=${HTTP_PORT:-8080}

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$(mktemp -d -t invoicer-targets.XXXXXX)}
BIN=$OUT/bin
NATS_URL_LOCAL=nats://127.0.0.1:$NATS_PORT
METRICS=http://127.0.0.1:$HTTP_PORT/metrics

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	targets=(ratio slow open drain)
fi
for t in "${targets[@]}"; do
	case $t in
	ratio | slow | open | drain) ;;
	*)
		echo "targets.sh: unknown target $t (ratio, slow, open, drain)" >&2
		exit 2
		;;
	esac
done

pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "targets.sh: $*" >&2
	exit 1
}

# port_open succeeds when something listens on 127.0.0.1:$1.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# port_free succeeds when nothing listens on 127.0.0.1:$1.
port_free() {
	! port_open "$1"
}

# wait_for runs "$@" every 0.2 s until it succeeds, at most 30 s.
wait_for() {
	local i
	for i in $(seq 150); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# stop_all stops the processes this script started, and waits for them.
stop_all() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	pids=()
	local port
	for port in "$NATS_PORT" "$SANDBOX_PORT" "$HTTP_PORT"; do
		wait_for port_free "$port" || die "a process still listens on 127.0.0.1:$port after its stop"
	done
}

# field NAME FILE prints NAME's value in bench's last line
# (throughput=<n>/s p50=<ms> p99=<ms> baseline=<n>/s ratio=<x>).
field() {
	tail -1 "$2" | tr ' ' '\n' | sed -n "s|^$1=||p" | sed 's|/s$||'
}

# yardstick prints Decode/typical's three timings in µs.
yardstick() {
	(cd "$ROOT/schemas" && "$BIN/schemas.test" -test.run '^$' -test.bench 'Decode/typical' -test.benchtime 1s -test.count 3) |
		awk '/typical/ { printf "%d ", $3 / 1000 }'
	echo
}

# kernel_yardstick prints three timings in µs of an order-store commit of
# one record (store's BenchmarkPutPerTx: page writes and two fdatasyncs, in
# a directory under $OUT), the kernel's share of the hour: on this machine
# system calls and disk flushes cost what the host's load makes them
# (cmd/publisher/PERFORMANCE.md, the night of 2026-12-07).
kernel_yardstick() {
	(cd "$ROOT/store" && TMPDIR=$OUT "$BIN/store.test" -test.run '^$' -test.bench 'PutPerTx' -test.benchtime 1s -test.count 3) |
		awk '/PutPerTx/ { printf "%d ", $3 / 1000 }'
	echo
}

# on_core CORE COMMAND...: sets CMD to COMMAND, run on that core
# (taskset) when CORE is set and PIN is on. The caller runs "${CMD[@]}"
# itself, so that a command put in the background has its own pid, not a
# subshell's.
PIN=off
on_core() {
	local core=$1
	shift
	CMD=("$@")
	if [ -n "$core" ] && [ "$PIN" = on ]; then
		CMD=(taskset -c "$core" "$@")
	fi
}

# spawn LOG CORE COMMAND...: starts COMMAND in the background as on_core
# says, its output appended to LOG, and remembers its pid for stop_all.
spawn() {
	local log=$1
	shift
	on_core "$@"
	"${CMD[@]}" >>"$log" 2>&1 &
	pids+=($!)
}

# wait_ready waits for the consumer's /readyz.
wait_ready() {
	wait_for curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" || die "the consumer did not become ready: $RUN/consumer.log"
}

# relay_p99s prints the p99 latencies of bench's relay runs (--baseline),
# before and after the consumer's, from bench's output.
relay_p99s() {
	sed -n 's/^baseline\(-after\)\{0,1\}: latency ms: .*p99 \([0-9.]*\),.*/\2/p' "$RUN/bench.out" | tr '\n' ' '
}

# cpu_per_result prints the consumer's CPU a result from bench's output.
cpu_per_result() {
	grep -o '[0-9.]* ms a result' "$RUN/bench.out" | head -1
}

# sched_wait prints the lower bound of the mean wait of the consumer's
# runnable goroutines from bench's output (its breakdown line), as "; its
# goroutines waited at least W ms on average to run (GOMAXPROCS N)", or
# nothing.
sched_wait() {
	sed -n 's/.*the Go scheduler (GOMAXPROCS \([0-9]*\)): a runnable goroutine waited at least \([0-9.]*\) ms on average to run.*/; its goroutines waited at least \2 ms on average to run (GOMAXPROCS \1)/p' "$RUN/bench.out" | head -1
}

# start_external SYNC [LATENCY] [CORE]: NATS (sync_interval SYNC, or the
# default when SYNC is "default") and the sandbox.
start_external() {
	local sync=$1 lat=${2:-} core=${3:-}
	local js="store_dir: \"$RUN/js\""
	if [ "$sync" != default ]; then
		js="$js, sync_interval: $sync"
	fi
	printf 'listen: 127.0.0.1:%s\njetstream { %s }\n' "$NATS_PORT" "$js" >"$RUN/nats.conf"
	spawn "$RUN/nats.log" "$core" "$BIN/nats-server" -c "$RUN/nats.conf"
	spawn "$RUN/sandbox.log" "$core" "$BIN/sandbox" --listen "127.0.0.1:$SANDBOX_PORT" ${lat:+--latency "$lat"}
	wait_for port_open "$NATS_PORT" || die "NATS did not start: $RUN/nats.log"
	wait_for port_open "$SANDBOX_PORT" || die "the sandbox did not start: $RUN/sandbox.log"
}

# start_consumer CORE [FLAG...]: the consumer against the external NATS
# and sandbox.
start_consumer() {
	local core=$1
	shift
	spawn "$RUN/consumer.log" "$core" "$BIN/consumer" --nats-url "$NATS_URL_LOCAL" --config "$OUT/sellers.yaml" \
		--data "$RUN/data" --http "127.0.0.1:$HTTP_PORT" --workers "$WORKERS" "$@"
	wait_ready
}

# new_run NAME makes the run's directory.
new_run() {
	RUN=$OUT/$1
	rm -rf "$RUN"
	mkdir -p "$RUN"
}

# bench runs the publisher's bench against the consumer (on core
# $BENCH_CORE, if set), into $RUN/bench.out.
BENCH_CORE=
bench() {
	on_core "$BENCH_CORE" timeout 1800 "$BIN/publisher" bench --workers "$WORKERS" --metrics "$METRICS" "$@"
	NATS_URL=$NATS_URL_LOCAL "${CMD[@]}" >"$RUN/bench.out" 2>&1 || die "bench failed: $RUN/bench.out"
}

# verdict prints a target's count and keeps it for the summary at the end.
verdicts=()
verdict() {
	echo "$*"
	verdicts+=("$*")
}

for p in "$NATS_PORT" "$SANDBOX_PORT" "$HTTP_PORT"; do
	port_free "$p" || die "127.0.0.1:$p is in use; stop what listens there or set NATS_PORT, SANDBOX_PORT and HTTP_PORT"
done
command -v curl >/dev/null || die "curl is needed"

echo "building into $BIN"
mkdir -p "$BIN"
(
	cd "$ROOT"
	go build -o "$BIN/" ./cmd/consumer ./cmd/publisher ./cmd/sandbox
	go build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2
	go test -c -o "$BIN/schemas.test" ./schemas
	go test -c -o "$BIN/store.test" ./store
)
sed "s|http://127.0.0.1:9100|http://127.0.0.1:$SANDBOX_PORT|" "$ROOT/deploy/sandbox-sellers.yaml" >"$OUT/sellers.yaml"

echo "Decode/typical (µs) at the start: $(yardstick)"
echo "order-store commit (µs) at the start: $(kernel_yardstick)"

run_ratio() {
	local i met=0
	for i in $(seq "$RUNS"); do
		new_run "ratio-$i"
		spawn "$RUN/consumer.log" "" "$BIN/consumer" --data "$RUN/data" --nats-listen "127.0.0.1:$NATS_PORT" \
			--http "127.0.0.1:$HTTP_PORT" --workers "$WORKERS"
		wait_ready
		bench -n "$N_RATIO" --baseline
		stop_all
		local ratio
		ratio=$(field ratio "$RUN/bench.out")
		if awk -v r="$ratio" 'BEGIN { exit !(r >= 0.5) }'; then
			met=$((met + 1))
		fi
		echo "ratio  run $i: ratio $ratio ($(field throughput "$RUN/bench.out")/s against a relay of $(field baseline "$RUN/bench.out")/s), CPU $(cpu_per_result)"
	done
	verdict "ratio  >= 0.5: met in $met of $RUNS"
}

run_slow() {
	local i met=0
	for i in $(seq "$RUNS"); do
		new_run "slow-$i"
		start_external always "$LATENCY"
		start_consumer ""
		bench -n "$N_SLOW"
		stop_all
		local tp calls bound pct
		tp=$(field throughput "$RUN/bench.out")
		calls=$(grep -o 'provider calls [0-9.]* a result' "$RUN/bench.out" | awk '{ print $3 }')
		[ -n "$calls" ] || die "bench did not report the provider calls a result: $RUN/bench.out"
		bound=$(awk -v w="$WORKERS" -v c="$calls" -v l="$LATENCY" 'BEGIN {
			ms = l; if (l ~ /ms$/) { sub(/ms$/, "", ms); s = ms / 1000 } else { sub(/s$/, "", ms); s = ms }
			printf "%.1f", w / (c * s) }')
		pct=$(awk -v t="$tp" -v b="$bound" 'BEGIN { printf "%.1f", 100 * t / b }')
		if awk -v p="$pct" 'BEGIN { exit !(p >= 90) }'; then
			met=$((met + 1))
		fi
		echo "slow   run $i: $tp/s, $pct% of $bound/s ($WORKERS workers / ($calls calls a result x $LATENCY)); $(grep -o 'RSS at a quarter.*' "$RUN/bench.out" | cut -d';' -f1)"
	done
	verdict "slow   >= 90% of the bound: met in $met of $RUNS"
}

run_open() {
	local i mode met_claim=0 met_noclaim=0 met_relay=0 relays=0
	if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
		PIN=on
	else
		echo "open: no taskset or fewer than 2 cores; the processes share the cores"
	fi
	for i in $(seq "$RUNS"); do
		for mode in claim no-claim; do
			new_run "open-$mode-$i"
			start_external default "" 0
			if [ $mode = claim ]; then
				start_consumer 1 --store-busy-delay 0
			else
				start_consumer 1 --store-busy-delay 0 --jumdata-no-claim
			fi
			BENCH_CORE=0 bench --rate "$RATE" -n "$N_OPEN" --seller jumdata --baseline
			stop_all
			local p99 relay r
			p99=$(field p99 "$RUN/bench.out")
			if awk -v p="$p99" 'BEGIN { exit !(p <= 5) }'; then
				if [ $mode = claim ]; then met_claim=$((met_claim + 1)); else met_noclaim=$((met_noclaim + 1)); fi
			fi
			relay=$(relay_p99s)
			for r in $relay; do
				relays=$((relays + 1))
				if awk -v p="$r" 'BEGIN { exit !(p <= 5) }'; then met_relay=$((met_relay + 1)); fi
			done
			echo "open   run $i, $mode: p99 $p99 ms, p50 $(field p50 "$RUN/bench.out") ms, CPU $(cpu_per_result)$(sched_wait); the bare relay's p99 $(echo "$relay" | sed 's/ $//; s/ / and /') ms"
		done
	done
	PIN=off
	verdict "open   p99 <= 5 ms: every order claimed met in $met_claim of $RUNS, --jumdata-no-claim in $met_noclaim of $RUNS (the bare relay at the same rate in $met_relay of $relays)"
}

run_drain() {
	local i met=0
	for i in $(seq "$RUNS"); do
		new_run "drain-$i"
		start_external always
		# Start the consumer once to create the streams, then stop it (the
		# last process started) so that the requests wait in the stream.
		start_consumer ""
		local cp=${pids[-1]}
		unset 'pids[-1]'
		kill "$cp"
		wait "$cp" || true
		NATS_URL=$NATS_URL_LOCAL spawn "$RUN/bench.out" "" timeout 1800 "$BIN/publisher" bench --backlog -n "$N_DRAIN" \
			--timeout 30m --metrics "$METRICS"
		local bp=${pids[-1]} waited=0
		until grep -q 'waiting for their results' "$RUN/bench.out"; do
			[ $waited -lt 1800 ] || die "bench has not published the backlog after 30 minutes: $RUN/bench.out"
			waited=$((waited + 1))
			kill -0 "$bp" 2>/dev/null || die "bench stopped before it published: $RUN/bench.out"
			sleep 1
		done
		start_consumer ""
		wait "$bp" || die "bench failed: $RUN/bench.out"
		stop_all
		local hwm redelivered
		hwm=$(grep -o 'VmHWM) [0-9.]* MiB' "$RUN/bench.out" | awk '{ print $2 }')
		redelivered=$(grep -o '[0-9]* redelivered' "$RUN/bench.out" | awk '{ print $1 }')
		if awk -v h="$hwm" -v r="$redelivered" 'BEGIN { exit !(h < 256 && r == 0) }'; then
			met=$((met + 1))
		fi
		echo "drain  run $i: $(field throughput "$RUN/bench.out")/s, peak RSS (VmHWM) $hwm MiB, $redelivered redelivered"
	done
	verdict "drain  peak < 256 MiB and 0 redelivered: met in $met of $RUNS"
}

for t in "${targets[@]}"; do
	"run_$t"
done

echo
echo "Decode/typical (µs) at the end: $(yardstick)"
echo "order-store commit (µs) at the end: $(kernel_yardstick)"
echo "logs and bench's output: $OUT"
echo
printf '%s\n' "${verdicts[@]}"
