#!/usr/bin/env python3
"""wsbench - websocket->TCP proxy benchmark client + backend (Python 3.11 stdlib only).

Copied from ../shared/bench-peers/wsbench.py (same protocol); consolegate changes: the client
sends a token in the request path (--path, default /?token=bench), the TLS backend can ask for
a client certificate (--ca, optional verification), `idle` samples memory at checkpoints on
the way to its maximum, and `vncsetup` times an RFB session set-up through a proxy.

Topology:   wsbench client  --ws/wss-->  PROXY (listen port)  --tcp/tls-->  wsbench backend (backend port)

The backend is a thread-per-connection TCP server.  The first line the client sends
through the proxy selects the backend behaviour:
    ECHO\n              echo everything back until EOF
    SINK <n> [R]\n      read n bytes, then reply b"K", then wait for EOF (R: first reply b"R"
                        as soon as the command is read; a consolegate extension)
    SRC <n> <chunk>\n   send n bytes in <chunk>-byte sendall() calls, then wait for EOF

Subcommands (all print one JSON object on stdout):
    backend   --port P [--cert C --key K]
    s2c       bulk throughput backend->client (framebuffer-like)
    c2s       bulk throughput client->backend
    lat       ping-pong round-trip latency through an ECHO backend
    connrate  new connection + handshake + first byte echoed, per second
    idle      open N idle connections, sample the proxy's memory/threads/processes

Client options common to all tests:
    --host 127.0.0.1 --port PORT    where the proxy (or the backend, with --raw) listens
    --raw                           speak plain TCP instead of websocket (baseline / TCP relays)
    --tls                           wrap in TLS (wss:// or TLS-to-raw); certificate not verified
    --subproto binary               send Sec-WebSocket-Protocol (default: none)
    --pid PID                       proxy PID: sample CPU time (and memory for idle) of PID and
                                    all its descendants
"""
import argparse
import base64
import hashlib
import json
import os
import resource
import socket
import ssl
import statistics
import struct
import sys
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CTX = None


# --------------------------------------------------------------------------- backend
def _backend_conn(sock):
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray(1 << 16)
        line = b""
        while b"\n" not in line:
            d = sock.recv(4096)
            if not d:
                return
            line += d
            if len(line) > 4096:
                return
        cmd, rest = line.split(b"\n", 1)
        parts = cmd.split()
        if parts[0] == b"ECHO":
            if rest:
                sock.sendall(rest)
            while True:
                k = sock.recv_into(buf)
                if not k:
                    return
                sock.sendall(memoryview(buf)[:k])
        elif parts[0] == b"SINK":
            if len(parts) > 2 and parts[2] == b"R":
                sock.sendall(b"R")      # extension: "ready", so the client times the relay only
            n = int(parts[1]) - len(rest)
            mv = memoryview(bytearray(1 << 20))
            while n > 0:
                k = sock.recv_into(mv)
                if not k:
                    return
                n -= k
            sock.sendall(b"K")
            while sock.recv_into(mv):
                pass
        elif parts[0] == b"SRC":
            n, chunk = int(parts[1]), int(parts[2])
            data = memoryview(os.urandom(chunk))
            while n > 0:
                c = min(n, chunk)
                sock.sendall(data[:c])
                n -= c
            while sock.recv_into(buf):
                pass
    except (OSError, ValueError, IndexError):
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass


def cmd_backend(a):
    threading.stack_size(256 * 1024)
    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        # TLS 1.3 session tickets arrive after the handshake; a select()-then-blocking-recv
        # relay (websockify --ssl-target) can deadlock on them when the client speaks first.
        ctx.num_tickets = a.tls_tickets
        if a.ca:
            # Ask for a client certificate and verify it when one is sent (consolegate's TLS
            # drivers send one; websockify --ssl-target does not).
            ctx.load_verify_locations(a.ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(4096)
    print(json.dumps({"backend": "listening", "port": a.port, "tls": bool(ctx)}), flush=True)

    def handle(s):
        if ctx is not None:
            try:
                s.settimeout(10)
                s = ctx.wrap_socket(s, server_side=True)
                s.settimeout(None)
            except (OSError, ssl.SSLError):
                s.close()
                return
        _backend_conn(s)

    while True:
        s, _ = ls.accept()
        threading.Thread(target=handle, args=(s,), daemon=True).start()


# --------------------------------------------------------------------------- client
class Conn:
    """Minimal RFC 6455 client (or raw TCP) with a streaming frame parser."""

    def __init__(self, a, timeout=30.0, rbufsize=4096):
        global _CTX
        self.raw = a.raw
        s = socket.create_connection((a.host, a.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if a.tls:
            if _CTX is None:
                _CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                _CTX.check_hostname = False
                _CTX.verify_mode = ssl.CERT_NONE
            s = _CTX.wrap_socket(s, server_hostname=a.host)
        self.s = s
        self.pending = b""          # bytes received past the HTTP response
        self.hdr = b""              # partial frame header
        self.left = 0               # payload bytes left in current frame
        self.is_data = True
        self.rbuf = bytearray(rbufsize)
        self.rmv = memoryview(self.rbuf)
        self.mask = os.urandom(4)
        if not self.raw:
            self._handshake(a)

    def _handshake(self, a):
        key = base64.b64encode(os.urandom(16))
        req = (b"GET " + a.path.encode() + b" HTTP/1.1\r\nHost: " + f"{a.host}:{a.port}".encode()
               + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key
               + b"\r\nSec-WebSocket-Version: 13\r\n")
        if a.subproto:
            req += b"Sec-WebSocket-Protocol: " + a.subproto.encode() + b"\r\n"
        req += b"\r\n"
        self.s.sendall(req)
        resp = b""
        while b"\r\n\r\n" not in resp:
            d = self.s.recv(4096)
            if not d:
                raise ConnectionError("EOF during handshake: %r" % resp[:200])
            resp += d
        head, self.pending = resp.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError("handshake failed: %r" % head[:200])
        want = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if want not in head:
            raise ConnectionError("bad Sec-WebSocket-Accept")

    # ---- sending
    def frame(self, payload):
        """Build one masked binary frame (pre-build it once for bulk sends)."""
        if self.raw:
            return bytes(payload)
        n = len(payload)
        if n < 126:
            h = struct.pack("!BB", 0x82, 0x80 | n)
        elif n < 65536:
            h = struct.pack("!BBH", 0x82, 0xFE, n)
        else:
            h = struct.pack("!BBQ", 0x82, 0xFF, n)
        m = self.mask
        mi = int.from_bytes(m * ((n + 3) // 4), "little")
        pi = int.from_bytes(payload + b"\0" * (-n % 4), "little")
        masked = (pi ^ mi).to_bytes(n + (-n % 4), "little")[:n]
        return h + m + masked

    def send(self, payload):
        self.s.sendall(self.frame(payload))

    # ---- receiving
    def _recv(self):
        if self.pending:
            n = len(self.pending)
            self.rbuf[:n] = self.pending
            self.pending = b""
            return n
        k = self.s.recv_into(self.rmv)
        if not k:
            raise ConnectionError("EOF")
        return k

    def read_payload(self, n, collect=False):
        """Consume exactly n bytes of data payload (ws frames parsed). Returns bytes if collect."""
        out = bytearray() if collect else None
        if self.raw:
            # leftover from previous call is kept in self.pending
            got = 0
            while got < n:
                k = self._recv()
                take = min(k, n - got)
                if collect:
                    out += self.rmv[:take]
                if take < k:
                    self.pending = bytes(self.rmv[take:k])
                got += take
            return out
        got = 0
        while got < n:
            k = self._recv()
            pos = 0
            while pos < k:
                if self.left:
                    take = min(self.left, k - pos, n - got if self.is_data else k)
                    if self.is_data:
                        if collect:
                            out += self.rmv[pos:pos + take]
                        got += take
                    self.left -= take
                    pos += take
                    if got >= n and pos < k:
                        self.pending = bytes(self.rmv[pos:k])
                        return out
                    continue
                chunk = bytes(self.rmv[pos:min(k, pos + 14)])
                cand = self.hdr + chunk
                r = _parse_hdr(cand)
                if r is None:
                    self.hdr = cand
                    pos = k
                    continue
                hl, op, ln = r
                pos += hl - len(self.hdr)
                self.hdr = b""
                if op == 8:
                    raise ConnectionError("websocket close frame received")
                self.is_data = op in (0, 1, 2)
                self.left = ln
                if got >= n and ln == 0:
                    if pos < k:
                        self.pending = bytes(self.rmv[pos:k])
                    return out
            if got >= n:
                return out
        return out

    def close(self):
        try:
            if not self.raw:
                # close frame, code 1000
                self.s.sendall(self.frame_close())
            self.s.close()
        except OSError:
            pass

    def frame_close(self):
        p = struct.pack("!H", 1000)
        m = self.mask
        return bytes([0x88, 0x80 | len(p)]) + m + bytes(b ^ m[i % 4] for i, b in enumerate(p))


def _parse_hdr(h):
    if len(h) < 2:
        return None
    b1, b2 = h[0], h[1]
    ln = b2 & 0x7F
    hl = 2 + (2 if ln == 126 else 8 if ln == 127 else 0) + (4 if b2 & 0x80 else 0)
    if len(h) < hl:
        return None
    if ln == 126:
        ln = int.from_bytes(h[2:4], "big")
    elif ln == 127:
        ln = int.from_bytes(h[2:10], "big")
    return hl, b1 & 0x0F, ln


# --------------------------------------------------------------------------- /proc sampling
def _children_map():
    m = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            m.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError):
            pass
    return m


def proc_tree(pid):
    if not pid:
        return []
    m = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(m.get(p, []))
    return out


def cpu_seconds(pid):
    """utime+stime+cutime+cstime (s) summed over pid and its live descendants.
    Including the reaped-children fields keeps the total consistent when a
    per-connection child (websockify, socat fork) exits and is reaped between samples."""
    tck = os.sysconf("SC_CLK_TCK")
    tot = 0
    for p in proc_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
            v = st[st.rindex(")") + 2:].split()
            tot += int(v[11]) + int(v[12]) + int(v[13]) + int(v[14])
        except (OSError, ValueError):
            pass
    return tot / tck


def mem_sample(pid):
    procs = threads = fds = 0
    rss = pss = uss = anon = 0
    for p in proc_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("Threads:"):
                        threads += int(line.split()[1])
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k == "Rss":
                        rss += int(v.split()[0])
                    elif k == "Pss":
                        pss += int(v.split()[0])
                    elif k == "Pss_Anon":
                        anon += int(v.split()[0])
                    elif k in ("Private_Clean", "Private_Dirty"):
                        uss += int(v.split()[0])
            fds += len(os.listdir(f"/proc/{p}/fd"))
            procs += 1
        except OSError:
            pass
    with open("/proc/meminfo") as f:
        mi = {l.split(":")[0]: int(l.split()[1]) for l in f}
    return {"procs": procs, "threads": threads, "fds": fds, "rss_kib": rss, "pss_kib": pss, "pss_anon_kib": anon,
            "uss_kib": uss, "sys_used_kib": mi["MemTotal"] - mi["MemAvailable"]}


def _cpu_self():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# --------------------------------------------------------------------------- tests
def cmd_s2c(a):
    c = Conn(a, rbufsize=1 << 20)
    c.send(f"SRC {a.bytes} {a.chunk}\n".encode())
    # The clock starts at the first byte: a driver's handshake after the upgrade (TLS to the
    # console, a serial settle window) is set-up, measured by connrate, not throughput.
    c.read_payload(1)
    p0, u0, t0 = cpu_seconds(a.pid), _cpu_self(), time.perf_counter()
    deadline = t0 + a.max_seconds
    got, step = 1, 64 << 20
    while got < a.bytes:
        c.read_payload(min(step, a.bytes - got))
        got += min(step, a.bytes - got)
        if time.perf_counter() > deadline:
            break
    dt = time.perf_counter() - t0
    p1, u1 = cpu_seconds(a.pid), _cpu_self()
    c.close()
    return {"test": "s2c", "bytes": got, "complete": got == a.bytes, "secs": dt,
            "MBps": got / dt / 1e6, "proxy_cpu_s": p1 - p0 if a.pid else None,
            "proxy_cpu_s_per_GB": (p1 - p0) / (got / 1e9) if a.pid else None,
            "client_cpu_s": u1 - u0}


def cmd_c2s(a):
    c = Conn(a, rbufsize=1 << 16)
    c.send(f"SINK {a.bytes} R\n".encode())
    c.read_payload(1)              # backend ready: the relay runs (see cmd_s2c)
    fr = c.frame(os.urandom(a.chunk))
    p0, u0, t0 = cpu_seconds(a.pid), _cpu_self(), time.perf_counter()
    deadline = t0 + a.max_seconds
    sent = 0
    while sent < a.bytes:
        if a.bytes - sent < a.chunk:
            fr = c.frame(os.urandom(a.bytes - sent))
        c.s.sendall(fr)
        sent += min(a.chunk, a.bytes - sent)
        if (sent & 0xFFFFFF) == 0 and time.perf_counter() > deadline:
            break
    complete = sent == a.bytes
    if complete:
        c.s.settimeout(a.max_seconds)
        c.read_payload(1)          # backend "K": all bytes arrived at the backend
    dt = time.perf_counter() - t0
    p1, u1 = cpu_seconds(a.pid), _cpu_self()
    c.close()
    return {"test": "c2s", "bytes": sent, "complete": complete, "secs": dt,
            "MBps": sent / dt / 1e6, "proxy_cpu_s": p1 - p0 if a.pid else None,
            "proxy_cpu_s_per_GB": (p1 - p0) / (sent / 1e9) if a.pid else None,
            "client_cpu_s": u1 - u0}


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def cmd_lat(a):
    c = Conn(a)
    c.send(b"ECHO\n")
    payload = bytes((i * 7 + 1) & 0xFF for i in range(a.size))
    fr = c.frame(payload)
    sendall, read, pc = c.s.sendall, c.read_payload, time.perf_counter_ns
    # check correctness once
    sendall(fr)
    if bytes(read(a.size, collect=True)) != payload:
        raise RuntimeError("echo payload mismatch")
    for _ in range(a.warmup):
        sendall(fr)
        read(a.size)
    res = []
    p0, t0 = cpu_seconds(a.pid), time.perf_counter()
    deadline = t0 + a.max_seconds
    for i in range(a.n):
        t = pc()
        sendall(fr)
        read(a.size)
        res.append(pc() - t)
        if (i & 1023) == 0 and time.perf_counter() > deadline:
            break
    dt = time.perf_counter() - t0
    p1 = cpu_seconds(a.pid)
    c.close()
    us = [x / 1000 for x in res]
    return {"test": "lat", "size": a.size, "n": len(us), "p50_us": _pct(us, .5), "p90_us": _pct(us, .9),
            "p99_us": _pct(us, .99), "p999_us": _pct(us, .999), "mean_us": statistics.fmean(us),
            "max_us": max(us), "secs": dt,
            "proxy_cpu_us_per_rt": (p1 - p0) / len(us) * 1e6 if a.pid else None}


def _one_conn(a):
    t = time.perf_counter()
    c = Conn(a, timeout=a.conn_timeout)
    c.send(b"ECHO\nx")
    c.read_payload(1)
    dt = time.perf_counter() - t
    c.close()
    return dt


def _conn_worker(a, count, deadline, q):
    lat, errs, first = [], 0, None
    for _ in range(count):
        if time.perf_counter() > deadline:
            break
        try:
            lat.append(_one_conn(a))
        except (OSError, ConnectionError) as e:
            errs += 1
            first = first or repr(e)[:200]
            if errs > 20:
                break
    q.put((lat, errs, first))


def cmd_connrate(a):
    import multiprocessing as mp
    p0, t0 = cpu_seconds(a.pid), time.perf_counter()
    deadline = t0 + a.max_seconds
    if a.parallel <= 1:
        import queue
        q = queue.Queue()
        _conn_worker(a, a.n, deadline, q)
        results = [q.get()]
    else:
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        per = [a.n // a.parallel + (1 if i < a.n % a.parallel else 0) for i in range(a.parallel)]
        ps = [ctx.Process(target=_conn_worker, args=(a, per[i], deadline, q)) for i in range(a.parallel)]
        for p in ps:
            p.start()
        results = [q.get(timeout=a.max_seconds + 60) for _ in ps]
        for p in ps:
            p.join(10)
    dt = time.perf_counter() - t0
    p1 = cpu_seconds(a.pid)
    lat = [x * 1e6 for r in results for x in r[0]]
    errs = sum(r[1] for r in results)
    firsts = [r[2] for r in results if r[2]]
    return {"test": "connrate", "parallel": a.parallel, "n_ok": len(lat), "errors": errs,
            "first_error": firsts[0] if firsts else None,
            "secs": dt, "conn_per_s": len(lat) / dt,
            "p50_us": _pct(lat, .5) if lat else None, "p99_us": _pct(lat, .99) if lat else None,
            "proxy_cpu_ms_per_conn": (p1 - p0) / max(1, len(lat)) * 1e3 if a.pid else None}


def cmd_idle(a):
    """Opens idle sessions in stages up to --n (or until the proxy refuses), sampling the proxy's
    memory at each --checkpoints value, then closes them all and samples again."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.n + 1000), hard))
    # Warm baseline: the proxy has served a few sessions (code paths paged in, first
    # allocations made), so "after close" compares like with like.
    for _ in range(a.warm):
        try:
            c = Conn(a, timeout=a.conn_timeout)
            c.send(b"ECHO\nx")
            c.read_payload(1)
            c.close()
        except (OSError, ConnectionError):
            pass
    time.sleep(a.settle)
    before = mem_sample(a.pid)
    conns, errs, lock, first_err = [], [0], threading.Lock(), []
    t0 = time.perf_counter()
    deadline = t0 + a.max_seconds
    stages = sorted({int(x) for x in a.checkpoints.split(",") if x and int(x) < a.n} | {a.n})
    samples = {}

    def opener(k):
        mine = []
        for _ in range(k):
            if time.perf_counter() > deadline or errs[0] > 20:
                break
            try:
                c = Conn(a, timeout=a.conn_timeout)
                c.send(b"ECHO\nx")
                c.read_payload(1)
                mine.append(c)
            except (OSError, ConnectionError) as e:
                with lock:
                    errs[0] += 1
                    if not first_err:
                        first_err.append("%s after %d open" % (repr(e)[:200], len(conns) + len(mine)))
        with lock:
            conns.extend(mine)

    for target in stages:
        want = target - len(conns)
        if want <= 0 or errs[0] > 20 or time.perf_counter() > deadline:
            break
        par = min(a.parallel, want)
        th = [threading.Thread(target=opener, args=(want // par + (1 if i < want % par else 0),))
              for i in range(par)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        if len(conns) >= target:
            time.sleep(a.settle)
            samples[target] = mem_sample(a.pid)
    t_open = time.perf_counter() - t0
    time.sleep(a.settle)
    during = mem_sample(a.pid)
    # every connection still relays?  probe a sample of them
    alive = 0
    probe = conns[:: max(1, len(conns) // 50)]
    for c in probe:
        try:
            c.send(b"y")
            c.read_payload(1)
            alive += 1
        except (OSError, ConnectionError):
            pass
    t1 = time.perf_counter()
    for c in conns:
        c.close()
    t_close = time.perf_counter() - t1
    # sessions end asynchronously: wait (bounded) for the proxy's threads/fds to drop back
    t2 = time.perf_counter()
    after = mem_sample(a.pid)
    while time.perf_counter() - t2 < a.settle * 5 and after["fds"] > before["fds"] + 2:
        time.sleep(0.25)
        after = mem_sample(a.pid)
    time.sleep(a.settle)
    after = mem_sample(a.pid)
    n = max(1, len(conns))
    d = {k: during[k] - before[k] for k in before}
    r = {"test": "idle", "n_req": a.n, "n_open": len(conns), "errors": errs[0],
         "first_error": first_err[0] if first_err else None,
         "probe_alive": f"{alive}/{len(probe)}", "open_secs": t_open, "close_secs": t_close,
         "before": before, "during": during, "after_close": after, "checkpoints": samples,
         "per_conn_rss_kib": d["rss_kib"] / n, "per_conn_pss_kib": d["pss_kib"] / n,
         "per_conn_uss_kib": d["uss_kib"] / n, "per_conn_sys_kib_all3": d["sys_used_kib"] / n,
         "threads_during": during["threads"], "procs_during": during["procs"],
         "fds_during": during["fds"],
         "after_close_pss_kib": after["pss_kib"], "before_pss_kib": before["pss_kib"],
         # None when the proxy could not be sampled (procs == 0), never a false 0
         "after_close_over_baseline": after["pss_kib"] / before["pss_kib"]
         if after["procs"] and before["pss_kib"] else None,
         "after_close_anon_over_baseline": after["pss_anon_kib"] / before["pss_anon_kib"]
         if after["procs"] and before["pss_anon_kib"] else None}
    for k, m in samples.items():
        r[f"pss_kib_per_conn_at_{k}"] = (m["pss_kib"] - before["pss_kib"]) / k
    return r


def _recv_exact(c, n):
    return bytes(c.read_payload(n, collect=True))


def cmd_vncsetup(a):
    """RFB 3.8 session set-up through the proxy, as a browser does it after the proxy terminated
    the server's security: version, security type None (1), SecurityResult, ClientInit,
    ServerInit. Counts sessions per second and the proxy's CPU per session."""
    p0, t0 = cpu_seconds(a.pid), time.perf_counter()
    deadline = t0 + a.max_seconds
    lat, errs, first = [], 0, None
    for _ in range(a.n):
        if time.perf_counter() > deadline or errs > 5:
            break
        t = time.perf_counter()
        c = None
        try:
            c = Conn(a, timeout=a.conn_timeout)
            version = _recv_exact(c, 12)
            if not version.startswith(b"RFB "):
                raise ConnectionError("not RFB: %r" % version)
            c.send(b"RFB 003.008\n")
            ntypes = _recv_exact(c, 1)[0]
            if ntypes == 0:
                ln = int.from_bytes(_recv_exact(c, 4), "big")
                raise ConnectionError("refused: %r" % _recv_exact(c, ln))
            types = _recv_exact(c, ntypes)
            if 1 not in types:
                raise ConnectionError("no None security offered: %r" % types)
            c.send(b"\x01")
            if _recv_exact(c, 4) != b"\0\0\0\0":
                raise ConnectionError("security failed")
            c.send(b"\x01")                      # ClientInit, shared
            head = _recv_exact(c, 24)             # w, h, pixel format, name length
            _recv_exact(c, int.from_bytes(head[20:24], "big"))
            lat.append(time.perf_counter() - t)
        except (OSError, ConnectionError) as e:
            errs += 1
            first = first or repr(e)[:200]
        finally:
            if c is not None:
                c.close()
    dt = time.perf_counter() - t0
    p1 = cpu_seconds(a.pid)
    us = [x * 1e6 for x in lat]
    return {"test": "vncsetup", "n_ok": len(us), "errors": errs, "first_error": first, "secs": dt,
            "sessions_per_s": len(us) / dt, "p50_us": _pct(us, .5) if us else None,
            "p99_us": _pct(us, .99) if us else None,
            "proxy_cpu_ms_per_session": (p1 - p0) / max(1, len(us)) * 1e3 if a.pid else None}


# --------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("backend")
    b.add_argument("--host", default="127.0.0.1")
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--cert")
    b.add_argument("--key")
    b.add_argument("--ca", help="CA that signs client certificates (verified when sent)")
    b.add_argument("--tls-tickets", type=int, default=2, help="TLS 1.3 session tickets sent (OpenSSL default 2)")

    def common(p):
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, required=True, help="proxy listen port (or backend with --raw)")
        p.add_argument("--path", default="/?token=bench")
        p.add_argument("--raw", action="store_true")
        p.add_argument("--tls", action="store_true")
        p.add_argument("--subproto", default="")
        p.add_argument("--pid", type=int, default=0)
        p.add_argument("--max-seconds", type=float, default=60.0)
        p.add_argument("--conn-timeout", type=float, default=10.0)
        return p

    p = common(sub.add_parser("s2c"))
    p.add_argument("--bytes", type=int, default=1 << 30)
    p.add_argument("--chunk", type=int, default=1 << 16)
    p = common(sub.add_parser("c2s"))
    p.add_argument("--bytes", type=int, default=1 << 30)
    p.add_argument("--chunk", type=int, default=1 << 16)
    p = common(sub.add_parser("lat"))
    p.add_argument("--size", type=int, default=1)
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--warmup", type=int, default=1000)
    p = common(sub.add_parser("connrate"))
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--parallel", type=int, default=1)
    p = common(sub.add_parser("idle"))
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--parallel", type=int, default=8)
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--checkpoints", default="1000,5000", help="session counts at which memory is sampled")
    p.add_argument("--warm", type=int, default=20, help="sessions opened and closed before the baseline")
    p = common(sub.add_parser("vncsetup"))
    p.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    if a.cmd == "backend":
        return cmd_backend(a)
    r = {"s2c": cmd_s2c, "c2s": cmd_c2s, "lat": cmd_lat, "connrate": cmd_connrate, "idle": cmd_idle,
         "vncsetup": cmd_vncsetup}[a.cmd](a)
    r["mode"] = ("raw" if a.raw else "ws") + ("+tls" if a.tls else "")
    if a.tls and a.cmd != "backend":
        try:
            c = Conn(a)
            r["tls_cipher"] = "%s %s" % c.s.cipher()[:2]
            c.close()
        except (OSError, ConnectionError):
            pass
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
