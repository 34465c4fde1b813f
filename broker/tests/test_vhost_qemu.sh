#!/bin/sh
# The broker's vhost-user back end against its real peer: QEMU 7.2's
# vhost-user-vsock-pci device with Debian's Linux guest kernel and its own
# virtio_vsock driver (docs/qemu-vhost-user.md). A Linux VM cell sends STREAM and
# SEQPACKET rtmsg traffic through `rtvio broker` to a process cell (`rtvio cell`),
# which checks every message. TAP output. It fails (never skips) when QEMU, a static
# busybox, python3 or the guest image are missing: scripts/install-deps installs them
# for `make test`.
#
# usage: test_vhost_qemu.sh RTVIO_BINARY TESTS_SOURCE_DIR [yes|no]
# The third argument is the broker's `poll` (default no: sleep on kicks).
# The guest kernel and its modules are scripts/vm/build-image's (cached in
# scripts/vm/out/; Debian's linux-image-<version>-amd64, never installed). Both
# variants of this test run at once: build-image serialises them on out/.lock, and
# they copy what they use under a shared lock on it, so a rebuild never changes
# files under them.
set -u

RTVIO=$1
SRC=$2
POLL=${3:-no}
ROOT=$(cd "$SRC/../.." && pwd)
OUT="$ROOT/scripts/vm/out"
CC=${CC:-cc}

bail() {
	echo "1..1"
	echo "not ok 1 - what this test needs is there"
	echo "# $*"
	exit 1
}

command -v qemu-system-x86_64 >/dev/null 2>&1 ||
	bail "qemu-system-x86_64 not installed (scripts/install-deps vm)"
command -v python3 >/dev/null 2>&1 || bail "python3 not installed"
BUSYBOX=$(command -v busybox) || bail "busybox not installed (scripts/install-deps vm)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	bail "$BUSYBOX is dynamically linked (install busybox-static)"
fi
[ -x "$RTVIO" ] || bail "$RTVIO not built"

W=$(mktemp -d /tmp/rtvio-qemu.XXXXXX) || exit 1
BPID=
CPID=
cleanup() {
	[ -n "$CPID" ] && kill "$CPID" 2>/dev/null
	[ -n "$BPID" ] && kill -KILL "$BPID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
"$ROOT/scripts/vm/build-image" >"$W/build-image.log" 2>&1 ||
	{ sed 's/^/# /' "$W/build-image.log"; bail "scripts/vm/build-image failed"; }
# The image's kernel (the ELF one when there is one: faster under TCG) and the modules
# build-image unpacked, taken while no rebuild can run.
mkdir -p "$W/root/bin" "$W/root/mod" "$W/root/proc" "$W/root/dev" || exit 1
if ! (
	flock -s 9 || exit 1
	k="$OUT/vmlinux"
	[ -f "$k" ] || k="$OUT/vmlinuz"
	# A hard link stays the old file should a rebuild replace it later.
	ln "$k" "$W/kernel" 2>/dev/null || cp "$k" "$W/kernel" || exit 1
	for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
		vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport; do
		cp "$OUT/initramfs/lib/modules/$m.ko" "$W/root/mod/" || exit 1
	done
) 9<"$OUT/.lock"; then
	bail "the kernel or a module is missing from $OUT"
fi

# ---- the guest: busybox, the sender, the vsock modules, an init script ----------
cp "$BUSYBOX" "$W/root/bin/busybox"
"$CC" -static -O2 -I"$SRC/../../common" -o "$W/root/bin/vsend" \
	"$SRC/test_vhost_qemu_guest.c" 2>"$W/cc.err" ||
	{ sed 's/^/# /' "$W/cc.err"; bail "cannot link a static program"; }
# Each run: vsend CID PORT COUNT SIZE PERIOD_US TYPE; the console says how it went.
cat >"$W/root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci vsock \
	vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport; do
	/bin/busybox insmod /mod/$m.ko || echo "insmod $m failed"
done
/bin/vsend 8 1002 20 1000 5000 seqpacket; echo "VSEND s1 $?"
/bin/vsend 8 1003 20 8192 5000 seqpacket; echo "VSEND s2 $?"
/bin/vsend 8 1004 20 8192 5000 seqpacket-eor; echo "VSEND s3 $?"
/bin/vsend 8 1000 200 64 1000 stream; echo "VSEND f $?"
/bin/vsend 8 1001 20 100000 10000 stream; echo "VSEND big $?"
/bin/vsend 8 1005 50 8192 5000 seqpacket; echo "VSEND s4 $?"
/bin/busybox poweroff -f
EOF
chmod +x "$W/root/init"
(cd "$W/root" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip >"$W/initrd.gz") ||
	exit 1

# ---- the host side ------------------------------------------------------------------
cat >"$W/vm.conf" <<EOF
[broker]
socket_dir = $W/sock
poll = $POLL
[cell vm1]
cid = 7
vm = yes
[cell p1]
cid = 8
[flow f]
from = vm1
to = p1:1000
size = 64
period = 1ms
[flow big]
from = vm1
to = p1:1001
size = 100000
period = 10ms
[flow s1]
from = vm1
to = p1:1002
type = seqpacket
size = 1000
period = 5ms
[flow s2]
from = vm1
to = p1:1003
type = seqpacket
size = 8192
period = 5ms
[flow s3]
from = vm1
to = p1:1004
type = seqpacket
size = 8192
period = 5ms
[flow s4]
from = vm1
to = p1:1005
type = seqpacket
size = 8192
period = 5ms
EOF

echo "1..11"
"$RTVIO" broker "$W/vm.conf" >"$W/broker.out" 2>"$W/broker.err" &
BPID=$!
for i in $(seq 50); do
	grep -q "ready" "$W/broker.out" 2>/dev/null && break
	sleep 0.1
done
if grep -q "rtvio broker: ready, 2 cells" "$W/broker.out"; then
	echo "ok 1 - broker ready"
else
	echo "not ok 1 - broker ready"
	sed 's/^/# /' "$W/broker.err"
	exit 1
fi

"$RTVIO" cell "$W/vm.conf" p1 --duration 90 --json >"$W/p1.json" 2>"$W/p1.err" &
CPID=$!
sleep 0.5

# SIGKILL: a QEMU waiting for a vhost-user reply ignores SIGTERM.
timeout -s KILL 200 qemu-system-x86_64 -accel tcg -m 256M -smp 1 -nographic -no-reboot -net none \
	-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
	-chardev socket,id=vs0,path="$W/sock/vm1.sock" -device vhost-user-vsock-pci,chardev=vs0 \
	-kernel "$W/kernel" -initrd "$W/initrd.gz" -append "console=ttyS0 quiet panic=-1" \
	>"$W/console" 2>&1
qrc=$?
# QEMU only powers off after the back end answered GET_VRING_BASE for both rings.
if [ $qrc -eq 0 ]; then
	echo "ok 2 - QEMU booted the guest and powered off (GET_VRING_BASE answered)"
else
	echo "not ok 2 - QEMU exit status $qrc"
	tr -d '\r' <"$W/console" | tail -n 20 | sed 's/^/# /'
fi
if grep -qa "vsend: local cid 7" "$W/console"; then
	echo "ok 3 - the guest's CID came from GET_CONFIG"
else
	echo "not ok 3 - the guest's CID came from GET_CONFIG"
fi

# The receiver ends once every sender closed (or at --duration).
for i in $(seq 100); do
	kill -0 "$CPID" 2>/dev/null || break
	sleep 0.1
done
kill -TERM "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null
CPID=

stat_json=$("$RTVIO" stat --json "$W/sock" 2>&1)

check_flow() { # n flow count description
	if grep -qa "VSEND $2 0" "$W/console" &&
		python3 - "$W/p1.json" "$2" "$3" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
f = [x for x in doc["flows"] if x["name"] == sys.argv[2]][0]
ok = f["messages"] == int(sys.argv[3]) and f["lost"] == 0 and f["corrupt"] == 0 \
    and f["reordered"] == 0
if not ok:
    print("# %s: %s" % (sys.argv[2], json.dumps(f)))
sys.exit(0 if ok else 1)
EOF
	then
		echo "ok $1 - $4"
	else
		echo "not ok $1 - $4"
		grep -a "VSEND $2\|vsend" "$W/console" | tr -d '\r' | sed 's/^/# /'
	fi
}
check_flow 4 s1 20 "SEQPACKET 1000 B x 20 (EOM only, like Linux without MSG_EOR)"
check_flow 5 s2 20 "SEQPACKET 8192 B x 20: each message split over the receiver's 4 KiB buffers"
check_flow 6 s3 20 "SEQPACKET 8192 B x 20 with MSG_EOR"
check_flow 7 f 200 "STREAM 64 B x 200"
check_flow 8 big 20 "STREAM 100000 B x 20: messages larger than a 64 KiB packet"
check_flow 9 s4 50 "SEQPACKET 8192 B x 50 after the STREAM runs"

if printf '%s' "$stat_json" | python3 -c '
import json, sys
st = json.load(sys.stdin)
cells = {c["name"]: c for c in st["cells"]}
ok = cells["vm1"]["state"] == "waiting" and cells["vm1"]["connects"] == 1 \
    and cells["vm1"]["packets_in"] > 0 and cells["p1"]["packets_out"] > 0
sys.exit(0 if ok else 1)'; then
	echo "ok 10 - rtvio stat: the VM cell came, sent, and left"
else
	echo "not ok 10 - rtvio stat: the VM cell came, sent, and left"
	printf '%s\n' "$stat_json" | head -n 40 | sed 's/^/# /'
fi

kill -TERM "$BPID"
wait "$BPID"
brc=$?
BPID=
if [ $brc -eq 0 ] && [ ! -e "$W/sock/vm1.sock" ] && [ ! -e "$W/sock/control.sock" ]; then
	echo "ok 11 - SIGTERM: broker exits 0 and removes its sockets"
else
	echo "not ok 11 - SIGTERM: broker exit status $brc"
	sed 's/^/# /' "$W/broker.err"
fi
