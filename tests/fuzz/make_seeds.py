#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora, tests/fuzz/corpus/<target>/, in the input layouts
their sources describe: admin requests serialized by protoc from text, ELF files from a real
plugin's headers (cut short, or with their segments made to fit) and from hand-made headers,
brrrctl flag values and target lists, prefixer runs from the unit test's cases, HTTP request
heads, HTTP/2 frames both ways, and hand-over exchanges (frames as server/listener_handover.h
lays them out).

    tests/fuzz/make_seeds.py [--plugin path/to/libbrrr_reactor_epoll.so]

The plugin defaults to the one a plain `bazel build //reactors:plugins` leaves in bazel-bin;
without it, the seeds cut from a real plugin are left as they are. Seeds that a fuzz run
found (regression seeds) are written by hand, not here: this script does not delete files.
"""
import argparse
import os
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


# --- admin_requests_fuzzer: [request][loops - 1][max_block: 1 + 10 x LE16 ms][serialized] ---
REQUESTS = ["WatchStatsRequest", "ListSocketsRequest", "SetThrottleRequest", "InjectTaskRequest",
            "CancelInjectionRequest", "CloseConnectionRequest", "SetStallThresholdRequest"]


def encode(message, text):
    return subprocess.run(
        ["protoc", "-I" + os.path.join(ROOT, "proto"), "--encode=brrr.admin.v1." + message,
         "brrr/admin/v1/admin.proto"],
        input=text.encode(), stdout=subprocess.PIPE, check=True).stdout


def admin_seed(name, message, text, loops=4, max_block_ms=10_001):
    header = bytes([REQUESTS.index(message), loops - 1]) + struct.pack("<H", (max_block_ms - 1) // 10)
    write("admin_requests_fuzzer", name, header + encode(message, text))


def admin_fields_seed(name, message, fields, loops=4, max_block_ms=10_001):
    """A request field by field (bit 7 of the first byte): `fields` are its bytes, in the
    order and widths FillFields reads them."""
    header = bytes([0x80 | REQUESTS.index(message), loops - 1]) + struct.pack("<H", (max_block_ms - 1) // 10)
    write("admin_requests_fuzzer", name, header + fields)


def admin_seeds():
    admin_seed("watch_defaults", "WatchStatsRequest", "")
    admin_seed("watch_fastest_three", "WatchStatsRequest", "interval_ms: 50 count: 3")
    admin_seed("watch_too_often", "WatchStatsRequest", "interval_ms: 49")
    admin_seed("sockets_write_set_loop_1", "ListSocketsRequest", "set: WRITE_SET loop: 1 limit: 100000")
    admin_seed("sockets_limit_too_high", "ListSocketsRequest", "limit: 100001")
    admin_seed("sockets_unknown_loop", "ListSocketsRequest", "loop: 4")
    admin_seed("throttle_every_field", "SetThrottleRequest",
               "bytes_per_second_per_connection: 1000 bytes_per_second_total: 100000000000 "
               "accepts_per_second: 1000000 max_connections: 10000000 accepting_paused: true")
    admin_seed("throttle_unlimited", "SetThrottleRequest",
               "bytes_per_second_per_connection: 0 bytes_per_second_total: 0 accepts_per_second: 0")
    admin_seed("throttle_rate_too_low", "SetThrottleRequest", "bytes_per_second_per_connection: 999")
    admin_seed("throttle_no_connections", "SetThrottleRequest", "max_connections: 0")
    admin_seed("inject_spin", "InjectTaskRequest", "kind: BLOCKING_SPIN duration_ms: 300")
    admin_seed("inject_sleep_at_max_block", "InjectTaskRequest",
               "kind: BLOCKING_SLEEP duration_ms: 1000 count: 3 interval_ms: 2000", max_block_ms=1_001)
    admin_seed("inject_nonblocking_longest", "InjectTaskRequest",
               "kind: NONBLOCKING_SLEEP duration_ms: 3600000 count: 1000000 interval_ms: 3600000 "
               "loops: 2 loops: 0 loops: 2")
    admin_seed("inject_no_kind", "InjectTaskRequest", "duration_ms: 10")
    admin_seed("inject_unknown_loop", "InjectTaskRequest", "kind: BLOCKING_SPIN duration_ms: 10 loops: 4")
    admin_seed("inject_too_many_runs", "InjectTaskRequest",
               "kind: NONBLOCKING_SLEEP duration_ms: 10 count: 1000001")
    admin_seed("cancel_1", "CancelInjectionRequest", "id: 1")
    admin_seed("cancel_no_id", "CancelInjectionRequest", "")
    admin_seed("close_fd_12_loop_0", "CloseConnectionRequest", "fd: 12 loop: 0")
    admin_seed("close_negative_fd", "CloseConnectionRequest", "fd: -1")
    admin_seed("stall_1ms_loop_3", "SetStallThresholdRequest", "threshold_ms: 1 loops: 3")
    admin_seed("stall_just_too_long", "SetStallThresholdRequest", "threshold_ms: 60000.001")
    admin_seed("stall_nan", "SetStallThresholdRequest", "threshold_ms: nan")
    # kind, duration_ms, count, interval_ms (4 bytes each), then loops: a count byte and values.
    admin_fields_seed("fields_inject_nonblocking_longest", "InjectTaskRequest",
                      struct.pack("<iIII", 3, 3_600_000, 1_000_000, 3_600_000) + bytes([2]) +
                      struct.pack("<II", 0, 3))
    # threshold_ms (8 bytes), then loops.
    admin_fields_seed("fields_stall_longest", "SetStallThresholdRequest",
                      struct.pack("<d", 60_000.0) + bytes([1]) + struct.pack("<I", 1))
    # set (4 bytes), loop's presence byte and value, limit.
    admin_fields_seed("fields_sockets_neither_loop_3", "ListSocketsRequest",
                      struct.pack("<i", 3) + bytes([1]) + struct.pack("<II", 3, 100_000))


# --- elf_check_fuzzer: the file ---
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr
PHDR = struct.Struct("<IIQQQQQQ")          # Elf64_Phdr
PT_LOAD, PT_DYNAMIC = 1, 2


def ehdr(phnum, e_type=3, machine=62, ident=b"\x7fELF\x02\x01\x01"):
    return EHDR.pack(ident.ljust(16, b"\0"), e_type, machine, 1, 0, 64, 0, 0, 64, 56, phnum, 64, 0, 0)


def phdr(p_type, offset, filesz, memsz=None):
    return PHDR.pack(p_type, 5, offset, offset, offset, filesz, filesz if memsz is None else memsz, 0x1000)


def elf_seeds(plugin):
    one_load = ehdr(1) + phdr(PT_LOAD, 0, 120)
    write("elf_check_fuzzer", "smallest_loadable", one_load)
    write("elf_check_fuzzer", "load_past_the_end", ehdr(1) + phdr(PT_LOAD, 0, 121))
    write("elf_check_fuzzer", "load_offset_wraps", ehdr(1) + phdr(PT_LOAD, 2**64 - 8, 16))
    write("elf_check_fuzzer", "load_more_file_than_memory", ehdr(1) + phdr(PT_LOAD, 0, 120, 119))
    write("elf_check_fuzzer", "dynamic_past_the_end",
          ehdr(2) + phdr(PT_LOAD, 0, 176) + phdr(PT_DYNAMIC, 160, 32))
    write("elf_check_fuzzer", "no_load", ehdr(1) + phdr(PT_DYNAMIC, 0, 120))
    write("elf_check_fuzzer", "executable", ehdr(1, e_type=2) + phdr(PT_LOAD, 0, 120))
    write("elf_check_fuzzer", "aarch64", ehdr(1, machine=183) + phdr(PT_LOAD, 0, 120))
    write("elf_check_fuzzer", "elf32_header", b"\x7fELF\x01\x01\x01".ljust(52, b"\0"))
    write("elf_check_fuzzer", "big_endian_header", b"\x7fELF\x02\x02\x01".ljust(64, b"\0"))
    write("elf_check_fuzzer", "magic_only", b"\x7fELF")
    if plugin is None or not os.path.exists(plugin):
        print("make_seeds: no plugin at %s; the seeds cut from a real one stay as they are" % plugin)
        return
    with open(plugin, "rb") as f:
        real = f.read()
    fields = EHDR.unpack_from(real)
    phoff, phnum = fields[5], fields[10]
    headers_end = phoff + phnum * PHDR.size
    write("elf_check_fuzzer", "real_plugin_header_only", real[:EHDR.size])
    write("elf_check_fuzzer", "real_plugin_headers_only", real[:headers_end])
    # The same headers with every segment's file contents moved inside a 1 KiB file: loadable.
    fitted = bytearray(real[:headers_end].ljust(1024, b"\0"))
    for i in range(phnum):
        at = phoff + i * PHDR.size
        p = list(PHDR.unpack_from(fitted, at))
        if p[5] > 0:
            p[2] = min(p[2], 1024 - 64) if p[0] != PT_LOAD else 0
            p[5] = min(p[5], 1024 - p[2])
            p[6] = max(p[6], p[5])
        PHDR.pack_into(fitted, at, *p)
    write("elf_check_fuzzer", "real_plugin_headers_fitted", bytes(fitted))


# --- cli_values_fuzzer: a flag value (its first 8 bytes are also a number) ---
def cli_seeds():
    values = {
        "quantity_plain": "1500", "quantity_k": "10K", "quantity_kb_per_s": "10KB/s",
        "quantity_fraction": "1.5M", "quantity_t_fraction": "0.001T", "quantity_max": "18446744073709551615",
        "quantity_max_with_suffix": "18446744073709551.615K", "quantity_not_whole": "1.0005K",
        "quantity_binary": "10KiB", "quantity_unlimited": "unlimited", "quantity_too_large": "20000000T",
        "loops": "0,2,3", "loops_spaced": " 1 , 2 ", "loops_trailing_comma": "1,", "loops_negative": "-1",
        "duration_ms": "300ms", "duration_mixed": "1h2m3.456s", "duration_max_ms": "4294967295ms",
        "duration_past_max": "4294967296ms", "duration_fraction": "1.5ms", "duration_negative": "-2s",
        "duration_inf": "inf",
    }
    for name, text in values.items():
        write("cli_values_fuzzer", name, text.encode())


# --- line_prefixer_fuzzer: [L][prefix][flags][N][limits][K][piece lengths][stream] ---
def prefixer_seed(name, prefix, drain, limits, pieces, stream):
    data = bytes([len(prefix)]) + prefix + bytes([1 if drain else 0, len(limits) - 1]) + bytes(limits)
    data += bytes([len(pieces)]) + bytes(pieces) + stream
    write("line_prefixer_fuzzer", name, data)


def prefixer_seeds():
    prefixer_seed("header_example", b"Echo : ", False, [100, 4, 100], [3, 3], b"a\nbc\nd")
    prefixer_seed("one_byte_at_a_time", b"Echo : ", True, [1], [], b"abc\ndef\n\nx")
    prefixer_seed("binary", b"E", True, [2, 7, 255], [4], b"bin\0\xff\n\xfe\n y")
    prefixer_seed("no_room_then_room", b"> ", False, [0, 3, 0, 250], [1, 1], b"\n\n\n")
    prefixer_seed("empty_prefix", b"", True, [5], [2], b"no newline")
    prefixer_seed("long_prefix_cut", b"p" * 200, False, [13, 251], [2], b"\n\nab\nc")


# --- http_request_fuzzer: [K][K piece lengths][stream] ---
def http_seed(name, pieces, stream):
    write("http_request_fuzzer", name, bytes([len(pieces)]) + bytes(pieces) + stream)


def http_seeds():
    get = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nAccept: */*\r\n\r\n"
    http_seed("get_metrics", [], get)
    http_seed("get_split_in_three", [5, 30], get)
    http_seed("pipelined_two", [60], get + b"HEAD /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
    http_seed("http10_bare_lf", [], b"\n\nGET /readyz?x=1 HTTP/1.0\nAuthorization:  Bearer t0ken \n\n")
    http_seed("absolute_form", [], b"GET http://h:1/metrics#f HTTP/1.1\r\n\r\n")
    http_seed("with_a_body", [], b"POST /metrics HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody")
    http_seed("chunked", [], b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    http_seed("folded_header", [], b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n")
    http_seed("http2_preface", [], b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    http_seed("too_many_headers", [], b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 65 + b"\r\n")
    http_seed("too_long", [200, 200], b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\n\r\n")


# --- http2_stream_bound_fuzzer: [bound][pieces: [side | length << 1][bytes]] ---
def h2_frame(kind, flags, stream, body=b""):
    return struct.pack(">I", len(body))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + body


def h2_call(stream):
    fields = b"".join(b"\0" + bytes([len(n)]) + n + bytes([len(v)]) + v for n, v in [
        (b":method", b"POST"), (b":path", b"/brrr.admin.v1.Admin/GetStats"), (b"te", b"trailers")])
    return h2_frame(1, 4, stream, fields) + h2_frame(0, 1, stream, b"\0" * 5)


def h2_pieces(side, data, length=127):
    """`data` from one side (0 client, 1 server) in pieces of at most `length` bytes."""
    out = b""
    for at in range(0, len(data), length):
        piece = data[at:at + length]
        out += bytes([side | (len(piece) << 1)]) + piece
    return out


def http2_seeds():
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0)
    calls = b"".join(h2_call(s) for s in (1, 3, 5))
    ends = b"".join(h2_frame(1, 5, s, b"t") for s in (1, 3, 5))
    write("http2_stream_bound_fuzzer", "three_calls_within", bytes([2]) + h2_pieces(0, preface + calls) +
          h2_pieces(1, h2_frame(4, 0, 0) + ends))
    write("http2_stream_bound_fuzzer", "three_calls_one_at_a_time", bytes([0]) + h2_pieces(0, preface + calls, 40) +
          h2_pieces(1, ends[:15]) + bytes([0]) + h2_pieces(1, ends[15:]) + h2_pieces(0, h2_frame(4, 1, 0)))
    write("http2_stream_bound_fuzzer", "resets", bytes([0]) + h2_pieces(0, preface + h2_call(1) + h2_call(3)) +
          h2_pieces(0, h2_frame(3, 0, 1, b"\0\0\0\x08")) + h2_pieces(1, h2_frame(3, 0, 3, b"\0\0\0\x07")))
    write("http2_stream_bound_fuzzer", "not_http2", bytes([0]) + h2_pieces(0, b"GET / HTTP/1.1\r\n\r\n" + calls))


# --- targets_fuzzer: [mode: even a file, odd a --target value][text] ---
def targets_seeds():
    files = {
        "file_example": "# the fleet\n127.0.0.1:5001\n\n   127.0.0.1:5002   # canary\n\t\n[::1]:5003\r\n#x:1\n",
        "file_schemes": "unix:/run/brrr.sock\ndns:///echo.internal:5001\nipv4:127.0.0.1:1\n",
        "file_twice": "127.0.0.1:1\n127.0.0.1:1 # again\n",
        "file_comments_only": "# a\n  # b\n",
        "file_bad_port": "127.0.0.1:65536\n",
        "file_bom": "\ufeff# saved on Windows\r\n127.0.0.1:5001\r\n",
        "file_nul": "127.0.0.1:5001\0garbage\n",
    }
    flags = {
        "flag_two": "127.0.0.1:5001, 127.0.0.1:5002",
        "flag_ipv6_unbracketed": "::1:5001",
        "flag_trailing_comma": "127.0.0.1:1,",
        "flag_unclosed_bracket": "[::1:5001",
        "flag_hash": "a#b:1",
        "flag_bom": "\ufeff127.0.0.1:5001",
    }
    for name, text in files.items():
        write("targets_fuzzer", name, b"\0" + text.encode())
    for name, text in flags.items():
        write("targets_fuzzer", name, b"\1" + text.encode())


# --- handover_offer_fuzzer: pieces [attach][LE16 length][bytes]; PORT1 and PORT2: the listeners' ---
def frame(frame_type, payload, version=1):
    return b"BRHO" + struct.pack(">HHI", version, frame_type, len(payload)) + payload


def piece(data, attach=0):
    return bytes([attach]) + struct.pack("<H", len(data)) + data


OFFER, REFUSE, LISTENER = 2, 3, 4


def handover_seeds():
    echo = frame(LISTENER, b"echo")
    write("handover_offer_fuzzer", "two_echo_listeners",
          piece(frame(OFFER, b"pid=42\nloops=2\necho=127.0.0.1:PORT1\n")) + piece(echo, 1) + piece(echo, 1))
    offer = frame(OFFER, b"pid=42\nloops=1\necho=127.0.0.1:PORT1\n")
    write("handover_offer_fuzzer", "one_echo_listener", piece(offer) + piece(echo, 1))
    full = frame(OFFER, b"pid=42\nloops=1\necho=127.0.0.1:PORT1\nmetrics=127.0.0.1:PORT2\nadmin=127.0.0.1:PORT2\n")
    write("handover_offer_fuzzer", "echo_metrics_admin",
          piece(full) + piece(echo, 1) + piece(frame(LISTENER, b"metrics"), 2) + piece(frame(LISTENER, b"admin"), 2))
    write("handover_offer_fuzzer", "listener_on_another_address", piece(offer) + piece(echo, 2))
    write("handover_offer_fuzzer", "not_a_socket", piece(offer) + piece(echo, 3))
    write("handover_offer_fuzzer", "not_listening", piece(offer) + piece(echo, 4))
    write("handover_offer_fuzzer", "two_descriptors_in_one", piece(offer) + piece(echo, 5))
    write("handover_offer_fuzzer", "no_descriptor", piece(offer) + piece(echo))
    write("handover_offer_fuzzer", "split_header", piece(offer[:5]) + piece(offer[5:]) + piece(echo[:3], 1) + piece(echo[3:]))
    write("handover_offer_fuzzer", "refused", piece(frame(REFUSE, b"draining")))
    write("handover_offer_fuzzer", "version_2", piece(frame(OFFER, b"pid=1\nloops=1\necho=127.0.0.1:PORT1\n", version=2)))
    write("handover_offer_fuzzer", "oversized", piece(b"BRHO" + struct.pack(">HHI", 1, OFFER, 4097)))
    write("handover_offer_fuzzer", "loops_too_many", piece(frame(OFFER, b"pid=1\nloops=1025\necho=127.0.0.1:PORT1\n")))
    write("handover_offer_fuzzer", "cut_short", piece(offer) + piece(echo[:-1], 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plugin", default=os.path.join(ROOT, "bazel-bin", "reactors", "libbrrr_reactor_epoll.so"))
    args = parser.parse_args()
    admin_seeds()
    elf_seeds(args.plugin)
    cli_seeds()
    prefixer_seeds()
    http_seeds()
    http2_seeds()
    targets_seeds()
    handover_seeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
