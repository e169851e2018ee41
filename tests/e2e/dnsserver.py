"""dnsserver: a real DNS server (dnsmasq) on a loopback address, for tests that resolve MX.

    dns = DNSServer()
    addr, port = dns.start([
        "example.test MX 10 mx1.example.test",
        "example.test MX 20 mx2.example.test",
        "mx1.example.test A 127.0.0.11",
        "mx2.example.test AAAA ::1",
        "nomail.test MX 0 .",            # a null MX (RFC 7505)
        "alias.test CNAME mx1.example.test",
        "notes.test TXT hello",          # a name that exists with no MX and no address
        "broken.test SERVFAIL",          # every name under broken.test answers SERVFAIL
        "slow.test TIMEOUT",             # every name under slow.test is never answered
    ])
    conf.dns_resolver = dns.resolver      # "127.0.0.x:port" (or "[::1]:port")
    ...
    dns.queries("example.test", "MX")     # how many such questions dnsmasq was asked
    dns.stop()

dnsmasq runs in the foreground with --no-resolv --no-hosts and a generated --conf-file, so it
never reads /etc/resolv.conf, /etc/hosts or /etc/dnsmasq.conf and never asks the outside
world. Names under the test zones (default: "test") that have no record are NXDOMAIN. A
SERVFAIL zone is forwarded to a tiny upstream in this process that answers SERVFAIL to
everything (dnsmasq passes it on); a TIMEOUT zone is forwarded to a UDP port nobody answers.
silent_udp_port() gives such a port for a test that points the resolver itself at it.
Only loopback addresses are used. Every process and socket is released by stop().
"""
import os
import random
import socket
import struct
import subprocess
import tempfile
import threading
import time

DNSMASQ = os.environ.get("YUBIN_DNSMASQ", "/usr/sbin/dnsmasq")
TYPES = {"A": 1, "MX": 15, "TXT": 16, "AAAA": 28}


def _free_port(addr):
    """A port free for both UDP and TCP on addr."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as u:
            u.bind((addr, 0))
            port = u.getsockname()[1]
            try:
                with socket.socket(family, socket.SOCK_STREAM) as t:
                    t.bind((addr, port))
                    return port
            except OSError:
                continue
    raise RuntimeError(f"no free port on {addr}")


def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def query(addr, port, name, qtype="A", timeout=2.0):
    """Asks one question over UDP; returns the rcode, or None if nothing answered."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    qid = random.randrange(65536)
    pkt = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    pkt += _encode_name(name) + struct.pack(">HH", TYPES[qtype], 1)
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(pkt, (addr, port))
        try:
            data = s.recv(4096)
        except OSError:
            return None
    if len(data) < 12 or struct.unpack(">H", data[:2])[0] != qid:
        return None
    return struct.unpack(">H", data[2:4])[0] & 0xF


class _Responder:
    """A UDP socket on loopback that answers every question with SERVFAIL, or (silent=True)
    reads nothing and never answers."""

    def __init__(self, silent=False, addr="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, 0))
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = None
        if not silent:
            self.sock.settimeout(0.2)
            self.thread = threading.Thread(target=self._serve, daemon=True)
            self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 12:
                continue
            qid, flags = struct.unpack(">HH", data[:4])
            rd = flags & 0x0100
            # Header: same id, QR, opcode 0, RD copied, RA, rcode 2; question echoed.
            head = struct.pack(">HHHHHH", qid, 0x8000 | rd | 0x0080 | 2, 1, 0, 0, 0)
            end = data.find(b"\0", 12)
            if end < 0 or end + 5 > len(data):
                continue
            try:
                self.sock.sendto(head + data[12:end + 5], peer)
            except OSError:
                pass

    def close(self):
        self.stopping = True
        if self.thread:
            self.thread.join(timeout=2)
        self.sock.close()


def silent_udp_port(addr="127.0.0.1"):
    """A bound UDP socket that never answers: (socket, port). Close the socket when done."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    return s, s.getsockname()[1]


class DNSServer:
    """dnsmasq serving the given records on 127.0.0.x (or ::1). Reusable: start(), stop()."""

    def __init__(self, zones=("test",)):
        self.zones = tuple(zones)
        self.proc = None
        self.addr = self.port = None
        self.dir = None
        self.responders = []

    @property
    def resolver(self):
        """The dns_resolver value for yubin.conf."""
        return f"[{self.addr}]:{self.port}" if ":" in self.addr else f"{self.addr}:{self.port}"

    def _conf_lines(self, records):
        lines = ["no-resolv", "no-hosts", "pid-file=", "cache-size=0", "log-queries",
                 "bind-interfaces"]
        lines += [f"local=/{z}/" for z in self.zones]
        hosts = {}
        for rec in records:
            parts = rec.split()
            name, rtype, rest = parts[0].rstrip(".").lower(), parts[1].upper(), parts[2:]
            if rtype == "MX":
                pref, target = int(rest[0]), rest[1]
                if target == ".":
                    lines.append(f"dns-rr={name},15,{pref:04x}00")
                else:
                    lines.append(f"mx-host={name},{target.rstrip('.')},{pref}")
            elif rtype in ("A", "AAAA"):
                hosts.setdefault(name, []).append(rest[0])
            elif rtype == "CNAME":
                lines.append(f"cname={name},{rest[0].rstrip('.')}")
            elif rtype == "TXT":
                lines.append(f"txt-record={name},{' '.join(rest)}")
            elif rtype in ("SERVFAIL", "TIMEOUT"):
                r = _Responder(silent=(rtype == "TIMEOUT"))
                self.responders.append(r)
                lines.append(f"server=/{name}/127.0.0.1#{r.port}")
            else:
                raise ValueError(f"dnsserver: unknown record type in {rec!r}")
        lines += [f"host-record={n},{','.join(a)}" for n, a in hosts.items()]
        return lines

    def start(self, records=(), addr=None, timeout=10.0):
        """Starts dnsmasq with records; returns (addr, port) once it answers."""
        if self.proc:
            raise RuntimeError("dnsserver: already started")
        self.addr = addr or f"127.0.0.{random.randrange(100, 250)}"
        self.port = _free_port(self.addr)
        self.dir = tempfile.mkdtemp(prefix="yubin-dns-")
        conf = os.path.join(self.dir, "dnsmasq.conf")
        with open(conf, "w") as f:
            f.write("\n".join(self._conf_lines(records)) + "\n")
        self.log_path = os.path.join(self.dir, "dnsmasq.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [DNSMASQ, "--keep-in-foreground", "--log-facility=-", f"--conf-file={conf}",
             f"--listen-address={self.addr}", f"--port={self.port}"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + timeout
        probe = f"dnsserver-ready.{self.zones[0]}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"dnsmasq exited: {self.log_text()[-2000:]}")
            if query(self.addr, self.port, probe, "A", timeout=0.2) is not None:
                return self.addr, self.port
        self.stop()
        raise RuntimeError("dnsmasq did not answer in time")

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except (OSError, AttributeError):
            return ""

    def queries(self, name, qtype):
        """How many times dnsmasq was asked (name, qtype)."""
        needle = f"query[{qtype}] {name.rstrip('.')} from".lower()
        return sum(1 for line in self.log_text().splitlines() if needle in line.lower())

    def stop(self):
        if self.proc:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            self.proc = None
            self.log.close()
        for r in self.responders:
            r.close()
        self.responders = []
        if self.dir:
            for name in os.listdir(self.dir):
                os.unlink(os.path.join(self.dir, name))
            os.rmdir(self.dir)
            self.dir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
