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
import os
import smtplib
import socket
import ssl
import time
import unittest

import yubintest

DEMO = "demo@example.test"
MESSAGE = b"From: a@remote.test\nSubject: over IMAP\n\nhello through IMAP\n"

# imaplib knows neither ID (RFC 2971) nor some states of ENABLE
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED", "LOGOUT"))
imaplib.Commands["ENABLE"] = ("AUTH",)


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
        self.addCleanup(yubintest.imap_logout_quietly, c)
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
        self.addCleanup(yubintest.imap_logout_quietly, s)
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

    def test_starttls_with_a_key_that_does_not_match(self):
        """The pair is parsed only at STARTTLS: NO [UNAVAILABLE] and one log line there, and
        the session goes on in plaintext (before, imap4-in refused to serve at all)."""
        inst = self.site()
        cert, _ = inst.make_certificate()
        _, other_key = inst.make_certificate(prefix="other")
        inst.use_tls(cert, other_key)
        r = self.raw(inst.serve_inetd("imap4-in"))
        self.assertTrue(r.greeting.startswith(b"* OK"))
        r.send(b"a STARTTLS\r\n")
        self.assertTrue(r.line().startswith(b"a NO [UNAVAILABLE] TLS not available"))
        inst.syslog.wait_for("does not match")
        self.assertTrue(any("TLS cannot serve: tls_key_file" in l and "does not match" in l
                            for l in inst.syslog.lines()))
        r.send(b"b LOGIN demo@example.test demo\r\n")
        self.assertTrue(r.until(b"b")[-1].startswith(b"b OK"))

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


class ImapFolder(unittest.TestCase):
    """SELECT, EXAMINE, EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT and IDLE, two sessions at once."""

    def setUp(self):
        self.inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(self.inst.stop)
        self.port = self.inst.serve_inetd("imap4-in")

    def login(self):
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        self.addCleanup(yubintest.imap_logout_quietly, c)
        c.login(DEMO, "demo")
        return c

    def raw_login(self):
        r = Raw(self.port)
        self.addCleanup(r.close)
        r.send(b"l LOGIN demo@example.test demo\r\n")
        self.assertTrue(r.until(b"l")[-1].startswith(b"l OK"))
        return r

    def add(self, n, flags=""):
        """n messages in cur/ with these maildir flags ("T": \\Deleted)."""
        cur = os.path.join(self.inst.maildir(DEMO), "cur")
        for i in range(n):
            name = self.inst.add_message(DEMO, b"Subject: %d\n\nbody\n" % i, sub="cur")
            if flags:
                os.rename(os.path.join(cur, name), os.path.join(cur, name + flags))

    def test_select_and_examine(self):
        self.add(2)
        self.add(1, "S")
        c = self.login()
        typ, data = c.select("inbox")
        self.assertEqual((typ, data), ("OK", [b"3"]))
        u = c.untagged_responses
        self.assertEqual(u["RECENT"], [b"3"], "new to the index: \\Recent here")
        self.assertIn(b"\\Seen", u["FLAGS"][0])
        self.assertEqual(u["UNSEEN"], [b"1"])
        self.assertRegex(u["UIDVALIDITY"][0].decode(), r"^\d+$")
        self.assertEqual(u["UIDNEXT"], [b"4"])
        self.assertIn(b"\\*", u["PERMANENTFLAGS"][0])
        self.assertIn("READ-WRITE", u, "the tagged OK's response code")
        typ, data = c.select("INBOX", readonly=True)
        self.assertEqual(typ, "OK")
        self.assertEqual(c.untagged_responses["PERMANENTFLAGS"], [b"()"])
        self.assertEqual(c.select("Sent")[1], [b"0"], "the special folders made at login")
        typ, data = c.select("Nonesuch")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[NONEXISTENT]", data[0])
        self.assertEqual(c.state, "AUTH", "a failed SELECT leaves no folder selected")

    def test_enable_imap4rev2(self):
        self.add(1)
        r = self.raw_login()
        r.send(b"e ENABLE IMAP4rev2 UTF8=ACCEPT\r\n")
        self.assertEqual(r.until(b"e"), [b"* ENABLED IMAP4rev2\r\n", b"e OK ENABLE completed\r\n"],
                         "only what is offered is enabled")
        r.send(b"s SELECT INBOX\r\n")
        lines = r.until(b"s")
        self.assertIn(b"* 1 EXISTS\r\n", lines)
        self.assertFalse([l for l in lines if b"RECENT" in l or b"UNSEEN" in l], "RFC 9051 drops them")
        self.assertIn(b'* LIST () "." INBOX\r\n', lines)
        r.send(b"t SELECT Sent\r\n")
        self.assertEqual(r.until(b"t")[0], b"* OK [CLOSED] the folder before is closed\r\n")
        r.send(b"f ENABLE IMAP4rev2\r\n")
        self.assertTrue(r.until(b"f")[-1].startswith(b"f BAD ENABLE is not valid in this state"))

    def test_examine_is_read_only(self):
        self.add(1, "T")
        r = self.raw_login()
        r.send(b"e EXAMINE INBOX\r\n")
        lines = r.until(b"e")
        self.assertTrue(lines[-1].startswith(b"e OK [READ-ONLY] EXAMINE completed"), lines)
        r.send(b"x EXPUNGE\r\nc CLOSE\r\n")
        self.assertTrue(r.until(b"x")[-1].startswith(b"x NO [READ-ONLY]"))
        self.assertTrue(r.until(b"c")[-1].startswith(b"c OK"))
        self.assertEqual(len(self.inst.message_names(DEMO, "cur")), 1, "nothing expunged")

    def test_expunge_in_order_and_seen_by_another_session(self):
        self.add(1)
        self.add(2, "T")
        self.add(1)
        self.add(1, "T")
        a, b = self.raw_login(), self.raw_login()
        for r in (a, b):
            r.send(b"s SELECT INBOX\r\n")
            self.assertIn(b"* 5 EXISTS\r\n", r.until(b"s"))
        a.send(b"x EXPUNGE\r\n")
        lines = a.until(b"x")
        self.assertEqual([l for l in lines if l.endswith(b"EXPUNGE\r\n")],
                         [b"* 5 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"],
                         "each number right when it is sent (RFC 3501 §7.4.1)")
        self.assertTrue(lines[-1].startswith(b"x OK"))
        self.assertEqual(len(self.inst.message_names(DEMO, "cur")), 2)
        b.send(b"n NOOP\r\n")
        got = b.until(b"n")
        self.assertEqual(got, [b"* 5 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n",
                               b"n OK NOOP completed\r\n"], "the other session is told too")
        self.assertTrue(got[-1].startswith(b"n OK"))

    def test_uid_expunge_close_unselect(self):
        self.add(3, "T")
        r = self.raw_login()
        r.send(b"s SELECT INBOX\r\nu UID EXPUNGE 2\r\n")
        r.until(b"s")
        lines = r.until(b"u")
        self.assertEqual(lines, [b"* 2 EXPUNGE\r\n", b"u OK UID EXPUNGE completed\r\n"])
        r.send(b"b UID EXPUNGE x\r\nn UNSELECT\r\n")
        self.assertTrue(r.until(b"b")[-1].startswith(b"b BAD"))
        self.assertTrue(r.until(b"n")[-1].startswith(b"n OK"))
        self.assertEqual(len(self.inst.message_names(DEMO, "cur")), 2, "UNSELECT keeps them")
        r.send(b"s SELECT INBOX\r\nc CLOSE\r\n")
        r.until(b"s")
        self.assertEqual(r.until(b"c"), [b"c OK CLOSE completed\r\n"], "CLOSE is silent")
        self.assertEqual(self.inst.message_names(DEMO, "cur"), [])
        r.send(b"e EXPUNGE\r\n")
        self.assertTrue(r.until(b"e")[-1].startswith(b"e BAD EXPUNGE needs a selected folder"))

    def test_idle_announces_a_delivery(self):
        self.add(1)
        smtp = self.inst.serve_inetd("smtp-in")
        r = self.raw_login()
        r.send(b"s SELECT INBOX\r\ni IDLE\r\n")
        r.until(b"s")
        self.assertEqual(r.line(), b"+ idling\r\n")
        with smtplib.SMTP("127.0.0.1", smtp, timeout=30) as s:
            s.sendmail("sender@remote.test", [DEMO], b"Subject: new\r\n\r\nhi\r\n")
            sent = time.monotonic()
        r.s.settimeout(5)
        got = []
        while not any(l.endswith(b" EXISTS\r\n") for l in got):
            got.append(r.line())
        self.assertLess(time.monotonic() - sent, 1.0, "announced within a second")
        self.assertIn(b"* 2 EXISTS\r\n", got)
        r.send(b"DONE\r\n")
        self.assertTrue(r.until(b"i")[-1].startswith(b"i OK IDLE terminated"))
        r.send(b"j IDLE\r\n")
        self.assertEqual(r.line(), b"+ idling\r\n")
        r.send(b"NOPE\r\n")
        self.assertTrue(r.until(b"j")[-1].startswith(b"j BAD IDLE ends with DONE"))


class ImapRemote(unittest.TestCase):
    """A client that is not on loopback: its own namespace, on a bridge with the server's."""

    def setUp(self):
        self.net = yubintest.client_server_net(self, "10.254.10", "i")

    def test_login_refused_before_starttls(self):
        inst = yubintest.Instance(users=(DEMO,), netns=self.net.ns("srv"))
        self.addCleanup(inst.stop)
        cert = inst.use_tls()
        port = inst.serve_inetd("imap4-in", host="10.254.10.10", port=143)
        with self.net.enter("client"):
            c = imaplib.IMAP4("10.254.10.10", port, timeout=30)
        self.addCleanup(yubintest.imap_logout_quietly, c)
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
