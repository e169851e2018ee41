"""test_tls_out: queue-run's outbound TLS (issue 9 item 5): opportunistic STARTTLS, the
tls_policy_file levels, the one retry in clear after a broken handshake, and what the queue
envelope, mailq and the log keep of it.

The remote MX is smtpsink.py on 127.0.0.51-52 (STARTTLS from Python's ssl module with a
self-signed certificate made by the openssl command), found through dnsmasq; messages are
queued with queue-inject and queue-run is run as the timer runs it. ToYubinMX delivers to a
real yubin site instead (smtp-in under openbsd-inetd on 127.0.0.57), whose Received says
ESMTPS, or, without a certificate, ESMTP under may and nothing under encrypt. Nothing here
contacts anything but 127.0.0.0/8.
"""
import os
import ssl
import subprocess
import tempfile
import unittest

import yubintest
from smtpsink import SMTPSink
import test_relay

RECORDS = ["remote.test MX 10 mx.remote.test", "mx.remote.test A 127.0.0.51"]


def make_cert(directory, name):
    """A self-signed ECDSA P-256 certificate for name: (cert path, key path)."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name}", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class TLSCase(unittest.TestCase):
    """A certificate for the class; a site (self.site) and a sink (self.sink) per test."""
    CN = "mx.remote.test"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.cert, cls.key = make_cert(cls.tmp.name, cls.CN)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def tearDown(self):
        self.sink.close()
        self.site.stop()

    inject = test_relay.RelayTest.inject
    run_queue = test_relay.RelayTest.run_queue
    qdir = test_relay.RelayTest.qdir
    entries = test_relay.RelayTest.entries

    def env_text(self, qid):
        with open(os.path.join(self.qdir(), qid + ".env")) as f:
            return f.read()

    def deliver_one(self, rcpt):
        """A message to rcpt injected and queue-run -f: one message reached the sink.
        Its queue id and queue-run's output."""
        qid = self.inject([rcpt])
        out = self.run_queue("-f")
        self.assertEqual(len(self.sink.messages), 1, out)
        return qid, out

    def log(self):
        return "\n".join(self.site.syslog.lines())


class OutboundTLS(TLSCase):

    def setUp(self):
        self.dns = test_relay.dns_server(RECORDS)
        self.sink = SMTPSink(["127.0.0.51"])
        self.site = yubintest.Instance(users=("demo@example.test",), conf={
            "dns_resolver": self.dns.resolver, "smtp_port": str(self.sink.port),
            "connect_timeout": "5", "command_timeout": "10"})

    def policy(self, text):
        path = os.path.join(self.site.dir, "tls-policy")
        with open(path, "w") as f:
            f.write(text)
        self.site.settings["tls_policy_file"] = path
        self.site.write_conf()

    def test_starttls_when_offered(self):
        self.sink.tls = server_context(self.cert, self.key)
        qid = self.inject(["bob@remote.test", "carol@remote.test"])
        out = self.run_queue("-f")
        self.assertEqual(len(self.sink.messages), 1, out)
        m = self.sink.messages[0]
        self.assertIsNotNone(m.tls, out)
        self.assertIn(m.tls[0], ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(sorted(m.rcpts), ["bob@remote.test", "carol@remote.test"])
        self.assertEqual(self.entries(), [], out)
        self.assertRegex(self.log(), rf"{qid}: to=<bob@remote\.test> delivered attempt=1 "
                         r"tls=TLSv1\.[23]/[A-Z0-9_-]+/untrusted: 250")

    def test_mailq_shows_tls_of_a_deferred_recipient(self):
        self.sink.tls = server_context(self.cert, self.key)
        self.sink.data_reply = lambda host, msg: "451 4.3.0 try later"
        qid = self.inject(["bob@remote.test"])
        self.run_queue("-f")
        env = self.env_text(qid)
        self.assertRegex(env, r"\nrcpt pending 1 \d+ bob@remote\.test mx\.remote\.test 451 4\.3\.0"
                         r" try later\ntls TLSv1\.[23] \S+ untrusted\n", env)
        p = subprocess.run([yubintest.program("mailq"), "-C", self.site.conf],
                           capture_output=True, text=True, timeout=30)
        self.assertRegex(p.stdout, r"tls: TLSv1\.[23] \S+ untrusted", p.stdout)

    def test_no_starttls_delivers_in_clear_under_may(self):
        qid, out = self.deliver_one("bob@remote.test")
        self.assertIsNone(self.sink.messages[0].tls)
        self.assertIn("no STARTTLS offered: going on without TLS", out)
        self.assertRegex(self.log(), rf"{qid}: to=<bob@remote\.test> delivered attempt=1 "
                         r"tls=none: 250")

    def test_no_starttls_defers_under_encrypt(self):
        self.policy("# outbound TLS\nremote.test encrypt\n")
        qid = self.inject(["bob@remote.test"])
        out = self.run_queue("-f")
        self.assertEqual(self.sink.messages, [], out)
        env = test_relay.parse_env(os.path.join(self.qdir(), qid + ".env"))
        r = env["rcpts"][0]
        self.assertEqual(r["state"], "pending")
        self.assertIn("4.7.4 no STARTTLS offered", r["reply"])
        self.assertIn("TLS is required for it (encrypt)", r["reply"])
        self.assertIn("deferred", self.log())

    def test_subdomain_policy_line(self):
        self.policy(".test encrypt\n")
        self.inject(["bob@remote.test"])
        out = self.run_queue("-f")
        self.assertEqual(self.sink.messages, [], out)
        self.sink.tls = server_context(self.cert, self.key)
        out = self.run_queue("-f")
        self.assertEqual(len(self.sink.messages), 1, out)
        self.assertIsNotNone(self.sink.messages[0].tls)

    def test_broken_handshake_is_retried_once_in_clear(self):
        self.sink.tls = server_context(self.cert, self.key)
        self.sink.tls_break = True
        qid = self.inject(["bob@remote.test"])
        out = self.run_queue("-f")
        # the first session broke at the handshake; the second one offers STARTTLS again, and
        # queue-run, on its one retry in clear, does not take it
        self.assertEqual(len(self.sink.messages), 1, out)
        self.assertIsNone(self.sink.messages[0].tls)
        self.assertEqual(self.sink.connections["127.0.0.51"], 2)
        self.assertRegex(self.log(), r"mx\.remote\.test \(remote\.test\): 4\.7\.0\\x20TLS\\x20"
                         r"handshake\\x20with\\x20127\.0\.0\.51:\d+\\x20failed:\\x20\S+: "
                         r"trying again without TLS")
        self.assertIn(f"{qid}: to=<bob@remote.test> delivered", self.log())

    def test_broken_handshake_defers_under_encrypt(self):
        self.policy("remote.test encrypt\n")
        self.sink.tls = server_context(self.cert, self.key)
        self.sink.tls_break = True
        qid = self.inject(["bob@remote.test"])
        out = self.run_queue("-f")
        self.assertEqual(self.sink.messages, [], out)
        self.assertEqual(self.sink.connections["127.0.0.51"], 1)
        env = test_relay.parse_env(os.path.join(self.qdir(), qid + ".env"))
        self.assertIn("4.7.0 TLS handshake with", env["rcpts"][0]["reply"])

    def test_plaintext_behind_the_220_is_refused(self):
        self.sink.tls = server_context(self.cert, self.key)
        self.sink.tls_break = "early"
        qid = self.inject(["bob@remote.test"])
        out = self.run_queue("-f")
        self.assertEqual(self.sink.messages, [], out)
        env = test_relay.parse_env(os.path.join(self.qdir(), qid + ".env"))
        self.assertIn("4.5.0 protocol error from 127.0.0.51", env["rcpts"][0]["reply"])
        self.assertIn("data after the 220 to STARTTLS", env["rcpts"][0]["reply"])

    def test_none_never_starts_tls(self):
        self.policy("remote.test none\n")
        self.sink.tls = server_context(self.cert, self.key)
        self.inject(["bob@remote.test"])
        out = self.run_queue("-f")
        self.assertEqual(len(self.sink.messages), 1, out)
        self.assertIsNone(self.sink.messages[0].tls)

    def test_verify_refuses_a_self_signed_certificate(self):
        self.policy("remote.test verify\n")
        self.sink.tls = server_context(self.cert, self.key)
        qid = self.inject(["bob@remote.test"])
        out = self.run_queue("-f")
        self.assertEqual(self.sink.messages, [], out)
        env = test_relay.parse_env(os.path.join(self.qdir(), qid + ".env"))
        self.assertRegex(env["rcpts"][0]["reply"],
                         r"4\.7\.5 TLS with 127\.0\.0\.51:\d+ \(verify\): certificate "
                         r"verification failed: self.signed certificate")

    def test_bad_policy_file_is_a_config_error(self):
        self.policy("remote.test sometimes\n")
        p = subprocess.run([yubintest.program("queue-run"), "-C", self.site.conf],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 78, p.stderr)  # EX_CONFIG
        self.assertIn("tls-policy:1: unknown level \"sometimes\"", p.stderr)

    def test_tls_protocols_and_ciphers_apply_outbound(self):
        """yubin.conf's tls_protocols and tls_ciphers bound what queue-run offers, as they
        do for smtp-in: an MX that stops at TLS 1.2 fails a site that allows only TLS 1.3,
        and one with no cipher in common fails at TLS 1.2 (encrypt: the mail waits)."""
        self.policy("remote.test encrypt\n")
        self.sink.tls = server_context(self.cert, self.key)
        self.sink.tls.maximum_version = ssl.TLSVersion.TLSv1_2
        self.sink.tls.set_ciphers("ECDHE+AESGCM")
        for key, value in (("tls_protocols", "TLSv1.3"), ("tls_ciphers", "ECDHE+CHACHA20")):
            with self.subTest(key=key):
                self.site.settings.pop("tls_protocols", None)
                self.site.settings.pop("tls_ciphers", None)
                self.site.settings[key] = value
                self.site.write_conf()
                qid = self.inject(["bob@remote.test"])
                out = self.run_queue("-f", "-i", qid)
                self.assertEqual(self.sink.messages, [], out)
                env = test_relay.parse_env(os.path.join(self.qdir(), qid + ".env"))
                self.assertIn("4.7.0 TLS handshake with", env["rcpts"][0]["reply"])
        del self.site.settings["tls_ciphers"]
        self.site.write_conf()
        out = self.run_queue("-f")
        self.assertEqual(len(self.sink.messages), 2, out)
        self.assertEqual([m.tls[0] for m in self.sink.messages], ["TLSv1.2"] * 2)


class SmarthostAuth(TLSCase):
    """A smarthost on port 465 (implicit TLS, RFC 8314) or another port (STARTTLS), with AUTH
    from smarthost_auth_file: smtpsink.py on 127.0.0.53."""
    ADDR = "127.0.0.53"
    CN = "smarthost.test"

    def start(self, port=None, password="s3cret:with colon"):
        self.sink = SMTPSink([self.ADDR], port=port)
        self.sink.auth = ("relayuser", "s3cret:with colon")
        self.site = yubintest.Instance(users=("demo@example.test",), conf={
            "smarthost": f"{self.ADDR}:{self.sink.port}", "connect_timeout": "5",
            "command_timeout": "10"})
        self.auth_file = os.path.join(self.site.dir, "smarthost-auth")
        fd = os.open(self.auth_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, f"relayuser:{password}\n".encode())
        os.close(fd)
        self.site.settings["smarthost_auth_file"] = self.auth_file
        self.site.write_conf()

    def test_implicit_tls_on_465_with_auth_plain(self):
        self.start(port=465)
        self.sink.implicit_tls = server_context(self.cert, self.key)
        qid = self.inject(["bob@remote.test"])
        out = self.run_queue("-f")
        self.assertEqual(self.sink.logins, [("relayuser", "s3cret:with colon")], out)
        self.assertEqual(len(self.sink.messages), 1, out)
        self.assertIsNotNone(self.sink.messages[0].tls)
        self.assertIn("AUTH PLAIN <credentials>", out)
        self.assertNotIn("s3cret", out + self.log())
        self.assertIn(f"{qid}: to=<bob@remote.test> delivered", self.log())

    def test_starttls_then_auth(self):
        self.start()
        self.sink.tls = server_context(self.cert, self.key)
        self.inject(["bob@remote.test"])
        out = self.run_queue("-f")
        self.assertEqual(len(self.sink.messages), 1, out)
        self.assertIsNotNone(self.sink.messages[0].tls)
        self.assertEqual(len(self.sink.logins), 1)

    def test_credentials_never_go_in_clear(self):
        self.start()  # no TLS at the smarthost
        qid = self.inject(["bob@remote.test"])
        out = self.run_queue("-f")
        self.assertEqual(self.sink.logins, [], out)
        self.assertEqual(self.sink.messages, [], out)
        self.assertIn("4.7.10", self.env_text(qid))
        self.assertIn("no TLS, so the credentials are not sent", self.env_text(qid))

    def test_wrong_password_defers(self):
        self.start(port=465, password="wrong")
        self.sink.implicit_tls = server_context(self.cert, self.key)
        qid = self.inject(["bob@remote.test"])
        out = self.run_queue("-f")
        self.assertEqual(self.sink.messages, [], out)
        self.assertRegex(self.env_text(qid), r"rcpt pending 1 \d+ bob@remote\.test - 4\.7\.8 "
                         r"authentication at 127\.0\.0\.53:465 failed: 535 5\.7\.8 bad credentials")
        self.assertNotIn("wrong", self.log())

    def test_auth_file_readable_by_others_is_refused(self):
        self.start()
        os.chmod(self.auth_file, 0o644)
        p = subprocess.run([yubintest.program("queue-run"), "-C", self.site.conf],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("must be a file only its owner can read (0600)", p.stderr)
        self.assertNotIn("s3cret", p.stderr)


class ToYubinMX(unittest.TestCase):
    """queue-run delivering to another yubin site: smtp-in under openbsd-inetd on
    127.0.0.57 as mx.remote.test, with a certificate or without one."""
    MX = "127.0.0.57"

    def setUp(self):
        self.mx = yubintest.Instance(domains=("remote.test",), users=("bob@remote.test",),
                                     hostname="mx.remote.test")
        self.addCleanup(self.mx.stop)
        self.mx_cert = self.mx.use_tls()
        port = self.mx.serve_inetd("smtp-in", host=self.MX)
        self.dns = test_relay.dns_server(["remote.test MX 10 mx.remote.test",
                                          f"mx.remote.test A {self.MX}"])
        self.site = yubintest.Instance(users=("demo@example.test",), conf={
            "dns_resolver": self.dns.resolver, "smtp_port": str(port),
            "connect_timeout": "5", "command_timeout": "10"})
        self.addCleanup(self.site.stop)

    inject = TLSCase.inject
    run_queue = TLSCase.run_queue
    qdir = TLSCase.qdir
    entries = TLSCase.entries
    policy = OutboundTLS.policy

    def received(self):
        """The MX's Received line, unfolded."""
        msgs = self.mx.messages("bob@remote.test")
        self.assertEqual(len(msgs), 1)
        head = msgs[0].split(b"\n\n", 1)[0]
        return head.split(b"\nReceived: ", 2)[1].split(b"\nReceived: ")[0].replace(b"\n\t", b" ")

    def test_starttls_to_a_yubin_mx_says_esmtps(self):
        qid = self.inject(["bob@remote.test"])
        out = self.run_queue("-f")
        self.assertEqual(self.entries(), [], out)
        received = self.received()
        self.assertRegex(received, rb"^from mx\.example\.test \(\[127\.0\.0\.\d+\]\) "
                         rb"\(using TLSv1\.3 with cipher TLS_[A-Z0-9_]+ \(\d+/\d+ bits\)\) "
                         rb"by mx\.remote\.test \(yubin\) with ESMTPS id ")
        log = "\n".join(self.site.syslog.lines())
        self.assertRegex(log, rf"{qid}: to=<bob@remote\.test> delivered attempt=1 "
                         r"tls=TLSv1\.3/TLS_[A-Z0-9_]+/untrusted: 250\\x202\.0\.0")
        mx_log = "\n".join(self.mx.syslog.lines())
        self.assertRegex(mx_log, r"TLS: using TLSv1\.3 with cipher")

    def test_mx_without_a_certificate(self):
        """No STARTTLS at the MX: in clear under may (ESMTP), deferred under encrypt."""
        del self.mx.settings["tls_cert_file"], self.mx.settings["tls_key_file"]
        self.mx.write_conf()
        self.policy("remote.test encrypt\n")
        qid = self.inject(["bob@remote.test"])
        self.run_queue("-f")
        self.assertEqual(self.mx.messages("bob@remote.test"), [])
        env = test_relay.parse_env(os.path.join(self.qdir(), qid + ".env"))
        self.assertIn("4.7.4 no STARTTLS offered", env["rcpts"][0]["reply"])
        self.policy("remote.test may\n")
        out = self.run_queue("-f")
        self.assertEqual(self.entries(), [], out)
        received = self.received()
        self.assertRegex(received, rb" with ESMTP id ")
        self.assertNotIn(b"using TLS", received)


if __name__ == "__main__":
    unittest.main()
