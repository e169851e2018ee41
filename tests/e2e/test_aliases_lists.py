"""test_aliases_lists: aliases and mailing lists with local and remote members, end to end.

Site A (example.test, smtp-in under openbsd-inetd on 127.0.0.1, relay_networks elsewhere so
the client is an outsider) has a list team@ with a local member, a remote member and a remote
member that does not exist, and an owner (owner-team@ -> carol). Site B (yubin2.test) is a
second yubin instance under inetd on 127.0.0.38, found through a real DNS server (dnsmasq,
yubin2.test MX). smtp-in queues the remote members and starts queue-run itself; the copies
arrive in B with the owner as envelope sender (a plain forward with an SRS sender), headers
untouched, and B's 550 for the unknown member comes back as a bounce to the owner, not to
the author. A message for a local and a
remote recipient is written once: while the queue holds it, the Maildir file and the queue
entry's data are the same inode. A local delivery that fails for now is queued and retried.
Only loopback addresses are used.
"""
import email
import email.policy
import os
import smtplib
import subprocess
import time
import unittest

import yubintest
from dnsserver import DNSServer

B_HOST = "127.0.0.38"
DEMO, ALICE, CAROL = "demo@example.test", "alice@example.test", "carol@example.test"
BOB = "bob@yubin2.test"
ALIASES = {
    "postmaster@example.test": [DEMO],
    "team@example.test": ["alice", BOB, "nobody@yubin2.test"],
    "owner-team@example.test": ["carol"],
    "fwd@example.test": [BOB],
}


def wait_until(cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def body_after_trace(data):
    """The message without the Return-Path and Received lines a site put on top."""
    lines = data.split(b"\n")
    i = 0
    while i < len(lines) and (lines[i].startswith((b"Return-Path:", b"Received:"))
                              or lines[i][:1] in (b"\t", b" ")):
        i += 1
    return b"\n".join(lines[i:])


class AliasesLists(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = yubintest.Instance(domains=("yubin2.test",), users=(BOB,),
                                   hostname="mx.yubin2.test")
        cls.b_port = cls.b.serve_inetd("smtp-in", host=B_HOST)
        cls.dns = DNSServer()
        cls.dns.start(["yubin2.test MX 10 mx.yubin2.test", f"mx.yubin2.test A {B_HOST}"])

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.b.stop()

    def setUp(self):
        self.a = yubintest.Instance(
            users=(DEMO, ALICE, CAROL), aliases=ALIASES,
            conf={"dns_resolver": self.dns.resolver, "smtp_port": str(self.b_port),
                  "connect_timeout": "5", "relay_networks": "192.0.2.0/24"})
        self.port = self.a.serve_inetd("smtp-in")
        for address in (BOB,):
            for name in self.b.message_names(address):
                os.unlink(os.path.join(self.b.maildir(address), "new", name))

    def tearDown(self):
        self.a.stop()

    # -- helpers --------------------------------------------------------------------------
    def send(self, sender, rcpts, subject, to_header):
        data = (f"From: {sender}\r\nTo: {to_header}\r\nSubject: {subject}\r\n"
                f"Message-ID: <{subject.replace(' ', '.')}.{time.time_ns()}@example.test>\r\n"
                f"Date: Mon, 23 Nov 2026 03:00:00 +0000\r\n\r\nHello list.\r\n").encode()
        with smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.test", timeout=30) as c:
            self.assertEqual(c.sendmail(sender, rcpts, data), {})
        return data.replace(b"\r\n", b"\n")

    def qdir(self):
        return os.path.join(self.a.state_dir, "queue")

    def entries(self):
        d = self.qdir()
        return sorted(n[:-4] for n in os.listdir(d) if n.endswith(".env")) if os.path.isdir(
            d) else []

    def env(self, qid):
        out = {"rcpts": []}
        with open(os.path.join(self.qdir(), qid + ".env")) as f:
            for line in f.read().splitlines():
                key, _, rest = line.partition(" ")
                if key == "rcpt":
                    state, attempts, _nxt, addr = rest.split(" ", 4)[:4]
                    out["rcpts"].append((addr, state, int(attempts)))
                else:
                    out[key] = rest
        return out

    def run_queue(self, *args):
        p = subprocess.run([yubintest.program("queue-run"), "-C", self.a.conf, "-v", *args],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        return p.stderr.decode(errors="replace")

    def maildir_file(self, address):
        names = self.a.message_names(address)
        self.assertEqual(len(names), 1, address)
        return os.path.join(self.a.maildir(address), "new", names[0])

    def dead_remote(self):
        """Points site A at a port where nothing listens, so the queue keeps its entries."""
        self.a.settings["smtp_port"] = str(yubintest.free_port(B_HOST))
        self.a.write_conf()

    def live_remote(self):
        self.a.settings["smtp_port"] = str(self.b_port)
        self.a.write_conf()

    def wait_attempted(self):
        """Waits for the queue-run that smtp-in started to have tried every entry once."""
        self.assertTrue(wait_until(lambda: self.entries() and all(
            r[2] >= 1 for q in self.entries() for r in self.env(q)["rcpts"])), self.entries())

    # -- tests ----------------------------------------------------------------------------
    def test_list_fanout_with_owner_and_bounce_to_owner(self):
        sent = self.send(DEMO, ["team@example.test"], "list fanout", "team@example.test")
        got = self.a.messages(ALICE)
        self.assertEqual(len(got), 1, "the local member has it at once")
        self.assertTrue(got[0].startswith(b"Return-Path: <owner-team@example.test>\n"), got[0])
        self.assertEqual(body_after_trace(got[0]), sent, "headers not rewritten")
        self.assertTrue(wait_until(lambda: self.b.messages(BOB)), "the remote member, via MX")
        remote = self.b.messages(BOB)[0]
        self.assertTrue(remote.startswith(b"Return-Path: <owner-team@example.test>\n"), remote)
        self.assertEqual(body_after_trace(remote), sent, "the same bytes at site B")
        self.assertIn(b"by mx.example.test (yubin)", remote)
        # nobody@yubin2.test: B refuses it, the bounce goes to the owner (carol), not the author
        self.assertTrue(wait_until(lambda: self.a.messages(CAROL)), "bounce to the owner")
        report = email.message_from_bytes(self.a.messages(CAROL)[0], policy=email.policy.compat32)
        self.assertEqual(report.get_content_type(), "multipart/report")
        self.assertEqual(report["Return-Path"], "<>")
        self.assertIn("rfc822; nobody@yubin2.test", str(report))
        self.assertIn("5.1.1", str(report))
        self.assertIn("Subject: list fanout", str(report))
        self.assertEqual(self.a.messages(DEMO), [], "the author gets no bounce")
        self.assertTrue(wait_until(lambda: self.entries() == []))

    def test_plain_alias_to_remote_gets_an_srs_sender(self):
        sent = self.send("someone@elsewhere.test", ["fwd@example.test"], "forwarded",
                         "fwd@example.test")
        self.assertTrue(wait_until(lambda: self.b.messages(BOB)))
        remote = self.b.messages(BOB)[0]
        self.assertRegex(remote, rb"^Return-Path: <SRS0=[A-Z2-7]{6}=[A-Z2-7]{2}="
                         rb"elsewhere\.test=someone@example\.test>\n", "SRS, yubin.conf(5)")
        self.assertEqual(body_after_trace(remote), sent)

    def test_local_and_remote_written_once(self):
        self.a.settings["relay_networks"] = "127.0.0.0/8"  # this client may relay now
        self.dead_remote()
        self.send(DEMO, [ALICE, BOB], "written once", f"{ALICE}, {BOB}")
        self.wait_attempted()
        [qid] = self.entries()
        env = self.env(qid)
        self.assertEqual(env["sender"], DEMO)
        self.assertEqual([(r[0], r[1]) for r in env["rcpts"]], [(BOB, "pending")])
        local = os.stat(self.maildir_file(ALICE))
        queued = os.stat(os.path.join(self.qdir(), qid + ".msg"))
        self.assertEqual(local.st_ino, queued.st_ino, "one file: Maildir link and queue link")
        self.assertEqual(local.st_nlink, 2)
        self.assertEqual(os.listdir(os.path.join(self.a.state_dir, "tmp")), [])
        self.live_remote()
        self.run_queue("-f")
        self.assertEqual(len(self.b.messages(BOB)), 1)
        self.assertEqual(self.entries(), [])
        self.assertEqual(os.stat(self.maildir_file(ALICE)).st_nlink, 1)

    def test_list_copy_with_owner_is_written_separately(self):
        self.dead_remote()
        self.send(DEMO, ["team@example.test", DEMO], "two senders", "team@example.test")
        self.wait_attempted()
        [qid] = self.entries()
        env = self.env(qid)
        self.assertEqual(env["sender"], "owner-team@example.test")
        self.assertEqual(sorted(r[0] for r in env["rcpts"]), [BOB, "nobody@yubin2.test"])
        demo, alice = self.maildir_file(DEMO), self.maildir_file(ALICE)
        with open(demo, "rb") as f:
            self.assertTrue(f.read().startswith(b"Return-Path: <demo@example.test>\n"))
        with open(alice, "rb") as f:
            self.assertTrue(f.read().startswith(b"Return-Path: <owner-team@example.test>\n"))
        queued = os.stat(os.path.join(self.qdir(), qid + ".msg"))
        self.assertEqual(os.stat(alice).st_ino, queued.st_ino, "the list's copy is shared")
        self.assertNotEqual(os.stat(demo).st_ino, queued.st_ino)
        self.live_remote()
        self.run_queue("-f")
        self.assertEqual(len(self.b.messages(BOB)), 1)
        self.assertTrue(self.b.messages(BOB)[0].startswith(
            b"Return-Path: <owner-team@example.test>\n"))
        self.assertEqual(len(self.a.messages(CAROL)), 1, "the owner's bounce for nobody@")

    def test_local_failure_is_queued_and_retried(self):
        self.a.add_message(ALICE, b"Subject: old\n\nold\n")
        new = os.path.join(self.a.maildir(ALICE), "new")
        os.chown(new, 0, 0)
        os.chmod(new, 0o700)
        try:
            self.send("someone@elsewhere.test", [ALICE, DEMO], "retry me", ALICE)
            self.assertEqual(len(self.a.messages(DEMO)), 1, "the other recipient is served")
            self.wait_attempted()
            [qid] = self.entries()
            env = self.env(qid)
            self.assertEqual(env["sender"], "someone@elsewhere.test")
            self.assertEqual([(r[0], r[1]) for r in env["rcpts"]], [(ALICE, "pending")])
            self.assertIn("queued for retry", "\n".join(self.a.syslog.lines()))
        finally:
            os.chown(new, self.a.uid, self.a.gid)
        self.run_queue("-f")
        self.assertEqual(self.entries(), [])
        msgs = self.a.messages(ALICE)
        self.assertEqual(len(msgs), 2)
        retried = [m for m in msgs if b"retry me" in m][0]
        self.assertTrue(retried.startswith(b"Return-Path: <someone@elsewhere.test>\n"))
        self.assertEqual(retried.count(b"Return-Path:"), 1)

    def test_retried_mailbox_is_not_expanded_again(self):
        """alice: alice, carol — carol's copy goes at once; alice's retry must not give carol
        a second one (the queued recipient is the mailbox, already expanded)."""
        self.a.write_aliases(dict(ALIASES, **{ALICE: ["alice", "carol"]}))
        self.a.add_message(ALICE, b"Subject: old\n\nold\n")
        new = os.path.join(self.a.maildir(ALICE), "new")
        os.chown(new, 0, 0)
        os.chmod(new, 0o700)
        try:
            self.send("someone@elsewhere.test", [ALICE], "keep a copy", ALICE)
            self.assertEqual(len(self.a.messages(CAROL)), 1, "carol's copy is stored at once")
            self.wait_attempted()
            [qid] = self.entries()
            self.assertEqual([(r[0], r[1]) for r in self.env(qid)["rcpts"]],
                             [(ALICE, "pending")])
        finally:
            os.chown(new, self.a.uid, self.a.gid)
        self.run_queue("-f")
        self.assertEqual(self.entries(), [])
        self.assertEqual(len(self.a.messages(ALICE)), 2, "the old message and the retried one")
        self.assertEqual(len(self.a.messages(CAROL)), 1, "carol got no second copy")


if __name__ == "__main__":
    unittest.main()
