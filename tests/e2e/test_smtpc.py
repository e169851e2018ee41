"""lib/smtpc and lib/dsn end to end, through the driver tests/unit/smtpc-tool.

- To a real smtp-in under openbsd-inetd (yubintest.Instance): a stored message (with the
  Return-Path: line queue-run keeps first, which must not be relayed) arrives byte for byte in
  the Maildir: lines starting with dots, 8-bit bytes, a 5 MB body (and the client's peak RSS
  does not grow with it); two messages on one connection; a refused recipient.
- To a raw Python socket sink on 127.0.0.1 that records every byte: MAIL, RCPTs and DATA come
  in one group when PIPELINING is offered (the sink answers nothing until DATA has arrived,
  so a client that waited would time out), one at a time when it is not; RSET between
  messages; no bare CR or LF ever; a lone CR in the stored file goes out as CRLF.
- A DSN from lib/dsn parsed with Python's email package (multipart/report, the
  delivery-status fields, the original headers), and the same bounce relayed from <> into a
  Maildir by smtp-in and parsed again.
"""
import email
import email.policy
import os
import re
import socket
import subprocess
import tempfile
import threading
import unittest

import yubintest

TOOL = os.path.join(yubintest.BUILD, "tests", "unit", "smtpc-tool")
SENDER = "alice@remote.test"
HEADERS = (b"From: Alice <alice@remote.test>\n"
           b"To: demo@example.test\n"
           b"Subject: smtpc e2e\n"
           b"Message-ID: <smtpc-e2e@remote.test>\n"
           b"MIME-Version: 1.0\n"
           b"Content-Type: text/plain; charset=utf-8\n"
           b"Content-Transfer-Encoding: 8bit\n"
           b"\n")
BODY = (b"First line.\n"
        b".a line that starts with a dot\n"
        b"..two dots\n"
        b".\n"
        b"\n"
        b"8-bit: Gr\xc3\xbc\xc3\x9fe \xe6\x97\xa5\xe6\x9c\xac\n"
        b"last line without LF")


def run_tool(*args, timeout=60):
    """Runs smtpc-tool; returns (stdout, stderr, peak RSS in KiB)."""
    p = subprocess.Popen([TOOL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    try:
        out = p.stdout.read()
        err = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    finally:
        timer.cancel()
    if p.returncode != 0:
        raise AssertionError(f"smtpc-tool {args[0]} exit {p.returncode}: {out!r} {err!r}")
    return out.decode(), err.decode(), usage.ru_maxrss


def results(out):
    """{(msg#, rcpt): (result, text)} and the connection result from the tool's output."""
    res, conn = {}, None
    for line in out.splitlines():
        if line.startswith("connection "):
            conn = int(line.split()[1])
            continue
        n, rcpt, rc, text = line.split(" ", 3)
        res[(int(n), rcpt)] = (int(rc), text)
    return res, conn


class StoredFiles:
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpc-e2e-")

    def tearDown(self):
        subprocess.run(["rm", "-rf", self.tmp], check=False)

    def stored(self, name, message, sender=SENDER):
        """A queued message file: Return-Path: line first, then the message (LF ends)."""
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(b"Return-Path: <" + sender.encode() + b">\n" + message)
        return path


def after_trace(data):
    """A stored message without the lines smtp-in puts on top (Return-Path, Received)."""
    lines = data.split(b"\n")
    i = 0
    while i < len(lines) and (lines[i].startswith(b"Return-Path:") or
                              lines[i].startswith(b"Received:") or
                              lines[i].startswith(b"\t") or lines[i].startswith(b" ")):
        i += 1
    return b"\n".join(lines[i:])


class ToSmtpIn(StoredFiles, unittest.TestCase):
    """smtpc-tool -> smtp-in (openbsd-inetd) -> Maildir."""

    def setUp(self):
        super().setUp()
        self.inst = yubintest.Instance(users=("demo@example.test", "bob@example.test"))
        self.port = self.inst.serve_inetd("smtp-in")

    def tearDown(self):
        self.inst.stop()
        super().tearDown()

    def send(self, *args):
        return run_tool("send", "-t", "30", "127.0.0.1", str(self.port), *args)

    def test_bytes_arrive_intact(self):
        msg = HEADERS + BODY
        path = self.stored("m1", msg)
        before = len(self.inst.messages("demo@example.test"))
        out, _, _ = self.send(SENDER, path, "demo@example.test", "nobody@example.test",
                              "bob@example.test")
        res, conn = results(out)
        self.assertEqual(res[(1, "demo@example.test")][0], 0, out)
        self.assertEqual(res[(1, "bob@example.test")][0], 0, out)
        self.assertEqual(res[(1, "nobody@example.test")][0], -1, out)
        self.assertRegex(res[(1, "nobody@example.test")][1], r"^550 5\.1\.1 ")
        self.assertEqual(conn, 0)
        got = self.inst.messages("demo@example.test")[before:]
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].startswith(b"Return-Path: <alice@remote.test>\n"), got[0][:80])
        self.assertEqual(got[0].count(b"Return-Path:"), 1, "our Return-Path was not relayed")
        # smtp-in stores LF line ends; the last line got its line end on the way.
        self.assertEqual(after_trace(got[0]), msg + b"\n")
        self.assertEqual(self.inst.messages("bob@example.test")[-1], got[0])

    def test_two_messages_one_connection(self):
        a = self.stored("a", HEADERS + b"message one\n")
        b = self.stored("b", HEADERS + b"message two\n", sender="")
        before = len(self.inst.messages("demo@example.test"))
        out, _, _ = self.send(SENDER, a, "demo@example.test", "--", "", b, "demo@example.test")
        res, conn = results(out)
        self.assertEqual((res[(1, "demo@example.test")][0], res[(2, "demo@example.test")][0],
                          conn), (0, 0, 0), out)
        got = self.inst.messages("demo@example.test")[before:]
        self.assertEqual(sorted(after_trace(m) for m in got),
                         [HEADERS + b"message one\n", HEADERS + b"message two\n"])
        self.assertTrue(any(m.startswith(b"Return-Path: <>\n") for m in got))

    def test_5mb_streamed(self):
        line = b"." + b"0123456789abcdef\xc3\xa9" * 4 + b"\n"
        big = HEADERS + line * (5 * 1024 * 1024 // len(line) + 1)
        small = self.stored("small", HEADERS + b"small\n")
        path = self.stored("big", big)
        _, _, rss_small = self.send(SENDER, small, "demo@example.test")
        before = len(self.inst.messages("demo@example.test"))
        out, _, rss_big = self.send(SENDER, path, "demo@example.test")
        self.assertEqual(results(out)[0][(1, "demo@example.test")][0], 0, out)
        got = self.inst.messages("demo@example.test")[before:]
        self.assertEqual(len(got), 1)
        self.assertEqual(after_trace(got[0]), big)
        self.assertLess(rss_big - rss_small, 2048,
                        f"peak RSS grew by {rss_big - rss_small} KiB for a 5 MB message")


class Sink:
    """A raw SMTP server on 127.0.0.1 for one connection that records every byte it gets and
    checks the client's grouping. pipelining: offer PIPELINING and answer nothing until DATA
    (or QUIT) has arrived; else answer each command and check that nothing else came first."""

    def __init__(self, pipelining=True):
        self.pipelining = pipelining
        self.raw = bytearray()
        self.groups = []     # the command lines of each group read before a reply
        self.errors = []
        self.bodies = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise EOFError
            self.raw += chunk
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def data(self):
        while b"\r\n.\r\n" not in self.buf:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise EOFError
            self.raw += chunk
            self.buf += chunk
        body, _, self.buf = self.buf.partition(b"\r\n.\r\n")
        self.bodies.append(body + b"\r\n")

    def nothing_pending(self):
        if self.buf:
            return False
        self.conn.settimeout(0.2)
        try:
            chunk = self.conn.recv(1, socket.MSG_PEEK)
            return not chunk
        except socket.timeout:
            return True
        finally:
            self.conn.settimeout(10)

    def serve(self):
        try:
            self.conn, _ = self.listener.accept()
            self.conn.settimeout(10)
            self.buf = b""
            self.conn.sendall(b"220 sink.test ESMTP\r\n")
            self.line()
            ext = b"250-PIPELINING\r\n" if self.pipelining else b""
            self.conn.sendall(b"250-sink.test\r\n" + ext + b"250-8BITMIME\r\n250 SIZE 0\r\n")
            if self.pipelining:
                self.serve_pipelined()
            else:
                self.serve_lockstep()
        except Exception as e:  # reported by the test, never hangs it
            self.errors.append(repr(e))
        finally:
            if hasattr(self, "conn"):
                self.conn.close()
            self.listener.close()

    def serve_pipelined(self):
        while True:
            group = []
            while True:
                cmd = self.line()
                group.append(cmd)
                if cmd.upper().startswith((b"DATA", b"QUIT")):
                    break
            self.groups.append(group)
            if group[-1].upper().startswith(b"QUIT"):
                self.conn.sendall(b"250 ok\r\n" * (len(group) - 1) + b"221 bye\r\n")
                return
            self.conn.sendall(b"250 ok\r\n" * (len(group) - 1) + b"354 go\r\n")
            self.data()
            self.conn.sendall(b"250 2.0.0 accepted\r\n")

    def serve_lockstep(self):
        while True:
            cmd = self.line()
            self.groups.append([cmd])
            if not self.nothing_pending():
                self.errors.append(f"more input before the reply to {cmd!r}")
            verb = cmd.upper()[:4]
            if verb == b"QUIT":
                self.conn.sendall(b"221 bye\r\n")
                return
            if verb == b"DATA":
                self.conn.sendall(b"354 go\r\n")
                self.data()
            self.conn.sendall(b"250 ok\r\n")

    def join(self):
        self.thread.join(20)
        return not self.thread.is_alive()


def bare_cr_or_lf(raw):
    return re.search(rb"\r(?!\n)|(?<!\r)\n", bytes(raw)) is not None


class ToSink(StoredFiles, unittest.TestCase):
    MSG = HEADERS + b"lone\rCR and CRLF\r\nin the store\n.dot\n" + BODY

    def send(self, sink, *args):
        return run_tool("send", "-t", "5", "127.0.0.1", str(sink.port), *args)

    def test_pipelining_groups_and_rset(self):
        sink = Sink(pipelining=True)
        a, b = self.stored("a", self.MSG), self.stored("b", HEADERS + b"two\n")
        out, _, _ = self.send(sink, SENDER, a, "x@sink.test", "y@sink.test", "--",
                              SENDER, b, "z@sink.test")
        self.assertTrue(sink.join())
        self.assertEqual(sink.errors, [])
        res, conn = results(out)
        self.assertEqual([r[0] for r in res.values()], [0, 0, 0], out)
        self.assertEqual(conn, 0)
        self.assertEqual([[c.split(b":")[0].split(b" ")[0].rstrip(b"\r\n") for c in g]
                          for g in sink.groups],
                         [[b"MAIL", b"RCPT", b"RCPT", b"DATA"],
                          [b"RSET", b"MAIL", b"RCPT", b"DATA"],
                          [b"QUIT"]])
        self.assertIn(b"BODY=8BITMIME", sink.groups[0][0])
        self.assertFalse(bare_cr_or_lf(sink.raw), "a bare CR or LF went out")
        expect = (self.MSG.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                  .replace(b"\n.", b"\n..").replace(b"\n", b"\r\n") + b"\r\n")
        self.assertEqual(sink.bodies[0], expect)
        self.assertNotIn(b"Return-Path", bytes(sink.raw))

    def test_lockstep_without_pipelining(self):
        sink = Sink(pipelining=False)
        a, b = self.stored("a", self.MSG), self.stored("b", HEADERS + b"two\n")
        out, _, _ = self.send(sink, SENDER, a, "x@sink.test", "y@sink.test", "--",
                              SENDER, b, "z@sink.test")
        self.assertTrue(sink.join())
        self.assertEqual(sink.errors, [])
        verbs = [g[0].split(b":")[0].split(b" ")[0].rstrip(b"\r\n") for g in sink.groups]
        self.assertEqual(verbs, [b"MAIL", b"RCPT", b"RCPT", b"DATA",
                                 b"RSET", b"MAIL", b"RCPT", b"DATA", b"QUIT"])
        self.assertFalse(bare_cr_or_lf(sink.raw))
        self.assertEqual(results(out)[1], 0)


class DSN(StoredFiles, unittest.TestCase):
    def make(self, *extra, delay=False):
        orig = self.stored("orig", HEADERS + b"the body is not returned\n")
        args = ["dsn"] + (["-d"] if delay else []) + ["mx.example.test", SENDER, orig]
        out, _, _ = run_tool(*args, *extra)
        return out.encode()

    def check_report(self, raw, action="failed"):
        self.assertNotIn(b"\r", raw)
        self.assertTrue(all(b < 0x80 for b in raw))
        self.assertTrue(all(len(l) < 998 for l in raw.split(b"\n")))
        m = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(m.get_content_type(), "multipart/report")
        self.assertEqual(m.get_param("report-type"), "delivery-status")
        self.assertEqual(m["Auto-Submitted"], "auto-replied")
        self.assertIn("MAILER-DAEMON@mx.example.test", m["From"])
        self.assertEqual(m["To"].addresses[0].addr_spec, SENDER)
        self.assertIsNotNone(m["Date"].datetime)
        self.assertTrue(m["Message-ID"].startswith("<"))
        parts = list(m.iter_parts())
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        blocks = parts[1].get_payload()
        self.assertEqual(blocks[0]["Reporting-MTA"], "dns; mx.example.test")
        self.assertIsNotNone(blocks[0]["Arrival-Date"])
        rcpts = blocks[1:]
        for r in rcpts:
            self.assertEqual(r["Action"], action)
            self.assertRegex(r["Status"], r"^[45]\.\d{1,3}\.\d{1,3}$")
            self.assertTrue(r["Final-Recipient"].startswith("rfc822; "))
        self.assertIn("Subject: smtpc e2e", str(parts[2]))
        self.assertNotIn("the body is not returned", str(m))
        self.assertNotIn("Return-Path", str(parts[2]))
        return m, rcpts

    def test_bounce_parses(self):
        raw = self.make("bob@remote.test", "5.1.1", "mx.remote.test",
                        "550 5.1.1 <bob@remote.test>: no such user " + "x" * 1500,
                        "carol@remote.test", "4.4.7", "-", "-")
        m, rcpts = self.check_report(raw)
        self.assertEqual(m["Subject"], "Undelivered Mail Returned to Sender")
        self.assertEqual([r["Final-Recipient"] for r in rcpts],
                         ["rfc822; bob@remote.test", "rfc822; carol@remote.test"])
        self.assertEqual([r["Status"] for r in rcpts], ["5.1.1", "5.4.7"])
        self.assertEqual(rcpts[0]["Remote-MTA"], "dns; mx.remote.test")
        self.assertTrue(rcpts[0]["Diagnostic-Code"].startswith("smtp; 550 5.1.1"))
        self.assertIsNone(rcpts[1]["Diagnostic-Code"])

    def test_delay_parses(self):
        raw = self.make("bob@remote.test", "4.4.1", "mx.remote.test",
                        "421 4.4.1 busy", delay=True)
        m, rcpts = self.check_report(raw, action="delayed")
        self.assertIn("Delayed", m["Subject"])
        self.assertIsNotNone(rcpts[0]["Will-Retry-Until"])

    def test_bounce_relayed_into_a_maildir(self):
        raw = self.make("bob@remote.test", "5.1.1", "mx.remote.test", "550 5.1.1 unknown")
        inst = yubintest.Instance(users=("alice@example.test",))
        try:
            port = inst.serve_inetd("smtp-in")
            path = self.stored("bounce", raw, sender="")
            out, _, _ = run_tool("send", "-t", "30", "127.0.0.1", str(port), "", path,
                                 "alice@example.test")
            self.assertEqual(results(out)[0][(1, "alice@example.test")][0], 0, out)
            got = inst.messages("alice@example.test")
            self.assertEqual(len(got), 1)
            self.assertTrue(got[0].startswith(b"Return-Path: <>\n"))
            self.check_report(after_trace(got[0]))
        finally:
            inst.stop()


if __name__ == "__main__":
    unittest.main()
