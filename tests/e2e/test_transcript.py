"""test_transcript: the transcripts of issue 11 §4, checked against what real clients saw.

smtplib and poplib talk to smtp-in and pop3-in under openbsd-inetd with transcript_dir set;
their sockets are wrapped so that every byte they sent and received is recorded. Each
transcript line (`HH:MM:SS.mmm C: ...` / `S: ...`) must then be exactly what the client sent
or got, in order, except where the transcript promises otherwise: the password of PASS and
of AUTH PLAIN is masked, a message body shows its first 10 lines and one line with its size.
Also: transcript_max_size stops the file with a note; no transcript_dir means no file; -X
turns it on for one launcher line; queue-run writes one file per outbound connection; the
files belong to the mail account, mode 0600. Only loopback is used.
"""
import base64
import os
import poplib
import re
import smtplib
import stat
import time
import unittest

import yubintest
from dnsserver import DNSServer
from smtpsink import SMTPSink

LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ([CS*]): (.*)$")
BODY_SHOWN = 10
MASK = "********"


class Recorder:
    """Wraps a socket: `events` gets ('C', bytes) for every sendall and ('S', line) for every
    line read through makefile().readline (how smtplib and poplib read)."""

    def __init__(self, sock, events):
        self._sock, self.events = sock, events

    def sendall(self, data, *a):
        self.events.append(("C", bytes(data)))
        return self._sock.sendall(data, *a)

    def makefile(self, *a, **kw):
        return RecordingFile(self._sock.makefile(*a, **kw), self.events)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class RecordingFile:
    def __init__(self, f, events):
        self._f, self.events = f, events

    def readline(self, *a):
        line = self._f.readline(*a)
        if line:
            self.events.append(("S", line))
        return line

    def __getattr__(self, name):
        return getattr(self._f, name)


class RecSMTP(smtplib.SMTP):
    def __init__(self, events, *a, **kw):
        self.events = events
        super().__init__(*a, **kw)

    def _get_socket(self, host, port, timeout):
        return Recorder(super()._get_socket(host, port, timeout), self.events)


class RecPOP3(poplib.POP3):
    def __init__(self, events, *a, **kw):
        self.events = events
        super().__init__(*a, **kw)

    def _create_socket(self, timeout):
        return Recorder(super()._create_socket(timeout), self.events)


def wire_lines(events):
    """[(dir, text)] from recorded events: the client's bytes cut into CRLF lines."""
    out, pending = [], b""
    for d, data in events:
        if d == "S":
            out.append(("S", data.rstrip(b"\r\n").decode()))
            continue
        pending += data
        while b"\r\n" in pending:
            line, pending = pending.split(b"\r\n", 1)
            out.append(("C", line.decode()))
    return out


def expected(lines):
    """What the transcript promises to show for these wire lines (its own rules, restated)."""
    out, body, retr, secret = [], None, False, False
    for d, text in lines:
        if body is not None and d == body[0]:
            if text == ".":
                if body[1] > BODY_SHOWN:
                    out.append((d, f"[... message: {body[1]} lines, {body[2]} octets in all]"))
                out.append((d, "."))
                body = None
                continue
            body[1] += 1
            body[2] += len(text) + 2
            if body[1] <= BODY_SHOWN:
                out.append((d, text))
            continue
        if d == "C":
            retr = text.upper().startswith(("RETR ", "TOP "))
            if secret:
                text, secret = MASK, False
            elif text.upper().startswith("PASS "):
                text = "PASS " + MASK
            elif re.match(r"(?i)AUTH \S+ \S", text):
                text = " ".join(text.split(" ")[:2]) + " " + MASK
        else:
            if text.startswith("354"):
                body = ["C", 0, 0]
            elif text.startswith(("334", "+ ")):
                secret = True
            elif retr and text.startswith("+OK"):
                body = ["S", 0, 0]
            retr = False
        out.append((d, text))
    return out


def read_transcript(path):
    with open(path) as f:
        text = f.read()
    lines = []
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        m = LINE.match(raw)
        assert m, f"not a transcript line: {raw!r}"
        lines.append((m.group(1), m.group(2)))
    return text, lines


BODY = "".join(f"Line {i} of the body, with some words in it.\n" for i in range(1, 41))
MESSAGE = ("From: demo@example.test\nTo: demo@example.test\nSubject: transcript\n\n" + BODY)


class Transcripts(unittest.TestCase):
    def site(self, conf=None, transcripts=True):
        self.tdir = None
        settings = {"auth_without_tls": "yes"}
        settings.update(conf or {})
        inst = yubintest.Instance(users=("demo@example.test",), conf=settings)
        self.addCleanup(inst.stop)
        self.tdir = os.path.join(inst.dir, "transcripts")
        os.mkdir(self.tdir, 0o700)
        os.chown(self.tdir, inst.uid, inst.gid)
        if transcripts:
            inst.settings["transcript_dir"] = self.tdir
            inst.write_conf()
        return inst

    def files(self, prog=None):
        """Transcripts of PROG with a client line (not those of wait_port's probes)."""
        names = sorted(os.listdir(self.tdir))
        paths = [os.path.join(self.tdir, n) for n in names if prog is None or f".{prog}." in n]
        return [p for p in paths if re.search(r"^[0-9:.]+ C: ", open(p).read(), re.M)]

    def wait_files(self, prog, n=1, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.files(prog)
            if len(got) >= n and all(open(p).read().rstrip().split("\n")[-1].startswith("# end")
                                     for p in got):
                return got
            time.sleep(0.05)
        return self.files(prog)

    def smtp_session(self, port):
        events = []
        c = RecSMTP(events, "127.0.0.1", port, timeout=30)
        c.ehlo("client.example.test")
        c.login("demo@example.test", "demo")  # AUTH PLAIN with an initial response
        c.sendmail("demo@example.test", ["demo@example.test"], MESSAGE)
        c.quit()
        return events

    def pop_session(self, port):
        events = []
        p = RecPOP3(events, "127.0.0.1", port, timeout=30)
        p.capa()
        p.user("demo@example.test")
        p.pass_("demo")
        p.stat()
        p.list()
        p.retr(1)
        p.top(1, 2)
        p.quit()
        return events

    def check_matches(self, path, events):
        text, got = read_transcript(path)
        want = expected(wire_lines(events))
        self.assertEqual(got, want, text)
        return text

    def test_smtp_and_pop3_as_the_clients_saw_them(self):
        inst = self.site()
        smtp_port = inst.serve_inetd("smtp-in")
        pop_port = inst.serve_inetd("pop3-in")
        smtp_events = self.smtp_session(smtp_port)
        [smtp_file] = self.wait_files("smtp-in")
        text = self.check_matches(smtp_file, smtp_events)
        plain = base64.b64encode(b"\0demo@example.test\0demo").decode()
        self.assertNotIn(plain, text)
        self.assertIn(f"C: AUTH PLAIN {MASK}\n", text)
        self.assertIn("C: Subject: transcript\n", text)
        self.assertNotIn("Line 40 of the body", text)
        self.assertRegex(text, r"C: \[\.\.\. message: \d+ lines, \d+ octets in all\]\n")
        self.assertIn("# yubin transcript: smtp-in pid", text)
        self.assertIn("peer 127.0.0.1", text)

        pop_events = self.pop_session(pop_port)
        [pop_file] = self.wait_files("pop3-in")
        text = self.check_matches(pop_file, pop_events)
        self.assertIn(f"C: PASS {MASK}\n", text)
        self.assertNotIn("PASS demo", text)
        self.assertNotIn("Line 40 of the body", text)
        # the files are the mail account's own, 0600
        for path in (smtp_file, pop_file):
            st = os.stat(path)
            self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (inst.uid, 0o600), path)

    def test_auth_login_challenges_are_masked(self):
        inst = self.site()
        port = inst.serve_inetd("smtp-in")
        events = []
        c = RecSMTP(events, "127.0.0.1", port, timeout=30)
        c.ehlo("client.example.test")
        c.user, c.password = "demo@example.test", "demo"
        code, _ = c.auth("LOGIN", c.auth_login, initial_response_ok=False)
        self.assertEqual(code, 235)
        c.quit()
        [path] = self.wait_files("smtp-in")
        text = self.check_matches(path, events)
        self.assertIn("C: AUTH LOGIN\n", text)
        self.assertEqual(text.count(f"C: {MASK}\n"), 2, text)
        self.assertNotIn(base64.b64encode(b"demo").decode(), text)

    def test_size_bound(self):
        inst = self.site({"transcript_max_size": "1024"})
        port = inst.serve_inetd("smtp-in")
        c = smtplib.SMTP("127.0.0.1", port, timeout=30)
        c.ehlo("client.example.test")
        for i in range(40):
            c.noop()
        c.quit()
        [path] = self.wait_files("smtp-in", timeout=3)
        size = os.path.getsize(path)
        with open(path) as f:
            text = f.read()
        self.assertLessEqual(size, 1024, text)
        self.assertTrue(text.endswith("# transcript_max_size (1024 octets) reached: the rest of "
                                      "the dialogue is not recorded\n"), text)
        self.assertIn("C: noop", text)
        self.assertNotIn("C: quit", text)

    def test_off_means_no_file(self):
        inst = self.site(transcripts=False)
        smtp_port = inst.serve_inetd("smtp-in")
        pop_port = inst.serve_inetd("pop3-in")
        self.smtp_session(smtp_port)
        self.pop_session(pop_port)
        self.assertEqual(os.listdir(self.tdir), [])
        self.assertEqual(len(inst.message_names("demo@example.test", "cur")), 1)

    def test_unwritable_directory_is_logged_and_mail_still_flows(self):
        inst = self.site(transcripts=False)
        if inst.uid == os.geteuid():
            self.skipTest("needs a mail account other than ourselves")
        closed = os.path.join(inst.dir, "closed")
        os.mkdir(closed, 0o755)  # root's: the mail account cannot write here
        inst.settings["transcript_dir"] = closed
        inst.write_conf()
        port = inst.serve_inetd("smtp-in")
        self.smtp_session(port)
        self.assertEqual(len(inst.messages("demo@example.test")), 1)
        self.assertEqual(os.listdir(closed), [])
        log = "\n".join(inst.syslog.lines())
        self.assertIn(f"no transcript: transcript in {closed}: Permission denied", log)

    def test_flag_X_for_one_launcher(self):
        inst = self.site(transcripts=False)
        port = inst.serve_inetd("pop3-in", "-X", self.tdir)
        inst.add_message("demo@example.test", MESSAGE.encode())
        events = self.pop_session(port)
        [path] = self.wait_files("pop3-in")
        self.check_matches(path, events)

    def test_queue_run_dialogue(self):
        dns = DNSServer()
        dns.start(["remote.test MX 10 mx.remote.test", "mx.remote.test A 127.0.0.21"])
        self.addCleanup(dns.stop)
        sink = SMTPSink(["127.0.0.21"])
        self.addCleanup(sink.close)
        inst = self.site({"dns_resolver": dns.resolver, "smtp_port": str(sink.port),
                          "connect_timeout": "5"})
        port = inst.serve_inetd("smtp-in")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.ehlo("client.example.test")
            c.login("demo@example.test", "demo")
            c.sendmail("demo@example.test", ["bob@remote.test"], MESSAGE)
        self.assertTrue(sink.wait_for(lambda: len(sink.messages) == 1, 20),
                        "\n".join(inst.syslog.lines()))
        [path] = self.wait_files("queue-run")
        text, lines = read_transcript(path)
        cmds = [t for d, t in lines if d == "C"]
        self.assertEqual(cmds[0], "EHLO mx.example.test", text)
        self.assertIn("MAIL FROM:<demo@example.test>", " ".join(cmds), text)
        self.assertIn("RCPT TO:<bob@remote.test>", cmds, text)
        self.assertEqual(cmds[-1], "QUIT", text)
        self.assertTrue(any(d == "S" and t.startswith("354") for d, t in lines), text)
        self.assertIn(("C", "Subject: transcript"), lines, text)  # the first lines, as sent
        self.assertRegex(text, r"C: \[\.\.\. message: \d+ octets in all\]\n\S+ C: \.\n")
        self.assertNotIn("Line 40 of the body", text)
        self.assertIn("peer mx.remote.test", text)


if __name__ == "__main__":
    unittest.main()
