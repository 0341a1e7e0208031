#!/usr/bin/env python3
"""A fake hypervisor console for the TLS refusal tests (stdlib only; run by tls_peer.rs).

It serves TLS with a given certificate and key on 127.0.0.1 (a free port, printed as
"listening PORT" on stdout), either from the first byte (a SPICE tls-port or a serial TLS
chardev) or after the RFB 3.8 + VeNCrypt 0.2 preface that QEMU sends before its TLS
(security type 19, subtype 260 X509None). With --legacy it speaks only TLS 1.0 and 1.1,
which OpenSSL 3 allows only at security level 0.

After a TLS handshake that succeeds (it must not: every test uses it to be refused), it
sends MARKER, which no browser may ever receive. Each connection adds one line to stdout:
"tls-ok VERSION", "tls-failed REASON" or "preface-failed REASON".
"""

import argparse
import warnings
import socket
import ssl
import struct
import sys
import threading

warnings.filterwarnings("ignore", category=DeprecationWarning)  # TLS 1.0/1.1 on purpose

MARKER = b"CONSOLE-BYTES-THAT-MUST-NOT-BE-RELAYED"
VENCRYPT = 19
X509NONE = 260


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def vencrypt_preface(sock):
    """RFB 3.8 with security type VeNCrypt, VeNCrypt 0.2, subtype X509None: TLS follows."""
    sock.sendall(b"RFB 003.008\n")
    read_exact(sock, 12)
    sock.sendall(bytes([1, VENCRYPT]))
    if read_exact(sock, 1)[0] != VENCRYPT:
        raise ConnectionError("the client did not choose VeNCrypt")
    sock.sendall(bytes([0, 2]))
    if read_exact(sock, 2) != bytes([0, 2]):
        raise ConnectionError("the client did not answer VeNCrypt 0.2")
    sock.sendall(bytes([0, 1]) + struct.pack(">I", X509NONE))
    if struct.unpack(">I", read_exact(sock, 4))[0] != X509NONE:
        raise ConnectionError("the client did not choose X509None")
    sock.sendall(bytes([1]))


def report(line):
    print(line, flush=True)


def serve(conn, context, vnc):
    with conn:
        try:
            if vnc:
                vencrypt_preface(conn)
        except (OSError, ConnectionError) as e:
            report(f"preface-failed {e}")
            return
        try:
            tls = context.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError) as e:
            report(f"tls-failed {e}")
            return
        report(f"tls-ok {tls.version()}")
        try:
            tls.sendall(MARKER)
            tls.recv(1024)
        except OSError:
            pass
        tls.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--vnc", action="store_true", help="RFB + VeNCrypt before TLS")
    parser.add_argument("--legacy", action="store_true", help="TLS 1.0 and 1.1 only")
    args = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if args.legacy:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    else:
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    report(f"listening {listener.getsockname()[1]}")
    while True:
        conn, _ = listener.accept()
        conn.settimeout(30)
        threading.Thread(target=serve, args=(conn, context, args.vnc), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
