"""test_connlimit: a burst cannot switch a service off, and one address cannot take them all.

smtp-in and pop3-in run under openbsd-inetd with the wait/max field of the shipped
inetd/inetd.conf (the build's; openbsd-inetd stops a service for ten minutes when it is
started more than N times a minute, and the old nowait.1000 let 1,100 quick connections from
one client switch POP3 off). A burst of 1,100 quick POP3 sessions from one client must all
be served, and the service must answer afterwards.

max_connections_per_client (lib/connlimit: a flock'd slot file per session under
state_dir/conn/) is set to 3: a fourth connection from the same address gets 421 4.7.0 (SMTP)
or -ERR (POP3) and is closed before any greeting, another address is not affected, a slot is
free again when its session ends or its handler is killed with SIGKILL, and no slot file is
left once every session has ended. Only 127.0.0.0/8 is used.
"""
import concurrent.futures
import os
import re
import signal
import socket
import time
import unittest

import yubintest

DEMO = "demo@example.test"


def shipped_wait_field(service):
    """The wait/max field of SERVICE's line in the build's inetd/inetd.conf."""
    with open(os.path.join(yubintest.BUILD, "inetd", "inetd.conf")) as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] == service:
                return fields[3]
    raise AssertionError(f"no {service} line in inetd/inetd.conf")


class Site(unittest.TestCase):
    LIMIT = "3"

    def setUp(self):
        self.site = yubintest.Instance(users=(DEMO,), conf={
            "max_connections_per_client": self.LIMIT})
        self.addCleanup(self.site.stop)
        self.ports = {name: self.serve(name) for name in ("smtp-in", "pop3-in")}
        self.socks = []
        self.addCleanup(lambda: [s.close() for s in self.socks])

    def serve(self, name):
        """NAME under openbsd-inetd on a free port, with the shipped wait/max field."""
        return self.site.serve_inetd(
            name, wait=shipped_wait_field("smtp" if name == "smtp-in" else "pop3"))

    def greeting(self, name, source="127.0.0.1", keep=True):
        """Connects to NAME from SOURCE; returns (first line, socket or None)."""
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(20)
        s.connect(("127.0.0.1", self.ports[name]))
        line = s.makefile("rb").readline()
        if keep:
            self.socks.append(s)
            return line, s
        s.close()
        return line, None

    def slot_files(self):
        d = os.path.join(self.site.state_dir, "conn")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def eventually(self, cond, what, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.05)
        self.fail(what)


class PerClient(Site):
    def hold(self, name, n):
        socks = []
        for _ in range(n):
            line, s = self.greeting(name)
            self.assertTrue(line.startswith(b"220 " if name == "smtp-in" else b"+OK"), line)
            socks.append(s)
        return socks

    def test_smtp_fourth_connection_gets_421(self):
        held = self.hold("smtp-in", 3)
        line, s = self.greeting("smtp-in")
        self.assertTrue(line.startswith(b"421 4.7.0 "), line)
        self.assertIn(b"too many connections", line)
        self.assertEqual(s.recv(100), b"", "closed after the 421")
        self.eventually(lambda: any("client=127.0.0.1 refused: max_connections_per_client (3)"
                                    in l for l in self.site.syslog.lines()), "no log line")
        held[0].close()  # its session ends: the slot is free again
        self.eventually(lambda: self.greeting("smtp-in", keep=False)[0].startswith(b"220 "),
                        "a freed slot is not taken again")

    def test_pop3_fourth_connection_gets_err(self):
        self.hold("pop3-in", 3)
        line, s = self.greeting("pop3-in")
        self.assertTrue(line.startswith(b"-ERR [SYS/TEMP] too many connections"), line)
        self.assertEqual(s.recv(100), b"")

    def test_under_systemd_too(self):
        self.ports["systemd"] = self.site.serve_systemd("smtp-in")
        for _ in range(3):
            self.assertTrue(self.greeting("systemd")[0].startswith(b"220 "))
        self.assertTrue(self.greeting("systemd")[0].startswith(b"421 4.7.0 "))

    def test_another_address_is_not_affected(self):
        self.hold("smtp-in", 3)
        line, _ = self.greeting("smtp-in", source="127.0.0.3")
        self.assertTrue(line.startswith(b"220 "), line)

    def test_killed_handler_frees_its_slot(self):
        self.hold("smtp-in", 3)
        def pids():
            return sorted({int(m.group(1)) for l in self.site.syslog.lines()
                           for m in [re.search(r"smtp-in\[(\d+)\]: connect from 127\.0\.0\.1",
                                               l)] if m and os.path.exists(f"/proc/{m.group(1)}")})
        self.eventually(lambda: len(pids()) == 3, f"three live sessions: {pids()}")
        os.kill(pids()[0], signal.SIGKILL)
        self.eventually(lambda: self.greeting("smtp-in", keep=False)[0].startswith(b"220 "),
                        "the killed handler's slot stays taken")

    def test_no_slot_file_is_left(self):
        for s in self.hold("smtp-in", 2) + self.hold("pop3-in", 1):
            self.assertGreaterEqual(len(self.slot_files()), 1)
            s.sendall(b"QUIT\r\n")
            s.makefile("rb").readline()
            s.close()
        self.eventually(lambda: self.slot_files() == [],
                        f"slot files left: {self.slot_files()}")


class Burst(Site):
    LIMIT = "20"  # the default
    N = 1100      # more than the old nowait.1000 allowed in a minute

    def session(self, _):
        with socket.create_connection(("127.0.0.1", self.ports["pop3-in"]), timeout=30) as s:
            f = s.makefile("rb")
            if not f.readline().startswith(b"+OK"):
                return False
            s.sendall(b"QUIT\r\n")
            return f.readline().startswith(b"+OK")

    def test_burst_cannot_switch_pop3_off(self):
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            ok = sum(pool.map(self.session, range(self.N)))
        took = time.monotonic() - start
        self.assertEqual(ok, self.N, f"{self.N - ok} of {self.N} sessions got no +OK")
        self.assertTrue(self.session(0), "POP3 switched off after the burst")
        print(f"# {self.N} POP3 sessions under openbsd-inetd in {took:.1f} s")


if __name__ == "__main__":
    unittest.main()
