"""test_testssl: testssl.sh (the Debian package's `testssl`), a TLS scanner, against smtp-in
on port 25 (STARTTLS), `smtp-in -s -T` (465, implicit TLS) and `pop3-in -T` (995), each under
openbsd-inetd with a P-256 test certificate and the default tls_protocols and tls_ciphers.

A small set of its checks keeps the scans short (three at once, about half a minute on an
idle machine, minutes under heavy load): the protocols (-p), the cipher categories (-s) and
forward secrecy (-f) on every port, the server's preferences (-P, the slowest) on 465 alone,
with --jsonfile; the test reads the JSON. Asserted, on every port: no SSLv2, SSLv3, TLS 1.0 or
1.1; TLS 1.2 and 1.3; no NULL, anonymous, export, LOW (DES, RC4), 3DES/IDEA or CBC ciphers;
forward secrecy on; no finding of severity MEDIUM or worse; on 465, the server's cipher order,
and every TLS 1.2 cipher in it an ECDHE one. -n none: testssl makes no
DNS query; only 127.0.0.1 is contacted. bench/README.md has the summary of one run.
"""
import concurrent.futures
import json
import os
import shutil
import subprocess
import unittest

import yubintest

TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")
CHECKS = ["-p", "-s", "-f"]
PORTS = {"25": ("smtp-in", (), ["--starttls", "smtp"]),
         "465": ("smtp-in", ("-s", "-T"), ["-P"]),
         "995": ("pop3-in", ("-T",), [])}


def scan(directory, name, port, extra):
    """One testssl run; returns {id: (severity, finding)} and the text it printed."""
    out = os.path.join(directory, f"testssl-{name}.json")
    p = subprocess.run([TESTSSL, "--quiet", "--color", "0", "--warnings", "off", "-n", "none",
                        "--connect-timeout", "10", "--openssl-timeout", "30",
                        "--jsonfile", out, *CHECKS, *extra, f"127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=900)
    with open(out) as f:
        findings = json.load(f)
    return {e["id"]: (e["severity"], e["finding"]) for e in findings}, p.stdout + p.stderr


@unittest.skipUnless(TESTSSL, "testssl.sh is not installed")
class TestSSL(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = yubintest.Instance(users=("demo@example.test",))
        try:
            cls.inst.use_tls()
            jobs = {}
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(PORTS)) as pool:
                for name, (prog, args, extra) in PORTS.items():
                    port = cls.inst.serve_inetd(prog, *args)
                    jobs[name] = pool.submit(scan, cls.inst.dir, name, port, extra)
                cls.results = {name: job.result() for name, job in jobs.items()}
        except BaseException:
            cls.inst.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()

    def each(self):
        for name, (findings, text) in self.results.items():
            with self.subTest(port=name):
                yield findings, text

    def finding(self, findings, key, text):
        self.assertIn(key, findings, text[-3000:])
        return findings[key][1]

    def test_the_service_was_reached(self):
        for findings, text in self.each():
            self.assertNotIn("scanProblem", findings, text[-3000:])
            self.assertTrue(self.finding(findings, "TLS1_3", text).startswith("offered"))

    def test_only_tls_1_2_and_1_3(self):
        for findings, text in self.each():
            for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
                self.assertEqual(self.finding(findings, old, text), "not offered", old)
            self.assertEqual(self.finding(findings, "TLS1_2", text), "offered")
            self.assertTrue(self.finding(findings, "TLS1_3", text).startswith("offered"))

    def test_no_null_export_rc4_3des_or_cbc_ciphers(self):
        for findings, text in self.each():
            for cat in ("NULL", "aNULL", "EXPORT", "LOW", "3DES_IDEA", "AVERAGE"):
                self.assertEqual(self.finding(findings, "cipherlist_" + cat, text),
                                 "not offered", cat)
            self.assertEqual(self.finding(findings, "cipherlist_STRONG", text), "offered")

    def test_forward_secrecy(self):
        for findings, text in self.each():
            self.assertEqual(self.finding(findings, "PFS", text), "offered")

    def test_server_cipher_order_forward_secret_only(self):
        findings, text = self.results["465"]
        self.assertEqual(self.finding(findings, "cipher_order", text), "server")
        tls12 = self.finding(findings, "cipherorder_TLSv1_2", text).split()
        self.assertTrue(tls12, text[-3000:])
        for cipher in tls12:
            self.assertTrue(cipher.startswith("ECDHE-"), cipher)
        for cipher in self.finding(findings, "cipherorder_TLSv1_3", text).split():
            self.assertTrue(cipher.startswith("TLS_"), cipher)  # all forward secret

    def test_nothing_medium_or_worse(self):
        for findings, text in self.each():
            bad = {k: v for k, v in findings.items()
                   if v[0] in ("MEDIUM", "HIGH", "CRITICAL", "FATAL", "WARN")}
            self.assertEqual(bad, {}, text[-3000:])


if __name__ == "__main__":
    unittest.main()
