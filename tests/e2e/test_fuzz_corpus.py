"""test_fuzz_corpus: the saved fuzz inputs (tests/fuzz/corpus/NAME/: a minimal corpus and every
input that once crashed or hung something) replayed through the harnesses that `make check`
builds in replay mode (tests/fuzz/NAME in the build tree, no clang needed). A crash, a
sanitizer report, a descriptor leak, a broken reply or a hang (20 s per input) fails it.
tests/fuzz/run-fuzzers is the libFuzzer build that grows these corpora."""
import glob
import os
import subprocess
import time
import unittest

import yubintest

NAMES = ["fuzz-addr", "fuzz-aliases", "fuzz-conf", "fuzz-sasl", "fuzz-smtpc", "fuzz-dsn",
         "fuzz-smtp-in", "fuzz-pop3-in", "fuzz-users", "fuzz-proxy", "fuzz-srs",
         "fuzz-imapsearch", "fuzz-mime", "fuzz-imapfetch", "fuzz-imap4-in"]


class FuzzCorpus(unittest.TestCase):
    def replay(self, name):
        prog = os.path.join(yubintest.BUILD, "tests", "fuzz", name)
        corpus = os.path.join(yubintest.SRC, "tests", "fuzz", "corpus", name)
        self.assertTrue(os.access(prog, os.X_OK), f"{prog} is not built (run make check)")
        n = len(glob.glob(os.path.join(corpus, "*")))
        self.assertGreater(n, 0, f"{corpus} is empty")
        start = time.monotonic()
        p = subprocess.run([prog, corpus], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, YUBIN_SRC=yubintest.SRC))
        self.assertEqual(p.returncode, 0, f"{name} failed:\n{p.stdout[-2000:]}"
                         f"{p.stderr[-4000:]}")
        self.assertIn(f"ok 1 - {corpus}: {n} inputs replayed", p.stdout)
        self.assertLess(time.monotonic() - start, 30)

    def test_addr(self):
        self.replay("fuzz-addr")

    def test_aliases(self):
        self.replay("fuzz-aliases")

    def test_conf(self):
        self.replay("fuzz-conf")

    def test_sasl(self):
        self.replay("fuzz-sasl")

    def test_smtpc(self):
        self.replay("fuzz-smtpc")

    def test_dsn(self):
        self.replay("fuzz-dsn")

    def test_smtp_in(self):
        self.replay("fuzz-smtp-in")

    def test_pop3_in(self):
        self.replay("fuzz-pop3-in")

    def test_users(self):
        self.replay("fuzz-users")

    def test_proxy(self):
        self.replay("fuzz-proxy")

    def test_srs(self):
        self.replay("fuzz-srs")

    def test_imapsearch(self):
        self.replay("fuzz-imapsearch")

    def test_mime(self):
        self.replay("fuzz-mime")

    def test_imapfetch(self):
        self.replay("fuzz-imapfetch")

    def test_imap4_in(self):
        self.replay("fuzz-imap4-in")


if __name__ == "__main__":
    unittest.main()
