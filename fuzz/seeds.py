#!/usr/bin/env python3
"""Writes the hand-made seeds of the op-script harnesses into fuzz/corpus/<harness>/:
the sequences a well-behaved peer sends, which the fuzzer then bends. (The config
harness's seeds are INI files; the rest of every corpus comes from fuzzing runs,
minimized with `make -C fuzz merge`.)"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def u8(*v): return bytes(x & 0xff for x in v)
def u16(v): return struct.pack('<H', v & 0xffff)
def u32(v): return struct.pack('<I', v & 0xffffffff)
def u64(v): return struct.pack('<Q', v & 0xffffffffffffffff)


# ---- vhost_user: op byte (mod 16), then the op's fields (see fuzz_vhost_user.c) ----
def vhu_setup(num_log2=7, kick_q1=True):
    s = u8(7, 0) + u8(8, 0) + u8(9, 1)              # features, protocol features, owner
    s += u8(0, 1, 0, 0, 0, 0)                         # memory table: whole region
    for q in (0, 1):
        s += u8(2, q, num_log2)                       # SET_VRING_NUM 2^n
    for q, base in ((0, 0), (1, 16384)):
        s += u8(1, q) + u16(base // 4) + u16((base + 2048) // 4) + u16((base + 4096) // 4)
        s += u64(0)                                   # log
    s += u8(6, 0)                                     # kick q0 (eventfd)
    if kick_q1:
        s += u8(6, 4)                                 # kick q1
    s += u8(6, 1) + u8(6, 5) + u8(6, 2)               # call q0, call q1, err q0
    s += u8(4, 0, 1) + u8(4, 1, 1)                    # enable both
    return s


def vhost_user():
    start = vhu_setup()
    yield 'start', start
    yield 'start_stop_base', start + u8(5, 0, 0) + u8(5, 1, 0) + u8(3, 0, 5) + u8(6, 0) + u8(5, 1, 0)
    yield 'start_reset', start + u8(9, 0) + vhu_setup(3)
    yield 'start_new_table', start + u8(0, 1, 0, 0, 4, 8)
    yield 'start_disable', start + u8(4, 1, 0) + u8(4, 1, 1)
    yield 'start_reconnect', start + u8(14) + start
    yield 'nokick_poll', vhu_setup(kick_q1=False) + u8(6, 0x0c) + u8(6, 0x0d)
    yield 'config', u8(11, 0, 8, 0) + u8(11, 4, 4, 0) + u8(11, 1, 0, 1) + u32(0) + u32(300) + u16(312)
    yield 'gets', u8(10, 0) + u8(10, 1) + u8(10, 2)
    yield 'two_regions', u8(7, 0) + u8(0, 2, 0, 0, 0, 16, 0, 16, 16)
    yield 'bad_fds', u8(0, 1, 0, 0x40, 0, 0, 3) + u8(6, 0x40, 3) + u8(6, 0x41, 5)
    # Framing: a GET_FEATURES through the socket, then a header with a bad version.
    hdr = u32(1) + u32(1) + u32(0)
    yield 'stream_ok', u8(13) + u16(len(hdr)) + u8(0) + hdr
    bad = u32(1) + u32(0) + u32(0)
    yield 'stream_bad_version', u8(13) + u16(len(bad)) + u8(0) + bad
    big = u32(5) + u32(1) + u32(4096)
    yield 'stream_oversize', u8(13) + u16(len(big)) + u8(2, 0, 2) + big


# ---- ring: flags, log2(num), tx base, rx base, image length, image, rewrites ----
GPA = 0x100000000


def hdr(src, dst, sport, dport, length, typ, op, flags=0, buf_alloc=65536, fwd=0):
    return (u64(src) + u64(dst) + u32(sport) + u32(dport) + u32(length) + u16(typ) +
            u16(op) + u32(flags) + u32(buf_alloc) + u32(fwd))


def desc(addr, length, flags=0, nxt=0):
    return u64(addr) + u32(length) + u16(flags) + u16(nxt)


def ring_image(pkts, split=False, indirect=False):
    img = bytearray(16384)
    num = 8
    d = 0          # next free descriptor
    heads = []
    buf = 8192
    for p in pkts:
        img[buf:buf + len(p)] = p
        if indirect:
            table = 10240 + 64 * len(heads)
            img[table:table + 32] = desc(GPA + buf, 44, 0, 1) + desc(GPA + buf + 44, len(p) - 44)
            img[d * 16:d * 16 + 16] = desc(GPA + table, 32 if len(p) > 44 else 16, 4)
            if len(p) == 44:
                img[table:table + 16] = desc(GPA + buf, 44)
            heads.append(d); d += 1
        elif split and len(p) > 44:
            img[d * 16:d * 16 + 32] = desc(GPA + buf, 44, 1, d + 1) + desc(GPA + buf + 44, len(p) - 44)
            heads.append(d); d += 2
        else:
            img[d * 16:d * 16 + 16] = desc(GPA + buf, len(p))
            heads.append(d); d += 1
        buf += (len(p) + 15) & ~15
    img[1024:1028] = u16(0) + u16(len(heads))
    for i, h in enumerate(heads):
        img[1028 + 2 * i:1030 + 2 * i] = u16(h)
    for i in range(num):   # RX buffers for the broker's answers
        img[4096 + 16 * i:4112 + 16 * i] = desc(GPA + 12288 + 512 * i, 512, 2)
    img[5120:5124] = u16(0) + u16(num)
    for i in range(num):
        img[5124 + 2 * i:5126 + 2 * i] = u16(i)
    return bytes(img), num


def ring():
    req = hdr(3, 4, 5000, 1000, 0, 1, 1)
    rw = hdr(3, 4, 5000, 1000, 5, 1, 5) + b'hello'
    sreq = hdr(3, 4, 5001, 2000, 0, 2, 1)
    srw = hdr(3, 4, 5001, 2000, 3, 2, 5, 1) + b'abc'
    for name, pk, kw, flags in (('stream', [req, rw], {}, 0),
                                ('stream_split', [req, rw], {'split': True}, 1),
                                ('seqpacket_indirect', [sreq, srw], {'indirect': True}, 3),
                                ('spoofed', [hdr(5, 4, 1, 1000, 0, 1, 1)], {}, 0),
                                ('rst', [hdr(3, 4, 5000, 1000, 0, 1, 3)], {}, 1)):
        img, num = ring_image(pk, **kw)
        head = u8(flags, 3) + u16(0) + u16(0) + u16(len(img))
        yield name, head + img
        # ... and the same with the avail index moved on again afterwards.
        yield name + '_rewrite', head + img + u8(2) + u16(1026) + u8(9) + u16(1027) + u8(0)


def write(name, gen):
    d = os.path.join(HERE, 'corpus', name)
    os.makedirs(d, exist_ok=True)
    for stem, data in gen():
        with open(os.path.join(d, 'seed-' + stem), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    gens = {'vhost_user': vhost_user, 'ring': ring}
    for n in sys.argv[1:] or gens:
        if n in gens:
            write(n, gens[n])
