"""test_mailbox_store: lib/mailbox under IMAP's writes, through tests/unit/mailbox-tool.
kill -9 at every step of APPEND, COPY, MOVE and EXPUNGE (YUBIN_TEST_STORE_KILL counts the
steps) leaves each folder either as it was or as the command makes it, never a mix, once the
folders are opened again; the index then matches the files and no journal is left. kill -9
during a flag change (STORE) leaves every renamed message with a MODSEQ above the old
HIGHESTMODSEQ (from its index line, or from the reconcile that finds the rename) and the
others as they were. And POP3
alongside an IMAP-like session on one mailbox: DELE+QUIT seen by the session's refresh as an
EXPUNGE, the session's flag change and a delivery seen by POP3, UIDLs stable, POP3's lock
still refusing a second POP3 session."""
import os
import poplib
import shutil
import subprocess
import tempfile
import unittest

import yubintest

TIMEOUT = 15
USER = "demo@example.test"
TOOL = os.path.join(yubintest.BUILD, "tests", "unit", "mailbox-tool")
BODIES = [b"Subject: %d\n\nbody %d\n" % (i, i) for i in range(5)]


def tool(*args, stdin=None, env=None, check=True):
    p = subprocess.run([TOOL, *args], input=stdin, capture_output=True, timeout=60,
                       env=dict(os.environ, **(env or {})))
    if check:
        assert p.returncode == 0, (args, p.returncode, p.stderr)
    return p


def make_maildir(path):
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)


def bodies(md):
    """The contents of a folder's messages after opening it (journal finished), sorted, and
    a check that its index lists exactly its files, each once."""
    listing = tool(md).stdout.decode().splitlines()
    cur = os.path.join(md, "cur")
    names = sorted(os.listdir(cur))
    assert sorted(line.split(" ", 3)[3] for line in listing[1:]) == names, (listing, names)
    assert not os.path.exists(os.path.join(md, "yubin-journal")), "the journal is finished"
    out = []
    for n in names:
        with open(os.path.join(cur, n), "rb") as f:
            out.append(f.read())
    return sorted(out)


class StoreKill(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="test-mailbox-store-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.template = os.path.join(self.dir, "template")
        self.src = os.path.join(self.template, "INBOX")
        make_maildir(self.src)
        make_maildir(os.path.join(self.template, "Dst"))
        for i, body in enumerate(BODIES):
            name = "17000000%02d.M%dR0.test,S=%d,W=%d:2,%s" % (
                i, i, len(body), len(body) + body.count(b"\n"), "T" if i % 2 == 0 else "S")
            with open(os.path.join(self.src, "cur", name), "wb") as f:
                f.write(body)
        tool(self.src)
        tool(os.path.join(self.template, "Dst"))

    def run_killed(self, args, old, new, stdin=None):
        """Runs the command killed at step 0, 1, ... until it completes; after each kill the
        folders (Dst first) are either old or new: {folder: sorted bodies}."""
        step = 0
        while True:
            work = os.path.join(self.dir, "w%d" % step)
            shutil.copytree(self.template, work, symlinks=True)
            argv = [a.replace("@", work) for a in args]
            p = tool(*argv, stdin=stdin, env={"YUBIN_TEST_STORE_KILL": str(step)}, check=False)
            got = {f: bodies(os.path.join(work, f)) for f in ("Dst", "INBOX")}
            if p.returncode == 0:
                self.assertEqual(got, new, "completed: the new state")
                shutil.rmtree(work)
                return step
            self.assertEqual(p.returncode, -9, p.stderr)
            self.assertIn(got, (old, new), f"{args[0]} killed at step {step}: old or new")
            shutil.rmtree(work)
            step += 1
            self.assertLess(step, 100)

    def test_kill_append(self):
        old = {"Dst": [], "INBOX": sorted(BODIES)}
        new = {"Dst": [b"Subject: new\n\nx\n"], "INBOX": sorted(BODIES)}
        steps = self.run_killed(["append", "@/Dst", "S", "0"], old, new,
                                stdin=b"Subject: new\r\n\r\nx\r\n")
        self.assertGreaterEqual(steps, 3)

    def test_kill_copy(self):
        old = {"Dst": [], "INBOX": sorted(BODIES)}
        new = {"Dst": sorted(BODIES[:3]), "INBOX": sorted(BODIES)}
        steps = self.run_killed(["copy", "@/INBOX", "@/Dst", "1", "2", "3"], old, new)
        self.assertGreaterEqual(steps, 8, "every link, the journal, each rename")

    def test_kill_move(self):
        old = {"Dst": [], "INBOX": sorted(BODIES)}
        new = {"Dst": sorted(BODIES[1:4]), "INBOX": sorted([BODIES[0], BODIES[4]])}
        steps = self.run_killed(["move", "@/INBOX", "@/Dst", "2", "3", "4"], old, new)
        self.assertGreaterEqual(steps, 11)

    def test_kill_expunge(self):
        old = {"Dst": [], "INBOX": sorted(BODIES)}
        new = {"Dst": [], "INBOX": sorted([BODIES[1], BODIES[3]])}
        steps = self.run_killed(["expunge", "@/INBOX"], old, new)
        self.assertGreaterEqual(steps, 5)


def modseqs(md):
    """(HIGHESTMODSEQ, {uid: (modseq, flag letters)}) of a folder as a session opens it."""
    lines = tool("modseq", md).stdout.decode().splitlines()
    out = {}
    for line in lines[1:]:
        uid, modseq, *flags = line.split(" ")
        out[int(uid)] = (int(modseq), "".join(flags))
    return int(lines[0].split()[1]), out


class FlagKill(unittest.TestCase):
    def test_kill_flag(self):
        d = tempfile.mkdtemp(prefix="test-mailbox-flag-")
        self.addCleanup(shutil.rmtree, d, True)
        template = os.path.join(d, "template")
        make_maildir(template)
        for i, body in enumerate(BODIES):
            name = "17000000%02d.M%dR0.test,S=%d,W=%d:2," % (i, i, len(body),
                                                            len(body) + body.count(b"\n"))
            with open(os.path.join(template, "cur", name), "wb") as f:
                f.write(body)
        high0, before = modseqs(template)
        self.assertEqual(sorted(before), [1, 2, 3, 4, 5])
        step = 0
        while True:
            work = os.path.join(d, "w%d" % step)
            shutil.copytree(template, work)
            p = tool("flag", work, "F", "2", "4", env={"YUBIN_TEST_STORE_KILL": str(step)},
                     check=False)
            self.assertEqual(bodies(work), sorted(BODIES), "no message lost or doubled")
            high, now = modseqs(work)
            for uid, (modseq, flags) in now.items():
                if "F" in flags:
                    self.assertIn(uid, (2, 4))
                    self.assertGreater(modseq, high0, f"killed at {step}: UID {uid} changed")
                else:
                    self.assertEqual((modseq, flags), before[uid], f"killed at {step}")
                self.assertLessEqual(modseq, high)
            shutil.rmtree(work)
            if p.returncode == 0:
                self.assertEqual(sorted(u for u, v in now.items() if "F" in v[1]), [2, 4])
                self.assertEqual(now[2][0], now[4][0], "one STORE, one modseq")
                break
            self.assertEqual(p.returncode, -9, p.stderr)
            step += 1
        self.assertGreaterEqual(step, 3, "each line, and before the fsync")


class PopAlongsideImap(unittest.TestCase):
    def setUp(self):
        self.inst = yubintest.Instance()
        self.addCleanup(self.inst.stop)
        self.md = self.inst.maildir(USER)
        for i in range(3):
            self.inst.add_message(USER, b"Subject: %d\n\nbody\n" % i)
        self.port = self.inst.serve_inetd("pop3-in")

    def pop(self):
        pop = poplib.POP3("127.0.0.1", self.port, timeout=TIMEOUT)
        pop.user(USER)
        pop.pass_("demo")
        return pop

    def session(self):
        p = subprocess.Popen([TOOL, "session", self.md], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True,
                             preexec_fn=yubintest.as_user(yubintest.run_account()))
        self.addCleanup(p.wait, 10)
        self.addCleanup(p.stdin.close)
        return p

    def ask(self, p, line):
        p.stdin.write(line + "\n")
        p.stdin.flush()
        out = []
        while True:
            got = p.stdout.readline()
            self.assertTrue(got, "the session ended")
            if got == ".\n":
                return out
            out.append(got.rstrip("\n"))

    def test_dele_while_imap_open(self):
        pop = self.pop()
        uidls = [line.split()[1] for line in pop.uidl()[1]]
        s = self.session()  # the IMAP-like session opens while POP3 holds its lock
        self.assertEqual(len(self.ask(s, "list")), 4)
        with self.assertRaises(poplib.error_proto) as e:
            self.pop()
        self.assertIn(b"IN-USE", e.exception.args[0], "POP3 still locks out POP3")
        self.assertEqual(self.ask(s, "store 2 +S"), ["store 0"], "IMAP flags message 2")
        pop.dele(1)
        self.assertTrue(pop.retr(2)[1], "POP3 reads the message IMAP renamed")
        pop.quit()
        self.assertEqual(self.ask(s, "refresh"), ["expunge 1 uid 1", "exists 2 added 0"],
                         "the POP3 DELE is an EXPUNGE for the session")
        self.inst.add_message(USER, b"Subject: late\n\nbody\n")
        self.assertEqual(self.ask(s, "refresh"), ["exists 3 added 1"], "a delivery: EXISTS")
        self.assertEqual(self.ask(s, "store 4 +T"), ["store 0"])
        self.assertEqual(self.ask(s, "expunge"), ["expunge 3 uid 4", "exists 2 added 0"])
        pop = self.pop()
        self.assertEqual([line.split()[1] for line in pop.uidl()[1]], uidls[1:],
                         "POP3: IMAP's expunge gone, UIDLs unchanged")
        pop.quit()
        listed = self.ask(s, "list")
        self.assertIn(":2,S", listed[1], "the flag IMAP set is on the file")
        self.assertEqual(self.ask(s, "refresh"), ["exists 2 added 0"], "nothing twice")


if __name__ == "__main__":
    unittest.main()
