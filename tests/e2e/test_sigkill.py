"""kill -9 at many points during DATA never leaves a partial message visible (DESIGN.md §4.5);
SIGTERM during DATA leaves nothing in state_dir/tmp (SigtermDuringData, at the end); the same
kills with the message coming through TLS, `smtp-in -T` on a TCP socket (SigkillOverTls).

smtp-in runs on pipes and is fed the message a piece at a time. For each kill point the test
waits until smtp-in has taken every byte fed so far and sits blocked reading (the pipe is
empty and /proc/PID/syscall shows a read or poll), then sends SIGKILL: so the kill lands
exactly after offset k of the DATA stream, without timing luck. After the final dot it kills
at each step of storing instead: when /proc shows smtp-in inside fsync, link, rename, ..., or
after N polls, and once after the 250 has been read.

After every run: nothing in new/ or cur/ but complete, correct messages; no message from a run
killed before its final dot; exactly one from a run that got 250; leftovers in tmp/ are never
visible as messages, and pop3-in (what a user sees) lists exactly the complete ones. It never
waits without a deadline.
"""
import fcntl
import os
import poplib
import select
import signal
import socket
import ssl
import struct
import subprocess
import termios
import time
import unittest

import mailcheck
import yubintest

SENDER = "sender@remote.test"
RCPTS = ["demo@example.test", "alice@example.test"]
# x86-64 and aarch64 numbers of the calls smtp-in blocks in while waiting for input.
WAITING = {"x86_64": {0, 7, 23, 270, 271}, "aarch64": {63, 72, 73}}
# ... and of the calls that wait for the disk while storing (fsync, fdatasync): the ones
# /proc can catch smtp-in inside. The other steps (write, link, rename) are reached by killing
# after a growing number of /proc polls instead.
STORING = {"x86_64": {74, 75}, "aarch64": {82, 83}}
ARCH = os.uname().machine
DEADLINE = 10.0


def body(run):
    lines = [f"From: <{SENDER}>", "To: <demo@example.test>", f"Subject: kill run {run:03d}",
             f"X-Run: {run:03d}", ""]
    for i in range(60):
        lines.append(f"{run:03d}-{i:02d} " + "abcdefghijklmnopqrstuvwxyz0123456789" +
                     (" ." if i % 7 == 0 else ""))
        if i % 10 == 3:
            lines.append(".stuffed line")
        if i % 13 == 5:
            lines.append("caf\xe9 \u65e5\u672c")
    lines.append("end of message")
    return "\r\n".join(lines).encode("utf-8") + b"\r\n"


def pending(fd):
    """Bytes still in the pipe (FIONREAD works on either end of a Linux pipe), or not yet read
    from a TCP socket."""
    buf = fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def unsent(fd):
    """Bytes a TCP socket has not yet handed to its peer (SIOCOUTQ)."""
    buf = fcntl.ioctl(fd, termios.TIOCOUTQ, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def syscall(pid):
    try:
        with open(f"/proc/{pid}/syscall") as f:
            field = f.read().split()[0]
    except (OSError, IndexError):
        return None
    return int(field) if field.lstrip("-").isdigit() else None


class Run:
    """One smtp-in on pipes, driven step by step."""

    def __init__(self, inst):
        self.p = inst.pipe("smtp-in")
        self.out = b""
        self.got_250 = False

    def wait_blocked(self):
        """Returns once smtp-in has drained its stdin and waits for more."""
        fd = self.p.stdin.fileno()
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                return
            if pending(fd) == 0 and syscall(self.p.pid) in WAITING.get(ARCH, ()):
                return
            time.sleep(0.0005)
        raise AssertionError("smtp-in never got back to reading its input")

    def feed(self, data):
        os.write(self.p.stdin.fileno(), data)

    def replied(self):
        """Something from smtp-in is waiting to be read."""
        return bool(select.select([self.p.stdout], [], [], 0)[0])

    def take_reply(self):
        """The first complete reply in what has arrived, taken out of it; else None."""
        lines = self.out.split(b"\r\n")
        for i, l in enumerate(lines[:-1]):
            if len(l) >= 4 and l[3:4] == b" ":
                self.out = b"\r\n".join(lines[i + 1:])
                return l
        return None

    def read_some(self, left):
        """What smtp-in sends within left seconds (b"" once it closed), or None."""
        fd = self.p.stdout.fileno()
        return os.read(fd, 65536) if select.select([fd], [], [], left)[0] else None

    def reply(self):
        """One complete reply from smtp-in, as bytes (with a deadline)."""
        deadline = time.monotonic() + DEADLINE
        while True:
            r = self.take_reply()
            if r is not None:
                return r
            left = deadline - time.monotonic()
            chunk = self.read_some(left) if left > 0 else None
            if chunk is None:
                raise AssertionError(f"no reply from smtp-in; have {self.out!r}")
            if not chunk:
                raise AssertionError(f"smtp-in closed; have {self.out!r}")
            self.out += chunk

    def command(self, text, code):
        self.feed(text.encode() + b"\r\n")
        r = self.reply()
        if not r.startswith(str(code).encode()):
            raise AssertionError(f"{text}: {r!r}")

    def start_data(self, helo, rcpts):
        """The greeting, EHLO, MAIL, RCPT for each of rcpts, DATA: ready for the message."""
        if not self.reply().startswith(b"220"):
            raise AssertionError(f"no greeting: {self.out!r}")
        self.command(f"EHLO {helo}", 250)
        self.command(f"MAIL FROM:<{SENDER}>", 250)
        for a in rcpts:
            self.command(f"RCPT TO:<{a}>", 250)
        self.command("DATA", 354)
        return self

    def kill(self, sig=signal.SIGKILL):
        """A signal (SIGKILL), then collect whatever smtp-in wrote before it died."""
        try:
            os.kill(self.p.pid, sig)
        except ProcessLookupError:
            pass
        self.p.wait(timeout=DEADLINE)
        self.collect_and_close()

    def collect_and_close(self):
        """What smtp-in wrote before it died into self.out; its pipes closed."""
        fd = self.p.stdout.fileno()
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self.out += chunk
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            f.close()


class RunsCase(unittest.TestCase):
    """A site with two mailboxes (and aliases) and the smtp-in runs of one test."""
    aliases = None

    def setUp(self):
        if ARCH not in WAITING:
            self.skipTest(f"no syscall numbers for {ARCH}")
        self.inst = yubintest.Instance(users=("demo@example.test", "alice@example.test"),
                                       aliases=self.aliases)
        self.runs = []

    def tearDown(self):
        for r in self.runs:
            if r.p.poll() is None:
                r.p.kill()
                r.p.wait(timeout=DEADLINE)
        self.inst.stop()

    def start(self, rcpts=RCPTS, helo="killer.test"):
        r = Run(self.inst)
        self.runs.append(r)
        return r.start_data(helo, rcpts)


class SigkillDuringData(RunsCase):
    client, proto = "local", "ESMTP"  # how Received names the client and the protocol
    def setUp(self):
        super().setUp()
        self.outcomes = {}        # run -> "before-dot" | "no-reply" | "250"
        self.hits = []            # (target, whether the kill landed before the reply)

    def kill_inside_data(self, run, offset):
        data = mailcheck.dot_stuff(body(run))
        r = self.start()
        r.feed(data[:offset])
        r.wait_blocked()
        r.kill()
        self.outcomes[run] = "before-dot"

    def kill_while_storing(self, run, target):
        """target: a syscall number to kill inside, or ("polls", n), or "after-250"."""
        r = self.start()
        r.feed(mailcheck.dot_stuff(body(run)))
        if target == "after-250":
            self.assertTrue(r.reply().startswith(b"250"))
            r.kill()
            self.outcomes[run] = "250"
            return
        deadline = time.monotonic() + DEADLINE
        polls, hit = 0, False
        while time.monotonic() < deadline and r.p.poll() is None:
            polls += 1
            if isinstance(target, tuple):
                if polls >= target[1]:
                    hit = True
                    break
            elif syscall(r.p.pid) == target:
                hit = True
                break
            if r.replied():
                break
        r.kill()
        self.hits.append((target, hit))
        # A 250 that made it into the pipe before the kill counts as acknowledged.
        self.outcomes[run] = "250" if b"\r\n250 " in b"\r\n" + r.out else "no-reply"

    def check_disk(self):
        by_run = {}
        for a in RCPTS:
            for sub in ("new", "cur"):
                for st in mailcheck.stored_messages(self.inst, a, sub):
                    xrun = [v for k, v in st.headers if k == "X-Run"]
                    self.assertEqual(len(xrun), 1, f"{st.name}: {st.data[:300]!r}")
                    run = int(xrun[0])
                    mailcheck.check_stored(self, st, self.inst, SENDER, RCPTS, "killer.test",
                                           client=self.client, proto=self.proto)
                    self.assertEqual(st.after_trace(), mailcheck.expected_on_disk(body(run)),
                                     f"run {run}: a partial or wrong message in {sub}/")
                    by_run.setdefault(run, {}).setdefault(a, []).append(st.name)
        for run, outcome in sorted(self.outcomes.items()):
            got = by_run.get(run, {})
            with self.subTest(run=run, outcome=outcome):
                if outcome == "before-dot":
                    self.assertEqual(got, {}, "stored without its final dot")
                elif outcome == "250":
                    self.assertEqual(sorted(got), sorted(RCPTS), "acknowledged but lost")
                for names in got.values():
                    self.assertEqual(len(names), 1, names)
        # Leftovers of killed runs may sit in tmp/ directories; none may look delivered.
        for dirpath, _dirs, files in os.walk(self.inst.state_dir):
            if os.path.basename(dirpath) in ("new", "cur"):
                continue
            for n in files:
                self.assertNotRegex(n, r",S=\d+,W=\d+", os.path.join(dirpath, n))

    def test_kill_at_every_stage(self):
        started = time.monotonic()
        size = len(mailcheck.dot_stuff(body(0)))
        run = 0
        # Inside DATA: before any byte, inside the headers, at line ends, mid-line, inside
        # "\r\n", one byte before the end, inside the final "\r\n.\r\n".
        offsets = sorted({0, 1, 2, 40, 79, 80, 81, size // 3, size // 2, size - 200} |
                         set(range(100, size - 5, max(1, size // 40))) |
                         set(range(size - 6, size)))
        for off in offsets:
            self.kill_inside_data(run, off)
            run += 1
        targets = sorted(STORING.get(ARCH, ())) + [("polls", n) for n in
                                                    (1, 2, 3, 5, 8, 12, 16, 20, 30, 40, 50, 60,
                                                     80, 100, 130, 160, 200, 250, 300, 400)]
        for target in targets + ["after-250"] * 3:
            self.kill_while_storing(run, target)
            run += 1
        self.check_disk()
        acknowledged = sum(1 for o in self.outcomes.values() if o == "250")
        self.assertGreaterEqual(acknowledged, 3)
        # The storing kills did land before the reply (the first polls always do).
        self.assertGreaterEqual(sum(1 for _, hit in self.hits if hit), 5, self.hits)
        self.assertLess(time.monotonic() - started, 60, "the kill test must stay fast")

    def test_pop3_sees_only_complete_messages(self):
        """After kills at all stages, a POP3 client sees every stored message, whole."""
        size = len(mailcheck.dot_stuff(body(0)))
        run = 0
        for off in range(0, size, size // 8):
            self.kill_inside_data(run, off)
            run += 1
        for target in [("polls", n) for n in (1, 10, 50, 200)] + ["after-250"] * 2:
            self.kill_while_storing(run, target)
            run += 1
        self.check_disk()
        stored = {}
        for st in mailcheck.stored_messages(self.inst, "demo@example.test"):
            stored[st.unique] = st
        port = self.inst.serve_inetd("pop3-in")
        pop = poplib.POP3("127.0.0.1", port, timeout=30)
        try:
            pop.user("demo@example.test")
            pop.pass_("demo")
            count, total = pop.stat()
            self.assertEqual(count, len(stored))
            self.assertEqual(total, sum(st.w for st in stored.values()))
            uidls = dict(l.decode().split()[::-1] for l in pop.uidl()[1])
            self.assertEqual(sorted(uidls), sorted(stored))
            for uid, num in uidls.items():
                lines = pop.retr(int(num))[1]
                self.assertEqual(b"\n".join(lines) + b"\n", stored[uid].data)
            pop.quit()
        finally:
            pop.close()


class SigtermDuringData(RunsCase):
    """SIGTERM (systemd's RuntimeMaxSec, a shutdown) in the middle of DATA: smtp-in dies of
    the signal and leaves no file in state_dir/tmp; after the final dot the message is stored
    and acknowledged whole before it dies, or not at all."""

    aliases = {"list@example.test": ["demo", "alice"], "owner-list@example.test": ["alice"]}

    def term(self, r):
        r.kill(signal.SIGTERM)
        self.assertEqual(r.p.returncode, -signal.SIGTERM, "smtp-in dies of the signal")

    def tmp_files(self):
        tmp = os.path.join(self.inst.state_dir, "tmp")
        return os.listdir(tmp) if os.path.isdir(tmp) else []

    def test_sigterm_mid_data_leaves_tmp_empty(self):
        data = mailcheck.dot_stuff(body(1))
        for offset in (0, 100, len(data) // 2, len(data) - 3):
            with self.subTest(offset=offset):
                r = self.start(RCPTS, "terminator.test")
                r.feed(data[:offset])
                r.wait_blocked()
                self.assertNotEqual(self.tmp_files(), [], "DATA has its tmp file")
                self.term(r)
                self.assertEqual(self.tmp_files(), [], "the tmp file is gone")
        for a in RCPTS:
            self.assertEqual(mailcheck.stored_messages(self.inst, a, "new"), [], a)

    def test_sigterm_after_the_dot_stores_whole_or_nothing(self):
        """The signal lands while the message is being stored (a list owner's copy too):
        it waits for the 250, or the message is not there at all."""
        for run in range(6):
            r = self.start(["list@example.test", "demo@example.test"], "terminator.test")
            r.feed(mailcheck.dot_stuff(body(100 + run)))
            time.sleep(0.002 * run)
            self.term(r)
            self.assertEqual(self.tmp_files(), [], f"run {run}: tmp/ is empty")
            stored = {a: [st for st in mailcheck.stored_messages(self.inst, a, "new")
                          if (b"X-Run: %03d" % (100 + run)) in st.data] for a in RCPTS}
            if b"\r\n250 " in b"\r\n" + r.out:
                self.assertEqual([len(v) for v in stored.values()], [1, 1], f"run {run}")
            else:
                self.assertEqual([len(v) for v in stored.values()], [0, 0], f"run {run}")


class TlsRun(Run):
    """One `smtp-in -T` on an accepted TCP socket (as inetd starts it), driven through a TLS
    client: the same steps, over OpenSSL's reads."""

    def __init__(self, inst, cafile):
        with socket.socket() as lst:
            lst.bind(("127.0.0.1", 0))
            lst.listen(1)
            raw = socket.create_connection(lst.getsockname(), timeout=DEADLINE)
            self.server_side, _ = lst.accept()  # kept: FIONREAD says what smtp-in left unread
        self.p = subprocess.Popen(inst.argv("smtp-in", "-T"), stdin=self.server_side,
                                  stdout=self.server_side, stderr=subprocess.DEVNULL)
        ctx = ssl.create_default_context(cafile=cafile)
        self.tls = ctx.wrap_socket(raw, server_hostname="mx.example.test")
        self.out = b""
        self.got_250 = False

    def wait_blocked(self):
        """Returns once every byte sent has reached smtp-in's socket, been read by it, and
        smtp-in waits for more."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                return
            if (unsent(self.tls.fileno()) == 0 and pending(self.server_side.fileno()) == 0 and
                    syscall(self.p.pid) in WAITING.get(ARCH, ())):
                return
            time.sleep(0.0005)
        raise AssertionError("smtp-in never got back to reading its input")

    def feed(self, data):
        self.tls.sendall(data)

    def replied(self):
        return self.tls.pending() > 0 or bool(select.select([self.tls], [], [], 0)[0])

    def read_some(self, left):
        self.tls.settimeout(left)
        return self.tls.recv(65536)

    def collect_and_close(self):
        self.server_side.close()
        self.tls.settimeout(0.5)
        try:
            while True:
                chunk = self.tls.recv(65536)
                if not chunk:
                    break
                self.out += chunk
        except (OSError, ssl.SSLError):
            pass
        self.tls.close()


class SigkillOverTls(SigkillDuringData):
    """kill -9 at points inside DATA and while storing, with the message coming through TLS
    (`smtp-in -T` on a TCP socket): no partial message, every acknowledged one whole."""
    client = "[127.0.0.1]"
    proto = "ESMTPS"

    def setUp(self):
        super().setUp()
        self.cert = self.inst.use_tls()

    def start(self, rcpts=RCPTS, helo="killer.test"):
        r = TlsRun(self.inst, self.cert)
        self.runs.append(r)
        return r.start_data(helo, rcpts)

    def test_kill_at_every_stage(self):
        size = len(mailcheck.dot_stuff(body(0)))
        run = 0
        for off in sorted({0, 1, 79, 80, 81, size // 2, size - 5, size - 3, size - 1} |
                          set(range(100, size - 5, max(1, size // 10)))):
            self.kill_inside_data(run, off)
            run += 1
        for target in [("polls", n) for n in (1, 3, 10, 30, 100, 300)] + ["after-250"] * 2:
            self.kill_while_storing(run, target)
            run += 1
        self.check_disk()
        self.assertGreaterEqual(sum(1 for o in self.outcomes.values() if o == "250"), 2)

    test_pop3_sees_only_complete_messages = None
