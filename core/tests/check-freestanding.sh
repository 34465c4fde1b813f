#!/bin/sh
# Proves that a freestanding archive's objects (core/, and gvsock/ prelinked with
# core/) reference no external symbol but the four that a freestanding C
# implementation must still provide (memcpy, memset, memmove, memcmp), as TAP: one case per archive given. With --expect-fail,
# each archive must instead be caught (the check's own self-test).
set -u
NM=${NM:-nm}
expect_fail=0
if [ "${1:-}" = "--expect-fail" ]; then
	expect_fail=1
	shift
fi
echo "1..$#"
own=$(mktemp)
trap 'rm -f "$own"' EXIT
n=0
status=0
for lib in "$@"; do
	n=$((n + 1))
	name=$(basename "$lib")
	if ! syms=$("$NM" -u --format=posix "$lib" 2>&1); then
		echo "not ok $n - $name: nm failed: $syms"
		status=1
		continue
	fi
	# What one member of the archive takes from another is not external.
	"$NM" --defined-only --format=posix "$lib" 2>/dev/null |
		awk 'NF >= 2 { print $1 }' | sort -u >"$own"
	# Posix format: "symbol U" per line; archive member headers end in ':'.
	bad=$(printf '%s\n' "$syms" | awk 'NF == 2 && $2 == "U" { print $1 }' |
	      grep -Ev '^(memcpy|memset|memmove|memcmp)$' | sort -u | comm -23 - "$own" |
	      tr '\n' ' ')
	if [ $expect_fail -eq 0 ] && [ -z "$bad" ]; then
		echo "ok $n - $name references only memcpy/memset/memmove/memcmp"
	elif [ $expect_fail -eq 1 ] && [ -n "$bad" ]; then
		echo "ok $n - $name is rejected (references $bad)"
	elif [ $expect_fail -eq 0 ]; then
		echo "not ok $n - $name references $bad"
		status=1
	else
		echo "not ok $n - $name was expected to reference other symbols"
		status=1
	fi
done
exit $status
