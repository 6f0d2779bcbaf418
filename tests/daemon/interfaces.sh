#!/bin/sh
# interfaces.sh: server, conn and transfer (and what lies below them: the
# budget, the root, the rate limits, the engines) call each other only through what their
# headers name for the caller.
#
# Each of those headers groups its functions under comments
#     /* ---- for conn.c ---- */
#     /* ---- for ferryd.c/workers.c ---- */
#     /* ---- for conn.c and the engines ---- */
# naming the files that may call them ("the engines": engine_sendfile.c and
# engine_buffered.c). The headers are parsed for those sections; then nm(1)
# on the built objects (the daemon's library, and ferryd.o) lists every
# symbol one object takes from another, and each must be a function the
# section for that caller names. A function of those modules that another
# object uses but no section names fails too. Then grep checks the structs:
# each is defined in one file only (struct conn in conn.c, ...), engine.h is
# included only inside the transfer module, and the modules below (budget,
# root, the rate limits, transfer and its engines) never include server.h.
#
# Exit 0 pass, 1 fail, 77 skip (no nm), 99 when there is nothing to check.

set -u

srcdir=${FERRY_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${FERRY_BUILDDIR:-$srcdir}
src=$srcdir/src/daemon
lib=$builddir/src/daemon/.libs/libdaemon.a
main=$builddir/src/daemon/ferryd.o
headers="server.h conn.h transfer.h engine.h budget.h root.h rate.h metrics.h"
# The objects whose functions may be called only as the headers say.
modules="server conn transfer engine_sendfile engine_buffered budget root rate metrics metrics_http"

command -v nm >/dev/null 2>&1 || { echo "interfaces: SKIP: no nm"; exit 77; }
[ -f "$lib" ] || { echo "interfaces: no $lib (build first)"; exit 99; }
[ -f "$main" ] || { echo "interfaces: no $main (build first)"; exit 99; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-interfaces.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
status=0

# ---- the headers' sections: "function caller.c caller.c ..." per line ----
for h in $headers; do
	[ -f "$src/$h" ] || { echo "interfaces: no $src/$h"; exit 99; }
	awk -v h="$h" '
	# The paragraph at the top must say who calls (or includes) it.
	NR == 1 && !/^\/\*/ { print "NOHEAD " h; }
	NR <= 30 && /Who (calls|includes) it/ { who = 1 }
	/^\/\* -+ for .* -+ \*\/$/ {
		line = $0
		sub(/^\/\* -+ for /, "", line)
		sub(/ -+ \*\/$/, "", line)
		gsub(/the engines/, "engine_sendfile.c engine_buffered.c", line)
		gsub(/[\/,]/, " ", line)
		callers = ""
		n = split(line, w, " ")
		for (i = 1; i <= n; i++)
			if (w[i] ~ /^[a-z_]+\.c$/)
				callers = callers " " w[i]
		if (callers == "")
			print "BADSECTION " h ": " $0
		section = callers
		next
	}
	# A declaration starts at the left margin: not a comment, a
	# preprocessor line, a struct or enum body, or a continuation.
	/^[a-z]/ && /\(/ && !/^(struct|enum|union) [a-z_]+ \{/ && !/^typedef/ {
		line = $0
		sub(/\(.*/, "", line)
		n = split(line, w, /[ *]+/)
		fn = w[n]
		if (section == "")
			print "NOSECTION " h " " fn
		else
			print fn section
	}
	END { if (!who) print "NOWHO " h }
	' "$src/$h" >> "$tmp/allowed"
done
if grep -q '^NO\|^BAD' "$tmp/allowed"; then
	grep '^NO\|^BAD' "$tmp/allowed" | while read -r what h rest; do
		case $what in
		NOHEAD) echo "interfaces: $h does not start with its paragraph" ;;
		NOWHO) echo "interfaces: $h's paragraph does not say who calls it" ;;
		NOSECTION) echo "interfaces: $h declares $rest outside any \"for ...\" section" ;;
		BADSECTION) echo "interfaces: $h: a section that names no caller: $rest" ;;
		esac
	done
	status=1
fi
grep -v '^NO\|^BAD' "$tmp/allowed" > "$tmp/table"
[ -s "$tmp/table" ] || { echo "interfaces: no sections found in the headers"; exit 99; }

# ---- what each object defines and takes ----
# Lines "object symbol type", object without ".o".
{
	nm -P -g -A "$lib"
	nm -P -g -A "$main" | sed 's|^[^:]*/\(ferryd\.o\):|x[\1]:|'
} | sed -n 's/^[^[]*\[\([^]]*\)\.o\]: \([^ ]*\) \([A-Za-z]\).*/\1 \2 \3/p' \
	> "$tmp/syms"
[ -s "$tmp/syms" ] || { echo "interfaces: nm listed no symbols"; exit 99; }

awk -v modules="$modules" '
FILENAME == ARGV[1] {
	# The table: a function and the files that may call it.
	for (i = 2; i <= NF; i++)
		allowed[$1, $i] = 1
	named[$1] = 1
	next
}
$3 == "U" { uses[++nuses] = $1 " " $2; next }
{ def[$2] = $1 }
END {
	n = split(modules, m, " ")
	for (i = 1; i <= n; i++)
		module[m[i]] = 1
	bad = 0
	checked = 0
	for (k = 1; k <= nuses; k++) {
		split(uses[k], u, " ")
		obj = u[1]; sym = u[2]
		if (!(sym in def) || def[sym] == obj)
			continue
		if (sym in named) {
			checked++
			if (!((sym, obj ".c") in allowed)) {
				printf "interfaces: %s.c calls %s (%s.c), which no header section names for %s.c\n", obj, sym, def[sym], obj
				bad = 1
			}
		} else if (def[sym] in module) {
			printf "interfaces: %s.c calls %s (%s.c), which no header section names at all\n", obj, sym, def[sym]
			bad = 1
		}
	}
	if (checked == 0) {
		print "interfaces: no call between the modules found: nm output not understood"
		exit 2
	}
	if (!bad)
		printf "interfaces: %d calls between modules, each named in its caller'\''s section\n", checked
	exit bad
}' "$tmp/table" "$tmp/syms"
rc=$?
[ "$rc" = 2 ] && exit 99
[ "$rc" = 0 ] || status=1

# ---- the structs: each defined in one file; engine.h stays inside ----
# "struct NAME FILE": the one file that may define NAME's fields.
while read -r name owner; do
	where=$(cd "$srcdir/src" && grep -l -- "^struct $name {" */*.c */*.h |
		tr '\n' ' ')
	where=${where% }
	if [ "$where" != "$owner" ]; then
		echo "interfaces: struct $name is defined in: ${where:-nothing}; only $owner may"
		status=1
	fi
done <<EOF
conn daemon/conn.c
server daemon/server.c
listener daemon/server.c
transfer daemon/engine.h
budget daemon/budget.c
root_ref daemon/root.c
rate_shared daemon/rate.c
EOF
for f in "$srcdir"/src/*/*.[ch]; do
	rel=${f#"$srcdir"/src/}
	case $rel in
	daemon/transfer.c | daemon/engine_*.c | daemon/engine.h) ;;
	*)
		if grep -q '^#[[:space:]]*include[[:space:]]*"daemon/engine\.h"' "$f"; then
			echo "interfaces: $rel includes daemon/engine.h, which is the transfer module's own"
			status=1
		fi ;;
	esac
	case $rel in
	daemon/transfer.c | daemon/engine_*.c | daemon/engine.h | daemon/budget.[ch] | daemon/root.[ch] | daemon/rate.[ch])
		if grep -q '^#[[:space:]]*include[[:space:]]*"daemon/server\.h"' "$f"; then
			echo "interfaces: $rel includes daemon/server.h; it lies below the server"
			status=1
		fi ;;
	esac
	case $rel in
	daemon/budget.[ch] | daemon/root.[ch] | daemon/rate.[ch])
		if grep -q '^#[[:space:]]*include[[:space:]]*"daemon/\(conn\|transfer\|engine\)\.h"' "$f"; then
			echo "interfaces: $rel includes a header of conn or transfer; it lies below them"
			status=1
		fi ;;
	esac
done

[ "$status" = 0 ] && echo "interfaces: every struct is its own file's, nothing else crosses"
exit $status
