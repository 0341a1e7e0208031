#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/: real requests, token lines, console
objects, configurations and RFB/VeNCrypt exchanges taken from the tests' byte sequences and
the files in conf/. Run it again after changing an input layout (see README.md); the fuzzer
adds its own findings next to these files, which are kept small on purpose."""
import json, os, struct, pathlib

root = pathlib.Path(__file__).resolve().parent
corpus = root / "corpus"

def seed(target, name, data):
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data.encode() if isinstance(data, str) else data)

# --- http_request_head: [chunk size byte] + the client's bytes
novnc = ("GET /websockify?token=4f1b2c9e7d HTTP/1.1\r\nHost: proxy.example:6080\r\n"
         "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: binary\r\n"
         "Origin: https://proxy.example:6080\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n\r\n")
seed("http_request_head", "novnc_upgrade", b"\xff" + novnc.encode() + b"\x82\x8c\x01\x02\x03\x04RFB")
seed("http_request_head", "novnc_upgrade_1byte_reads", b"\x00" + novnc.encode())
seed("http_request_head", "cookie_token", b"\x07" + (
    "GET /websockify HTTP/1.1\r\nHost: [::1]:6080\r\nConnection: keep-alive, Upgrade\r\n"
    "Upgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    "Cookie: lang=en; token=%22c3d2e1f0a9%22; theme=dark\r\nOrigin: http://[::1]:6080\r\n\r\n").encode())
seed("http_request_head", "bad_version_8", b"\x20" + novnc.replace("Version: 13", "Version: 8").encode())
seed("http_request_head", "static_get", b"\x40" + b"GET /vnc.html?path=websockify%3Ftoken%3Dabc HTTP/1.1\r\nHost: proxy\r\nAccept: */*\r\n\r\n")
seed("http_request_head", "http10_head", b"\x10" + b"HEAD /app/ui.js HTTP/1.0\r\n\r\n")
seed("http_request_head", "lf_only", b"\x03" + b"GET /?token=a+b%2Bc&token=d HTTP/1.1\nHost: h\n\n")

# --- http_token: structured (arbitrary); a few byte strings to start from
seed("http_token", "short", b"\x01\x05token\x00\x01\x02")
seed("http_token", "mixed", bytes(range(0, 64)))

# --- token_file: websockify token files
conf = (root.parent / "conf")
seed("token_file", "tokens_example", (conf / "tokens.example").read_bytes())
seed("token_file", "mixed", "# comment\n\nabc: 127.0.0.1:5901\r\nspice1: spice://[::1]:5931\nbad: nope\n"
     "x: vnc://alice:pa%40ss@hv1.example:5903\n no colon line\nabc: h:0\n:h:1\n  t2 :  [fe80::1]:5900  \n")

# --- token_target
for name, text in [("bare", "10.0.0.5:5901"), ("v6", "[2001:db8::10]:5931"),
                   ("vnc_password", "vnc://:s3cr%40t@hv1.example:5903"),
                   ("vnc_user", "vnc://alice:pw@[::1]:5900"), ("spice", "spice://h:5931"),
                   ("serial", "serial://192.0.2.11:7000"), ("plus_amp", "vnc://u:a+b&c@h:1"),
                   ("path", "vnc://h:1/x"), ("scheme", "rdp://h:1")]:
    seed("token_target", name, text)

# --- token_json: libvirt-console-proxy files
seed("token_json", "tokens_json_example", (conf / "tokens.json.example").read_bytes())
seed("token_json", "websockify_layouts", json.dumps({
    "t1": {"host": "10.0.0.5:5901"}, "t2": "serial://h:7000",
    "t3": {"address": "h:1", "singel_use": True}, "t4": [1], "t5": {"address": "h:1", "expires": -1}}))

# --- token_rest_answer: one console object per reply
for name, obj in [
    ("vnc", {"type": "vnc", "address": "10.0.0.5:5901", "password": "vnc-password"}),
    ("spice_single_use", {"type": "spice", "address": "[::1]:5931", "insecure": False, "tlsTunnel": True,
                          "password": "pw", "username": "u", "single_use": True, "expires": 2000000000}),
    ("expires_fraction", {"address": "h:1", "expires": 1767225600.25}),
    ("string_target", "vnc://:pw@h:5900"),
    ("misspelt", {"adress": "h:1"}),
]:
    seed("token_rest_answer", name, json.dumps(obj))
seed("token_rest_answer", "syntax_error", '{"type": "vnc", "address": "h:1",,}')

# --- token_redis_value: the value
seed("token_redis_value", "json_single_use", json.dumps({"type": "vnc", "address": "10.0.0.5:5901", "single_use": True}).encode())
seed("token_redis_value", "json_object", json.dumps({"address": "10.0.0.5:5901", "single_use": True}).encode())
seed("token_redis_value", "websockify", b'{"host": "10.0.0.5:5901"}')
seed("token_redis_value", "plain", b"10.0.0.5:5901")
seed("token_redis_value", "url", b"  vnc://:pw@[::1]:5900")
seed("token_redis_value", "json_string", b'"spice://h:5931"')

# --- config_ini
for f in sorted(conf.glob("*.conf*")):
    seed("config_ini", f.name, f.read_bytes())
seed("config_ini", "lists", "listen = 127.0.0.1:1, [::1]:2\nconsole_proxy_security_driver = vencrypt, spice_tls\n"
     "idle_timeout = 0.5\nallowed_origins = https://A.example/, http://b\n[console_proxy_tls]\nca_certificate = /x\n")
seed("config_ini", "default_header", "[DEFAULT]\nlisten_insecure = true\nlisten = 127.0.0.1:9\n[x]\na = b\n")

# --- vencrypt_from_server: [chunk] [flags: bit0 user, bit1 password, bits2-3 preference] + server bytes
V38 = b"RFB 003.008\n"
def u32(n): return struct.pack(">I", n)
def subtypes(*ts): return bytes([len(ts)]) + b"".join(u32(t) for t in ts)
ok = u32(0)
qemu_x509none = V38 + b"\x01\x13" + b"\x00\x02\x00" + subtypes(260) + b"\x01" + ok
qemu_x509vnc = V38 + b"\x01\x13" + b"\x00\x02\x00" + subtypes(261) + b"\x01" + bytes(range(16)) + ok
xvnc = V38 + b"\x02\x13\x02" + b"\x00\x02\x00" + bytes([5, 0, 0, 1, 6, 0, 0, 1, 5, 0, 0, 1, 4, 0, 0, 1, 2, 0, 0, 0, 2]) + b"\x01" + ok
auth_failed = V38 + b"\x01\x13" + b"\x00\x02\x00" + subtypes(261) + b"\x01" + bytes(16) + b"\0\0\0\x01\0\0\0\x16Authentication failed\0"
seed("vencrypt_from_server", "qemu_x509none", b"\xff\x00" + qemu_x509none)
seed("vencrypt_from_server", "qemu_x509vnc", b"\x03\x02" + qemu_x509vnc)
seed("vencrypt_from_server", "xvnc_x509plain", b"\x00\x07" + xvnc)
seed("vencrypt_from_server", "auth_failed", b"\x05\x02" + auth_failed)
seed("vencrypt_from_server", "rfb33_refused", b"\x01\x00" + b"RFB 003.003\n\0\0\0\0\0\0\0\x05busy!")
seed("vencrypt_from_server", "rfb37_no_vencrypt", b"\x01\x00" + b"RFB 003.007\n\x02\x01\x02")
seed("vencrypt_from_server", "anonymous_tls_only", b"\x02\x03" + V38 + b"\x01\x13\x00\x02\x00" + subtypes(257, 258))
seed("vencrypt_from_server", "huge_reason", b"\x0f\x00" + V38 + b"\x00" + u32(0xffffffff))
seed("vencrypt_from_server", "not_vnc", b"\x0f\x00" + b"HTTP/1.1 400 Bad Request\r\n\r\n")

# --- vencrypt_from_browser: [chunk] [flags: bit0 refuse, bit1 long reason] [reason len] reason + browser bytes
reason = b"Console unavailable: the hypervisor did not answer in time (see the console proxy's log)."
for name, flags, browser in [("novnc_38", 0, V38 + b"\x01\x01"), ("rfb37", 0, b"RFB 003.007\n\x01"),
                             ("rfb33", 0, b"RFB 003.003\n"), ("chose_vncauth", 0, V38 + b"\x02"),
                             ("refuse_38", 1, V38 + b"\x01"), ("refuse_37", 1, b"RFB 003.007\n"),
                             ("refuse_long", 3, V38 + b"\x01"), ("http", 0, b"GET / HTTP/1.1\r\n\r\n"),
                             ("rfb_4", 0, b"RFB 004.001\n")]:
    seed("vencrypt_from_browser", name, bytes([0x0f, flags, len(reason)]) + reason + browser)

# --- spice_link: [flags: bit0 TLS, bit1 TLS 1.3, bit2 close_notify] ([link len u16] link reply | raw)
def link_mess(channel_type, connection_id):
    m = b"REDQ" + b"".join(struct.pack("<I", v) for v in (2, 2, 18))
    m += struct.pack("<I", connection_id) + bytes([channel_type, 0])
    return m + b"".join(struct.pack("<I", v) for v in (0, 0, 18))
def link_reply():
    # SpiceLinkHeader + SpiceLinkReply: error 0, a 162-byte RSA public key, no capabilities.
    body = struct.pack("<I", 0) + bytes(162) + struct.pack("<III", 0, 0, 178)
    return b"REDQ" + struct.pack("<III", 2, 2, len(body)) + body
main = link_mess(1, 0)
display = link_mess(2, 0x1234abcd)
seed("spice_link", "plain_spice_port", b"\x00" + link_reply())
seed("spice_link", "http_server", b"\x00" + b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
seed("spice_link", "tls13_main_channel", b"\x07" + struct.pack(">H", len(main)) + main + link_reply())
seed("spice_link", "tls12_display_channel", b"\x01" + struct.pack(">H", len(display)) + display + link_reply())

# --- serial_settle: [flags: bit0 TLS 1.3, bit1 client cert, bits2-3 end, bits4-6 writes] writes... garbage
greeting = b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}\r\n'
hmp = b"QEMU 7.2.15 monitor - type 'help' for more information\r\n(qemu) "
login = b"\r\nDebian GNU/Linux 12 guest ttyS0\r\n\r\nguest login: "
seed("serial_settle", "refused_no_cert", b"\x05")
seed("serial_settle", "refused_cert_tls12", b"\x02")
seed("serial_settle", "hmp_greeting", bytes([0x11 | 0x04]) + bytes([len(hmp)]) + hmp)
seed("serial_settle", "qmp_then_close_notify", bytes([0x20 | 0x02]) + bytes([len(greeting)]) + greeting + bytes([len(login)]) + login)
seed("serial_settle", "garbage_after_login", bytes([0x10 | 0x08 | 0x01]) + bytes([len(login)]) + login + b"\x17\x03\x03\x00\x05hello")

# --- client_address: [0 = PROXY header stream | 1, choice] + bytes (see the target's header)
v2_sig = b"\r\n\r\n\x00\r\nQUIT\n"
v4 = bytes([203, 0, 113, 9, 10, 0, 0, 2]) + struct.pack(">HH", 51000, 6080)
v6 = (bytes.fromhex("20010db8000000000000000000000009") + bytes.fromhex("20010db8000000000000000000000001")
      + struct.pack(">HH", 51000, 6080))
noop_tlv = b"\x04\x00\x01x"
seed("client_address", "v1_tcp4", b"\x00PROXY TCP4 203.0.113.9 10.0.0.2 51000 6080\r\nGET / HTTP/1.1\r\n\r\n")
seed("client_address", "v1_tcp6", b"\x00PROXY TCP6 2001:db8::9 2001:db8::1 51000 6080\r\n\x16\x03\x01")
seed("client_address", "v1_unknown", b"\x00PROXY UNKNOWN\r\n")
seed("client_address", "v2_tcp4", b"\x00" + v2_sig + b"\x21\x11" + struct.pack(">H", len(v4)) + v4 + b"\x16\x03\x01")
seed("client_address", "v2_tcp6_tlv", b"\x00" + v2_sig + b"\x21\x21" + struct.pack(">H", len(v6) + len(noop_tlv)) + v6 + noop_tlv)
seed("client_address", "v2_local", b"\x00" + v2_sig + b"\x20\x00\x00\x00")
seed("client_address", "no_header", b"\x00GET / HTTP/1.1\r\nHost: x\r\n\r\n")
seed("client_address", "xff_trusted", b"\x01\x00203.0.113.9, 10.0.0.5\n10.0.0.6")
seed("client_address", "xff_untrusted", b"\x01\x021.2.3.4")
seed("client_address", "forwarded", b'\x01\x01for=192.0.2.60;proto=https, For="[2001:db8:cafe::17]:4711"\nfor=unknown')
