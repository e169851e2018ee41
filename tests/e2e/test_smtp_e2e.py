"""Mail delivered through smtp-in by real clients under real launchers, checked on disk.

Python's smtplib (and a raw client where byte-exactness matters) talks to smtp-in started by
openbsd-inetd (as root, so smtp-in must drop to the yubin account itself) and by
systemd-socket-activate, on a free loopback port. Then the test reads the Maildir: every byte
of the body (CRLF -> LF, 8-bit intact, dots unstuffed), Return-Path and Received, the ,S= and
,W= sizes in the name, modes 0600/0700, the owner, hard links for several recipients, and the
syslog line of each message. It never talks to anything but 127.0.0.1.
"""
import os
import re
import smtplib
import threading
import time
import unittest

import mailcheck
import yubintest

SENDER = "sender@remote.test"
USERS = ("demo@example.test", "alice@example.test", "bob@example.test")
HELO = "client.remote.test"

BODY = (b"From: Sender <sender@remote.test>\r\n"
        b"To: demo@example.test\r\n"
        b"Subject: e2e =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n"
        b"First line.\r\n"
        b".a line that starts with a dot\r\n"
        b"..two dots\r\n"
        b".\r\n"
        b" .space dot\r\n"
        b"\r\n"
        b"8-bit: Gr\xc3\xbc\xc3\x9fe \xe6\x97\xa5\xe6\x9c\xac and raw \x80\x81\xfe\xff\r\n"
        b"tab\there, trailing blanks   \r\n"
        b"From the start of a line\r\n"
        b"last line\r\n")


def body_with(marker):
    return BODY.replace(b"Subject: e2e", b"Subject: e2e " + marker.encode())


class SmtpDelivery:
    """The checks, run once per launcher (see the subclasses at the bottom)."""

    launcher = None

    def setUp(self):
        self.inst = yubintest.Instance(users=USERS)
        self.port = getattr(self.inst, self.launcher)("smtp-in")

    def tearDown(self):
        self.inst.stop()

    def smtp(self):
        s = smtplib.SMTP("127.0.0.1", self.port, local_hostname=HELO, timeout=30)
        self.addCleanup(s.close)
        return s

    def only(self, address):
        msgs = mailcheck.stored_messages(self.inst, address)
        self.assertEqual(len(msgs), 1, [m.name for m in msgs])
        return msgs[0]

    def test_message_bytes_and_headers(self):
        s = self.smtp()
        code, _ = s.ehlo()
        self.assertEqual(code, 250)
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes"):
            self.assertTrue(s.has_extn(ext), ext)
        self.assertEqual(s.sendmail(SENDER, ["demo@example.test"], BODY,
                                    mail_options=["BODY=8BITMIME"]), {})
        s.quit()
        st = self.only("demo@example.test")
        mailcheck.check_stored(self, st, self.inst, SENDER, ["demo@example.test"], HELO)
        self.assertEqual(st.after_trace(), mailcheck.expected_on_disk(BODY))
        self.assertEqual(st.st.st_nlink, 1)
        self.assertEqual(mailcheck.stored_messages(self.inst, "alice@example.test"), [])

    def test_several_recipients_one_inode(self):
        s = self.smtp()
        rcpts = list(USERS)
        self.assertEqual(s.sendmail(SENDER, rcpts + ["DEMO@example.test"], BODY), {})
        s.quit()
        stored = [self.only(a) for a in rcpts]
        for st in stored:
            mailcheck.check_stored(self, st, self.inst, SENDER, rcpts, HELO)
            self.assertEqual(st.after_trace(), mailcheck.expected_on_disk(BODY))
        self.assertEqual({st.st.st_ino for st in stored}, {stored[0].st.st_ino})
        self.assertEqual(stored[0].st.st_nlink, len(rcpts))

    def test_several_messages_one_connection(self):
        s = self.smtp()
        for i in range(5):
            rcpt = USERS[i % 3]
            self.assertEqual(s.sendmail(SENDER, [rcpt], body_with(f"m{i}")), {})
        s.rset()
        s.quit()
        count = 0
        for address in USERS:
            for st in mailcheck.stored_messages(self.inst, address):
                mailcheck.check_stored(self, st, self.inst, SENDER, [address], HELO)
                marker = re.search(rb"Subject: e2e (m\d)", st.data).group(1).decode()
                self.assertEqual(st.after_trace(), mailcheck.expected_on_disk(body_with(marker)))
                self.assertEqual(USERS[int(marker[1]) % 3], address)
                count += 1
        self.assertEqual(count, 5)

    def test_five_megabytes(self):
        line = bytes(range(0x20, 0x7f)) + b"\xc3\xa9\r\n"            # 97 bytes + CRLF
        body = BODY + b"".join(b"%07d " % i + line for i in range(5 * 1024 * 1024 // 105))
        self.assertGreater(len(body), 5_000_000)
        s = self.smtp()
        self.assertEqual(s.sendmail(SENDER, ["demo@example.test"], body), {})
        s.quit()
        st = self.only("demo@example.test")
        mailcheck.check_stored(self, st, self.inst, SENDER, ["demo@example.test"], HELO)
        self.assertEqual(st.after_trace(), mailcheck.expected_on_disk(body))

    def test_pipelining(self):
        c = mailcheck.RawSmtp(self.port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        code, lines = c.cmd(f"EHLO {HELO}")
        self.assertEqual(code, 250)
        self.assertIn("PIPELINING", [l.split()[0].upper() for l in lines[1:]])
        # The whole envelope in one write, as RFC 2920 allows, then the replies in order.
        c.send(b"MAIL FROM:<sender@remote.test>\r\nRCPT TO:<demo@example.test>\r\n"
               b"RCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(5)]
        self.assertEqual(codes, [250, 250, 550, 250, 354])
        c.send(mailcheck.dot_stuff(BODY) + b"RSET\r\nNOOP\r\nQUIT\r\n")
        final = c.reply()
        self.assertEqual(final[0], 250, final)
        self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 221])
        c.rest()
        self.assertEqual(c.only_protocol(), [])
        rcpts = ["demo@example.test", "alice@example.test"]
        for a in rcpts:
            st = self.only(a)
            mailcheck.check_stored(self, st, self.inst, SENDER, rcpts, HELO)
            self.assertEqual(st.after_trace(), mailcheck.expected_on_disk(BODY))

    def test_size_refused_at_mail(self):
        limit = int(self.inst.settings.get("max_message_size", 0) or 0)
        c = mailcheck.RawSmtp(self.port)
        self.addCleanup(c.close)
        c.reply()
        code, lines = c.cmd(f"EHLO {HELO}")
        size = [l.split() for l in lines[1:] if l.upper().startswith("SIZE")]
        self.assertTrue(size and len(size[0]) == 2, lines)
        advertised = int(size[0][1])
        self.assertGreater(advertised, 0)
        if limit:
            self.assertEqual(advertised, limit)
        code, lines = c.cmd(f"MAIL FROM:<{SENDER}> SIZE={advertised + 1}")
        self.assertEqual(code, 552)
        self.assertTrue(lines[0].startswith("5.3.4"), lines)
        code, _ = c.cmd(f"MAIL FROM:<{SENDER}> SIZE={advertised}")
        self.assertEqual(code, 250)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        # smtplib declares SIZE= itself when the server offers it.
        self.inst.settings["max_message_size"] = "2000"
        self.inst.write_conf()
        s = self.smtp()
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            s.sendmail(SENDER, ["demo@example.test"], BODY + b"x" * 2000 + b"\r\n")
        self.assertEqual(cm.exception.smtp_code, 552)
        s.quit()
        self.assertEqual(mailcheck.stored_messages(self.inst, "demo@example.test"), [])

    def test_syslog_line_and_only_protocol(self):
        c = mailcheck.RawSmtp(self.port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd(f"EHLO {HELO}")[0], 250)
        ids = []
        for rcpts in (["demo@example.test"], ["alice@example.test", "bob@example.test"]):
            self.assertEqual(c.cmd(f"MAIL FROM:<{SENDER}>")[0], 250)
            for r in rcpts:
                self.assertEqual(c.cmd(f"RCPT TO:<{r}>")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(mailcheck.dot_stuff(BODY))
            code, lines = c.reply()
            self.assertEqual(code, 250, lines)
            ids.append((lines[0].split()[-1], rcpts))
        self.assertEqual(c.cmd("QUIT")[0], 221)
        c.rest()
        self.assertEqual(c.only_protocol(), [], "only SMTP replies on the socket")
        self.assertEqual(c.buf, b"")
        size = len(mailcheck.expected_on_disk(BODY))
        deadline = time.monotonic() + 5
        while True:
            lines = self.inst.syslog.lines()
            per_msg = [[l for l in lines if qid in l] for qid, _ in ids]
            if all(per_msg) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        stored = {}
        for a in USERS:
            for st in mailcheck.stored_messages(self.inst, a):
                stored.setdefault(a, []).append(st)
        for (qid, rcpts), found in zip(ids, per_msg):
            with self.subTest(id=qid):
                for r in rcpts:
                    self.assertEqual(len(stored[r]), 1)
                    mailcheck.check_stored(self, stored[r][0], self.inst, SENDER, rcpts, HELO,
                                           qid=qid)
                self.assertEqual(len(found), 1, f"one line for {qid}: {found} (all: {lines})")
                line = found[0]
                self.assertIn(SENDER, line)
                for r in rcpts:
                    self.assertIn(r, line)
                sizes = [int(n) for n in re.findall(r"size=(\d+)", line)]
                self.assertTrue(sizes and size <= sizes[0] <= size + 1000, line)
                self.assertRegex(line, r"\bresult=\S+")
                self.assertIn("client=127.0.0.1", line)


class ViaInetd(SmtpDelivery, unittest.TestCase):
    launcher = "serve_inetd"


class ViaSystemdSocketActivate(SmtpDelivery, unittest.TestCase):
    launcher = "serve_systemd"


class Privileges(unittest.TestCase):
    """inetd starts smtp-in as root; it must serve as the yubin account, never as root."""

    def test_root_started_handler_stores_as_yubin(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to start smtp-in as root")
        with yubintest.Instance(users=USERS) as inst:
            port = inst.serve_inetd("smtp-in", as_root=True)
            s = smtplib.SMTP("127.0.0.1", port, local_hostname=HELO, timeout=30)
            s.sendmail(SENDER, ["demo@example.test"], BODY)
            s.quit()
            st = mailcheck.stored_messages(inst, "demo@example.test")[0]
            self.assertNotEqual(inst.uid, 0)
            self.assertEqual((st.st.st_uid, st.st.st_gid), (inst.uid, inst.gid))
            for dirpath, dirs, files in os.walk(inst.state_dir):
                for n in dirs + files:
                    self.assertNotEqual(os.lstat(os.path.join(dirpath, n)).st_uid, 0,
                                        os.path.join(dirpath, n))

    def test_root_as_configured_account_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to start smtp-in as root")
        with yubintest.Instance(users=USERS, conf={"user": "root"}) as inst:
            port = inst.serve_inetd("smtp-in", as_root=True)
            c = mailcheck.RawSmtp(port)
            try:
                code, lines = c.reply()
                self.assertEqual(code, 421, lines)
                self.assertTrue(lines[0].startswith("4.3.0"), lines)
                c.rest()
            finally:
                c.close()
            self.assertEqual(mailcheck.stored_messages(inst, "demo@example.test"), [])
            self.assertEqual(os.listdir(inst.state_dir), [])


class OnlyProtocolOnTheSocket(unittest.TestCase):
    """Under inetd, stderr is the socket too: even a broken set-up may only send SMTP."""

    def check_refusal(self, inst, extra):
        port = inst.serve_inetd("smtp-in", *extra)
        c = mailcheck.RawSmtp(port)
        try:
            c.reply()
            c.rest()
        except EOFError:
            pass
        finally:
            c.close()
        self.assertEqual(c.only_protocol(), [], "only SMTP replies on the socket")
        self.assertTrue(c.transcript and c.transcript[0].startswith(b"421 4.3.0 "),
                        c.transcript)

    def test_bad_option(self):
        with yubintest.Instance() as inst:
            self.check_refusal(inst, ["-Z"])

    def test_bad_config(self):
        with yubintest.Instance(conf={"no_such_key": "1"}, auth=False) as inst:
            self.check_refusal(inst, [])


class Concurrency(unittest.TestCase):
    """20 clients at once under inetd: every message stored exactly once, each complete."""

    def test_twenty_clients_at_once(self):
        n = 20
        with yubintest.Instance(users=USERS) as inst:
            port = inst.serve_inetd("smtp-in")
            start = threading.Barrier(n)
            errors = []

            def client(i):
                try:
                    s = smtplib.SMTP("127.0.0.1", port, local_hostname=HELO, timeout=60)
                    start.wait(timeout=30)
                    s.sendmail(SENDER, ["demo@example.test", USERS[1 + i % 2]],
                               body_with(f"c{i:02d}"))
                    s.quit()
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(f"client {i}: {e!r}")

            threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            self.assertEqual(errors, [])
            seen = {}
            for st in mailcheck.stored_messages(inst, "demo@example.test"):
                marker = re.search(rb"Subject: e2e (c\d\d)", st.data).group(1).decode()
                self.assertNotIn(marker, seen)
                seen[marker] = st
                self.assertEqual(st.after_trace(), mailcheck.expected_on_disk(body_with(marker)))
                self.assertEqual(st.st.st_nlink, 2)
            self.assertEqual(sorted(seen), [f"c{i:02d}" for i in range(n)])
            others = (mailcheck.stored_messages(inst, USERS[1]) +
                      mailcheck.stored_messages(inst, USERS[2]))
            self.assertEqual(len(others), n)
            self.assertEqual({st.st.st_ino for st in others}, {st.st.st_ino for st in seen.values()})


if __name__ == "__main__":
    unittest.main()
