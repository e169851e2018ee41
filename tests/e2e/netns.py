"""netns: separate hosts for end-to-end tests, made of Linux network namespaces.

    net = Network("10.253.0", "fd00:253::")  # names are unique per process (pid)
    net.add_host("dns", 2)               # eth0 = 10.253.0.2/24 and fd00:253::2/64, lo up
    net.add_host("a", 10)
    with net.enter("a"):                 # sockets and child processes made in here live in "a"
        smtplib.SMTP("10.253.0.10", 25)
    net.run("a", ["mailq", ...])         # ip netns exec <ns of a> mailq ...
    net.close()                          # kills what runs inside, removes every namespace

The hosts hang off a bridge in a hub namespace of their own by veth pairs that are created
directly inside the namespaces, so nothing is ever added to, or reachable from, the machine's
own network namespace: no interface, no route, no address. Addresses are private (RFC 1918 by
default) and exist only inside these namespaces. close() is safe to call more than once and
after a failure half-way through; it removes namespaces left over by an earlier run of the
same pid as well.
"""
import contextlib
import ctypes
import os
import re
import signal
import subprocess
import threading
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args, check=True):
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and p.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {p.stderr.strip()}")
    return p


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def enter(ns):
    """Runs the block with this thread in the named network namespace (/run/netns/NS):
    sockets opened and processes started inside stay there; the thread returns to its
    original namespace afterwards, also on an exception."""
    own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


def unavailable():
    """None when namespaces with veth pairs can be made here, else the reason why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    name = f"ybprobe{os.getpid()}"
    try:
        p = _ip("netns", "add", name, check=False)
        if p.returncode != 0:
            return f"ip netns add failed: {p.stderr.strip()}"
        p = _ip("-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
                check=False)
        if p.returncode != 0:
            return f"no veth pairs in a namespace: {p.stderr.strip()}"
        return None
    except (OSError, subprocess.SubprocessError) as e:
        return f"ip: {e}"
    finally:
        _ip("netns", "del", name, check=False)


class Network:
    """A /24 with hosts on one bridge, all in namespaces named yb<pid>-<host>."""

    def __init__(self, prefix="10.253.0", prefix6=None, tag="t"):
        self.prefix, self.prefix6 = prefix, prefix6
        self.base = f"yb{os.getpid()}{tag}"
        self.hub = f"{self.base}-hub"
        self.hosts = {}  # name -> (namespace, address)
        self.cleanup_stale()
        _ip("netns", "add", self.hub)
        self.namespaces = [self.hub]
        _ip("-n", self.hub, "link", "set", "lo", "up")
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")

    def cleanup_stale(self):
        """Removes namespaces left behind by an earlier run: of this name base, or of a
        test process (yb<pid>...) that no longer exists."""
        p = _ip("netns", "list", check=False)
        for line in p.stdout.splitlines():
            ns = line.split()[0] if line.split() else ""
            m = re.match(r"yb(?:probe)?(\d+)", ns)
            if not m:
                continue
            if ns.startswith(self.base + "-") or not os.path.exists(f"/proc/{m.group(1)}"):
                self._kill_inside(ns)
                _ip("netns", "del", ns, check=False)

    def ns(self, host):
        return self.hosts[host][0]

    def addr(self, host):
        return self.hosts[host][1]

    def addr6(self, host):
        return self.prefix6 + self.hosts[host][1].rsplit(".", 1)[1]

    def add_host(self, host, octet):
        """A namespace for host with eth0 = prefix.octet/24 (and prefix6 + octet/64, without
        duplicate address detection, so it is usable at once) on the bridge; returns the
        IPv4 address."""
        ns = f"{self.base}-{host}"
        addr = f"{self.prefix}.{octet}"
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        port = f"p-{host}"[:15]
        _ip("link", "add", "name", "eth0", "netns", ns, "type", "veth", "peer", "name", port,
            "netns", self.hub)
        _ip("-n", self.hub, "link", "set", port, "master", "br0")
        _ip("-n", self.hub, "link", "set", port, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        if self.prefix6:
            _ip("-n", ns, "addr", "add", f"{self.prefix6}{octet}/64", "dev", "eth0", "nodad")
        _ip("-n", ns, "link", "set", "eth0", "up")
        self.hosts[host] = (ns, addr)
        return addr

    def enter(self, host):
        """Runs the block with this thread in host's network namespace (see enter())."""
        return enter(self.ns(host))

    def argv(self, host, argv):
        return ["ip", "netns", "exec", self.ns(host), *argv]

    def run(self, host, argv, **kw):
        kw.setdefault("timeout", 60)
        return subprocess.run(self.argv(host, argv), **kw)

    def wait_port(self, host, addr, port, timeout=10.0):
        import socket
        deadline = time.monotonic() + timeout
        with self.enter(host):
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection((addr, port), timeout=1):
                        return
                except OSError:
                    time.sleep(0.05)
        raise RuntimeError(f"nothing listens on {addr}:{port} in {host}")

    @staticmethod
    def _pids(ns):
        p = _ip("netns", "pids", ns, check=False)
        return [int(x) for x in p.stdout.split() if x.isdigit()]

    def _kill_inside(self, ns):
        """SIGKILLs every process left in namespace ns (all of them were started by this
        test: nothing else runs in a namespace it made) and waits until they are gone."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self._pids(ns)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 3
            while self._pids(ns) and time.monotonic() < deadline:
                time.sleep(0.05)

    def close(self):
        for ns in reversed(getattr(self, "namespaces", [])):
            self._kill_inside(ns)
            _ip("netns", "del", ns, check=False)
        self.namespaces = []
        self.hosts = {}
