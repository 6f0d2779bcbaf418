#!/bin/sh
# Lints the manual pages with mandoc -Tlint: a warning or worse fails.
# Skips (77) where mandoc is not installed.
#
#   FERRY_SRCDIR=$PWD tests/man_lint.sh
set -u

srcdir=${FERRY_SRCDIR:-${0%/*}/..}
pages="ferry.1 ferryd.8 ferryd.yaml.5"

if ! command -v mandoc >/dev/null 2>&1; then
	echo "man_lint: SKIP: mandoc is not installed"
	exit 77
fi

status=0
for page in $pages; do
	file=$srcdir/man/$page
	if [ ! -f "$file" ]; then
		echo "man_lint: FAIL: $file is missing"
		status=1
		continue
	fi
	out=$(mandoc -Tlint -W warning "$file" 2>&1)
	rc=$?
	# Whether this machine's mandoc.db is stale, and which pages it has
	# installed for cross-references, says nothing about ours.
	found=$(printf '%s\n' "$out" |
		grep -v -e 'outdated mandoc\.db' \
			-e 'referenced manual not found' |
		grep -v '^$')
	# 5 and up: mandoc could not lint at all (bad arguments, I/O).
	if [ -n "$found" ] || [ "$rc" -ge 5 ]; then
		echo "man_lint: FAIL: $page (mandoc exit $rc):"
		printf '%s\n' "$found"
		status=1
	else
		echo "man_lint: ok: $page"
	fi
done
exit $status
