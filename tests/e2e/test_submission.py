"""test_submission: message submission (smtp-in -s, RFC 6409) as a mail client uses it.

smtp-in -s runs under openbsd-inetd (and once under systemd-socket-activate) on 127.0.0.1;
Python's smtplib and swaks log in with AUTH PLAIN and LOGIN (the users file holds real
argon2id hashes of "demo"), send to a local user and to another domain, and the message is
checked where it lands: the local Maildir, and for the other domain a second yubin site
(smtp-in under inetd on 127.0.0.36) found through a real DNS server (dnsmasq), delivered by
the queue-run that smtp-in starts by itself. Wrong passwords are timed (the delay doubles)
and the connection is closed after max_auth_failures; the log is read for the client address
and checked for the password. The site's relay_networks leaves out 127.0.0.1, so the client
must log in; one test puts loopback back in and submits without AUTH, as sendmail(8) does.
Only loopback addresses are used.
"""
import base64
import email
import email.policy
import os
import re
import shutil
import smtplib
import socket
import subprocess
import time
import unittest

import yubintest
from dnsserver import DNSServer

DEMO = "demo@example.test"
ALICE = "alice@example.test"
REMOTE_HOST = "127.0.0.36"


def message(subject, sender=DEMO, to="bob@yubin2.test", extra=""):
    """A message as a str: smtplib turns its line ends into CRLF (it sends bytes as they are)."""
    return f"From: {sender}\nTo: {to}\nSubject: {subject}\n{extra}\nHello.\n"


def wait_until(cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


class Submission(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.remote = yubintest.Instance(domains=("yubin2.test",), users=("bob@yubin2.test",),
                                        hostname="mx.yubin2.test")
        cls.remote_port = cls.remote.serve_inetd("smtp-in", host=REMOTE_HOST)
        cls.dns = DNSServer()
        cls.dns.start(["yubin2.test MX 10 mx.yubin2.test", f"mx.yubin2.test A {REMOTE_HOST}"])

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.remote.stop()

    def setUp(self):
        self.site = yubintest.Instance(
            users=(DEMO, ALICE), aliases={"postmaster@example.test": [DEMO],
                                          "sales@example.test": [DEMO, ALICE]},
            conf={"dns_resolver": self.dns.resolver, "smtp_port": str(self.remote_port),
                  "connect_timeout": "5", "auth_delay_ms": "200", "max_auth_failures": "3",
                  # 127.0.0.1 is an outsider: it must log in (see test_relay_network_client)
                  "relay_networks": "192.0.2.0/24"})
        self.port = self.site.serve_inetd("smtp-in", "-s")
        for name in self.remote.message_names("bob@yubin2.test"):
            os.unlink(os.path.join(self.remote.maildir("bob@yubin2.test"), "new", name))

    def tearDown(self):
        self.site.stop()

    def client(self, port=None):
        c = smtplib.SMTP("127.0.0.1", port or self.port, local_hostname="mua.test", timeout=30)
        c.ehlo()
        return c

    def log(self):
        return "\n".join(self.site.syslog.lines())

    def parsed(self, data):
        return email.message_from_bytes(data, policy=email.policy.compat32)

    # -- AUTH -----------------------------------------------------------------------------
    def test_ehlo_offers_auth_and_mail_needs_it(self):
        with self.client() as c:
            self.assertEqual(sorted(c.esmtp_features["auth"].split()), ["LOGIN", "PLAIN"])
            code, text = c.mail(DEMO)
            self.assertEqual(code, 530)
            self.assertTrue(text.startswith(b"5.7.0"), text)

    def test_smtplib_plain_local_and_remote(self):
        with self.client() as c:
            c.login(DEMO, "demo")  # smtplib picks PLAIN of PLAIN and LOGIN
            refused = c.sendmail(DEMO, [ALICE, "bob@yubin2.test"],
                                 message("plain", to="alice, bob"))
            self.assertEqual(refused, {})
        local = self.site.messages(ALICE)
        self.assertEqual(len(local), 1)
        m = self.parsed(local[0])
        self.assertEqual(m["Return-Path"], f"<{DEMO}>")
        self.assertIn("with ESMTPA id", m["Received"])
        self.assertRegex(m["Date"], r"^\w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d [-+]\d{4}$")
        self.assertRegex(m["Message-ID"], r"^<\d+\.[0-9a-f]+@mx\.example\.test>$")
        self.assertTrue(wait_until(lambda: self.remote.messages("bob@yubin2.test")),
                        "queue-run, started by smtp-in, relays at once")
        got = self.remote.messages("bob@yubin2.test")[0]
        r = self.parsed(got)
        self.assertEqual(r["Return-Path"], f"<{DEMO}>")
        self.assertEqual(r["Message-ID"], m["Message-ID"], "the same message, header added once")
        self.assertEqual(got.split(b"\n\n", 1)[1], b"Hello.\n")
        log = self.log()
        self.assertIn(f"login user=<{DEMO}> client=127.0.0.1", log)
        self.assertIn("queued=", log)
        self.assertTrue(wait_until(lambda: not [n for n in os.listdir(
            os.path.join(self.site.state_dir, "queue")) if n.endswith(".env")]))

    def test_smtplib_login_mechanism(self):
        with self.client() as c:
            c.user, c.password = DEMO, "demo"
            code, _ = c.auth("LOGIN", c.auth_login, initial_response_ok=False)
            self.assertEqual(code, 235)
            c.sendmail(DEMO, [ALICE], message("login", to=ALICE))
        self.assertEqual(len(self.site.messages(ALICE)), 1)

    def test_date_and_message_id_kept(self):
        extra = "Date: Mon, 23 Nov 2026 02:00:00 +0000\nMessage-ID: <kept@mua.test>\n"
        with self.client() as c:
            c.login(DEMO, "demo")
            c.sendmail(DEMO, [ALICE], message("kept", to=ALICE, extra=extra))
        data = self.site.messages(ALICE)[0]
        self.assertEqual(data.count(b"\nDate: "), 1)
        self.assertEqual(data.count(b"\nMessage-ID: "), 1)
        self.assertIn(b"Message-ID: <kept@mua.test>\n", data)

    def test_wrong_password_delay_doubles_then_421(self):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        f = sock.makefile("rb")

        def reply():
            lines = [f.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(f.readline())
            return lines[-1]

        def send(line):
            sock.sendall(line.encode() + b"\r\n")

        self.assertTrue(reply().startswith(b"220"))
        send("EHLO mua.test")
        reply()
        wrong = base64.b64encode(f"\0{DEMO}\0not-the-password".encode()).decode()
        times = []
        for expect in (b"535 5.7.8", b"535 5.7.8", b"421 4.7.0"):
            t0 = time.monotonic()
            send("AUTH PLAIN " + wrong)
            self.assertTrue(reply().startswith(expect))
            times.append(time.monotonic() - t0)
        self.assertEqual(f.read(), b"", "closed after the third failure")
        sock.close()
        self.assertGreaterEqual(times[0], 0.2)
        self.assertGreaterEqual(times[1], 0.4)
        self.assertGreaterEqual(times[2], 0.8)
        self.assertLess(times[0], 5)
        log = self.log()
        self.assertEqual(len(re.findall(r"login failed: user=<demo@example\.test> "
                                        r"client=127\.0\.0\.1 ", log)), 3, log)
        self.assertNotIn("not-the-password", log)
        self.assertNotIn(wrong, log)

    def test_unknown_user_fails_the_same_way(self):
        with self.client() as c:
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                c.login("nobody@example.test", "demo")
            self.assertEqual(cm.exception.smtp_code, 535)
        self.assertIn("login failed: user=<nobody@example.test> client=127.0.0.1", self.log())

    def test_sender_must_belong_to_the_login(self):
        with self.client() as c:
            c.login(DEMO, "demo")
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                c.sendmail(ALICE, [ALICE], message("forged", sender=ALICE, to=ALICE))
            self.assertEqual(cm.exception.smtp_code, 553)
            self.assertTrue(cm.exception.smtp_error.startswith(b"5.7.1"))
            c.rset()
            with self.assertRaises(smtplib.SMTPSenderRefused):
                c.sendmail("", [ALICE], message("null"))
            c.rset()
            # an alias that expands to the login is the login's own address
            self.assertEqual(c.sendmail("sales@example.test", [ALICE],
                                        message("as sales", sender="sales@example.test")), {})
        msgs = self.site.messages(ALICE)
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].startswith(b"Return-Path: <sales@example.test>\n"))

    def test_sender_login_match_off(self):
        self.site.settings["sender_login_match"] = "no"
        self.site.write_conf()
        with self.client() as c:
            c.login(DEMO, "demo")
            self.assertEqual(c.sendmail(ALICE, [ALICE], message("any", sender=ALICE)), {})

    def test_relay_network_client_needs_no_auth(self):
        """sendmail(8) and other local programs submit from loopback without a password."""
        self.site.settings["relay_networks"] = "127.0.0.0/8"
        self.site.write_conf()
        with self.client() as c:
            self.assertEqual(c.sendmail(ALICE, [ALICE, "bob@yubin2.test"],
                                        message("from cron", sender=ALICE)), {})
        m = self.parsed(self.site.messages(ALICE)[0])
        self.assertIn("with ESMTP id", m["Received"])
        self.assertIsNotNone(m["Date"])
        self.assertIsNotNone(m["Message-ID"])
        self.assertTrue(wait_until(lambda: self.remote.messages("bob@yubin2.test")))

    def test_under_systemd(self):
        port = self.site.serve_systemd("smtp-in", "-s")
        with self.client(port) as c:
            c.login(DEMO, "demo")
            c.sendmail(DEMO, [ALICE], message("systemd", to=ALICE))
        self.assertEqual(len(self.site.messages(ALICE)), 1)

    # -- swaks ----------------------------------------------------------------------------
    @unittest.skipUnless(shutil.which("swaks"), "swaks is not installed")
    def test_swaks_plain_and_login(self):
        for mech in ("PLAIN", "LOGIN"):
            p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.port),
                                "--auth", mech, "--auth-user", DEMO, "--auth-password", "demo",
                                "--from", DEMO, "--to", ALICE, "--helo", "mua.test",
                                "--header", f"Subject: swaks {mech}", "--timeout", "30"],
                               capture_output=True, timeout=60)
            out = p.stdout.decode(errors="replace")
            self.assertEqual(p.returncode, 0, out[-3000:])
            self.assertRegex(out, r"(?m)^<[-~] +235 2\.7\.0 ")
            self.assertRegex(out, r"(?m)^<[-~] +250 2\.0\.0 Ok: queued as ")
        msgs = self.site.messages(ALICE)
        self.assertEqual(len(msgs), 2)
        self.assertIn(b"Subject: swaks PLAIN", msgs[0] + msgs[1])
        self.assertIn(b"Subject: swaks LOGIN", msgs[0] + msgs[1])
        self.assertNotIn("ZGVtbw==", self.log())

    @unittest.skipUnless(shutil.which("swaks"), "swaks is not installed")
    def test_swaks_wrong_password(self):
        p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.port),
                            "--auth", "LOGIN", "--auth-user", DEMO, "--auth-password", "nope",
                            "--from", DEMO, "--to", ALICE, "--timeout", "30"],
                           capture_output=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stdout.decode(errors="replace"), r"(?m)^<~?\*\* +535 5\.7\.8 ")
        self.assertEqual(self.site.messages(ALICE), [])


class Port25(unittest.TestCase):
    """Without -s and without TLS: no AUTH, unless auth_without_tls."""

    def test_no_auth_on_port_25(self):
        with yubintest.Instance(conf={"auth_without_tls": "no"}) as site:
            port = site.serve_inetd("smtp-in")
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
                c.ehlo()
                self.assertFalse(c.has_extn("auth"))
                self.assertEqual(c.docmd("AUTH", "PLAIN")[0], 502)

    def test_auth_without_tls_lets_an_outside_client_relay(self):
        with yubintest.Instance(users=(DEMO,), conf={"auth_without_tls": "yes",
                                                     "relay_networks": "192.0.2.0/24",
                                                     "smarthost": "127.0.0.1:1"}) as site:
            port = site.serve_inetd("smtp-in")
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
                c.ehlo()
                self.assertTrue(c.has_extn("auth"))
                c.mail(DEMO)
                self.assertEqual(c.rcpt("x@remote.test")[0], 554)
                c.rset()
                c.login(DEMO, "demo")
                self.assertEqual(c.sendmail(DEMO, ["x@remote.test"], "Subject: x\n\nx\n"), {})
            queue = os.path.join(site.state_dir, "queue")
            self.assertEqual(len([n for n in os.listdir(queue) if n.endswith(".env")]), 1)


if __name__ == "__main__":
    unittest.main()
