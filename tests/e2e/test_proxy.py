"""test_proxy: a front end on loopback never makes yubin a relay, and the PROXY protocol v2.

smtp-in runs under openbsd-inetd on 127.0.0.1 with the default relay_networks and
submit_networks (both empty). A small TCP forwarder written here stands for a TLS proxy,
haproxy or a content filter in front: every client it forwards reaches smtp-in from
127.0.0.1. Through it an unauthenticated client can relay neither on port 25 nor on the
submission port (before relay_networks stopped listing loopback, both did).

Then proxy_networks names 127.0.0.2 as a trusted proxy: the forwarder connects from
127.0.0.2 and sends a PROXY v2 header (haproxy's send-proxy-v2) naming the real client. The
log and the Received header show that client, and relay_networks is checked against it. A
header from a peer that is not in proxy_networks, or a malformed one, is refused: the
connection is closed with no greeting and a log line. Only 127.0.0.0/8 is used.
"""
import smtplib
import socket
import struct
import threading
import time
import unittest

import yubintest

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
DEMO = "demo@example.test"
PROXY_ADDR = "127.0.0.2"


def v2_header(src, sport=40000, dst="127.0.0.1", dport=25, command=0x21):
    """A PROXY v2 header for TCP over IPv4 (command 0x21 PROXY, 0x20 LOCAL)."""
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return SIG + bytes([command, 0x11]) + struct.pack("!H", len(body)) + body


class Forwarder:
    """Listens on 127.0.0.1; each connection is forwarded to target, from source (an address
    to bind), after header(client_address) if given: a proxy in front of smtp-in."""

    def __init__(self, target, source="127.0.0.1", header=None):
        self.target, self.source, self.header = target, source, header
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.socks = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, addr = self.listener.accept()
            except OSError:
                return
            server = socket.socket()
            server.bind((self.source, 0))
            server.connect(self.target)
            if self.header is not None:
                server.sendall(self.header(addr))
            self.socks += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.listener.close()
        for s in self.socks:
            s.close()


class Site(unittest.TestCase):
    CONF = {}

    def setUp(self):
        self.site = yubintest.Instance(users=(DEMO,), conf={"smarthost": "127.0.0.1:1",
                                                            **self.CONF})
        self.addCleanup(self.site.stop)
        self.port25 = self.site.serve_inetd("smtp-in")
        self.port587 = self.site.serve_inetd("smtp-in", "-s")
        self.port110 = self.site.serve_inetd("pop3-in")

    def forward(self, port, **kw):
        f = Forwarder(("127.0.0.1", port), **kw)
        self.addCleanup(f.close)
        return f.port

    def log(self):
        return "\n".join(self.site.syslog.lines())

    def wait_log(self, *parts, timeout=10):
        """Waits for a log line that holds every one of parts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(all(p in l for p in parts) for l in self.site.syslog.lines()):
                return
            time.sleep(0.05)
        self.fail(f"no log line with {parts!r}:\n{self.log()}")


class LoopbackFrontEnd(Site):
    """The defaults: relay_networks and submit_networks empty, no proxy trusted."""

    def test_loopback_proxy_cannot_relay_on_25(self):
        with smtplib.SMTP("127.0.0.1", self.forward(self.port25), timeout=30) as c:
            c.ehlo("outside.test")
            self.assertEqual(c.mail("spammer@outside.test")[0], 250)
            code, text = c.rcpt("victim@remote.test")
            self.assertEqual(code, 554, text)
            self.assertIn(b"5.7.1", text)
            self.assertEqual(c.rcpt(DEMO)[0], 250)  # local mail is still taken

    def test_loopback_proxy_cannot_submit_on_587(self):
        with smtplib.SMTP("127.0.0.1", self.forward(self.port587), timeout=30) as c:
            c.ehlo("outside.test")
            code, text = c.mail(DEMO)
            self.assertEqual(code, 530, text)
            code, text = c.rcpt("victim@remote.test")
            self.assertEqual(code, 503, text)



class ProxyProtocol(Site):
    CONF = {"proxy_networks": PROXY_ADDR, "relay_networks": "192.0.2.0/24"}

    def raw(self, data, source="127.0.0.1", port=None):
        """Connect from source, send data at once; all smtp-in says until it closes."""
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(15)
        s.connect(("127.0.0.1", port or self.port25))
        s.sendall(data)
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
        return got

    def assert_no_reply(self, got):
        """Closed with no reply to anything: smtp-in looks for the header before its greeting
        in what has already arrived, and else in the first line, so under load the greeting
        may have gone out first; nothing after it ever does."""
        self.assertIn(got, (b"", b"220 mx.example.test ESMTP yubin\r\n"))

    def test_header_from_an_untrusted_peer_is_refused(self):
        got = self.raw(v2_header("192.0.2.7") + b"EHLO x\r\nMAIL FROM:<a@b.test>\r\n")
        self.assert_no_reply(got)
        self.wait_log("client=127.0.0.1 PROXY header refused: not a trusted proxy")
        self.assertNotIn("client=192.0.2.7", self.log())

    def test_v1_from_an_untrusted_peer_is_refused(self):
        got = self.raw(b"PROXY TCP4 192.0.2.7 127.0.0.1 4000 25\r\nEHLO x\r\n")
        self.assert_no_reply(got)
        self.wait_log("client=127.0.0.1 PROXY header refused")

    def test_malformed_header_from_the_proxy_is_refused(self):
        for bad in (v2_header("192.0.2.7")[:20],                     # truncated, then EOF
                    SIG + b"\x21\x31\x00\xd8" + bytes(216),         # the UNIX family
                    SIG + b"\x21\x11\xff\xff",                      # oversized
                    b"PROXY TCP4 192.0.2.7 127.0.0.1 4000 25\r\n",  # v1 text
                    b"EHLO no.header.test\r\n"):                    # no header at all
            with self.subTest(bad=bad[:24]):
                s = socket.socket()
                s.bind((PROXY_ADDR, 0))
                s.settimeout(15)
                s.connect(("127.0.0.1", self.port25))
                s.sendall(bad)
                if len(bad) == 20:
                    s.shutdown(socket.SHUT_WR)
                try:
                    got = s.recv(4096)
                except ConnectionResetError:
                    got = b""
                s.close()
                self.assertEqual(got, b"", "no greeting")
        self.wait_log(f"client={PROXY_ADDR} PROXY header refused: connection closed inside")
        for why in ("TCP over IPv4 or IPv6", "too long", "v1", "signature"):
            self.assertIn(why, self.log())

    def test_trusted_proxy_names_the_real_client(self):
        """The client the header names is logged, written into Received, and is what
        relay_networks (192.0.2.0/24) is checked against."""
        claimed = {}

        def header(addr):
            return v2_header(claimed["ip"], sport=addr[1])
        port = self.forward(self.port25, source=PROXY_ADDR, header=header)
        claimed["ip"] = "192.0.2.7"
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.ehlo("inside.test")
            self.assertEqual(c.mail("someone@inside.test")[0], 250)
            self.assertEqual(c.rcpt("friend@remote.test")[0], 250)  # 192.0.2.7 relays
            self.assertEqual(c.rcpt(DEMO)[0], 250)
            self.assertEqual(c.data(b"Subject: via haproxy\r\n\r\nhi\r\n")[0], 250)
        self.wait_log("client=192.0.2.7 proxy=127.0.0.2")
        self.wait_log("connect from 192.0.2.7")
        msg = self.site.messages(DEMO)[0]
        self.assertIn(b"Received: from inside.test ([192.0.2.7])", msg)
        claimed["ip"] = "198.51.100.9"
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.ehlo("outside.test")
            self.assertEqual(c.mail("spammer@outside.test")[0], 250)
            self.assertEqual(c.rcpt("victim@remote.test")[0], 554)  # outside: no relay
        self.wait_log("client=198.51.100.9 proxy=127.0.0.2")

    def test_pop3_behind_the_proxy(self):
        """pop3-in takes the same header from the same proxies, and refuses it from others."""
        got = self.raw(v2_header("192.0.2.7", dport=110) + b"CAPA\r\n", port=self.port110)
        self.assertEqual(got, b"", "no greeting for an untrusted header")
        self.wait_log("pop3-in[", "client=127.0.0.1 PROXY header refused: not a trusted")
        port = self.forward(self.port110, source=PROXY_ADDR,
                            header=lambda addr: v2_header("192.0.2.8", sport=addr[1], dport=110))
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(b"+OK"))
            s.sendall(b"USER demo@example.test\r\nPASS wrong\r\n")
            f.readline()
            f.readline()
        self.wait_log("client=192.0.2.8 proxy=127.0.0.2")
        self.wait_log("client=192.0.2.8 reason=")  # the failed login names the real client

    def test_local_health_check(self):
        """LOCAL (the proxy's own check) is served as the proxy itself."""
        port = self.forward(self.port25, source=PROXY_ADDR,
                            header=lambda addr: v2_header("0.0.0.0", command=0x20))
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            self.assertEqual(c.noop()[0], 250)
        self.wait_log(f"client={PROXY_ADDR} proxy={PROXY_ADDR} (LOCAL")


if __name__ == "__main__":
    unittest.main()
