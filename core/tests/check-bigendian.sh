#!/bin/sh
# Runs the core/ unit tests on a big-endian machine: builds them for s390x with
# Debian's cross compiler and runs them under qemu-user, with tests/shim/cmocka.h
# standing in for cmocka. The programs' TAP streams are merged into one plan.
# Skips when the tools are not installed
# (apt-get install gcc-s390x-linux-gnu libc6-dev-s390x-cross qemu-user-static).
#   check-bigendian.sh <core dir> <tmp dir> <test.c>...
set -u
core=$1
tmp=$2
shift 2
CC=${BE_CC:-s390x-linux-gnu-gcc}
RUN=""
for q in qemu-s390x-static qemu-s390x; do
	command -v "$q" >/dev/null 2>&1 && RUN=$q && break
done
if ! command -v "$CC" >/dev/null 2>&1 || [ -z "$RUN" ]; then
	echo "1..0 # SKIP no s390x cross compiler or qemu-user"
	exit 0
fi
mkdir -p "$tmp"
out="$tmp/be.tap"
: >"$out"
status=0
for src in "$@"; do
	exe="$tmp/$(basename "$src" .c).s390x"
	if ! "$CC" -std=c11 -D_GNU_SOURCE -O1 -static -pthread -Wall -Wextra -Werror \
		-I"$core/tests/shim" -I"$core" "$src" "$core/virtq.c" "$core/vq_ready.c" "$core/vsock.c" \
		-o "$exe" >"$tmp/cc.log" 2>&1; then
		echo "not ok - $(basename "$src") does not build for s390x" >>"$out"
		sed 's/^/# /' "$tmp/cc.log" >>"$out"
		status=1
		continue
	fi
	# The first case checks that the target really is big-endian.
	if [ "$src" = "$1" ]; then
		printf '#include <stdio.h>\nint main(void){unsigned short v = 1; return *(unsigned char *)&v != 0;}\n' \
			>"$tmp/be.c"
		if "$CC" -static "$tmp/be.c" -o "$tmp/be" 2>/dev/null && "$RUN" "$tmp/be"; then
			echo "ok - the s390x target is big-endian" >>"$out"
		else
			echo "not ok - the s390x target is not big-endian" >>"$out"
		fi
	fi
	"$RUN" "$exe" >"$tmp/run.log" 2>&1
	rc=$?
	sed -n "s/^\(not ok\|ok\) [0-9]* - /\1 - $(basename "$src" .c) on s390x: /p; /^#/p" \
		"$tmp/run.log" >>"$out"
	[ $rc -eq 0 ] || echo "not ok - $(basename "$src") on s390x exited with status $rc" >>"$out"
done
n=$(grep -c '^\(ok\|not ok\)' "$out")
echo "1..$n"
awk '/^ok/ { sub(/^ok/, "ok " ++i) } /^not ok/ { sub(/^not ok/, "not ok " ++i) } { print }' "$out"
grep -q '^not ok' "$out" && status=1
exit $status
