"""test_session_limits: a client that keeps talking cannot keep smtp-in or pop3-in for ever.
The per-line timeouts stay long (30 s) while the client sends a command (or a DATA line)
every 0.4 s; session_time_limit and data_time_limit, set to a few seconds, must end the
session with 421 4.4.2 / -ERR all the same, with nothing stored or deleted. And pop3-in's
idle timeout is its own (pop3_timeout, 10 minutes by default as RFC 1939 asks), not SMTP's
command_timeout."""
import os
import select
import subprocess
import time
import unittest

import yubintest

LIMIT = 3    # seconds: session_time_limit / data_time_limit in these tests
GRACE = 8    # seconds past LIMIT by which the handler must have ended the session
PACE = 0.4   # seconds between the client's lines


class Client:
    """A handler on pipes, read line by line with a deadline."""

    def __init__(self, inst, name):
        self.p = inst.pipe(name)
        self.buf = b""

    def line(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.p.stdout], [], [], left)[0]:
                raise AssertionError(f"no line within {timeout} s (so far {self.buf!r})")
            chunk = os.read(self.p.stdout.fileno(), 4096)
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def send(self, data):
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
            return True
        except (BrokenPipeError, ValueError):
            return False

    def keep_sending(self, data, expect_prefix, until):
        """Send data every PACE seconds, reading one reply each, until a reply that starts
        with expect_prefix arrives (returned with the seconds it took) or `until` passes."""
        start = time.monotonic()
        while time.monotonic() < until:
            # a reply that came while we slept (the server closing at its limit) comes first
            if b"\n" in self.buf or select.select([self.p.stdout], [], [], 0)[0]:
                reply = self.line()
                if expect_prefix is None or not reply.startswith(expect_prefix):
                    return reply, time.monotonic() - start
            if not self.send(data):
                return self.line(), time.monotonic() - start
            if expect_prefix is not None:
                reply = self.line()
                if not reply.startswith(expect_prefix):
                    return reply, time.monotonic() - start
            time.sleep(PACE)
        return b"", time.monotonic() - start

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            try:
                f.close()
            except BrokenPipeError:
                pass


class SessionLimits(unittest.TestCase):
    def site(self, **conf):
        settings = {"command_timeout": "30", "data_timeout": "30", "pop3_timeout": "30",
                    "max_junk_commands": "100000"}
        settings.update({k: str(v) for k, v in conf.items()})
        inst = yubintest.Instance(conf=settings)
        self.addCleanup(inst.stop)
        return inst

    def client(self, inst, name):
        c = Client(inst, name)
        self.addCleanup(c.close)
        return c

    def test_smtp_session_limit_with_steady_noops(self):
        inst = self.site(session_time_limit=LIMIT)
        c = self.client(inst, "smtp-in")
        self.assertTrue(c.line().startswith(b"220 "))
        reply, took = c.keep_sending(b"NOOP\r\n", b"250 ",
                                     time.monotonic() + LIMIT + GRACE)
        self.assertTrue(reply.startswith(b"421 4.4.2 ") and b"session time limit" in reply,
                        reply)
        self.assertGreaterEqual(took, LIMIT - 1)
        self.assertEqual(c.p.wait(timeout=10), 1)
        self.assertTrue(any("session time limit reached" in l for l in inst.syslog.lines()))

    def test_smtp_data_time_limit(self):
        inst = self.site(data_time_limit=LIMIT)
        c = self.client(inst, "smtp-in")
        c.line()
        for cmd, want in ((b"HELO client.test", b"250"), (b"MAIL FROM:<a@remote.test>", b"250"),
                          (b"RCPT TO:<demo@example.test>", b"250"), (b"DATA", b"354")):
            c.send(cmd + b"\r\n")
            self.assertTrue(c.line().startswith(want))
        reply, took = c.keep_sending(b"a line of a slow message\r\n", None,
                                     time.monotonic() + LIMIT + GRACE)
        self.assertTrue(reply.startswith(b"421 4.4.2 ") and b"DATA time limit" in reply, reply)
        self.assertGreaterEqual(took, LIMIT - 1)
        self.assertEqual(c.p.wait(timeout=10), 1)
        self.assertEqual(inst.messages("demo@example.test"), [], "nothing is stored")

    def test_smtp_data_limit_then_the_session_goes_on(self):
        """A quick DATA under data_time_limit leaves the session limit as it was."""
        inst = self.site(data_time_limit=LIMIT, session_time_limit=60)
        c = self.client(inst, "smtp-in")
        c.line()
        for cmd in (b"HELO client.test", b"MAIL FROM:<a@remote.test>",
                    b"RCPT TO:<demo@example.test>", b"DATA", b"Subject: quick\r\n\r\nhi\r\n."):
            c.send(cmd + b"\r\n")
            c.line()
        time.sleep(LIMIT + 0.5)  # past data_time_limit, well within the session's limit
        c.send(b"NOOP\r\n")
        self.assertTrue(c.line().startswith(b"250 "))
        self.assertEqual(len(inst.messages("demo@example.test")), 1)

    def test_pop3_session_limit_with_steady_noops(self):
        inst = self.site(session_time_limit=LIMIT)
        inst.add_message("demo@example.test", b"Subject: keep\n\nme\n")
        started = time.monotonic()  # the limit counts from the start, login (argon2id) included
        c = self.client(inst, "pop3-in")
        c.line()
        for cmd in (b"USER demo@example.test", b"PASS demo", b"DELE 1"):
            c.send(cmd + b"\r\n")
            self.assertTrue(c.line().startswith(b"+OK"))
        reply, _ = c.keep_sending(b"NOOP\r\n", b"+OK", started + LIMIT + GRACE)
        self.assertTrue(reply.startswith(b"-ERR session time limit"), reply)
        self.assertGreaterEqual(time.monotonic() - started, LIMIT - 0.5)
        c.p.wait(timeout=10)
        self.assertEqual(len(inst.messages("demo@example.test", "cur")), 1, "no UPDATE")

    def test_pop3_idle_timeout_is_not_smtps(self):
        """command_timeout 1 (SMTP's) does not log a POP3 client out: the default
        pop3_timeout is 600 s (RFC 1939 §3: at least 10 minutes)."""
        inst = yubintest.Instance(conf={"command_timeout": "1"})
        self.addCleanup(inst.stop)
        c = self.client(inst, "pop3-in")
        c.line()
        time.sleep(2.5)
        c.send(b"USER demo@example.test\r\n")
        self.assertTrue(c.line().startswith(b"+OK"), "logged out after command_timeout")
        c.send(b"QUIT\r\n")
        self.assertTrue(c.line().startswith(b"+OK"))


if __name__ == "__main__":
    unittest.main()
