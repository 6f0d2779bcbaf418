#!/bin/sh
# haproxy.sh: three ferryd behind HAProxy (etc/haproxy/ferry.cfg, with this
# run's addresses put in), TCP mode, balance leastconn, the PING health
# check and PROXY v2 headers. Then, through HAProxy:
#   - 200 fetches, byte-exact, spread over all three (each transfer log shows
#     its share, with the real client's address from the PROXY header);
#   - ferry sync of a tree;
#   - one backend killed (SIGKILL) mid-transfer: ferry get -c resumes the
#     file from another backend and ends byte-exact;
#   - one backend sent SIGTERM while transfers run on it: its PING answers
#     ERR 503, HAProxy takes it out while it still serves, new fetches all
#     succeed and none reaches it, its transfers finish, it exits 0.
# Exit 0 pass, 1 fail, 77 skip (no haproxy: apt-get install -y haproxy).

set -u

FERRYD=${FERRYD:-./src/ferryd}
FERRY=${FERRY:-./src/ferry}
srcdir=${FERRY_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
example=$srcdir/etc/haproxy/ferry.cfg

skip() {
	echo "haproxy: SKIP: $*"
	exit 77
}

fail() {
	echo "haproxy: FAIL: $*"
	for f in "$dir"/ferryd*.log "$dir/haproxy.log"; do
		[ -f "$f" ] || continue
		echo "--- $f:"
		tail -n 15 "$f"
	done
	exit 1
}

command -v haproxy >/dev/null 2>&1 || skip "haproxy is not installed"
command -v timeout >/dev/null 2>&1 || skip "timeout(1) is not installed"
nc -h 2>&1 | grep -q -- '-U' || skip "nc (netcat-openbsd) is not installed"
[ -x "$FERRYD" ] || { echo "haproxy: no ferryd at $FERRYD"; exit 1; }
[ -x "$FERRY" ] || { echo "haproxy: no ferry at $FERRY"; exit 1; }
[ -f "$example" ] || { echo "haproxy: no $example"; exit 1; }

dir=
pids=
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "$dir" ] && rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

dir=$(mktemp -d "${TMPDIR:-/tmp}/ferry-haproxy.XXXXXX") || exit 99
mkdir -p "$dir/root/files" "$dir/root/tree" "$dir/out" || exit 99
i=0
while [ $i -lt 200 ]; do
	head -c $((1000 + i * 37)) /dev/urandom >"$dir/root/files/f$i" || exit 99
	i=$((i + 1))
done
for d in a b c; do
	mkdir -p "$dir/root/tree/$d"
	i=0
	while [ $i -lt 100 ]; do
		head -c 4096 /dev/urandom >"$dir/root/tree/$d/t$i" || exit 99
		i=$((i + 1))
	done
done
head -c 4194304 /dev/urandom >"$dir/root/tree/image.bin" || exit 99
head -c 33554432 /dev/urandom >"$dir/root/big.bin" || exit 99

# start_ferryd N: ferryd N on 127.0.0.N, a port of its own choosing, with a
# PROXY listener and a 3 s drain; sets port_N and pid_N.
start_ferryd() {
	n=$1
	cat >"$dir/ferryd$n.yaml" <<EOF
listen:
  - {address: "127.0.0.$n:0", proxy_protocol: true}
root: "$dir/root"
limits: {per_client: 64, request_timeout: 10s, shutdown_timeout: 20s, drain: 3s}
log: {transfers: "$dir/transfers$n.log", format: text, level: info}
EOF
	if [ "$(id -u)" = 0 ]; then echo "user: root" >>"$dir/ferryd$n.yaml"; fi
	"$FERRYD" -c "$dir/ferryd$n.yaml" >"$dir/ferryd$n.log" 2>&1 &
	eval "pid_$n=$!"
	pids="$pids $!"
	k=0
	port=
	while [ $k -lt 200 ]; do
		port=$(sed -n "s/.*listening on 127\\.0\\.0\\.$n:\\([0-9][0-9]*\\)\\( .*\\)\\{0,1\\}\$/\\1/p" \
			"$dir/ferryd$n.log" | head -n 1)
		[ -n "$port" ] && break
		kill -0 "$!" 2>/dev/null || fail "ferryd $n exited before listening"
		sleep 0.05
		k=$((k + 1))
	done
	[ -n "$port" ] || fail "ferryd $n: no 'listening on' within 10 s"
	eval "port_$n=$port"
}
start_ferryd 1
start_ferryd 2
start_ferryd 3

# HAProxy from the example: its addresses replaced by this run's, maxconn
# within a test's descriptor limit, a stats
# socket added to watch the servers, and its own source address (127.0.0.9)
# so that a transfer log naming 127.0.0.1 proves the PROXY header was read.
# A free port for it: tried at random, HAProxy says when it cannot bind.
stats="$dir/haproxy.sock"
hport=
tries=0
while [ -z "$hport" ] && [ $tries -lt 20 ]; do
	try=$(( $(od -An -N2 -tu2 /dev/urandom) % 20000 + 30000 ))
	# shellcheck disable=SC2154 # port_N are set by eval
	sed -e "s|^\\tmaxconn .*|\\tmaxconn 1000|" \
		-e "s|^\\(\\tlog stdout.*\\)|\\1\\n\\tstats socket $stats mode 600 level admin|" \
		-e "s|^\\tbind :7070|\\tbind 127.0.0.1:$try|" \
		-e "s|^\\tbalance leastconn|&\\n\\tsource 127.0.0.9|" \
		-e "s|10\\.0\\.0\\.11:7070|127.0.0.1:$port_1|" \
		-e "s|10\\.0\\.0\\.12:7070|127.0.0.2:$port_2|" \
		-e "s|10\\.0\\.0\\.13:7070|127.0.0.3:$port_3|" \
		"$example" >"$dir/haproxy.cfg"
	haproxy -c -q -f "$dir/haproxy.cfg" || fail "the example, adapted, does not pass haproxy -c"
	rm -f "$stats"
	haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
	hpid=$!
	k=0
	while [ $k -lt 100 ] && kill -0 "$hpid" 2>/dev/null && [ ! -S "$stats" ]; do
		sleep 0.05
		k=$((k + 1))
	done
	if kill -0 "$hpid" 2>/dev/null && [ -S "$stats" ]; then
		hport=$try
		pids="$pids $hpid"
	else
		kill -KILL "$hpid" 2>/dev/null
		wait "$hpid" 2>/dev/null
	fi
	tries=$((tries + 1))
done
[ -n "$hport" ] || fail "HAProxy did not start on any of 20 ports"
target=127.0.0.1:$hport

# status SERVER: HAProxy's view of SERVER (UP, DOWN, ...), from show stat.
status() {
	echo "show stat" | timeout 5 nc -U "$stats" 2>/dev/null |
		awk -F, -v s="$1" '$1 == "ferryd" && $2 == s { print $18 }'
}
# wait_status SERVER WANT SECONDS
wait_status() {
	k=0
	while [ $k -lt $(($3 * 10)) ]; do
		case $(status "$1") in "$2"*) return 0 ;; esac
		sleep 0.1
		k=$((k + 1))
	done
	return 1
}
for s in ferryd1 ferryd2 ferryd3; do
	wait_status $s UP 10 || fail "HAProxy does not see $s UP (it is $(status $s))"
done

# fetch PATH OUT: one ferry get through HAProxy; the exit status.
fetch() {
	timeout 60 "$FERRY" get -q -o "$2" "$target" "$1"
}

# 1. 200 fetches, spread.
i=0
while [ $i -lt 200 ]; do
	fetch "/files/f$i" "$dir/out/f$i" || fail "fetch $i exited $?"
	cmp -s "$dir/root/files/f$i" "$dir/out/f$i" || fail "fetch $i: bytes differ"
	i=$((i + 1))
done
total=0
for n in 1 2 3; do
	c=$(grep -c 'path=/files/f[0-9]* .*status=200' "$dir/transfers$n.log")
	# leastconn with one client at a time: about a third each.
	[ "$c" -ge 20 ] || fail "ferryd $n served $c of the 200 fetches"
	grep 'path=/files/' "$dir/transfers$n.log" | grep -v 'client=127\.0\.0\.1:' |
		head -n 1 | grep . && fail "ferryd $n logged a client other than 127.0.0.1 (the PROXY header's)"
	echo "ferryd $n served $c fetches"
	total=$((total + c))
done
[ "$total" -eq 200 ] || fail "the three logs count $total fetches, not 200"

# 2. ferry sync through HAProxy.
timeout 120 "$FERRY" sync -q "$target" /tree "$dir/mirror" || fail "ferry sync exited $?"
diff -r "$dir/root/tree" "$dir/mirror" >/dev/null || fail "the synced tree differs"

# 3. SIGKILL mid-transfer: three slow fetches (32 MiB at 4 MiB/s: 8 s), one
# on each backend (leastconn), ferryd 3 killed while they run.
for n in 1 2 3; do
	timeout 120 "$FERRY" get -q --limit-rate 4M -o "$dir/out/big$n.bin" "$target" /big.bin \
		>"$dir/get$n.out" 2>&1 &
	eval "gpid_$n=$!"
	sleep 0.2
done
k=0
while [ $k -lt 50 ]; do
	echo "show stat" | timeout 5 nc -U "$stats" |
		awk -F, '$1 == "ferryd" && $2 ~ /^ferryd[123]$/ && $5 >= 1 { n++ } END { exit n != 3 }' && break
	sleep 0.1
	k=$((k + 1))
done
[ $k -lt 50 ] || fail "the three fetches are not one per backend"
sleep 1
# shellcheck disable=SC2154
kill -KILL "$pid_3"
wait "$pid_3" 2>/dev/null
failed=0
for n in 1 2 3; do
	eval "wait \$gpid_$n"
	rc=$?
	if [ $rc -ne 0 ]; then
		failed=$((failed + 1))
		[ -f "$dir/out/big$n.bin.part" ] || fail "fetch $n failed ($rc) and left no part"
		timeout 120 "$FERRY" get -q -c -o "$dir/out/big$n.bin" "$target" /big.bin ||
			fail "ferry get -c (fetch $n) exited $?"
	fi
	cmp -s "$dir/root/big.bin" "$dir/out/big$n.bin" || fail "big fetch $n: bytes differ"
done
[ $failed -ge 1 ] || fail "no fetch was cut by the SIGKILL"
grep -h 'path=/big.bin ' "$dir/transfers1.log" "$dir/transfers2.log" |
	grep -v 'offset=0 ' | grep -q 'status=200' ||
	fail "no backend logged a resumed (offset > 0) fetch of big.bin"
echo "SIGKILL: $failed fetch(es) cut, resumed with -c from another backend"
wait_status ferryd3 DOWN 10 || fail "HAProxy still sees the killed ferryd3 as $(status ferryd3)"

# 4. SIGTERM with drain: a slow fetch on each of ferryd 1 and 2 (32 MiB at
# 8 MiB/s: 4 s), then ferryd 2 drains (3 s) and stops.
for n in 1 2; do
	timeout 120 "$FERRY" get -q --limit-rate 8M -o "$dir/out/slow$n.bin" "$target" /big.bin &
	eval "spid_$n=$!"
	sleep 0.2
done
sleep 0.5
# shellcheck disable=SC2154
kill -TERM "$pid_2"
wait_status ferryd2 DOWN 5 || fail "HAProxy did not take the draining ferryd2 out (it is $(status ferryd2))"
kill -0 "$pid_2" 2>/dev/null || fail "ferryd2 stopped before HAProxy took it out"
grep -q 'mode=ping.*status=503' "$dir/transfers2.log" ||
	fail "ferryd2's log has no PING answered 503 while draining"
before=$(grep -c 'path=/files/' "$dir/transfers2.log")
i=0
while [ $i -lt 30 ]; do
	fetch "/files/f$i" "$dir/out/d$i" || fail "fetch during the drain exited $?"
	cmp -s "$dir/root/files/f$i" "$dir/out/d$i" || fail "fetch during the drain: bytes differ"
	i=$((i + 1))
done
after=$(grep -c 'path=/files/' "$dir/transfers2.log")
[ "$after" -eq "$before" ] || fail "ferryd2 got $((after - before)) new fetches after HAProxy took it out"
for n in 1 2; do
	eval "wait \$spid_$n" || fail "slow fetch $n (on a draining backend?) exited $?"
	cmp -s "$dir/root/big.bin" "$dir/out/slow$n.bin" || fail "slow fetch $n: bytes differ"
done
k=0
while kill -0 "$pid_2" 2>/dev/null && [ $k -lt 300 ]; do
	sleep 0.1
	k=$((k + 1))
done
kill -0 "$pid_2" 2>/dev/null && fail "ferryd2 still running 30 s after SIGTERM"
wait "$pid_2"
rc=$?
[ $rc -eq 0 ] || fail "ferryd2 exited $rc after its drain"
echo "SIGTERM: ferryd2 drained, taken out by HAProxy, its transfers finished"
echo "haproxy: PASS"
exit 0
