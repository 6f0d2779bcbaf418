#!/bin/sh
# zero_copy.sh: in sendfile mode a file's bytes go from the page cache to the
# socket through sendfile(2), never through ferryd's own buffers.
#
# Runs ferryd under strace, fetches a 100 MiB file in the raw form, compares
# it, and then adds up what the traced calls returned: sendfile must account
# for the whole file, read/write and friends only for request lines, headers
# and log lines. Twice: unlimited, and with limits.rate, where the sends are
# sized to the tokens and must still be sendfile calls, few and large. Exit 0 pass, 1 fail, 77 skip (no strace, or it cannot trace
# here, e.g. in a container without ptrace).

set -u

FERRYD=${FERRYD:-./src/ferryd}
SIZE=104857600
# read/write and the like may move at most this much: requests, headers, logs.
OTHER_MAX=1048576

skip() {
	echo "zero_copy: SKIP: $*"
	exit 77
}

fail() {
	echo "zero_copy: FAIL: $*"
	if [ -n "${dir:-}" ] && [ -f "$dir/ferryd.log" ]; then
		echo "--- ferryd's log:"
		tail -n 20 "$dir/ferryd.log"
	fi
	exit 1
}

command -v strace >/dev/null 2>&1 || skip "strace is not installed"
strace -f -qq -o /dev/null true >/dev/null 2>&1 ||
	skip "strace cannot trace here"
command -v timeout >/dev/null 2>&1 || skip "timeout(1) is not installed"
[ -x "$FERRYD" ] || fail "no ferryd at $FERRYD (set FERRYD)"

# The client: netcat that can half-close (-N), else bash's /dev/tcp.
if command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -- '-N'; then
	client=nc
elif command -v bash >/dev/null 2>&1; then
	client=bash
else
	skip "neither nc -N nor bash is available"
fi

dir=
spid=
fpid=
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	# ferryd first: a killed strace would leave it running, detached.
	[ -n "$fpid" ] && kill -KILL "$fpid" 2>/dev/null
	[ -n "$spid" ] && kill -KILL "$spid" 2>/dev/null
	[ -n "$spid" ] && wait "$spid" 2>/dev/null
	[ -n "$dir" ] && rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

dir=$(mktemp -d "${TMPDIR:-/tmp}/ferry-zc.XXXXXX") || fail "mktemp"
mkdir "$dir/root" || fail "mkdir"
head -c "$SIZE" /dev/urandom >"$dir/root/big.bin" || fail "cannot write $dir/root/big.bin"

# run_one LABEL LIMITS: one traced ferryd with LIMITS added to its limits
# mapping, one fetch of big.bin, and the checks on what the calls moved.
run_one() {
label=$1
cat >"$dir/ferryd.yaml" <<EOF
listen: ["127.0.0.1:0"]
root: "$dir/root"
transfer: {mode: sendfile, chunk: 1MiB, buffer: 256KiB}
limits: {connections: 100, per_client: 64, request_timeout: 10s, idle_timeout: 60s, send_timeout: 60s, shutdown_timeout: 10s$2}
log: {transfers: "$dir/transfers.log", format: text, level: info}
threads: 4
EOF
# ferryd refuses to serve as root unless told so explicitly.
if [ "$(id -u)" = 0 ]; then echo "user: root" >>"$dir/ferryd.yaml"; fi

strace -f -qq \
	-e trace=sendfile,pread64,read,write,copy_file_range,writev,readv,preadv,pwrite64,pwritev,sendto,sendmsg,splice \
	-o "$dir/trace" "$FERRYD" -c "$dir/ferryd.yaml" >"$dir/ferryd.log" 2>&1 &
spid=$!

# Wait (at most 10 s, strace slows the start) for the bound port.
port=
i=0
while [ $i -lt 200 ]; do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
		"$dir/ferryd.log" 2>/dev/null | head -n 1)
	[ -n "$port" ] && break
	kill -0 "$spid" 2>/dev/null || fail "ferryd exited before listening"
	sleep 0.05
	i=$((i + 1))
done
[ -n "$port" ] || fail "no 'listening on 127.0.0.1:PORT' within 10 s"

# ferryd is strace's child; its pid is also in its log lines.
fpid=$(sed -n 's/.* ferryd\[\([0-9][0-9]*\)\]: .*/\1/p' "$dir/ferryd.log" | head -n 1)
[ -n "$fpid" ] || fpid=$(pgrep -P "$spid" | head -n 1)
[ -n "$fpid" ] || fail "cannot find ferryd's pid"

if [ "$client" = nc ]; then
	printf '/big.bin\n' | timeout 30 nc -N 127.0.0.1 "$port" >"$dir/got.bin"
else
	# shellcheck disable=SC2016 # $1 is for the inner bash
	timeout 30 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 &&
		printf "/big.bin\n" >&3 && cat <&3' bash "$port" >"$dir/got.bin"
fi
cmp -s "$dir/root/big.bin" "$dir/got.bin" ||
	fail "$label: fetched bytes differ ($(wc -c <"$dir/got.bin") of $SIZE bytes arrived)"

# Stop it, and wait at most 15 s; strace ends with its tracee.
kill -TERM "$fpid" || fail "cannot signal ferryd ($fpid)"
i=0
while kill -0 "$spid" 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.05
	i=$((i + 1))
done
kill -0 "$spid" 2>/dev/null && fail "ferryd still running 15 s after SIGTERM"
wait "$spid"
status=$?
spid=
fpid=
[ "$status" -eq 0 ] || fail "ferryd (under strace) exited with $status"

# Each traced line: "PID name(args) = RESULT", or split by another thread
# into "PID name(args <unfinished ...>" and "PID <... name resumed>) = RESULT".
# Only completed calls with a result count.
totals=$(awk '
	/<unfinished \.\.\.>$/ { next }
	/^[0-9]+ (---|\+\+\+)/ { next }
	{
		name = ""
		if (match($0, /<\.\.\. [a-z0-9_]+ resumed>/)) {
			name = substr($0, RSTART + 5, RLENGTH - 5)
			sub(/ resumed>$/, "", name)
		} else if (match($0, /^[0-9]+ +[a-z0-9_]+\(/)) {
			name = substr($0, RSTART, RLENGTH - 1)
			sub(/^[0-9]+ +/, "", name)
		}
		if (name == "" || !match($0, / = -?[0-9]+( |$)/))
			next
		ret = substr($0, RSTART + 3, RLENGTH - 3) + 0
		if (ret <= 0)
			next
		if (name == "sendfile" || name == "sendfile64") {
			sf += ret
			sfn++
		}
		else
			other += ret
		calls[name] += ret
	}
	END {
		printf "%.0f %.0f %.0f", sf, other, sfn
		for (n in calls)
			printf " %s=%.0f", n, calls[n]
	}' "$dir/trace")

# shellcheck disable=SC2086 # split into the numbers on purpose
set -- $totals
sendfile_bytes=$1
other_bytes=$2
sendfile_calls=$3
shift 3
echo "zero_copy: $label: sendfile moved $sendfile_bytes bytes in $sendfile_calls calls; other calls $other_bytes bytes ($*)"

[ "$sendfile_bytes" -ge "$SIZE" ] ||
	fail "$label: sendfile moved $sendfile_bytes bytes, less than the $SIZE-byte file"
[ "$other_bytes" -lt "$OTHER_MAX" ] ||
	fail "$label: read/write and the like moved $other_bytes bytes (limit $OTHER_MAX): the file went through a buffer"
# A throttled fetch must still make few, large sends: at least 64 KiB a call
# on average (its tokens come 20 ms worth at a time).
if [ -n "$2" ] && [ "$sendfile_calls" -gt $((SIZE / 65536)) ]; then
	fail "$label: $sendfile_calls sendfile calls for $SIZE bytes"
fi
}

run_one unlimited ""
# Rate-limited (limits.rate, 2 s for the file): still zero-copy, the sends
# sized to the tokens.
run_one "rate 50MiB" ", rate: 50MiB"
echo "zero_copy: PASS"
exit 0
