#!/bin/sh
# Checks sync/'s spin models exhaustively, as TAP: for each model (mutex, rwlock, kex)
# and process count (3, 4), a safety run (partial-order reduction on) (assertions: mutual exclusion, k holders,
# readers apart from writers, FIFO grants; and no deadlock) and a liveness run (the
# model's LTL no-starvation property under weak fairness). Then each model's broken
# variant (-DBROKEN_x, one queue step wrong) must yield a counterexample: the check
# must be able to fail.
#   check.sh MODEL_DIR WORK_DIR
set -u
src=$1
work=$2
mkdir -p "$work" || exit 1
cd "$work" || exit 1

SPIN=${SPIN:-spin}
CC=${CC:-gcc}
n=0
status=0

# run NAME MODEL DEFINES MODE: MODE is safety or liveness. Prints pan's verdict line
# into $out and returns 0 when pan found no error.
run() {
	name=$1 model=$2 defs=$3 mode=$4
	dir="$name"
	rm -rf "$dir" && mkdir "$dir" || return 2
	cp "$src/$model.pml" "$dir/" || return 2
	# spin -a writes pan.[chmbt] into the current directory.
	if ! (cd "$dir" && $SPIN $defs -a "$model.pml" >spin.log 2>&1); then
		out="spin -a failed: $(tail -1 "$dir/spin.log")"
		return 2
	fi
	if [ "$mode" = safety ]; then
		cflags="-DSAFETY -DNOCLAIM"
		runflags=""
	else
		# Remote references (P[0]@label) in the claim rule out partial-order
		# reduction.
		cflags="-DNOREDUCE"
		runflags="-a -f"
	fi
	if ! (cd "$dir" && $CC -O1 -w $cflags -DVECTORSZ=256 -o pan pan.c >cc.log 2>&1); then
		out="gcc failed: $(tail -1 "$dir/cc.log")"
		return 2
	fi
	(cd "$dir" && ./pan -m2000000 $runflags >pan.log 2>&1)
	errors=$(awk '/errors:/ { print $NF; exit }' "$dir/pan.log")
	states=$(awk '/states, stored/ { print $1; exit }' "$dir/pan.log")
	if grep -q "max search depth too small" "$dir/pan.log"; then
		out="search depth exceeded ($states states)"
		return 2
	fi
	out="$states states, $errors errors"
	[ "$errors" = 0 ] && return 0
	first=$(grep -m1 -E "assertion violated|acceptance cycle|invalid end state" "$dir/pan.log")
	out="$out: $first"
	return 1
}

tap() { # expect(pass|fail) description
	n=$((n + 1))
	r=$3
	if { [ "$1" = pass ] && [ "$r" = 0 ]; } || { [ "$1" = fail ] && [ "$r" = 1 ]; }; then
		echo "ok $n - $2: $out"
	else
		echo "not ok $n - $2: $out"
		status=1
	fi
}

echo "1..16"
# The mutex's try makes its state space grow fastest: it is checked with 3 processes
# in full and with 4 for safety; the lock path alone with 4 in full.
for spec in "mutex:-DN=3 -DWITH_TRY:safety liveness" "mutex:-DN=4:safety liveness" \
	    "mutex:-DN=4 -DWITH_TRY:safety" \
	    "rwlock:-DN=3:safety liveness" "rwlock:-DN=4:safety liveness" \
	    "kex:-DN=3:safety liveness" "kex:-DN=4:safety liveness"; do
	model=${spec%%:*}
	rest=${spec#*:}
	defs=${rest%%:*}
	for mode in ${rest#*:}; do
		tag=$(printf '%s' "$defs" | tr -d ' =-' | tr 'A-Z' 'a-z')
		run "$model-$tag-$mode" "$model" "$defs" "$mode"
		tap pass "$model $defs $mode" $?
	done
done
# One broken queue step per model; each must be caught with 3 processes.
run mutex-broken mutex "-DN=3 -DBROKEN_TICKET" safety
tap fail "mutex -DBROKEN_TICKET (expect fail)" $?
run rwlock-broken rwlock "-DN=3 -DBROKEN_PHASE" liveness
tap fail "rwlock -DBROKEN_PHASE (expect fail)" $?
run kex-broken kex "-DN=3 -DBROKEN_ADMIT" safety
tap fail "kex -DBROKEN_ADMIT (expect fail)" $?
exit $status
