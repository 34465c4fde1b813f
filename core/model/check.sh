#!/bin/sh
# Model-checks core/'s split-virtqueue protocol (core/model/virtq.pml) under its weak
# memory model: the model with every fence of core/virtq.c must verify, and the model
# with any one fence removed must fail, with the kind of counterexample that fence's
# property predicts. Prints TAP.
#   core/model/check.sh [path/to/virtq.pml]
# Exhaustive search (no bitstate, no -DSAFETY shortcuts); about 300k states for the
# full model, a few seconds per run.
set -u

here=$(dirname "$0")
model=${1:-$here/virtq.pml}
if ! command -v spin >/dev/null 2>&1 || ! command -v gcc >/dev/null 2>&1; then
	echo "1..0 # SKIP spin or gcc not installed (scripts/install-deps)"
	exit 0
fi
model=$(cd "$(dirname "$model")" && pwd)/$(basename "$model")
work=$(mktemp -d "${TMPDIR:-/tmp}/rtvio-model.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM

# switch  expected outcome when removed  property
# assert: an assertion of property (a) or (b) fails
# end:    an invalid end state: the driver waits for a notification that never comes (c)
# pass:   no violation: no property depends on this fence (see its comment in virtq.c)
# P_PUBLISH_BEFORE_SLEEP is not a fence but the batching rule: publish before sleeping.
fences="F_AVAIL_PUB assert a
F_AVAIL_ACQ assert a
F_USED_PUB assert b
F_USED_ACQ assert b
F_PUB_SYNC end c
F_ENABLE_NOTIFY_SYNC end c
F_NOTIFY_SYNC end c
F_ENABLE_CB_SYNC end c
F_ENABLE_CB_ACQ pass -
P_PUBLISH_BEFORE_SLEEP end c"

# Runs spin and pan with the given -D options in a fresh directory; prints pan's output.
verify() {
	dir=$work/run$n
	mkdir -p "$dir" && cd "$dir" || return 1
	spin -a "$@" "$model" >spin.log 2>&1 || { cat spin.log; cd "$work"; return 1; }
	gcc -O1 -w -o pan pan.c || { cd "$work"; return 1; }
	./pan -m20000 -w22 2>&1 || true
	cd "$work" || return 1
}

# The outcome of a pan run: pass, assert, end, or error (incomplete search, a bad model).
outcome() {
	if grep -q "max search depth too small\|out of memory\|indexing error\|invalid array index" "$1"; then
		echo error
	elif grep -q "errors: 0" "$1"; then
		echo pass
	elif grep -q "assertion violated" "$1"; then
		echo assert
	elif grep -q "invalid end state" "$1"; then
		echo end
	else
		echo error
	fi
}

total=$(( $(echo "$fences" | wc -l) + 1 ))
echo "1..$total"
n=1
verify >"$work/full.txt"
got=$(outcome "$work/full.txt")
states=$(grep -o "[0-9]* states, stored" "$work/full.txt")
if [ "$got" = pass ]; then
	echo "ok $n - every fence in place: properties (a), (b), (c) hold ($states)"
else
	echo "not ok $n - every fence in place: expected no violation, got $got"
	sed 's/^/# /' "$work/full.txt"
fi
echo "$fences" | {
	fail=0
	[ "$got" = pass ] || fail=1
	while read -r f want prop; do
		n=$((n + 1))
		verify "-D$f=0" >"$work/$f.txt"
		got=$(outcome "$work/$f.txt")
		what=$(grep -m1 -o "assertion violated.*(at\|invalid end state" "$work/$f.txt" |
			sed 's/ (at$//')
		if [ "$got" = "$want" ] && [ "$want" = pass ]; then
			echo "ok $n - $f=0: no violation (no property depends on it)"
		elif [ "$got" = "$want" ]; then
			echo "ok $n - $f=0: counterexample to property ($prop): $what"
		else
			echo "not ok $n - $f=0: expected $want, got $got"
			sed 's/^/# /' "$work/$f.txt"
			fail=1
		fi
	done
	exit $fail
}
