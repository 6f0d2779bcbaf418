#!/bin/sh
# The tree's layout rules, as includes show them: src/common includes only
# common headers; src/daemon and src/client include their own and common's,
# never each other's. Any include that crosses is printed and fails the test.
srcdir=${FERRY_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$srcdir/src" || exit 99
status=0
checked=0
for f in common/*.[ch] daemon/*.[ch] client/*.[ch]; do
	part=${f%%/*}
	case $part in
	common) allowed='common' ;;
	daemon) allowed='common daemon' ;;
	client) allowed='common client' ;;
	esac
	# Every project include names its part: "part/file.h".
	incs=$(sed -n 's/^#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
	for inc in $incs; do
		checked=$((checked + 1))
		ipart=${inc%%/*}
		if [ "$ipart" = "$inc" ]; then
			echo "layout: $f includes \"$inc\" without its part (\"common/$inc\"?)"
			status=1
			continue
		fi
		[ -f "$ipart/${inc#*/}" ] || {
			echo "layout: $f includes \"$inc\", which does not exist"
			status=1
			continue
		}
		case " $allowed " in
		*" $ipart "*) ;;
		*) echo "layout: $f ($part) includes $inc ($ipart)"; status=1 ;;
		esac
	done
done
[ "$checked" -gt 0 ] || { echo "layout: no includes found under $srcdir/src"; exit 99; }
[ "$status" = 0 ] && echo "layout: $checked includes, none crosses a part"
exit $status
