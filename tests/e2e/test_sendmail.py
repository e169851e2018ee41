"""sendmail(8) the way local programs use it, against a real smtp-in under openbsd-inetd.

Every test starts a yubin site (yubintest.Instance), serves smtp-in with inetd on a
Unix-domain socket (a `unix` stream line), points local_socket at it, and runs the built
sendmail as the
unprivileged account `nobody` (as a user's cron job would), from a shell script where that is
how it is used. Then it reads the Maildirs: who got the message, the Return-Path, the header
fields sendmail removed (Bcc) or added (From, Date, Message-ID), and the body byte for byte.
Error cases check the sysexits code and the one line on stderr. Nothing but 127.0.0.1.
"""
import email.parser
import os
import pwd
import shutil
import subprocess
import threading
import time
import unittest

import yubintest

USERS = ("demo@example.test", "alice@example.test", "bob@example.test",
         "carol@example.test", "dave@example.test")
EX_USAGE, EX_DATAERR, EX_NOUSER, EX_SOFTWARE, EX_TEMPFAIL = 64, 65, 67, 70, 75
RUN_AS = "nobody"


as_user = yubintest.as_user


def calling_address():
    if os.geteuid() == 0:
        return f"{RUN_AS}@example.test"
    return f"{pwd.getpwuid(os.geteuid()).pw_name}@example.test"


def split(msg):
    """(header fields after Return-Path/Received as a Message, body bytes)."""
    head, _, body = msg.partition(b"\n\n")
    return email.parser.BytesParser().parsebytes(head + b"\n\n"), body


class Sendmail(unittest.TestCase):

    def setUp(self):
        self.inst = yubintest.Instance(users=USERS)
        self.addCleanup(self.inst.stop)
        self.socket = self.inst.serve_inetd_unix("smtp-in")
        self.prog = yubintest.program("sendmail")

    def sendmail(self, *args, data=b"", timeout=60):
        return subprocess.run([self.prog, "-C", self.inst.conf, *args], input=data,
                              capture_output=True, timeout=timeout,
                              preexec_fn=as_user(RUN_AS))

    def ok(self, *args, data=b""):
        p = self.sendmail(*args, data=data)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        self.assertEqual(p.stderr, b"")
        return p

    def only(self, address):
        msgs = self.inst.messages(address)
        self.assertEqual(len(msgs), 1, f"{address}: {len(msgs)} messages")
        return msgs[0]

    def nothing_for(self, *addresses):
        for a in addresses:
            self.assertEqual(self.inst.messages(a), [], a)

    # -- -t, as a cron job's script uses it ------------------------------------------
    def test_t_from_a_cron_script(self):
        script = os.path.join(self.inst.dir, "nightly.sh")
        with open(script, "w") as f:
            f.write(f"""#!/bin/sh
# a cron job reporting by mail
status="backup done"
{self.prog} -C {self.inst.conf} -t -oi <<EOF
From: Backup Robot <backup@example.test>
To: demo@example.test,
 "Alice A." <alice@example.test> (the admin)
Cc: team: bob@example.test,
\tCarol <carol@example.test>;, undisclosed-recipients:;
Bcc: dave@example.test (hidden)
Subject: nightly

$status
.
..two dots
EOF
echo "exit $?"
""")
        os.chmod(script, 0o755)
        p = subprocess.run(["/bin/sh", script], capture_output=True, timeout=60,
                           preexec_fn=as_user(RUN_AS))
        self.assertEqual(p.stdout, b"exit 0\n", p.stderr.decode(errors="replace"))
        stored = [self.only(a) for a in USERS]
        self.assertEqual(len(set(stored)), 1)  # one message, the same bytes for everyone
        head, body = split(stored[0])
        self.assertIsNone(head["Bcc"])
        self.assertNotIn(b"dave", stored[0])
        self.assertNotIn(b"hidden", stored[0])
        self.assertEqual(head["From"], "Backup Robot <backup@example.test>")
        self.assertIn("Carol <carol@example.test>", head["Cc"])
        self.assertTrue(head["Date"] and head["Message-ID"])
        self.assertEqual(body, b"backup done\n.\n..two dots\n")
        self.assertTrue(stored[0].startswith(f"Return-Path: <{calling_address()}>\n".encode()))

    def test_cron_command_line(self):
        # Debian cron: sendmail -FCronDaemon -i -B8BITMIME -oem <user>; "root" gets the
        # first local domain, and cron's own headers have no From.
        self.inst.write_aliases({"root@example.test": ["demo@example.test"]})
        self.ok("-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root",
                data=b"To: root\nSubject: Cron <root@host> true\n\nout\n")
        head, body = split(self.only("demo@example.test"))
        self.assertEqual(head["From"], f"CronDaemon <{calling_address()}>")
        self.assertEqual(body, b"out\n")

    def test_t_adds_command_line_recipients_and_resent(self):
        self.ok("-t", "carol@example.test",
                data=b"To: demo@example.test\nResent-To: alice@example.test\n"
                     b"Resent-Bcc: bob@example.test\n\nresent\n")
        self.nothing_for("demo@example.test")  # Resent- fields win over To
        for a in ("alice@example.test", "bob@example.test", "carol@example.test"):
            self.assertNotIn(b"Resent-Bcc", self.only(a))

    def test_t_last_line_bcc_without_lf(self):
        self.ok("-t", data=b"To: demo@example.test\nBcc: alice@example.test")
        for a in ("demo@example.test", "alice@example.test"):
            head, body = split(self.only(a))
            self.assertIsNone(head["Bcc"])
            self.assertTrue(head["Date"] and head["From"] and head["Message-ID"])
            self.assertEqual(body, b"")

    # -- recipients as arguments -------------------------------------------------------
    def test_recipients_on_the_command_line(self):
        self.ok("-i", "--", "demo@example.test", "Alice <alice@example.test>, bob",
                data=b"Subject: args\nBcc: carol@example.test\n\nhello\n")
        for a in ("demo@example.test", "alice@example.test", "bob@example.test"):
            head, body = split(self.only(a))
            self.assertIsNone(head["Bcc"])  # removed even without -t
            self.assertEqual(body, b"hello\n")
        self.nothing_for("carol@example.test")  # without -t, header fields name no one

    def test_recipient_limit_means_more_transactions(self):
        # smtp-in answers "452 4.5.3" past max_recipients; the rest go in the next one.
        self.inst.settings["max_recipients"] = "2"
        self.inst.write_conf()
        p = self.sendmail("-v", *USERS, data=b"Subject: many\n\nx\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.count(b"<<< 452 4.5.3"), 3 + 1, p.stderr)  # 5, then 3, then 1
        self.assertEqual(p.stderr.count(b"<<< 250 2.0.0 Ok: queued as"), 3, p.stderr)
        for a in USERS:
            self.only(a)

    def test_no_header_gets_one(self):
        self.ok("demo", data=b"just a line\nand another\n")
        msg = self.only("demo@example.test")
        head, body = split(msg)
        self.assertEqual(body, b"just a line\nand another\n")
        self.assertEqual(head["From"].split()[-1], f"<{calling_address()}>")
        self.assertTrue(head["Date"] and head["Message-ID"])

    # -- -f and -F -----------------------------------------------------------------------
    def test_f_sets_the_envelope_sender(self):
        self.ok("-f", "bounces@remote.test", "demo@example.test", data=b"Subject: f\n\nx\n")
        msg = self.only("demo@example.test")
        self.assertTrue(msg.startswith(b"Return-Path: <bounces@remote.test>\n"), msg[:80])
        self.assertEqual(split(msg)[0]["From"], "<bounces@remote.test>")
        self.ok("-f<>", "alice@example.test", data=b"Subject: null\n\nx\n")
        self.assertTrue(self.only("alice@example.test").startswith(b"Return-Path: <>\n"))

    def test_F_adds_from_only_when_missing(self):
        self.ok("-F", "Jane Q. Doe", "demo@example.test", data=b"Subject: F\n\nx\n")
        head, _ = split(self.only("demo@example.test"))
        self.assertEqual(head.get_all("From"), [f'"Jane Q. Doe" <{calling_address()}>'])
        self.ok("-F", "Jane", "alice@example.test", data=b"From: Boss <boss@example.test>\n\nx\n")
        head, _ = split(self.only("alice@example.test"))
        self.assertEqual(head.get_all("From"), ["Boss <boss@example.test>"])

    # -- a lone '.' --------------------------------------------------------------------
    def test_lone_dot_ends_input_without_i(self):
        data = b"Subject: dots\n\nline1\n.line\n..\n.\nline2 never sent\n"
        self.ok("demo@example.test", data=data)
        self.assertEqual(split(self.only("demo@example.test"))[1], b"line1\n.line\n..\n")
        self.ok("alice@example.test", data=data.replace(b"\n", b"\r\n"))
        self.assertEqual(split(self.only("alice@example.test"))[1], b"line1\n.line\n..\n")

    def test_i_and_oi_keep_a_lone_dot(self):
        data = b"Subject: dots\n\nline1\n.\nline2\n"
        self.ok("-i", "demo@example.test", data=data)
        self.ok("-oi", "alice@example.test", data=data)
        for a in ("demo@example.test", "alice@example.test"):
            self.assertEqual(split(self.only(a))[1], b"line1\n.\nline2\n")

    # -- refusals and failures -----------------------------------------------------------
    def test_refused_recipient_is_ex_nouser(self):
        p = self.sendmail("nosuchuser@example.test", data=b"Subject: x\n\nx\n")
        self.assertEqual(p.returncode, EX_NOUSER, p.stderr)
        self.assertIn(b"<nosuchuser@example.test>", p.stderr)
        self.assertIn(b"550", p.stderr)
        p = self.sendmail("demo@example.test", "nosuchuser@example.test",
                          data=b"Subject: x\n\nx\n")
        self.assertEqual(p.returncode, EX_NOUSER, p.stderr)
        self.assertIn(b"sent to the other 1 recipient", p.stderr)
        self.only("demo@example.test")

    def test_server_down_is_ex_tempfail(self):
        port = yubintest.free_port()
        self.inst.settings["submission_address"] = f"127.0.0.1:{port}"
        self.inst.write_conf()
        start = time.monotonic()
        p = self.sendmail("demo@example.test", data=b"Subject: x\n\nx\n")
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(p.returncode, EX_TEMPFAIL, p.stderr)
        lines = p.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(f"127.0.0.1:{port}", lines[0])
        self.assertIn("nothing was sent", lines[0])
        self.nothing_for("demo@example.test")

    def test_local_socket_down_is_ex_tempfail(self):
        missing = os.path.join(self.inst.dir, "no-such.sock")
        self.inst.settings["local_socket"] = missing
        self.inst.write_conf()
        p = self.sendmail("demo@example.test", data=b"Subject: x\n\nx\n")
        self.assertEqual(p.returncode, EX_TEMPFAIL, p.stderr)
        lines = p.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(missing, lines[0])
        self.assertIn("nothing was sent", lines[0])
        self.nothing_for("demo@example.test")

    # -- the local socket: who submitted, and what it may do -----------------------------
    def test_uid_in_received_and_log(self):
        """smtp-in learns the caller's uid from the kernel (SO_PEERCRED), as Postfix records
        the local user: in the Received header and in the log."""
        uid = pwd.getpwnam(RUN_AS).pw_uid if os.geteuid() == 0 else os.geteuid()
        self.ok("demo@example.test", data=b"Subject: who\n\nx\n")
        msg = self.only("demo@example.test")
        received = msg.split(b"\n")[1:3]
        self.assertTrue(received[0].startswith(b"Received: from "), received)
        self.assertIn(f"(uid {uid})".encode(), received[0])
        lines = self.inst.syslog.lines()
        self.assertTrue(any(f"connect from local uid={uid}" in l for l in lines), lines)
        self.assertTrue(any(f"client=local uid={uid} " in l and "result=\"250" in l
                            for l in lines), lines)

    def test_remote_recipient_is_queued(self):
        """The local socket may relay (relay_networks stays empty): the remote recipient is
        queued for queue-run (the smarthost refuses, so it stays in the queue)."""
        self.inst.settings["smarthost"] = "127.0.0.1:1"
        self.inst.write_conf()
        self.ok("friend@remote.test", data=b"Subject: out\n\nx\n")
        lines = self.inst.syslog.lines()
        self.assertTrue(any("queued=" in l for l in lines), lines)
        self.assertFalse(any("relaying denied" in l for l in lines), lines)

    def test_usage_and_data_errors(self):
        cases = [
            ((), b"Subject: x\n\nx\n", EX_USAGE),  # no recipient at all
            (("-t",), b"Subject: x\n\nx\n", EX_USAGE),  # -t, no To/Cc/Bcc
            (("-Z", "demo"), b"", EX_USAGE),
            (("-q5m",), b"", EX_USAGE),
            (("-t",), b"To: John Smith\n\nx\n", EX_DATAERR),
            (("demo@exa mple@x",), b"x\n", EX_DATAERR),
            (("demo",), b"X-Big: " + b"a" * 70000 + b"\n\nx\n", EX_DATAERR),
        ]
        for args, data, code in cases:
            p = self.sendmail(*args, data=data)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertTrue(p.stderr.startswith(b"sendmail: "), p.stderr)
        self.nothing_for("demo@example.test")

    def test_nul_and_bare_cr_refused(self):
        """A NUL octet or a CR not before LF, in the header section or the body, is refused
        with EX_DATAERR and a message naming it; nothing reaches smtp-in (DESIGN.md §5)."""
        cases = [
            (b"Subject: x\n\nab\0cd\n", b"NUL"),
            (b"Subject: x\n\nx\r\n\0.\r\nMAIL FROM:<evil@remote.test>\r\n", b"NUL"),
            (b"Subject: x\0y\n\nbody\n", b"NUL"),
            (b"Subject: x\n\nbare\rCR\n", b"bare CR"),
            (b"Subject: x\rBcc: y\n\nbody\n", b"bare CR"),
            (b"Subject: x\n\nCR CR LF\r\r\n", b"bare CR"),
            (b"Subject: x\n\nthe last octet\r", b"bare CR"),
        ]
        for data, what in cases:
            for args in (("demo@example.test",), ("-i", "demo@example.test")):
                p = self.sendmail(*args, data=data)
                self.assertEqual(p.returncode, EX_DATAERR, (data, p.stderr))
                self.assertTrue(p.stderr.startswith(b"sendmail: the message holds "), p.stderr)
                self.assertIn(what, p.stderr)
                self.assertIn(b"nothing was sent", p.stderr)
        self.nothing_for("demo@example.test")
        self.assertFalse(any("result=" in l for l in self.inst.syslog.lines()))

    def test_refuses_to_run_setuid(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to make a setuid copy")
        copy = os.path.join(self.inst.dir, "sendmail-suid")
        shutil.copy(self.prog, copy)
        os.chmod(copy, 0o4755)
        p = subprocess.run([copy, "-C", self.inst.conf, "demo"], input=b"x\n",
                           capture_output=True, timeout=30, preexec_fn=as_user(RUN_AS))
        if p.returncode == 0 and not self.inst.messages("demo@example.test"):
            self.skipTest("setuid bits ignored here (nosuid mount)")
        self.assertEqual(p.returncode, EX_SOFTWARE, p.stderr)
        self.assertIn(b"setuid", p.stderr)
        self.nothing_for("demo@example.test")

    # -- size and 8-bit ------------------------------------------------------------------
    def run_measured(self, data, *args):
        """Runs sendmail; returns (exit code, stderr, peak RSS in KiB). The peak (VmHWM of the
        process after its exec) is read while sendmail waits for the last byte of the message,
        that is after it has taken in all the rest, and again as long as it runs."""
        p = subprocess.Popen([self.prog, "-C", self.inst.conf, *args], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             preexec_fn=as_user(RUN_AS))
        err, peak = [], [0]
        reader = threading.Thread(target=lambda: err.append(p.stderr.read()))
        reader.start()

        def hwm():
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
            except OSError:
                pass
        p.stdin.write(data[:-1])
        p.stdin.flush()
        time.sleep(0.5)
        hwm()
        p.stdin.write(data[-1:])
        p.stdin.close()
        deadline = time.monotonic() + 120
        while p.poll() is None:
            hwm()
            if time.monotonic() > deadline:
                p.kill()
                raise AssertionError("sendmail did not finish")
            time.sleep(0.01)
        reader.join(10)
        self.assertGreater(peak[0], 0)
        return p.returncode, b"".join(err), peak[0]

    def test_2mb_message_streamed(self):
        line = bytes(range(0x20, 0x7f)) + b"\n"
        small = b"Subject: big\n\n" + line * (2 * 1024 * 1024 // len(line))
        large = b"Subject: bigger\n\n" + line * (20 * 1024 * 1024 // len(line))
        rc, err, rss_small = self.run_measured(small, "demo@example.test")
        self.assertEqual(rc, 0, err)
        self.assertEqual(split(self.only("demo@example.test"))[1], small.split(b"\n\n", 1)[1])
        rc, err, rss_large = self.run_measured(large, "alice@example.test")
        self.assertEqual(rc, 0, err)
        self.assertEqual(split(self.only("alice@example.test"))[1], large.split(b"\n\n", 1)[1])
        # Ten times the message, about the same memory: it is never held whole.
        self.assertLess(rss_large - rss_small, 4096, (rss_small, rss_large))

    def test_8bit_body_intact(self):
        body = ("Grüße, 日本語 — ünïcödé\n".encode() + bytes(range(0x80, 0x100)) + b"\n" +
                b"tab\there, trailing blanks   \nCRLF line\r\n")
        data = "Subject: 8-bit Grüße\n".encode() + b"\n" + body
        self.ok("demo@example.test", data=data)
        head, got = split(self.only("demo@example.test"))
        self.assertEqual(got, body.replace(b"\r\n", b"\n"))
        self.assertIn("Subject: 8-bit Grüße\n".encode(), self.only("demo@example.test"))

    # -- -bp and -q ------------------------------------------------------------------------
    def other_program(self, name):
        if not os.access(yubintest.program(name), os.X_OK):
            self.skipTest(f"bin/{name} is not built yet")

    def test_bp_runs_mailq(self):
        self.other_program("mailq")
        direct = subprocess.run([yubintest.program("mailq"), "-C", self.inst.conf],
                                capture_output=True, timeout=30)
        via = subprocess.run([self.prog, "-C", self.inst.conf, "-bp"], capture_output=True,
                             timeout=30)
        self.assertEqual((via.returncode, via.stdout), (direct.returncode, direct.stdout),
                         via.stderr)
        self.assertEqual(direct.returncode, 0, direct.stderr)

    def test_q_runs_queue_run(self):
        self.other_program("queue-run")
        p = subprocess.run([self.prog, "-C", self.inst.conf, "-q"], capture_output=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
