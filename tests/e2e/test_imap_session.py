"""imap4-in's session (issue 10 §2) with Python's imaplib over real sockets, under
openbsd-inetd and systemd-socket-activate: the greeting and CAPABILITY (STARTTLS and
LOGINDISABLED before TLS, AUTH=PLAIN after), STARTTLS with starttls() and implicit TLS with
IMAP4_SSL (verified against the test certificate), LOGIN and AUTHENTICATE PLAIN with SASL-IR,
ID, NAMESPACE, ENABLE; and every error case: a bad tag, an unknown command, a command in the
wrong state, bad arguments, a literal too large, a bare LF, plaintext pipelined after
STARTTLS, a login before TLS from a client that is not on loopback (its own network
namespace), failed logins delayed and counted, the autologout. Only 127.0.0.1 and the test's
own namespaces are contacted.
"""
import imaplib
import socket
import ssl
import time
import unittest

import netns
import yubintest

DEMO = "demo@example.test"
MESSAGE = b"From: a@remote.test\nSubject: over IMAP\n\nhello through IMAP\n"

# imaplib knows neither ID (RFC 2971) nor some states of ENABLE
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED", "LOGOUT"))
imaplib.Commands["ENABLE"] = ("AUTH",)


def quietly_logout(c):
    try:
        c.logout()
    except (OSError, imaplib.IMAP4.error):
        pass


class Raw:
    """A line-level client for what imaplib cannot send (bad tags, bare LFs, literals)."""

    def __init__(self, port, timeout=30):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.s.makefile("rb")
        self.greeting = self.f.readline()

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        return self.f.readline()

    def until(self, tag):
        """Lines through the one starting with tag."""
        lines = []
        while True:
            l = self.f.readline()
            if not l:
                return lines
            lines.append(l)
            if l.startswith(tag + b" "):
                return lines

    def close(self):
        self.f.close()
        self.s.close()


class ImapSession(unittest.TestCase):
    def site(self, tls=False, **conf):
        inst = yubintest.Instance(users=(DEMO,), conf=conf)
        self.addCleanup(inst.stop)
        self.cert = inst.use_tls(**conf) if tls else None
        inst.add_message(DEMO, MESSAGE)
        return inst

    def context(self):
        return ssl.create_default_context(cafile=self.cert)

    def client(self, port):
        c = imaplib.IMAP4("127.0.0.1", port, timeout=30)
        self.addCleanup(quietly_logout, c)
        return c

    def raw(self, port):
        r = Raw(port)
        self.addCleanup(r.close)
        return r

    def test_greeting_capability_login(self):
        inst = self.site()
        port = inst.serve_inetd("imap4-in")
        c = self.client(port)
        self.assertTrue(c.welcome.startswith(b"* OK [CAPABILITY IMAP4rev1 "))
        for cap in ("IMAP4REV1", "AUTH=PLAIN", "SASL-IR", "LITERAL+", "ID", "NAMESPACE"):
            self.assertIn(cap, c.capabilities)
        self.assertNotIn("STARTTLS", c.capabilities, "no certificate, no STARTTLS")
        typ, data = c.login(DEMO, "demo")
        self.assertEqual(typ, "OK")
        self.assertIn(b"[CAPABILITY IMAP4rev1", data[0])
        self.assertNotIn(b"AUTH=PLAIN", data[0], "no login forms after the login")
        typ, data = c.namespace()
        self.assertEqual(data, [b'(("" ".")) NIL NIL'])
        typ, data = c._simple_command("ID", '("name" "imaplib" "version" NIL)')
        self.assertEqual(typ, "OK")
        self.assertRegex(c.untagged_responses["ID"][0].decode(), r'^\("name" "yubin" "version"')
        self.assertEqual(c.logout()[0], "BYE")
        log = "\n".join(inst.syslog.lines())
        self.assertRegex(log, r"imap4-in\[\d+\]: login: user=<demo@example.test> client=127\.0\.0\.1")

    def test_authenticate_plain(self):
        inst = self.site()
        port = inst.serve_systemd("imap4-in")
        c = self.client(port)
        typ, _ = c.authenticate("PLAIN", lambda _: b"\0" + DEMO.encode() + b"\0demo")
        self.assertEqual(typ, "OK")
        r = self.raw(port)
        r.send(b"a1 AUTHENTICATE PLAIN AGRlbW9AZXhhbXBsZS50ZXN0AGRlbW8=\r\n")  # SASL-IR
        self.assertTrue(r.until(b"a1")[-1].startswith(b"a1 OK [CAPABILITY "))

    def test_starttls_and_imap4_ssl(self):
        inst = self.site(tls=True)
        port = inst.serve_inetd("imap4-in")
        c = self.client(port)
        self.assertIn("STARTTLS", c.capabilities)
        self.assertIn("AUTH=PLAIN", c.capabilities, "loopback may log in without TLS")
        c.starttls(ssl_context=self.context())
        self.assertNotIn("STARTTLS", c.capabilities, "no STARTTLS over TLS")
        with self.assertRaises(imaplib.IMAP4.error) as e:
            c._simple_command("STARTTLS")
        self.assertIn("TLS already active", str(e.exception))
        self.assertEqual(c.login(DEMO, "demo")[0], "OK")
        sport = inst.serve_systemd("imap4-in", "-T")
        s = imaplib.IMAP4_SSL("127.0.0.1", sport, ssl_context=self.context(), timeout=30)
        self.addCleanup(quietly_logout, s)
        self.assertNotIn("STARTTLS", s.capabilities)
        self.assertEqual(s.login(DEMO, "demo")[0], "OK")
        self.assertRegex("\n".join(inst.syslog.lines()),
                         r"imap4-in\[\d+\]: client=127\.0\.0\.1 TLS: using TLSv1\.3 with cipher")

    def test_pipelined_after_starttls_is_refused(self):
        inst = self.site(tls=True)
        r = self.raw(inst.serve_inetd("imap4-in"))
        r.send(b"a STARTTLS\r\nb LOGIN demo@example.test demo\r\n")
        self.assertTrue(r.line().startswith(b"a BAD commands pipelined after STARTTLS"))
        self.assertTrue(r.line().startswith(b"* BYE"))
        self.assertEqual(r.f.read(), b"")

    def test_errors(self):
        inst = self.site(max_errors="50")
        r = self.raw(inst.serve_inetd("imap4-in"))
        cases = [
            (b"+a NOOP\r\n", b"*", b"* BAD invalid tag"),
            (b"a1 FROB\r\n", b"a1", b"a1 BAD unknown command FROB"),
            (b"a2 NAMESPACE\r\n", b"a2", b"a2 BAD NAMESPACE needs a login first"),
            (b"a3 NOOP x\r\n", b"a3", b"a3 BAD NOOP takes no argument"),
            (b"a4 LOGIN demo\r\n", b"a4", b"a4 BAD LOGIN needs a user name and a password"),
            (b"a5 LOGIN {100000}\r\n", b"a5", b"a5 NO [TOOBIG]"),
            (b"a6 LOGIN demo@example.test wrong\r\n", b"a6", b"a6 NO [AUTHENTICATIONFAILED]"),
            (b"a7 UID NOOP\r\n", b"a7", b"a7 BAD unknown command UID NOOP"),
            (b"a8 ID (\"x\")\r\n", b"a8", b"a8 BAD ID needs"),
        ]
        for send, tag, want in cases:
            with self.subTest(send=send):
                r.send(send)
                self.assertTrue(r.until(tag)[-1].startswith(want), (send, want))
        r.send(b"a9 LOGIN {4+}\r\ndemo {4}\r\n")
        self.assertEqual(r.line(), b"+ Ready for literal data\r\n")
        r.send(b"demo\r\n")
        self.assertTrue(r.until(b"a9")[-1].startswith(b"a9 NO [AUTHENTICATIONFAILED]"),
                        "literals assembled (and a wrong password)")
        r.send(b"b1 LOGIN {17+}\r\ndemo@example.test demo\r\n")
        self.assertTrue(r.until(b"b1")[-1].startswith(b"b1 OK"), "a {n+} literal")
        r.send(b"b2 ENABLE\r\nb3 CAPABILITY\nb4 NOOP\r\n")
        self.assertTrue(r.until(b"b2")[-1].startswith(b"b2 BAD ENABLE needs"))
        self.assertTrue(r.line().startswith(b"* BYE bare CR or LF"))
        self.assertEqual(r.f.read(), b"")
        self.assertIn("login failed: user=<demo@example.test> client=127.0.0.1",
                      "\n".join(inst.syslog.lines()))

    def test_failed_logins_close(self):
        inst = self.site(max_auth_failures="2", auth_delay_ms="50")
        c = self.client(inst.serve_inetd("imap4-in"))
        with self.assertRaises(imaplib.IMAP4.error):
            c.login(DEMO, "wrong")
        with self.assertRaises(imaplib.IMAP4.error):
            c.login(DEMO, "wrong")
        with self.assertRaises(imaplib.IMAP4.abort):
            c.noop()  # after * BYE too many failed logins
        log = "\n".join(inst.syslog.lines())
        self.assertIn("failures=2", log)

    def test_autologout(self):
        inst = self.site(imap_timeout="1")
        r = self.raw(inst.serve_inetd("imap4-in"))
        t0 = time.monotonic()
        self.assertTrue(r.line().startswith(b"* BYE autologout"))
        self.assertLess(time.monotonic() - t0, 10)


class ImapRemote(unittest.TestCase):
    """A client that is not on loopback: its own namespace, on a bridge with the server's."""

    def setUp(self):
        reason = netns.unavailable()
        if reason:
            self.skipTest(reason)
        self.net = netns.Network("10.254.10", tag="i")
        self.addCleanup(self.net.close)
        self.net.add_host("srv", 10)
        self.net.add_host("client", 20)

    def test_login_refused_before_starttls(self):
        inst = yubintest.Instance(users=(DEMO,), netns=self.net.ns("srv"))
        self.addCleanup(inst.stop)
        cert = inst.use_tls()
        port = inst.serve_inetd("imap4-in", host="10.254.10.10", port=143)
        with self.net.enter("client"):
            c = imaplib.IMAP4("10.254.10.10", port, timeout=30)
        self.addCleanup(quietly_logout, c)
        self.assertIn("STARTTLS", c.capabilities)
        self.assertIn("LOGINDISABLED", c.capabilities, "RFC 9051 §6.2.3")
        self.assertNotIn("AUTH=PLAIN", c.capabilities)
        for args in (("LOGIN", DEMO, "demo"), ("AUTHENTICATE", "PLAIN", "AGRlbW8AZGVtbw==")):
            typ, data = c._simple_command(*args)  # imaplib raises for BAD only
            self.assertEqual(typ, "NO", args)
            self.assertIn(b"[PRIVACYREQUIRED] TLS required", data[-1])
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False  # the certificate names 127.0.0.1; the chain is verified
        c.starttls(ssl_context=ctx)
        self.assertIn("AUTH=PLAIN", c.capabilities)
        self.assertNotIn("LOGINDISABLED", c.capabilities)
        self.assertEqual(c.login(DEMO, "demo")[0], "OK")


if __name__ == "__main__":
    unittest.main()
