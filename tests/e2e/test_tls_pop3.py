"""TLS in pop3-in (issue 9 §4) with real clients: openssl s_client -starttls pop3 and on 995,
poplib's
stls() and POP3_SSL (verified against the test certificate), mpop with `tls on` and
`tls_starttls on` (STLS on 110) or off (implicit TLS on 995), under openbsd-inetd and
systemd-socket-activate; and the refusals: USER and AUTH before STLS from a client that is
not on loopback (a client in a network namespace of its own, netns.py; loopback, 127.0.0.0/8
and ::1, may log in without TLS), STLS with plaintext pipelined after it, STLS twice, a bad
certificate (one that cannot be read at start-up: -ERR [SYS/TEMP] there; one that cannot
serve: -ERR [SYS/TEMP] to STLS; with -T a closed connection and the log line). Nothing but 127.0.0.1 and the test's own
namespaces is contacted.
"""
import os
import poplib
import shutil
import socket
import ssl
import subprocess
import unittest

import yubintest

DEMO = "demo@example.test"
MESSAGE = b"From: a@remote.test\nSubject: over TLS\n\nhello through TLS\n"


def quietly_close(c):
    try:
        c.close()
    except OSError:
        pass  # poplib's close after quit


class TlsPop3(unittest.TestCase):
    def site(self, **conf):
        inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(inst.stop)
        self.cert = inst.use_tls(**conf)
        inst.add_message(DEMO, MESSAGE)
        return inst

    def context(self):
        return ssl.create_default_context(cafile=self.cert)

    def test_s_client_starttls_pop3(self):
        inst = self.site()
        port = inst.serve_inetd("pop3-in")
        p = subprocess.run(["openssl", "s_client", "-starttls", "pop3", "-connect",
                            f"127.0.0.1:{port}", "-crlf", "-ign_eof", "-CAfile", self.cert,
                            "-verify_return_error"],
                           input=b"CAPA\nQUIT\n", capture_output=True, timeout=60)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode(errors="replace"))
        self.assertIn("Verify return code: 0 (ok)", out)
        capa = out[out.index("+OK capability list follows"):]
        self.assertIn("USER", capa)
        self.assertIn("SASL PLAIN", capa)
        self.assertNotIn("STLS", capa, "no STLS over TLS")
        self.assertRegex("\n".join(inst.syslog.lines()),
                         r"pop3-in\[\d+\]: client=127\.0\.0\.1 TLS: using TLSv1\.3 with cipher")

    def test_s_client_implicit_995(self):
        inst = self.site()
        port = inst.serve_inetd("pop3-in", "-T")
        p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-crlf",
                            "-ign_eof", "-CAfile", self.cert, "-verify_return_error"],
                           input=b"CAPA\nQUIT\n", capture_output=True, timeout=60)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode(errors="replace"))
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertRegex(out, r"(?m)^\+OK ")
        capa = out[out.index("+OK capability list follows"):]
        self.assertIn("USER", capa)
        self.assertNotIn("STLS", capa)

    def test_bad_certificate_with_implicit_tls_closes(self):
        inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(inst.stop)
        old_cert, old_key = inst.make_certificate(prefix="old", days=-1)
        inst.use_tls(old_cert, old_key)
        port = inst.serve_inetd("pop3-in", "-T")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                ssl.create_default_context(cafile=old_cert).wrap_socket(
                    s, server_hostname="mx.example.test")
        inst.syslog.wait_for("expired on")
        self.assertTrue(any("cannot serve: tls_cert_file" in l and "expired on" in l
                            for l in inst.syslog.lines()))

    def test_poplib_stls_and_refusals(self):
        inst = self.site()
        port = inst.serve_inetd("pop3-in")
        c = poplib.POP3("127.0.0.1", port, timeout=30)
        self.addCleanup(quietly_close, c)
        self.assertIn("STLS", c.capa())
        c.stls(context=self.context())
        self.assertNotIn("STLS", c.capa())
        with self.assertRaises(poplib.error_proto) as e:
            c._shortcmd("STLS")
        self.assertIn(b"TLS already active", e.exception.args[0])
        c.user(DEMO)
        c.pass_("demo")
        self.assertEqual(c.stat()[0], 1)
        self.assertIn(b"hello through TLS", b"\n".join(c.retr(1)[1]))
        c.quit()

    def test_pop3_ssl_995_systemd(self):
        inst = self.site()
        port = inst.serve_systemd("pop3-in", "-T")
        c = poplib.POP3_SSL("127.0.0.1", port, timeout=30, context=self.context())
        self.addCleanup(quietly_close, c)
        self.assertNotIn("STLS", c.capa())
        c.user(DEMO)
        c.pass_("demo")
        self.assertEqual(c.stat()[0], 1)
        c.quit()

    @unittest.skipUnless(shutil.which("mpop"), "mpop is not installed")
    def test_mpop_starttls_and_implicit(self):
        inst = self.site()
        plain = inst.serve_inetd("pop3-in")
        implicit = inst.serve_inetd("pop3-in", "-T")
        for port, starttls in ((plain, "on"), (implicit, "off")):
            with self.subTest(starttls=starttls):
                maildir = os.path.join(inst.dir, f"fetched-{port}")
                for d in ("tmp", "new", "cur"):
                    os.makedirs(os.path.join(maildir, d))
                rc = os.path.join(inst.dir, f"mpoprc-{port}")
                with open(rc, "w") as f:
                    f.write(f"account default\nhost 127.0.0.1\nport {port}\nuser {DEMO}\n"
                            f"password demo\nauth user\ntls on\ntls_starttls {starttls}\n"
                            f"tls_trust_file {self.cert}\ntls_host_override 127.0.0.1\n"
                            f"keep on\ndelivery maildir {maildir}\n"
                            # its own UIDL list: with mpop's default (~/.mpop_uidls/USER_at_HOST)
                            # the second run took the message for one it had already fetched
                            f"uidls_file {rc}.uidls\n")
                os.chmod(rc, 0o600)
                p = subprocess.run(["mpop", "-C", rc, "-q"], capture_output=True, timeout=60)
                self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
                got = os.listdir(os.path.join(maildir, "new"))
                self.assertEqual(len(got), 1)

    def test_pipelined_after_stls_is_refused(self):
        inst = self.site()
        port = inst.serve_inetd("pop3-in")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(b"+OK"))
            s.sendall(b"STLS\r\nUSER demo@example.test\r\n")
            self.assertTrue(f.readline().startswith(b"-ERR commands pipelined after STLS"))
            self.assertEqual(f.read(), b"")

    def test_bad_certificate(self):
        """A key that does not match is found at STLS (the pair is parsed only then): -ERR
        [SYS/TEMP] and one log line, and the session goes on in plaintext; a file that cannot
        be read at start-up is -ERR [SYS/TEMP] at the greeting."""
        inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(inst.stop)
        inst.add_message(DEMO, MESSAGE)
        cert, _ = inst.make_certificate()
        _, other_key = inst.make_certificate(prefix="other")
        inst.use_tls(cert, other_key)
        port = inst.serve_inetd("pop3-in")
        c = poplib.POP3("127.0.0.1", port, timeout=30)
        self.addCleanup(quietly_close, c)
        self.assertIn("STLS", c.capa())
        with self.assertRaises(poplib.error_proto) as e:
            c._shortcmd("STLS")
        self.assertTrue(e.exception.args[0].startswith(b"-ERR [SYS/TEMP] TLS not available"))
        inst.syslog.wait_for("does not match")
        self.assertTrue(any("TLS cannot serve: tls_key_file" in l and "does not match" in l
                            for l in inst.syslog.lines()))
        c.user(DEMO)  # from loopback: no TLS needed
        c.pass_("demo")
        self.assertEqual(c.stat()[0], 1)
        c.quit()
        missing = os.path.join(inst.dir, "missing.pem")
        inst.use_tls(cert, missing)
        port = inst.serve_inetd("pop3-in")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            self.assertTrue(s.makefile("rb").readline().startswith(b"-ERR [SYS/TEMP]"))
        inst.syslog.wait_for(f"cannot serve: tls_key_file {missing}: No such file")


class TlsPop3Remote(unittest.TestCase):
    """A client that is not on loopback: its own namespace, on a bridge with the server's."""

    def setUp(self):
        self.net = yubintest.client_server_net(self, "10.254.9", "p")

    def test_user_and_auth_refused_before_stls(self):
        inst = yubintest.Instance(users=(DEMO,), netns=self.net.ns("srv"))
        self.addCleanup(inst.stop)
        cert = inst.use_tls()
        port = inst.serve_inetd("pop3-in", host="10.254.9.10", port=110)
        with self.net.enter("client"):
            c = poplib.POP3("10.254.9.10", port, timeout=30)
        self.addCleanup(quietly_close, c)
        capa = c.capa()
        self.assertIn("STLS", capa)
        self.assertNotIn("USER", capa, "RFC 2595 §4: no plaintext login offered")
        self.assertNotIn("SASL", capa)
        for cmd in ("USER demo@example.test", "PASS demo", "AUTH PLAIN"):
            with self.assertRaises(poplib.error_proto) as e:
                c._shortcmd(cmd)
            self.assertTrue(e.exception.args[0].startswith(b"-ERR [AUTH] TLS required"), cmd)
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False  # the certificate names 127.0.0.1; the chain is verified
        c.stls(context=ctx)
        self.assertIn("USER", c.capa())
        c.user(DEMO)
        c.pass_("demo")
        self.assertEqual(c.stat()[0], 0)
        c.quit()


if __name__ == "__main__":
    unittest.main()
