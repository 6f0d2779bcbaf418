#!/bin/sh
# Checks the systemd units with systemd-analyze verify: the generated
# ferryd.service (pointed at the built ferryd and a real config, since verify
# checks that executables exist) and ferryd.socket. Fails on a non-zero exit
# or on any complaint about the units (verify exits 0 after "Unknown key").
# Prints the offline security exposure score for information only. Skips
# (77) where systemd-analyze is not installed.
#
#   FERRYD=$PWD/src/ferryd FERRY_SRCDIR=$PWD tests/systemd_verify.sh
set -u

srcdir=${FERRY_SRCDIR:-${0%/*}/..}
builddir=${FERRY_BUILDDIR:-.}
ferryd=${FERRYD:-$builddir/src/ferryd}

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "systemd_verify: SKIP: systemd-analyze is not installed"
	exit 77
fi
case $ferryd in
/*) ;;
*) ferryd=$(pwd)/$ferryd ;;
esac
if [ ! -x "$ferryd" ]; then
	echo "systemd_verify: FAIL: no ferryd at $ferryd (set FERRYD)"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-units.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

unit=$builddir/systemd/ferryd.service
if [ -f "$unit" ]; then
	cp "$unit" "$tmp/ferryd.service.generated"
else
	# Not built here: generate it as make does.
	unit=$srcdir/systemd/ferryd.service.in
	sed -e 's|@sbindir[@]|/usr/local/sbin|g' \
		-e 's|@sysconfdir[@]|/usr/local/etc|g' \
		"$unit" >"$tmp/ferryd.service.generated" || exit 1
fi
if grep -n '@[a-z_]*@' "$tmp/ferryd.service.generated"; then
	echo "systemd_verify: FAIL: $unit has unfilled @...@ placeholders"
	exit 1
fi
echo "systemd_verify: checking $unit and $srcdir/systemd/ferryd.socket"

# A config ferryd -t accepts, for ExecStartPre and ExecStart.
mkdir "$tmp/root"
cat >"$tmp/ferryd.yaml" <<EOF
listen: ["127.0.0.1:0"]
root: "$tmp/root"
log:
  transfers: "$tmp/transfers.log"
EOF

# ExecStart=, ExecStartPre= (after any of systemd's -@:+! prefixes): the
# installed ferryd becomes the built one, and -c the config above.
exec_re='^\(ExecStart[A-Za-z]*=[-@:+!]*\)[^ ]*/ferryd '
sed -e "/^ExecStart/s|$exec_re|\1$ferryd |" \
	-e "/^ExecStart/s|-c [^ ]*|-c $tmp/ferryd.yaml|" \
	"$tmp/ferryd.service.generated" >"$tmp/ferryd.service" || exit 1
rm "$tmp/ferryd.service.generated"
cp "$srcdir/systemd/ferryd.socket" "$tmp/ferryd.socket" || exit 1
if ! grep -q "^ExecStart=.*$ferryd -c $tmp/ferryd.yaml" \
	"$tmp/ferryd.service"; then
	echo "systemd_verify: FAIL: cannot point ExecStart= at $ferryd:"
	grep '^Exec' "$tmp/ferryd.service"
	exit 1
fi

status=0

# The Documentation= pages must be ours, in man/ (verify itself would run
# man(1), which knows only installed pages: --man=no below).
for u in "$tmp/ferryd.service" "$tmp/ferryd.socket"; do
	for ref in $(sed -n 's/^Documentation=//p' "$u"); do
		case $ref in
		man:*\(*\))
			page=${ref#man:}
			name=${page%(*}
			section=${page#*(}
			section=${section%)}
			if [ ! -f "$srcdir/man/$name.$section" ]; then
				echo "systemd_verify: FAIL: $(basename "$u")" \
					"names $ref, but there is no" \
					"man/$name.$section"
				status=1
			fi
			;;
		esac
	done
done

out=$(cd "$tmp" && systemd-analyze verify --man=no \
	"$tmp/ferryd.service" "$tmp/ferryd.socket" 2>&1)
rc=$?
complaints=$(printf '%s\n' "$out" |
	grep -e 'ferryd\.service' -e 'ferryd\.socket')
if [ "$rc" -ne 0 ] || [ -n "$complaints" ]; then
	echo "systemd_verify: FAIL: systemd-analyze verify (exit $rc):"
	printf '%s\n' "$out" | sed "s|$tmp/||g"
	status=1
else
	echo "systemd_verify: ok: systemd-analyze verify" \
		"ferryd.service ferryd.socket"
	if [ -n "$out" ]; then
		echo "systemd_verify: (about other units, ignored:)"
		printf '%s\n' "$out"
	fi
fi

# For information, never a failure: the exposure score of the sandboxing.
if security=$(systemd-analyze security --offline=true \
	"$tmp/ferryd.service" 2>/dev/null); then
	printf '%s\n' "$security" | grep 'Overall exposure level' |
		sed 's/^[^O]*//; s/^/systemd_verify: /'
else
	echo "systemd_verify: (no offline security analysis in this systemd)"
fi
exit $status
