"""A full disk, for real: the state_dir is a small tmpfs (1 MiB, 64 inodes) that the test mounts,
fills, and unmounts again. Delivery must fail temporarily (EX_TEMPFAIL from maildir-deliver,
452 4.3.1 from smtp-in) and leave nothing partial in new/, tmp/ or the queue; once space is
freed, the same delivery succeeds; the same through smtp-in -T (implicit TLS, a real TLS
client under openbsd-inetd). Mounting needs root; without it the test is skipped.
"""
import errno
import os
import select
import smtplib
import ssl
import subprocess
import threading
import time
import unittest

import yubintest

EX_TEMPFAIL = 75
SMALL = b"Subject: first\r\n\r\nsmall\r\n"


def fill_blocks(path, leave=0):
    """Writes path until the filesystem is full, then gives back `leave` bytes."""
    chunk = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096):
            while True:
                try:
                    os.write(fd, chunk[:size])
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
        if leave:
            os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)


def fill_inodes(directory):
    """Creates empty files until no inode is left; returns how many."""
    os.mkdir(directory)
    n = 0
    while True:
        try:
            os.close(os.open(os.path.join(directory, str(n)), os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            return n
        n += 1


class SMTPPipe:
    """smtp-in on pipes (the client is then "local"), one reply at a time, with timeouts."""

    def __init__(self, inst):
        self.p = inst.pipe("smtp-in")
        self.buf = b""
        self.transcript = []

    def reply(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([self.p.stdout], [], [], max(0.0, left))
                if not ready:
                    raise AssertionError(f"no reply within {timeout}s: {self.transcript}")
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"smtp-in closed the connection: {self.transcript}")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            self.transcript.append("S: " + lines[-1])
            if line[3:4] != b"-":
                return lines[-1]

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def cmd(self, line):
        self.transcript.append("C: " + line)
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def data(self, msg):
        """Sends a dot-stuffed message and its end in a thread (smtp-in may stop reading);
        returns the reply to the final dot."""
        body = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n"
                        for l in msg.split(b"\r\n")[:-1])

        def write():
            try:
                self.send(body + b".\r\n")
            except (BrokenPipeError, ValueError):
                pass
        t = threading.Thread(target=write, daemon=True)
        t.start()
        self.transcript.append(f"C: <{len(body)} bytes> .")
        r = self.reply(timeout=60)
        t.join(timeout=30)
        return r

    def close(self):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.p.stdout.close()
        self.p.stderr.close()


class FullDiskTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs as state_dir needs root")
        self.inst = yubintest.Instance()
        self.addCleanup(self.inst.stop)
        st = self.inst.state_dir
        subprocess.run(["mount", "-t", "tmpfs", "-o",
                        f"size=1m,nr_inodes=64,mode=0700,uid={self.inst.uid},gid={self.inst.gid}",
                        "yubin-full-disk", st], check=True, timeout=30)
        self.addCleanup(self.umount)  # runs before inst.stop removes the directory
        self.filler = os.path.join(st, "filler")
        self.msg = (b"Subject: full disk\r\n\r\n" +
                    b"".join(b"line %06d \xe9\xe8 of a message that needs room\r\n" % i
                             for i in range(3000)))

    def umount(self):
        for _ in range(50):
            if subprocess.run(["umount", self.inst.state_dir], timeout=30).returncode == 0:
                return
            time.sleep(0.1)
        subprocess.run(["umount", "-l", self.inst.state_dir], timeout=30, check=True)

    def deliver(self, data=None):
        p = subprocess.run([yubintest.program("maildir-deliver"), "-C", self.inst.conf,
                            "-f", "sender@remote.test", "demo@example.test"],
                           input=self.msg if data is None else data, capture_output=True,
                           timeout=60)
        return p.returncode, p.stderr.decode("utf-8", "replace")

    def assert_nothing_partial(self, complete, exact=True):
        """Only the complete earlier messages are in new/ (exact: as maildir-deliver stores
        them); tmp/ and queue/ hold nothing."""
        self.assertEqual(len(self.inst.message_names("demo@example.test")), complete)
        whole = {self.expected(self.msg), self.expected(SMALL)}
        for body in self.inst.messages("demo@example.test") if exact else []:
            self.assertIn(body, whole, "a complete message")
        for sub in ("tmp", "queue"):
            d = os.path.join(self.inst.state_dir, sub)
            left = [os.path.join(dp, f) for dp, _, fs in os.walk(d) for f in fs]
            self.assertEqual(left, [], sub)

    @staticmethod
    def expected(msg):
        return b"Return-Path: <sender@remote.test>\n" + msg.replace(b"\r\n", b"\n")

    def assert_delivered(self, index):
        self.assertEqual(self.inst.messages("demo@example.test")[index], self.expected(self.msg))

    def test_full_before_the_first_delivery(self):
        fill_blocks(self.filler)
        rc, err = self.deliver()
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertIn("disk full", err)
        self.assertIn("nothing delivered", err)
        self.assert_nothing_partial(0)
        os.unlink(self.filler)
        rc, err = self.deliver()
        self.assertEqual((rc, err), (0, ""))
        self.assert_delivered(0)

    def test_full_in_the_middle_of_a_message(self):
        # A first, small message makes the Maildir; then only 8 KiB stay free.
        rc, err = self.deliver(SMALL)
        self.assertEqual((rc, err), (0, ""))
        fill_blocks(self.filler, leave=8192)
        rc, err = self.deliver()
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertIn("disk full", err)
        self.assert_nothing_partial(1)
        os.unlink(self.filler)
        rc, err = self.deliver()
        self.assertEqual((rc, err), (0, ""))
        self.assert_nothing_partial(2)

    def test_no_inode_left(self):
        fill_inodes(os.path.join(self.inst.state_dir, "many"))
        rc, err = self.deliver()
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertIn("disk full", err)
        self.assert_nothing_partial(0)
        for name in os.listdir(os.path.join(self.inst.state_dir, "many"))[:20]:
            os.unlink(os.path.join(self.inst.state_dir, "many", name))
        rc, err = self.deliver()
        self.assertEqual((rc, err), (0, ""))
        self.assert_delivered(0)

    def smtp_send(self):
        """One message through smtp-in on a pipe; returns the replies after the greeting, the
        last of them the reply to the final dot (or the first refusal)."""
        if not os.access(yubintest.program("smtp-in"), os.X_OK):
            self.skipTest("smtp-in is not built in this tree")
        s = SMTPPipe(self.inst)
        self.addCleanup(s.close)
        self.assertTrue(s.reply().startswith("220"), s.transcript)
        replies = [s.cmd("EHLO client.test")]
        for line in ("MAIL FROM:<sender@remote.test>", "RCPT TO:<demo@example.test>", "DATA"):
            replies.append(s.cmd(line))
            if not replies[-1].startswith(("250", "354")):
                return replies, s
        replies.append(s.data(self.msg))
        return replies, s

    def test_smtp_in_452_then_retry(self):
        rc, err = self.deliver(SMALL)  # the Maildir exists; then only 8 KiB stay free
        self.assertEqual((rc, err), (0, ""))
        fill_blocks(self.filler, leave=8192)
        replies, s = self.smtp_send()
        self.assertTrue(replies[-1].startswith("452 4.3.1"), s.transcript)
        self.assertFalse(any(r.startswith("250 2.0.0") for r in replies[2:]), s.transcript)
        self.assertTrue(s.cmd("QUIT").startswith("221"), s.transcript)
        self.assert_nothing_partial(1)
        os.unlink(self.filler)
        replies, s = self.smtp_send()
        self.assertTrue(replies[-1].startswith("250"), s.transcript)
        self.assert_nothing_partial(2, exact=False)
        stored = [m for m in self.inst.messages("demo@example.test")
                  if m != self.expected(SMALL)]
        self.assertEqual(len(stored), 1)
        self.assertTrue(stored[0].startswith(b"Return-Path: <sender@remote.test>\n"), stored[0][:80])
        self.assertTrue(stored[0].endswith(b"\n\n" + self.msg.split(b"\r\n\r\n", 1)[1]
                                           .replace(b"\r\n", b"\n")), stored[0][-80:])

    def test_smtp_in_full_from_the_start(self):
        fill_blocks(self.filler)
        replies, s = self.smtp_send()
        self.assertTrue(replies[-1].startswith("452 4.3.1"), s.transcript)
        self.assert_nothing_partial(0)


    def test_smtp_in_452_over_tls_then_retry(self):
        cert = self.inst.use_tls()
        port = self.inst.serve_inetd("smtp-in", "-T")
        ctx = ssl.create_default_context(cafile=cert)
        rc, err = self.deliver(SMALL)  # the Maildir exists; then only 8 KiB stay free
        self.assertEqual((rc, err), (0, ""))
        fill_blocks(self.filler, leave=8192)
        with smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=60) as c:
            c.ehlo("client.test")
            c.mail("sender@remote.test")
            c.rcpt("demo@example.test")
            code, text = c.data(self.msg)
            self.assertEqual((code, text[:5]), (452, b"4.3.1"), text)
            self.assertEqual(c.noop()[0], 250, "the session goes on over TLS")
        self.assert_nothing_partial(1)
        os.unlink(self.filler)
        with smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=60) as c:
            c.sendmail("sender@remote.test", ["demo@example.test"], self.msg)
        self.assert_nothing_partial(2, exact=False)
        stored = [m for m in self.inst.messages("demo@example.test")
                  if m != self.expected(SMALL)]
        self.assertEqual(len(stored), 1)
        self.assertRegex(stored[0].split(b"\n\n", 1)[0], rb"\(using TLSv1\.3 [^\n]*\n\tby [^\n]* with ESMTPS id")
        self.assertTrue(stored[0].endswith(b"\n\n" + self.msg.split(b"\r\n\r\n", 1)[1]
                                           .replace(b"\r\n", b"\n")), stored[0][-80:])


if __name__ == "__main__":
    unittest.main()
