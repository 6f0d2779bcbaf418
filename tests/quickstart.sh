#!/bin/sh
# The README's quick-start line, pasted as it stands, in the two places it
# must work: as root on an image without sudo, and as a user with sudo. The
# line runs against stand-ins (apt-get, make, id, sudo, ./autogen.sh,
# ./configure, ./src/ferryd) that record their arguments, so the test checks
# what the line would run, in order, without installing or building anything.
# Each shell found of bash and dash (sh) runs it. The packages the line
# installs must also be installed by CI's .ci/run.
srcdir=${FERRY_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
readme=$srcdir/README.md
[ -f "$readme" ] || { echo "quickstart: no $readme"; exit 99; }

# The first indented line after the Quick start heading that runs apt-get.
line=$(sed -n '/^## Quick start/,/^## /p' "$readme" |
	sed -n 's/^    \(.*apt-get.*\)$/\1/p' | head -n 1)
[ -n "$line" ] || { echo "quickstart: no apt-get line in README's Quick start"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-quickstart.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0
fail() { echo "quickstart: $*"; status=1; }

# stub NAME BODY: a stand-in in $tmp/bin that logs "NAME ARGS" and runs BODY.
mkdir "$tmp/bin"
stub() {
	printf '#!/bin/sh\nprintf "%%s\\n" "%s $*" >> "$QS_LOG"\n%s\n' "$1" "$2" \
		> "$tmp/bin/$1"
	chmod +x "$tmp/bin/$1"
}
stub apt-get 'exit 0'
stub make 'exit 0'
# id -u prints QS_UID; the line must not need anything else of id.
printf '#!/bin/sh\n[ "$1" = -u ] || exit 1\nprintf "%%s\\n" "$QS_UID"\n' > "$tmp/bin/id"
chmod +x "$tmp/bin/id"
mkdir -p "$tmp/work/src"
for f in autogen.sh configure src/ferryd; do
	printf '#!/bin/sh\nprintf "%%s\\n" "./%s $*" >> "$QS_LOG"\n' "$f" > "$tmp/work/$f"
	chmod +x "$tmp/work/$f"
done

pkgs=$(printf '%s\n' "$line" | sed -n 's/.*apt-get install -y \([^&]*\)&&.*/\1/p')
[ -n "$pkgs" ] || fail "no 'apt-get install -y PACKAGES &&' in: $line"
pkgs=$(echo $pkgs)

# What the line must run, in order, as the stand-ins log it.
expect() {
	printf '%s\n' "apt-get update" "apt-get install -y $pkgs" \
		"./autogen.sh " "./configure " "make " \
		"./src/ferryd -c etc/quickstart.yaml"
}

# run SHELL UID WITH_SUDO: runs the line; 0 when it ran what it should.
run() {
	rm -f "$tmp/bin/sudo" "$tmp/log"
	: > "$tmp/log"
	if [ "$3" = yes ]; then stub sudo 'exec "$@"'; fi
	(cd "$tmp/work" && QS_LOG=$tmp/log QS_UID=$2 PATH=$tmp/bin \
		"$1" -c "$line" > "$tmp/out" 2>&1)
	rc=$?
	case $3 in yes) pre="sudo " ;; *) pre="" ;; esac
	if [ "$3" = yes ]; then
		# sudo logs "sudo apt-get ARGS", then apt-get logs "apt-get ARGS".
		{
			printf '%s\n' "sudo apt-get update" "apt-get update" \
				"sudo apt-get install -y $pkgs" "apt-get install -y $pkgs"
			expect | tail -n 4
		} > "$tmp/want"
	else
		expect > "$tmp/want"
	fi
	if [ "$rc" != 0 ] || ! cmp -s "$tmp/want" "$tmp/log"; then
		fail "$1 as uid $2 (sudo: $3): exit $rc; it ran:"
		sed 's/^/    /' "$tmp/log"
		echo "  instead of:"; sed 's/^/    /' "$tmp/want"
		echo "  and printed:"; sed 's/^/    /' "$tmp/out"
		return 1
	fi
	echo "quickstart: $1 as uid $2 (sudo: $3): ran ${pre}apt-get, autogen, configure, make, ferryd"
}

shells=0
for sh in /bin/bash /bin/dash; do
	[ -x "$sh" ] || continue
	shells=$((shells + 1))
	run "$sh" 0 no
	run "$sh" 1000 yes
done
[ "$shells" -gt 0 ] || { echo "quickstart: neither bash nor dash"; exit 77; }

# CI installs at least what the README installs.
ci=$srcdir/.ci/run
if [ -f "$ci" ]; then
	for p in $pkgs; do
		grep -q "[[:space:]]$p\([[:space:]]\|$\)" "$ci" ||
			fail "README installs $p, .ci/run does not"
	done
fi
exit $status
