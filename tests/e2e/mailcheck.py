"""mailcheck: what the end-to-end SMTP tests check on disk and on the wire, in one place.

- RawSmtp: a byte-exact SMTP client (for PIPELINING and for proving that nothing but the
  protocol is written on the socket), every read under a timeout.
- stored(): one Maildir file taken apart: its name (unique, S=, W=), mode, owner, the
  Return-Path and Received headers and the rest of the message.
- expected_on_disk(): what a message sent as CRLF text must look like once stored.
It only reads; it never changes anything in the Maildir it inspects.
"""
import email.utils
import os
import re
import socket
import stat

NAME_RE = re.compile(r"^(?P<unique>[^,:/]+),S=(?P<s>\d+),W=(?P<w>\d+)(?P<rest>[,:].*)?$")
REPLY_RE = re.compile(rb"^\d{3}([ -].*)?$")


class RawSmtp:
    """A line-exact SMTP client on a socket. transcript keeps every line the server sent."""

    def __init__(self, port, host="127.0.0.1", timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.transcript = []

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"server closed; pending {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        self.transcript.append(line)
        return line

    def reply(self):
        """One (multi-line) reply as (code, [text lines])."""
        lines = [self.line()]
        while len(lines[-1]) >= 4 and lines[-1][3:4] == b"-":
            lines.append(self.line())
        code = int(lines[0][:3]) if REPLY_RE.match(lines[0]) else 0   # 0: not SMTP at all
        return code, [l[4:].decode("utf-8", "replace") for l in lines]

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.reply()

    def rest(self):
        """Reads to end of file (after QUIT); whatever arrives goes into the transcript."""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        tail, self.buf = self.buf, b""
        if tail:
            self.transcript.extend(tail.split(b"\r\n"))
        return tail

    def close(self):
        self.sock.close()

    def only_protocol(self):
        """Every line the server sent is an SMTP reply line (and was CRLF-terminated)."""
        return [l for l in self.transcript if not REPLY_RE.match(l)]


def dot_stuff(body_crlf):
    """The DATA section for a CRLF message: dot-stuffed, ending in CRLF . CRLF."""
    if not body_crlf.endswith(b"\r\n"):
        body_crlf += b"\r\n"
    stuffed = re.sub(rb"(?m)^\.", b"..", body_crlf)
    return stuffed + b".\r\n"


def expected_on_disk(body_crlf):
    """A message as smtp-in stores it after its trace headers: LF line ends, unstuffed."""
    if not body_crlf.endswith(b"\r\n"):
        body_crlf += b"\r\n"
    return body_crlf.replace(b"\r\n", b"\n")


class Stored:
    """One message file in a Maildir."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.st = os.stat(path)
        with open(path, "rb") as f:
            self.data = f.read()
        m = NAME_RE.match(self.name)
        self.unique = m.group("unique") if m else None
        self.s = int(m.group("s")) if m else None
        self.w = int(m.group("w")) if m else None
        self.headers = []           # (name, unfolded value), the trace headers first
        head, _, _ = self.data.partition(b"\n\n")
        for raw in re.split(rb"\n(?![ \t])", head):
            if b":" in raw:
                k, _, v = raw.partition(b":")
                self.headers.append((k.decode("latin-1"),
                                     re.sub(rb"\n[ \t]+", b" ", v).strip().decode("latin-1")))

    def header(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def after_trace(self):
        """The message as the client sent it: everything after Return-Path and Received."""
        data = self.data
        m = re.match(rb"Return-Path:[^\n]*\n", data)
        if m:
            data = data[m.end():]
        m = re.match(rb"Received:[^\n]*\n(?:[ \t][^\n]*\n)*", data)
        if m:
            data = data[m.end():]
        return data


def check_stored(tc, st, inst, sender, rcpts, helo, esmtp=True, client="[127.0.0.1]", qid=None,
                 proto=None):
    """The checks every stored message must pass (tc is the unittest.TestCase). client is
    how the Received header names the client's address; qid the id from the 250 reply; proto
    the protocol Received names (default ESMTP, or SMTP when not esmtp)."""
    tc.assertIsNotNone(st.unique, f"name {st.name!r} lacks ,S= and ,W=")
    tc.assertEqual(st.s, len(st.data), "S= is the size on disk")
    tc.assertEqual(st.w, len(st.data) + st.data.count(b"\n"), "W= is the size with CRLF")
    tc.assertNotIn(b"\r\n", st.data, "LF line ends on disk")
    tc.assertEqual(stat.S_IMODE(st.st.st_mode), 0o600, st.name)
    tc.assertEqual((st.st.st_uid, st.st.st_gid), (inst.uid, inst.gid), "owned by the account")
    tc.assertTrue(st.data.startswith(b"Return-Path: <" + sender.encode() + b">\n"),
                  st.data[:200])
    received = st.header("Received")
    tc.assertTrue(received, "a Received header")
    r = received[0]
    tc.assertTrue(st.data.split(b"\n", 1)[1].startswith(b"Received:"),
                  "Received comes right after Return-Path")
    tc.assertRegex(r, r"^from " + re.escape(helo) + r"\b", r)
    tc.assertIn(f"({client})", r)
    tc.assertIn(inst.settings["hostname"], r)
    tc.assertRegex(r, r"\bwith " + (proto or ("ESMTP" if esmtp else "SMTP")) + r"\b", r)
    tc.assertRegex(r, r"\bid \S+", r)
    if qid is not None:
        tc.assertRegex(r, r"\bid " + re.escape(qid) + r"\b", r)
    if len(rcpts) == 1:
        tc.assertIn(f"for <{rcpts[0]}>", r)
    else:
        tc.assertNotIn("for <", r)
    date = r.rsplit(";", 1)[1].strip()
    tc.assertIsNotNone(email.utils.parsedate_tz(date), f"date {date!r}")
    for address in rcpts:
        md = inst.maildir(address)
        dirs = [os.path.join(md, sub) for sub in ("new", "cur", "tmp")] + [
            md, os.path.dirname(md), os.path.join(inst.state_dir, "mail")]
        for d in dirs:
            ds = os.stat(d)
            tc.assertEqual(stat.S_IMODE(ds.st_mode), 0o700, d)
            tc.assertEqual(ds.st_uid, inst.uid, d)


def stored_messages(inst, address, sub="new"):
    d = os.path.join(inst.maildir(address), sub)
    if not os.path.isdir(d):
        return []
    return [Stored(os.path.join(d, n)) for n in sorted(os.listdir(d))]
