"""test_open_relay: yubin is not an open relay (DESIGN.md §5.4), tried from the outside.

The site's relay_networks is set to 192.0.2.0/24 and 2001:db8::/32, so a client on
127.0.0.1 is an outsider. smtp-in runs under openbsd-inetd; every address form that has been
used to sneak mail through a relay (RFC 5321 source routes, '%' and '!' routing, quoted '@',
address literals of other hosts, several '@') is tried with a normal sender and with the null
sender, and each must be refused with a 5xx. A smarthost (smtpsink.py on 127.0.0.37) stands
ready to take anything that slips through, and the queue is checked to stay empty. Then the
same forms of relaying that are allowed are shown to work: a loopback client of a site whose
relay_networks lists loopback, and an authenticated submission client, both reach the sink.
Only loopback addresses are used.
"""
import os
import smtplib
import socket
import time
import unittest

import yubintest
from smtpsink import SMTPSink

SINK_HOST = "127.0.0.37"
DEMO = "demo@example.test"

# (forward-path, why it must not relay)
FORMS = [
    ("<user@remote.test>", "plain other domain"),
    ("<USER@REMOTE.TEST>", "other domain, upper case"),
    ("<user%remote.test@example.test>", "percent hack"),
    ("<demo%remote.test@example.test>", "percent hack with a real user"),
    ('<"user@remote.test"@example.test>', "quoted @"),
    ('<"demo@remote.test"@example.test>', "quoted @ with a real user"),
    ('<"user%remote.test"@example.test>', "quoted percent"),
    ('<"remote.test!user"@example.test>', "quoted bang"),
    ('<"user"@remote.test>', "quoted local part, other domain"),
    ("<@example.test:user@remote.test>", "source route through us"),
    ("<@example.test,@remote.test:user@remote.test>", "source route, two hops"),
    ("<@[127.0.0.1]:user@remote.test>", "source route via our address literal"),
    ("<remote.test!user@example.test>", "bang path"),
    ("<remote.test!demo@example.test>", "bang path with a real user"),
    ("<user@remote.test@example.test>", "two @"),
    ("<user@[192.0.2.1]>", "IPv4 literal of another host"),
    ("<user@[IPv6:2001:db8::1]>", "IPv6 literal of another host"),
    ("<user@[127.0.0.1]>", "our own loopback literal is not a local domain"),
    ("<user%remote.test@[127.0.0.1]>", "percent hack at a literal"),
    ("<user@example.test.remote.test>", "our name as a subdomain of another"),
    ("<user@remote.test.>", "trailing dot"),
    ("<postmaster@remote.test>", "postmaster elsewhere"),
]


def rcpt_code(c, path):
    """RCPT with a raw path (smtplib would re-quote it); returns (code, text)."""
    return c.docmd("RCPT", f"TO:{path}")


class OpenRelay(unittest.TestCase):
    def setUp(self):
        self.sink = SMTPSink([SINK_HOST])
        self.site = yubintest.Instance(
            users=(DEMO,),
            conf={"relay_networks": "192.0.2.0/24 2001:db8::/32", "max_errors": "100",
                  "smarthost": f"{SINK_HOST}:{self.sink.port}", "connect_timeout": "5"})
        self.port = self.site.serve_inetd("smtp-in")

    def tearDown(self):
        self.sink.close()
        self.site.stop()

    def queue_entries(self):
        d = os.path.join(self.site.state_dir, "queue")
        return [n for n in os.listdir(d) if n.endswith(".env")] if os.path.isdir(d) else []

    def try_forms(self, sender):
        with smtplib.SMTP("127.0.0.1", self.port, local_hostname="outsider.test",
                          timeout=30) as c:
            c.ehlo()
            for path, why in FORMS:
                with self.subTest(sender=sender, rcpt=path, why=why):
                    self.assertEqual(c.docmd("MAIL", f"FROM:{sender}")[0], 250)
                    code, text = rcpt_code(c, path)
                    self.assertGreaterEqual(code, 500, f"{path} ({why}): {code} {text}")
                    self.assertLess(code, 600)
                    if code == 554:
                        self.assertTrue(text.startswith(b"5.7.1"), text)
                    code, _ = c.docmd("DATA")
                    self.assertEqual(code, 554, "DATA without a valid recipient")
                    c.rset()

    def test_every_form_refused(self):
        self.try_forms("<someone@remote.test>")
        self.try_forms("<>")
        self.try_forms(f"<{DEMO}>")
        self.assertEqual(self.queue_entries(), [])
        self.assertEqual(self.sink.messages, [])
        self.assertEqual(self.site.messages(DEMO), [])
        log = "\n".join(self.site.syslog.lines())
        self.assertIn("relaying denied", log)
        self.assertIn("client=127.0.0.1", log)

    def test_mixed_with_a_local_rcpt_goes_only_to_the_local_one(self):
        with smtplib.SMTP("127.0.0.1", self.port, local_hostname="outsider.test",
                          timeout=30) as c:
            c.ehlo()
            c.mail("someone@remote.test")
            self.assertEqual(rcpt_code(c, f"<{DEMO}>")[0], 250)
            for path, _ in FORMS:
                self.assertGreaterEqual(rcpt_code(c, path)[0], 500, path)
            self.assertEqual(c.data("Subject: only for demo\n\nhi\n")[0], 250)
        self.assertEqual(len(self.site.messages(DEMO)), 1)
        self.assertEqual(self.queue_entries(), [])
        self.assertEqual(self.sink.messages, [])

    def test_loopback_client_may_relay(self):
        with yubintest.Instance(users=(DEMO,), conf={
                "smarthost": f"{SINK_HOST}:{self.sink.port}", "connect_timeout": "5",
                "relay_networks": "127.0.0.0/8"}) as site:
            port = site.serve_inetd("smtp-in")
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
                self.assertEqual(c.sendmail("someone@remote.test", ["user@remote.test"],
                                            "Subject: relayed\n\nhi\n"), {})
            self.assertTrue(self.sink.wait_for(lambda: len(self.sink.messages) == 1, 30))
            m = self.sink.messages[0]
            self.assertEqual((m.sender, m.rcpts), ("someone@remote.test", ["user@remote.test"]))

    def test_queue_run_is_detached(self):
        """The queue-run smtp-in starts neither delays the next command nor holds the socket:
        with the smarthost holding queue-run in the middle of DATA, the session goes on and
        QUIT closes the connection at once."""
        self.sink.stall = True
        with yubintest.Instance(users=(DEMO,), conf={
                "smarthost": f"{SINK_HOST}:{self.sink.port}", "connect_timeout": "5",
                "relay_networks": "127.0.0.0/8"}) as site:
            port = site.serve_inetd("smtp-in")
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            f = sock.makefile("rb")

            def say(line, expect):
                sock.sendall(line.encode() + b"\r\n")
                while True:
                    r = f.readline()
                    if r[3:4] != b"-":
                        break
                self.assertTrue(r.startswith(expect.encode()), (line, r))

            self.assertTrue(f.readline().startswith(b"220"))
            say("EHLO client.test", "250")
            say("MAIL FROM:<someone@remote.test>", "250")
            say("RCPT TO:<user@remote.test>", "250")
            say("DATA", "354")
            say("Subject: slow\r\n\r\nhi\r\n.", "250 2.0.0")
            self.assertTrue(self.sink.stalled.wait(30), "queue-run is delivering")
            t0 = time.monotonic()
            say("NOOP", "250")
            say("QUIT", "221")
            self.assertEqual(f.read(), b"", "end of file: nobody else holds the socket")
            self.assertLess(time.monotonic() - t0, 3)
            sock.close()
            self.sink.release.set()

    def test_authenticated_outsider_may_relay(self):
        port = self.site.serve_inetd("smtp-in", "-s")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.login(DEMO, "demo")
            self.assertEqual(c.sendmail(DEMO, ["user@remote.test", "x@[192.0.2.1]"],
                                        "Subject: submitted\n\nhi\n"), {})
        self.assertTrue(self.sink.wait_for(lambda: len(self.sink.messages) == 1, 30))
        self.assertEqual(sorted(self.sink.messages[0].rcpts), ["user@remote.test", "x@[192.0.2.1]"])


if __name__ == "__main__":
    unittest.main()
