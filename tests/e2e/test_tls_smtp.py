"""TLS in smtp-in (issue 9 §3) with real clients: openssl s_client -starttls smtp and on 465
(implicit TLS), smtplib's
starttls()+login() and SMTP_SSL (verified against the test certificate), swaks --tls with
AUTH on 587, under openbsd-inetd and systemd-socket-activate; and the refusals: AUTH before
STARTTLS on 587 and 25, MAIL before STARTTLS on 587 (require_tls_submission), STARTTLS with
plaintext pipelined after it (CVE-2011-0411), STARTTLS twice, MAIL before the second EHLO (the
session restarts), a certificate or key that cannot be read at start-up (421 and one log line),
one read but unusable (not PEM, not matching, expired: 454 to STARTTLS and one log line, the
plain session served; with -T the connection closes, since no plaintext reply can reach a TLS
client), a client that
never starts its handshake on 465. Only 127.0.0.1 is ever contacted.
"""
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
import unittest

import mailcheck
import yubintest

DEMO = "demo@example.test"
USING = re.compile(rb"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+ \(\d+/\d+ bits\)\)")


def client_context(cafile):
    """A client context that verifies our test certificate (for 127.0.0.1)."""
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx


def lines_until_final(f):
    """One SMTP reply (all its lines) from a file object."""
    out = []
    while True:
        line = f.readline()
        if not line:
            return out
        out.append(line.decode())
        if len(line) < 4 or line[3:4] != b"-":
            return out


class TlsSmtp(unittest.TestCase):
    def site(self, **conf):
        inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(inst.stop)
        self.cert = inst.use_tls(**conf)
        return inst

    def received(self, inst):
        msgs = inst.messages(DEMO)
        self.assertEqual(len(msgs), 1)
        return msgs[0].split(b"\n\n", 1)[0]

    def test_every_cipher_family_tls_ciphers_may_name(self):
        """smtp-in's OpenSSL offers only the algorithms TLS can use (lib/tlsprov filters the
        default provider): each bulk cipher a TLS 1.2 suite may have, named alone in
        tls_ciphers, still makes a handshake (a family the filter dropped would fail here),
        and TLS 1.3's three suites do."""
        inst = self.site()
        tls12 = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                 "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-CCM",
                 "ECDHE-ECDSA-AES256-CCM", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA",
                 "ECDHE-ECDSA-CAMELLIA128-SHA256", "ECDHE-ECDSA-ARIA128-GCM-SHA256",
                 "ECDHE-ECDSA-ARIA256-GCM-SHA384"]
        tls13 = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                 "TLS_CHACHA20_POLY1305_SHA256"]
        for suite in tls12:
            with self.subTest(suite=suite):
                inst.settings["tls_ciphers"] = suite
                inst.write_conf()
                port = inst.serve_inetd("smtp-in")
                ctx = client_context(self.cert)
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
                ctx.set_ciphers(suite)
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
                    c.starttls(context=ctx)
                    self.assertEqual(c.sock.cipher()[0], suite)
                    self.assertEqual(c.ehlo()[0], 250)
        inst.settings.pop("tls_ciphers")
        inst.write_conf()
        port = inst.serve_inetd("smtp-in")
        for suite in tls13:
            with self.subTest(suite=suite):
                out = self.s_client(port, "-starttls", "smtp", "-ciphersuites", suite)
                self.assertIn(f"Cipher is {suite}", out)
                self.assertIn("221 2.0.0", out)

    @unittest.skipUnless(shutil.which("strace"), "needs strace")
    def test_tls_records_are_read_ahead(self):
        """Over TLS smtp-in reads what the socket holds at once (SSL read-ahead), not each
        record's 5-octet header and then its body: no read() asks for 5 octets (without
        read-ahead, each of the 80 records of 40 messages is two reads, the first of 5)."""
        inst = self.site()
        trace = os.path.join(inst.dir, "reads.strace")
        a, b = socket.socketpair()
        p = subprocess.Popen(["strace", "-qq", "-e", "trace=read", "-o", trace,
                              *inst.argv("smtp-in")], stdin=b.fileno(), stdout=b.fileno())
        b.close()
        f = a.makefile("rb")
        lines_until_final(f)
        a.sendall(b"EHLO client.test\r\n")
        lines_until_final(f)
        a.sendall(b"STARTTLS\r\n")
        self.assertTrue(lines_until_final(f)[-1].startswith("220 "))
        s = ssl._create_unverified_context().wrap_socket(a)
        f = s.makefile("rb")
        s.sendall(b"EHLO client.test\r\n")
        lines_until_final(f)
        body = b"Subject: 4 KiB\r\n\r\n" + (b"x" * 78 + b"\r\n") * 51 + b".\r\n"
        count = 40
        for _ in range(count):
            s.sendall(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n")
            for code in ("250", "250", "354"):
                self.assertTrue(lines_until_final(f)[-1].startswith(code))
            s.sendall(body)
            self.assertTrue(lines_until_final(f)[-1].startswith("250 "))
        s.sendall(b"QUIT\r\n")
        lines_until_final(f)
        s.close()
        self.assertEqual(p.wait(timeout=60), 0)
        self.assertEqual(len(inst.messages(DEMO)), count)
        with open(trace) as t:
            reads = [l for l in t if l.startswith("read(0,")]
        headers = [l for l in reads if re.search(r", 5\)\s*= ", l)]
        self.assertEqual(headers, [], "read() calls of one record header")

    def test_s_client_starttls_smtp(self):
        inst = self.site()
        port = inst.serve_inetd("smtp-in")
        out = self.s_client(port, "-starttls", "smtp")
        self.assertRegex(out, r"New, TLSv1\.3, Cipher is TLS_")
        ehlo = out[out.index("250-mx.example.test Hello client.test"):]
        self.assertIn("250-AUTH PLAIN LOGIN", ehlo, "AUTH is offered over TLS")
        self.assertNotIn("STARTTLS", ehlo, "EHLO over TLS no longer lists STARTTLS")
        self.assertIn("221 2.0.0", out)
        log = "\n".join(inst.syslog.lines())
        self.assertRegex(log, r"client=127\.0\.0\.1 TLS: using TLSv1\.3 with cipher")

    def s_client(self, port, *extra):
        """EHLO and QUIT through openssl s_client (extra: its -starttls), the certificate
        verified: what it printed."""
        p = subprocess.run(["openssl", "s_client", *extra, "-connect", f"127.0.0.1:{port}",
                            "-crlf", "-ign_eof", "-CAfile", self.cert, "-verify_return_error",
                            "-servername", "mx.example.test"],
                           input=b"EHLO client.test\nQUIT\n", capture_output=True, timeout=60)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode(errors="replace"))
        self.assertIn("Verify return code: 0 (ok)", out)
        return out

    def test_s_client_implicit_465(self):
        inst = self.site()
        port = inst.serve_inetd("smtp-in", "-s", "-T")
        out = self.s_client(port)
        self.assertRegex(out, r"(?m)^220 mx\.example\.test ESMTP")
        ehlo = out[out.index("250-mx.example.test Hello client.test"):]
        self.assertIn("250-AUTH PLAIN LOGIN", ehlo)
        self.assertNotIn("STARTTLS", ehlo)
        self.assertIn("221 2.0.0", out)

    def test_bad_certificate_with_implicit_tls_closes(self):
        """-T: no plaintext 421 can reach a TLS client; one log line, the connection closed."""
        inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(inst.stop)
        cert, _ = inst.make_certificate()
        _, other_key = inst.make_certificate(prefix="other")
        inst.use_tls(cert, other_key)
        port = inst.serve_inetd("smtp-in", "-s", "-T")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                client_context(cert).wrap_socket(s, server_hostname="mx.example.test")
        inst.syslog.wait_for("cannot serve: tls_key_file")
        self.assertTrue(any("cannot serve: tls_key_file" in l and "does not match" in l
                            for l in inst.syslog.lines()))

    def test_starttls_login_submission(self):
        inst = self.site()
        port = inst.serve_inetd("smtp-in", "-s")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.ehlo("client.test")
            self.assertTrue(c.has_extn("starttls"))
            self.assertFalse(c.has_extn("auth"), "no AUTH before TLS")
            code, text = c.mail("demo@example.test")
            self.assertEqual(code, 530, text)
            self.assertIn(b"5.7.0", text)
            code, text = c.docmd("AUTH", "PLAIN AGRlbW9AZXhhbXBsZS50ZXN0AGRlbW8=")
            self.assertEqual(code, 538, text)
            c.starttls(context=client_context(self.cert))
            code, text = c.docmd("MAIL", "FROM:<demo@example.test>")
            self.assertEqual(code, 503, "the session restarted: EHLO first")
            c.ehlo("client.test")
            self.assertFalse(c.has_extn("starttls"))
            self.assertTrue(c.has_extn("auth"))
            code, text = c.docmd("STARTTLS")
            self.assertEqual((code, text[:5]), (503, b"5.5.1"), "STARTTLS twice")
            c.login(DEMO, "demo")
            c.sendmail(DEMO, [DEMO], b"Subject: tls\r\n\r\nover TLS\r\n")
        head = self.received(inst)
        self.assertIn(b"with ESMTPSA id", head)
        self.assertRegex(head, USING)
        log = "\n".join(inst.syslog.lines())
        self.assertRegex(log, r"id=\w+ .*result=\"250 [^\"]*\" tls=\"using TLSv1\.3 with cipher")

    def test_implicit_tls_465_systemd(self):
        inst = self.site()
        port = inst.serve_systemd("smtp-in", "-s", "-T")
        with smtplib.SMTP_SSL("127.0.0.1", port, timeout=30,
                              context=client_context(self.cert)) as c:
            c.ehlo("client.test")
            self.assertFalse(c.has_extn("starttls"))
            c.login(DEMO, "demo")
            c.sendmail(DEMO, [DEMO], b"Subject: 465\r\n\r\nimplicit TLS\r\n")
        head = self.received(inst)
        self.assertIn(b"with ESMTPSA id", head)
        self.assertRegex(head, USING)

    def test_port_25_starttls_esmtps(self):
        inst = self.site()
        port = inst.serve_inetd("smtp-in")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.ehlo("client.test")
            self.assertFalse(c.has_extn("auth"))
            code, text = c.docmd("AUTH", "PLAIN AGRlbW9AZXhhbXBsZS50ZXN0AGRlbW8=")
            self.assertEqual(code, 538, "AUTH before STARTTLS on 25")
            c.starttls(context=client_context(self.cert))
            c.ehlo("client.test")
            c.sendmail("someone@remote.test", [DEMO], b"Subject: 25\r\n\r\nSTARTTLS\r\n")
        head = self.received(inst)
        self.assertIn(b"with ESMTPS id", head)
        self.assertRegex(head, USING)

    @unittest.skipUnless(shutil.which("swaks"), "swaks is not installed")
    def test_swaks_tls_auth_587(self):
        inst = self.site()
        port = inst.serve_inetd("smtp-in", "-s")
        p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--tls",
                            "--auth", "LOGIN", "--auth-user", DEMO, "--auth-password", "demo",
                            "--from", DEMO, "--to", DEMO, "--helo", "client.test",
                            "--timeout", "30"], capture_output=True, timeout=60)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out[-3000:])
        self.assertRegex(out, r"(?m)^<~ +235 2\.7\.0")
        self.assertRegex(out, r"(?m)^<~ +250 2\.0\.0 Ok: queued as ")
        self.assertIn(b"with ESMTPSA id", self.received(inst))

    def raw(self, port):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        self.assertTrue(lines_until_final(f)[0].startswith("220 "))
        s.sendall(b"EHLO client.test\r\n")
        self.assertIn("250-STARTTLS\r\n", lines_until_final(f))
        return s, f

    def test_plaintext_pipelined_after_starttls_is_refused(self):
        inst = self.site()
        port = inst.serve_inetd("smtp-in")
        s, f = self.raw(port)
        s.sendall(b"STARTTLS\r\nRSET\r\n")
        reply = lines_until_final(f)
        self.assertTrue(reply[0].startswith("554 5.5.1"), reply)
        self.assertEqual(f.read(), b"", "and the connection is closed")
        log = "\n".join(inst.syslog.lines())
        self.assertIn("commands pipelined after STARTTLS: connection closed", log)

    def test_silent_client_on_465_times_out(self):
        inst = self.site(command_timeout="2")
        port = inst.serve_inetd("smtp-in", "-s", "-T")
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.addCleanup(s.close)
        start = time.monotonic()
        self.assertEqual(s.recv(100), b"", "nothing in plaintext, closed at the timeout")
        self.assertLess(time.monotonic() - start, 20)
        inst.syslog.wait_for("TLS handshake failed: timeout")
        self.assertTrue(any("TLS handshake failed: timeout" in l for l in inst.syslog.lines()))

    def bad_pairs(self, inst):
        """(settings, why) for each way a pair can be unusable once read: not PEM, a key that
        does not match, an expired certificate."""
        good_cert, good_key = inst.make_certificate()
        _, other_key = inst.make_certificate(prefix="other")
        old_cert, old_key = inst.make_certificate(prefix="old", days=-1)
        junk = os.path.join(inst.dir, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        return [
            ({"tls_cert_file": junk, "tls_key_file": good_key}, "no PEM certificate"),
            ({"tls_cert_file": good_cert, "tls_key_file": other_key}, "does not match"),
            ({"tls_cert_file": old_cert, "tls_key_file": old_key}, "expired on"),
        ]

    def test_unreadable_certificate_gives_421(self):
        """A file that cannot be read (as root, at start-up) is 421 and one log line."""
        inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(inst.stop)
        _, good_key = inst.make_certificate()
        missing = os.path.join(inst.dir, "missing.pem")
        inst.settings.update({"tls_cert_file": missing, "tls_key_file": good_key})
        inst.write_conf()
        port = inst.serve_inetd("smtp-in")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            greeting = s.makefile("rb").readline().decode()
        self.assertTrue(greeting.startswith("421 4.3.0 "), greeting)
        why = f"cannot serve: tls_cert_file {missing}: No such file or directory"
        inst.syslog.wait_for(why)

    def test_bad_pair_refuses_starttls_with_454_and_serves_plain(self):
        """The pair is parsed only at STARTTLS (a plain session never pays OpenSSL's set-up):
        one that cannot serve is 454 and one log line there, and the session goes on in
        plaintext; a plain session takes its message as if no certificate were set. Before
        the set-up was lazy, these sessions got 421 at the greeting."""
        inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(inst.stop)
        for n, (conf, why) in enumerate(self.bad_pairs(inst)):
            with self.subTest(why=why):
                inst.settings.update(conf)
                inst.write_conf()
                port = inst.serve_inetd("smtp-in")
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
                    c.ehlo("client.test")
                    self.assertTrue(c.has_extn("starttls"))
                    code, text = c.docmd("STARTTLS")
                    self.assertEqual(code, 454, text)
                    self.assertTrue(text.startswith(b"4.7.0 TLS not available"), text)
                    inst.syslog.wait_for(why)
                    lines = [l for l in inst.syslog.lines() if why in l]
                    self.assertIn("TLS cannot serve: tls_", lines[-1])
                    self.assertEqual(c.noop()[0], 250)
                    c.sendmail("a@remote.test", [DEMO], f"Subject: plain {n}\n\nbody\n")
                self.assertEqual(len(inst.messages(DEMO)), n + 1)

if __name__ == "__main__":
    unittest.main()
