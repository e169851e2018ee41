"""test_mailbox: lib/mailbox's UID index (yubin-index(5)) under pop3-in and real clients:
UIDLs stable across sessions, after a delivery by smtp-in, and for a mailbox that had UIDLs
before the index existed; a message removed by another program no longer listed; a deleted
index rebuilt with a new UIDVALIDITY; the special folders made at the first login; and kill -9
at every point of an index rewrite leaving the old index or the new one, never a mix."""
import os
import poplib
import smtplib
import subprocess
import time
import unittest

import yubintest

TIMEOUT = 15
USER = "demo@example.test"


def read_index(md):
    """(uidvalidity, uidnext, {uid: name}) of a folder's index, or None if it is missing."""
    path = os.path.join(md, "yubin-index")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    assert lines[0] == "yubin-index 3", lines[:2]
    assert lines[-1] == "", "the index ends with a whole line"
    assert lines[5].startswith("highestmodseq "), lines[:6]
    v = int(lines[1].split()[1])
    n = int(lines[2].split()[1])
    entries = {}
    for line in lines[6:-1]:
        if line.startswith("= "):  # a flag change appended in place: its new name
            _eq, nxt, uid, _modseq, name = line.split(" ", 4)
            n = max(n, int(nxt))
            if int(uid) in entries:
                entries[int(uid)] = name
            continue
        uid, _size, _crlf, _modseq, name = line.split(" ", 4)
        entries[int(uid)] = name
    n = max([n] + [uid + 1 for uid in entries])  # lines appended in place
    return v, n, entries


class MailboxIndex(unittest.TestCase):
    def setUp(self):
        self.inst = yubintest.Instance()
        self.addCleanup(self.inst.stop)
        self.md = self.inst.maildir(USER)

    def pop(self, port):
        pop = poplib.POP3("127.0.0.1", port, timeout=TIMEOUT)
        pop.user(USER)
        pop.pass_("demo")
        return pop

    def uidls(self, port):
        pop = self.pop(port)
        got = [line.split()[1].decode() for line in pop.uidl()[1]]
        pop.quit()
        return got

    def tool(self, *env_extra, check=True):
        env = dict(os.environ, **dict(env_extra))
        p = subprocess.run([os.path.join(yubintest.BUILD, "tests", "unit", "mailbox-tool"),
                            self.md], capture_output=True, text=True, env=env, timeout=60,
                           preexec_fn=yubintest.as_user(yubintest.run_account()))
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def test_uidl_stable_and_smtp_delivery(self):
        names = [self.inst.add_message(USER, b"Subject: %d\n\nbody\n" % i) for i in range(3)]
        port = self.inst.serve_inetd("pop3-in")
        first = self.uidls(port)
        # the UIDLs a client kept from before the index: the unique part of each name
        self.assertEqual(first, [n.split(",")[0] for n in names])
        self.assertEqual(self.uidls(port), first, "the same in the next session")
        v, n, entries = read_index(self.md)
        self.assertEqual(sorted(entries), [1, 2, 3])
        smtp_port = self.inst.serve_inetd("smtp-in")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=TIMEOUT) as s:
            s.sendmail("sender@remote.test", [USER], b"Subject: via smtp-in\r\n\r\nhi\r\n")
        after = self.uidls(port)
        self.assertEqual(after[:3], first, "old UIDLs kept after a delivery")
        self.assertEqual(len(after), 4)
        v2, n2, entries2 = read_index(self.md)
        self.assertEqual((v2, n2, sorted(entries2)), (v, 5, [1, 2, 3, 4]))
        for d in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
            self.assertTrue(os.path.isdir(os.path.join(self.md, "." + d, "cur")), d)
        self.assertEqual(self.uidls(port), after)

    def test_removed_behind_its_back(self):
        for i in range(3):
            self.inst.add_message(USER, b"Subject: %d\n\nbody\n" % i)
        port = self.inst.serve_inetd("pop3-in")
        first = self.uidls(port)
        cur = os.path.join(self.md, "cur")
        victim = [n for n in os.listdir(cur) if n.startswith(first[1])][0]
        os.unlink(os.path.join(cur, victim))  # as mutt or Dovecot would
        self.assertEqual(self.uidls(port), [first[0], first[2]])
        pop = self.pop(port)
        self.assertEqual(pop.stat()[0], 2)
        pop.quit()
        self.assertEqual(sorted(read_index(self.md)[2]), [1, 3], "its UID is dropped")

    def test_index_deleted_is_rebuilt(self):
        for i in range(3):
            self.inst.add_message(USER, b"Subject: %d\n\nbody\n" % i)
        port = self.inst.serve_inetd("pop3-in")
        first = self.uidls(port)
        v = read_index(self.md)[0]
        os.unlink(os.path.join(self.md, "yubin-index"))
        time.sleep(1.1)  # UIDVALIDITY counts seconds
        self.assertEqual(self.uidls(port), first, "UIDLs do not depend on the index")
        v2, n2, entries = read_index(self.md)
        self.assertGreater(v2, v, "a new UIDVALIDITY")
        self.assertEqual((n2, sorted(entries)), (4, [1, 2, 3]))

    def test_kill9_during_rewrite(self):
        for i in range(20):
            self.inst.add_message(USER, b"Subject: %d\n\nbody\n" % i, sub="cur")
        self.tool()
        path = os.path.join(self.md, "yubin-index")
        cur = os.path.join(self.md, "cur")
        for step in range(0, 26):
            with open(path, encoding="utf-8") as f:
                old = f.read()
            name = self.inst.add_message(USER, b"Subject: new %d\n\nbody\n" % step, sub="cur")
            count = len(os.listdir(cur))
            # the steps of one rewrite: 0 the new file made, 1..count each entry written,
            # count+1 fsynced and closed, count+2 renamed (before the folder's fsync)
            point = min(step, count + 2) if step < 24 else count + 1 + (step - 24)
            p = self.tool(("YUBIN_TEST_INDEX_KILL", str(point)), check=False)
            self.assertEqual(p.returncode, -9, f"killed at step {point}")
            with open(path, encoding="utf-8") as f:
                now = f.read()
            if point <= count + 1:
                self.assertEqual(now, old, f"killed at {point} of {count}: the old index")
            else:
                self.assertIn(" " + name + "\n", now, f"killed after the rename: the new one")
            read_index(self.md)  # whole and parsable either way
            listed = self.tool().stdout.splitlines()
            v, n, entries = read_index(self.md)
            self.assertEqual(sorted(entries.values()), sorted(os.listdir(cur)),
                             f"after the kill at {point}: the index matches the files")
            self.assertEqual(len(listed) - 1, count)
            self.assertEqual(len(set(entries)), count, "every message once")

if __name__ == "__main__":
    unittest.main()
