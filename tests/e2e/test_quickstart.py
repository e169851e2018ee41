"""test_quickstart: `./quickstart` serves its demo from a checkout the mail account cannot
reach (issue 11 §1).

The checkout is copied into a directory of mode 0700 (as /root is, and many CI work
directories), and quickstart is started as root there, inside a network namespace of its own
(so its fixed ports 2525/2587/2110/2143/2993 never meet anything else). QUICKSTART_BUILT points it at the
build under test, so nothing is built again. A message to demo@example.test must be stored
and then fetched over POP3 (and seen over IMAP, STARTTLS and implicit TLS): before the fix every RCPT got 451 4.3.0, because the handlers,
dropped to the yubin account, could not reach ./demo.
"""
import imaplib
import os
import poplib
import shutil
import signal
import smtplib
import ssl
import subprocess
import tempfile
import time
import unittest
import uuid

import netns
import yubintest

SKIP = ("build", "build-asan", "demo", ".git", "autom4te.cache")


def copy_checkout(dest):
    shutil.copytree(yubintest.SRC, dest, symlinks=True,
                    ignore=lambda d, names: [n for n in names if d == yubintest.SRC and
                                             (n in SKIP or n.startswith("build"))])


@unittest.skipIf(os.geteuid() != 0, "the closed checkout matters when quickstart runs as root")
class ClosedCheckout(unittest.TestCase):
    def setUp(self):
        why = netns.unavailable()
        if why:
            self.skipTest(why)
        self.tmp = tempfile.mkdtemp(prefix="yubin-closed-")  # mode 0700, like /root
        os.chmod(self.tmp, 0o700)
        self.top = os.path.join(self.tmp, "yubin")
        copy_checkout(self.top)
        self.ns = f"ybqs{os.getpid()}{uuid.uuid4().hex[:4]}"
        subprocess.run(["ip", "netns", "add", self.ns], check=True, timeout=20)
        subprocess.run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True, timeout=20)
        self.proc = None

    def tearDown(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        demo = os.path.join(self.top, "demo")
        if os.path.islink(demo):
            base = os.path.dirname(os.path.realpath(demo))
            shutil.rmtree(base, ignore_errors=True)
            try:
                os.rmdir(os.path.dirname(base))  # /var/lib/yubin-quickstart, if now empty
            except OSError:
                pass
        subprocess.run(["ip", "netns", "del", self.ns], timeout=20)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def wait_serving(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.fail(f"quickstart exited {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                with netns.enter(self.ns):
                    with smtplib.SMTP("127.0.0.1", 2525, timeout=5) as s:
                        s.noop()
                return
            except OSError:
                time.sleep(0.2)
        self.fail("quickstart never served on 2525")

    def test_demo_serves_from_a_closed_checkout(self):
        reach = subprocess.run(["runuser", "-u", "yubin", "--", "test", "-x", self.top])
        self.assertNotEqual(reach.returncode, 0, "the checkout should be closed to yubin")
        env = dict(os.environ, QUICKSTART_BUILT=yubintest.BUILD)
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns,
                                      os.path.join(self.top, "quickstart")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=env, text=True,
                                     start_new_session=True)
        self.wait_serving()
        demo = os.path.join(self.top, "demo")
        self.assertTrue(os.path.islink(demo), "./demo should point where yubin can reach")
        self.assertTrue(os.path.realpath(demo).startswith("/var/lib/yubin-quickstart/"))
        body = f"Subject: closed checkout\r\n\r\ntoken {uuid.uuid4().hex}\r\n"
        with netns.enter(self.ns):
            with smtplib.SMTP("127.0.0.1", 2525, timeout=30) as s:
                refused = s.sendmail("you@remote.test", ["demo@example.test"], body)
            self.assertEqual(refused, {})
            p = poplib.POP3("127.0.0.1", 2110, timeout=30)
            try:
                p.user("demo@example.test")
                p.pass_("demo")
                count, _ = p.stat()
                self.assertEqual(count, 1)
                lines = p.retr(1)[1]
            finally:
                p.quit()
            # the same message over IMAP: STARTTLS on 2143, implicit TLS on 2993
            ctx = ssl.create_default_context(cafile=os.path.join(demo, "tls-cert.pem"))
            with imaplib.IMAP4("127.0.0.1", 2143, timeout=30) as i:
                i.starttls(ssl_context=ctx)
                i.login("demo@example.test", "demo")
                self.assertEqual(i.select("INBOX"), ("OK", [b"1"]))
            with imaplib.IMAP4_SSL("127.0.0.1", 2993, ssl_context=ctx, timeout=30) as i:
                i.login("demo@example.test", "demo")
                self.assertEqual(i.select("INBOX", readonly=True), ("OK", [b"1"]))
        text = b"\n".join(lines).decode()
        self.assertIn(body.split("token ")[1].strip(), text)
        new = os.path.join(demo, "state", "mail", "example.test", "demo")
        self.assertTrue(os.path.isdir(new))


if __name__ == "__main__":
    unittest.main()
