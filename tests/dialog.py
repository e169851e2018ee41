#!/usr/bin/env python3
"""dialog.py: runs one tests/dialogs/*.dialog conversation against the real program.

A dialog is a conversation a person can read (DESIGN.md §7). Lines:
  # text                 a comment (the first one says what the dialog shows)
  !program NAME          the program to run (default smtp-in; pop3-in and imap4-in read
                         replies line by line: S: and L: as for POP3)
  !args ARG ...          extra arguments after "-C yubin.conf"
  !conf KEY VALUE        a yubin.conf setting for this dialog
  !user ADDRESS          one more mailbox in the users file (password "demo")
  !alias ADDR: T1, T2    one more aliases line
  !noauth                the site runs no yubin-auth (the password service is down; or the
                         configuration is one it cannot read either)
  !tcp [HOST]            serve the program on a real TCP socket (else pipes); the client
                         connects from HOST: 127.0.0.1 (the default), ::1, or ::ffff:127.0.0.1
                         (an IPv4-mapped address on an IPv6 socket)
  !unix                  serve the program on a Unix-domain stream socket (a socketpair), as
                         the local socket sendmail(8) uses; the peer uid is the runner's
  !message ADDRESS BYTES a message (escapes as in R:, LF line ends) in ADDRESS's new/ before
                         the dialog starts, named as delivery names it (S=, W=); in order
  C: TEXT                the client sends TEXT and CRLF
  R: BYTES               the client sends BYTES as written, with \\r \\n \\t \\0 \\xHH \\\\ escapes
  S: PREFIX              one reply arrives; SMTP: any line of the (multi-line) reply starts
                         with PREFIX, the fourth character '-' or ' ' alike; POP3: the next line
  L: TEXT                POP3: the next line is exactly TEXT ("." ends a multi-line answer)
  D: N                   POP3: a multi-line answer body follows: N lines, then "."
  CLOSED                 the server closes the connection (end of file, nothing more)
  MAILDIR ADDRESS N [cur] after the dialog: N messages in ADDRESS's new/ (or cur/)
  LOG TEXT               after the dialog: a syslog line contains TEXT
  NOLOG TEXT             after the dialog: no syslog line contains TEXT (e.g. a password)
  A: PREFIX              SMTP: the reply read by the last S: also has a line starting with PREFIX
  NA: PREFIX             SMTP: the reply read by the last S: has no line starting with PREFIX
  MSG ADDRESS N REGEX    after the dialog: message N (1 = oldest name) in ADDRESS's new/
                         matches the Python bytes regex REGEX (re.search; use (?m) for ^ $)
  NOMSG ADDRESS N REGEX  after the dialog: that message does not match REGEX
  EXIT N                 after the dialog: the program exited with status N
  NOSTDERR               after the dialog: the program wrote nothing to stderr
  STDERR TEXT            after the dialog: what the program wrote to stderr contains TEXT
Every read times out after 10 seconds, so a hung server fails the dialog instead of the suite.
"""
import os
import re
import select
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e"))
import yubintest  # noqa: E402

READ_TIMEOUT = 10.0
DEFAULT_USERS = ["demo@example.test", "alice@example.test", "bob@example.test"]
DEFAULT_ALIASES = {"postmaster@example.test": ["demo@example.test"]}


class Failure(Exception):
    pass


def unescape(text):
    return re.sub(rb"\\(x[0-9a-fA-F]{2}|.)", lambda m: {
        b"r": b"\r", b"n": b"\n", b"t": b"\t", b"0": b"\0", b"\\": b"\\"}.get(
        m.group(1), bytes([int(m.group(1)[1:], 16)]) if m.group(1)[:1] == b"x" else m.group(1)),
        text.encode("utf-8"))


class Conversation:
    """The client side: a file descriptor pair with a line reader that times out."""

    def __init__(self, wfd, rfd):
        self.wfd, self.rfd, self.buf, self.eof = wfd, rfd, b"", False
        self.transcript = []

    def send(self, data):
        self.transcript.append(f"C: {data!r}")
        try:
            os.write(self.wfd, data)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise Failure(f"server gone while sending: {e}")

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
            raise Failure("timed out waiting for the server")
        try:
            chunk = os.read(self.rfd, 65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def line(self):
        deadline = time.monotonic() + READ_TIMEOUT
        while b"\n" not in self.buf:
            if self.eof:
                raise Failure("connection closed, a reply was expected")
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        if not line.endswith(b"\r"):
            raise Failure(f"server line without CRLF: {line!r}")
        text = line[:-1].decode("utf-8", "replace")
        self.transcript.append(f"S: {text}")
        return text

    def smtp_reply(self):
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return lines

    def expect_closed(self):
        deadline = time.monotonic() + READ_TIMEOUT
        while not self.eof:
            self._fill(deadline)
        if self.buf:
            raise Failure(f"expected the connection to close, got {self.buf!r}")


def smtp_match(lines, prefix):
    norm = lambda s: s[:3] + " " + s[4:] if len(s) > 3 else s  # noqa: E731
    return any(norm(l).startswith(norm(prefix)) for l in lines)


def parse(path):
    setup = {"program": "smtp-in", "args": [], "conf": {}, "users": list(DEFAULT_USERS),
             "aliases": dict(DEFAULT_ALIASES), "tcp": False, "messages": [], "auth": True}
    steps = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            word, _, rest = line.partition(" ")
            if word == "!program":
                setup["program"] = rest.strip()
            elif word == "!args":
                setup["args"] += rest.split()
            elif word == "!conf":
                key, _, value = rest.strip().partition(" ")
                setup["conf"][key] = value.strip()
            elif word == "!user":
                setup["users"].append(rest.strip())
            elif word == "!alias":
                name, _, targets = rest.partition(":")
                setup["aliases"][name.strip()] = [t.strip() for t in targets.split(",")]
            elif word == "!unix":
                setup["tcp"] = "unix"
            elif word == "!noauth":
                setup["auth"] = False
            elif word == "!tcp":
                setup["tcp"] = rest.strip() or "127.0.0.1"
            elif word == "!message":
                address, _, data = rest.strip().partition(" ")
                setup["messages"].append((address, unescape(data)))
            elif word in ("C:", "R:", "S:", "L:", "D:", "CLOSED", "MAILDIR", "LOG", "NOLOG",
                          "A:", "NA:", "MSG", "NOMSG", "EXIT", "NOSTDERR", "STDERR"):
                steps.append((lineno, word, rest))
            else:
                raise SystemExit(f"{path}:{lineno}: unknown line: {line}")
    return setup, steps


def start(inst, setup):
    argv = inst.argv(setup["program"], *setup["args"])
    if not setup["tcp"]:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        return p, Conversation(p.stdin.fileno(), p.stdout.fileno()), None
    host = setup["tcp"]
    if host == "unix":
        client, server = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        p = subprocess.Popen(argv, stdin=server.fileno(), stdout=server.fileno(),
                             stderr=subprocess.PIPE)
        server.close()
        return p, Conversation(client.fileno(), client.fileno()), client
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    if ":" in host:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.bind((host, 0))
    listener.listen(1)
    target = "127.0.0.1" if host.startswith("::ffff:") else host
    client = socket.create_connection((target, listener.getsockname()[1]))
    server, _ = listener.accept()
    listener.close()
    p = subprocess.Popen(argv, stdin=server.fileno(), stdout=server.fileno(),
                         stderr=subprocess.PIPE)
    server.close()
    return p, Conversation(client.fileno(), client.fileno()), client


def message_bytes(inst, where, rest):
    """MSG/NOMSG: (regex, bytes of message N of ADDRESS)."""
    address, n, regex = rest.split(None, 2)
    msgs = inst.messages(address)
    if not 1 <= int(n) <= len(msgs):
        raise Failure(f"{where}: only {len(msgs)} messages in new/")
    return re.compile(regex.encode("utf-8")), msgs[int(n) - 1]


def play(inst, setup, steps, conv, proc=None):
    pop3 = setup["program"].startswith(("pop3", "imap"))  # one reply is one line
    lines = []
    for lineno, word, rest in steps:
        where = f"line {lineno}: {word} {rest}"
        if word == "C:":
            conv.send(rest.encode("utf-8") + b"\r\n")
        elif word == "R:":
            conv.send(unescape(rest))
        elif word == "S:":
            lines = [conv.line()] if pop3 else conv.smtp_reply()
            ok = lines[0].startswith(rest) if pop3 else smtp_match(lines, rest)
            if not ok:
                raise Failure(f"{where}: got {lines}")
        elif word in ("A:", "NA:"):
            if smtp_match(lines, rest) != (word == "A:"):
                raise Failure(f"{where}: the reply was {lines}")
        elif word in ("MSG", "NOMSG"):
            regex, data = message_bytes(inst, where, rest)
            if (regex.search(data) is not None) != (word == "MSG"):
                raise Failure(f"{where}: the message is {data[:3000]!r}")
        elif word == "EXIT":
            if proc.returncode != int(rest):
                raise Failure(f"{where}: the exit status was {proc.returncode}")
        elif word == "NOSTDERR":
            err = proc.stderr.read()
            if err:
                raise Failure(f"{where}: stderr has {err[:2000]!r}")
        elif word == "STDERR":
            inst.stderr = getattr(inst, "stderr", b"") + proc.stderr.read()
            if rest.encode("utf-8") not in inst.stderr:
                raise Failure(f"{where}: stderr has {inst.stderr[:2000]!r}")
        elif word == "L:":
            got = conv.line()
            if got != rest:
                raise Failure(f"{where}: got {got!r}")
        elif word == "D:":
            body = []
            while True:
                got = conv.line()
                if got == ".":
                    break
                body.append(got)
            if len(body) != int(rest):
                raise Failure(f"{where}: got {len(body)} lines: {body[:20]}")
        elif word == "CLOSED":
            conv.expect_closed()
        elif word == "MAILDIR":
            address, count, *sub = rest.split()
            got = len(inst.messages(address, *sub))
            if got != int(count):
                raise Failure(f"{where}: {got} messages in new/")
        elif word == "LOG":
            time.sleep(0.05)
            if not any(rest in l for l in inst.syslog.lines()):
                raise Failure(f"{where}: not in the log: {inst.syslog.lines()[-10:]}")
        elif word == "NOLOG":
            time.sleep(0.05)
            if any(rest in l for l in inst.syslog.lines()):
                raise Failure(f"{where}: in the log: {inst.syslog.lines()[-10:]}")


def main(path):
    setup, steps = parse(path)
    inst = yubintest.Instance(users=setup["users"], aliases=setup["aliases"],
                              conf=setup["conf"], auth=setup["auth"])
    for n, (address, data) in enumerate(setup["messages"]):
        inst.add_message(address, data, when=1700000000 + n)
    proc = None
    try:
        proc, conv, client = start(inst, setup)
        try:
            after = ("MAILDIR", "LOG", "NOLOG", "MSG", "NOMSG", "EXIT", "NOSTDERR", "STDERR")
            play(inst, setup, [s for s in steps if s[1] not in after], conv)
            if client is not None:
                client.close()
            else:
                proc.stdin.close()
            proc.wait(timeout=10)
            play(inst, setup, [s for s in steps if s[1] in after], conv, proc)
        except Failure as e:
            print(f"{os.path.basename(path)}: FAILED {e}")
            print("\n".join(conv.transcript[-40:]))
            return 1
        if proc.returncode < 0 or proc.returncode > 1:
            print(f"{os.path.basename(path)}: the program ended with status {proc.returncode}")
            print(proc.stderr.read().decode("utf-8", "replace")[-3000:])
            return 1
        return 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        inst.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
