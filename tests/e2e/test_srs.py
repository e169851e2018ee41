"""test_srs: forwarding with SRS (yubin.conf(5) "Forwarding (SRS)"), end to end.

One site (example.test, smtp-in under openbsd-inetd on 127.0.0.1; relay_networks elsewhere,
so the client is an outsider that may not relay) with an alias that has a local member and a
member in another domain. Its smarthost is a sink (smtpsink.py on 127.0.0.41) standing for
every other domain. The forwarded copy reaches the sink with an SRS0 envelope sender at
example.test while the local copy keeps the author's; a bounce to that SRS address (from the
same outsider, which could relay nothing else) is taken and relayed back to the author, as is
an automatic reply from a non-null sender (itself rewritten); a forged one is refused and
nothing is queued. When the member's server refuses the copy, queue-run's bounce goes
straight to the author. yubin-srs(8): newkey rotates the secret (addresses signed before stay
valid, the file stays private), forward and reverse agree with smtp-in. Only loopback
addresses are used.
"""
import os
import re
import smtplib
import stat
import subprocess
import time
import unittest

import yubintest
from smtpsink import SMTPSink

SINK_HOST = "127.0.0.41"
DEMO, AUTHOR, FRIEND = "demo@example.test", "author@origin.test", "friend@remote.test"
SRS_RE = r"SRS0=[A-Z2-7]{6}=[A-Z2-7]{2}=origin\.test=author@example\.test"


class SRS(unittest.TestCase):
    def setUp(self):
        self.sink = SMTPSink([SINK_HOST])
        self.site = yubintest.Instance(
            users=(DEMO,),
            aliases={"postmaster@example.test": [DEMO], "mixed@example.test": ["demo", FRIEND]},
            conf={"relay_networks": "192.0.2.0/24", "connect_timeout": "5",
                  "smarthost": f"{SINK_HOST}:{self.sink.port}"})
        self.port = self.site.serve_inetd("smtp-in")

    def tearDown(self):
        self.sink.close()
        self.site.stop()

    def smtp(self):
        c = smtplib.SMTP("127.0.0.1", self.port, local_hostname="outsider.test", timeout=30)
        self.addCleanup(c.close)
        c.ehlo()
        return c

    def send(self, sender, rcpt, body):
        c = self.smtp()
        self.assertEqual(c.docmd("MAIL", f"FROM:<{sender}>")[0], 250)
        code, text = c.docmd("RCPT", f"TO:<{rcpt}>")
        self.assertEqual(code, 250, text)
        self.assertEqual(c.data(body.encode())[0], 250)
        c.quit()

    def queue_entries(self):
        d = os.path.join(self.site.state_dir, "queue")
        return [n for n in os.listdir(d) if n.endswith(".env")] if os.path.isdir(d) else []

    def wait_queue_empty(self):
        deadline = time.monotonic() + 30
        while self.queue_entries() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.queue_entries(), [])

    def forward_one(self):
        """The alias's two copies; returns the SRS sender the sink saw."""
        self.send(AUTHOR, "mixed@example.test", "Subject: forwarded\r\n\r\nhello\r\n")
        local = self.site.messages(DEMO)
        self.assertEqual(len(local), 1)
        self.assertTrue(local[0].startswith(f"Return-Path: <{AUTHOR}>\n".encode()), local[0])
        self.assertTrue(self.sink.wait_for(lambda: len(self.sink.messages) >= 1, timeout=30))
        m = self.sink.messages[0]
        self.assertEqual(m.rcpts, [FRIEND])
        self.assertRegex(m.sender, "^" + SRS_RE + "$", "the forwarded copy's MAIL FROM")
        return m.sender

    def test_forward_and_bounce_back(self):
        srs = self.forward_one()
        self.wait_queue_empty()
        # a bounce from an outsider, to the SRS address: taken, relayed back to the author
        self.send("", srs, "Subject: Undelivered Mail\r\n\r\nfriend@remote.test: no\r\n")
        self.assertTrue(self.sink.wait_for(lambda: len(self.sink.messages) >= 2, timeout=30))
        bounce = self.sink.messages[1]
        self.assertEqual((bounce.sender, bounce.rcpts), ("", [AUTHOR]))
        self.assertIn(b"Undelivered Mail", bounce.data)
        # an automatic reply with a sender, the address lower-cased on the way: the same, with
        # its own sender rewritten
        self.send("robot@remote.test", srs.lower(), "Subject: Auto-reply\r\n\r\naway\r\n")
        self.assertTrue(self.sink.wait_for(lambda: len(self.sink.messages) >= 3, timeout=30))
        reply = self.sink.messages[2]
        self.assertEqual(reply.rcpts, [AUTHOR])
        self.assertRegex(reply.sender, r"^SRS0=\w{6}=\w{2}=remote\.test=robot@example\.test$")
        self.wait_queue_empty()
        logs = "\n".join(self.site.syslog.lines())
        self.assertNotIn("sender not rewritten", logs)

    def test_forged_and_damaged_are_refused(self):
        srs = self.forward_one()
        self.wait_queue_empty()
        at = srs.index("=", 5)  # the hash is srs[5:at]
        forged = srs[:5] + ("B" if srs[5] == "A" else "A") + srs[6:]
        other = re.sub(r"=origin\.test=author@", "=victim.test=author@", srs)
        c = self.smtp()
        self.assertEqual(c.docmd("MAIL", "FROM:<>")[0], 250)
        for rcpt, code, what in ((forged, "550 5.7.1", "bad hash"),
                                 (other, "550 5.7.1", "bad hash"),
                                 (srs[:at] + "=ZZ@example.test", "550 5.1.1", "malformed")):
            with self.subTest(rcpt=rcpt):
                got = c.docmd("RCPT", f"TO:<{rcpt}>")
                self.assertEqual(f"{got[0]} {got[1].decode()[:5]}", code, got)
                self.assertIn(what, got[1].decode())
        self.assertEqual(c.docmd("DATA")[0], 554)
        c.quit()
        time.sleep(0.5)
        self.assertEqual(self.queue_entries(), [])
        self.assertEqual(len(self.sink.messages), 1, "nothing but the first forward went out")

    def test_refused_forward_bounces_to_the_author(self):
        self.sink.rcpt_reply = lambda host, rcpt: (
            "550 5.1.1 no such user" if rcpt.lower() == FRIEND else None)
        self.send(AUTHOR, "mixed@example.test", "Subject: to nobody\r\n\r\nhello\r\n")
        self.assertTrue(self.sink.wait_for(lambda: len(self.sink.messages) >= 1, timeout=30))
        bounce = self.sink.messages[0]
        self.assertEqual((bounce.sender, bounce.rcpts), ("", [AUTHOR]),
                         "queue-run's bounce goes to the author, not to the SRS address")
        self.assertIn(f"rfc822; {FRIEND}".encode(), bounce.data)
        self.assertIn(b"Subject: to nobody", bounce.data)
        self.wait_queue_empty()
        self.assertEqual(len(self.site.messages(DEMO)), 1, "no bounce for the postmaster")


class Tool(unittest.TestCase):
    def setUp(self):
        self.site = yubintest.Instance(users=(DEMO,))

    def tearDown(self):
        self.site.stop()

    def srs(self, *args):
        return subprocess.run([yubintest.program("yubin-srs"), "-C", self.site.conf, *args],
                              capture_output=True, text=True, timeout=30)

    def test_newkey_forward_reverse(self):
        p = self.srs("forward", AUTHOR)
        self.assertEqual(p.returncode, 0, p.stderr)
        before = p.stdout.strip()
        self.assertRegex(before, "^" + SRS_RE + "$")
        self.assertEqual(self.srs("forward", DEMO).stdout.strip(), DEMO, "a local sender")
        p = self.srs("newkey")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1 older one still verifies", p.stdout)
        with open(self.site.srs_secret_file) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 3, "a comment, the new secret, the old one")
        self.assertTrue(lines[0].startswith("#"))
        self.assertEqual(len(lines[1]), 44, "32 random bytes in base64")
        self.assertEqual(lines[2], yubintest.SRS_TEST_SECRET)
        self.assertNotIn(lines[1], p.stdout + p.stderr, "the secret is never printed")
        st = os.stat(self.site.srs_secret_file)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640 if os.geteuid() == 0 else 0o600)
        if os.geteuid() == 0:
            self.assertEqual((st.st_uid, st.st_gid), (0, self.site.gid))
        after = self.srs("forward", AUTHOR).stdout.strip()
        self.assertRegex(after, "^" + SRS_RE + "$")
        self.assertNotEqual(after, before, "signed with the new secret")
        for address in (before, after, before.lower()):
            p = self.srs("reverse", address)
            self.assertEqual((p.returncode, p.stdout.strip().lower()), (0, AUTHOR), p.stderr)
        forged = before[:5] + ("B" if before[5] == "A" else "A") + before[6:]
        p = self.srs("reverse", forged)
        self.assertEqual(p.returncode, 67)
        self.assertIn("550 5.7.1", p.stderr)
        self.assertEqual(self.srs("reverse", DEMO).returncode, 65, "not an SRS address")
        # the handlers take the new file: smtp-in accepts a bounce to the old address
        port = self.site.serve_inetd("smtp-in")
        with smtplib.SMTP("127.0.0.1", port, local_hostname="outsider.test", timeout=30) as c:
            c.ehlo()
            self.assertEqual(c.docmd("MAIL", "FROM:<>")[0], 250)
            self.assertEqual(c.docmd("RCPT", f"TO:<{before}>")[0], 250)
            self.assertEqual(c.docmd("RCPT", f"TO:<{forged}>")[0], 550)


if __name__ == "__main__":
    unittest.main()
