"""CONDSTORE (RFC 7162) in imap4-in with Python's imaplib over a real socket (issue 10):
CAPABILITY and ENABLE CONDSTORE; SELECT/EXAMINE (CONDSTORE) and [HIGHESTMODSEQ n] on every
SELECT; STATUS HIGHESTMODSEQ; FETCH MODSEQ and (CHANGEDSINCE n); STORE's untagged FETCH with
UID and MODSEQ once CONDSTORE is enabled (also after .SILENT), STORE (UNCHANGEDSINCE n) with
[MODIFIED set] (sequence numbers, UIDs for UID STORE), tested under the index lock after a
refresh so that another session's change and a rename behind the index's back (mutt) both
fail it; SEARCH MODSEQ with its "(MODSEQ n)" and ESEARCH's MODSEQ; \\Seen set by FETCH
BODY[] with the new MODSEQ; two sessions seeing each other's MODSEQs; APPEND and EXPUNGE
raising HIGHESTMODSEQ; bad mod-sequences BAD; NOMODSEQ never. And a real client that uses
CONDSTORE: neomutt with imap_condstore and a header cache, driven under tmux, resyncs a flag
changed by another client while it was away with UID FETCH (CHANGEDSINCE n) (seen in the
session's transcript), and with imap_qresync drops a message expunged meanwhile from its
VANISHED (EARLIER). QRESYNC (RFC 7162 §3.2): ENABLE QRESYNC, VANISHED instead of EXPUNGE
(EXPUNGE, MOVE, UID EXPUNGE, another session's), SELECT/EXAMINE (QRESYNC (...)) with VANISHED
(EARLIER) and the changed messages, UID FETCH (CHANGEDSINCE n VANISHED), [CLOSED], and their
BAD cases. Only 127.0.0.1 is contacted.
"""
import glob
import imaplib
import os
import re
import tempfile
import shutil
import time
import unittest

import yubintest

DEMO = "demo@example.test"
BIG = 2 ** 63  # one past the largest mod-sequence


class Folder(unittest.TestCase):
    """DEMO's INBOX of four messages under openbsd-inetd, and the helpers."""

    def setUp(self):
        self.inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(self.inst.stop)
        for i in range(1, 5):
            self.inst.add_message(DEMO, yubintest.numbered_message(i))
        self.port = self.inst.serve_inetd("imap4-in")

    def client(self, select="INBOX", enable=False):
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=60)
        self.addCleanup(yubintest.imap_logout_quietly, c)
        self.assertEqual(c.login(DEMO, "demo")[0], "OK")
        if enable:
            self.cmd(c, "ENABLE CONDSTORE")
        if select is not None:
            self.cmd(c, "SELECT " + select)
        return c

    def raw(self, c, command):
        """The lines (str, CRLF cut) the server answers to command, the tagged one last;
        \\Recent left out of flag lists (the first session to see the messages has it)."""
        tag = c._new_tag().decode()
        c.send(f"{tag} {command}\r\n".encode())
        lines = []
        while not lines or not lines[-1].startswith(tag + " "):
            line = c.readline().decode().rstrip("\r\n")
            lines.append(line.replace("\\Recent ", "").replace("(\\Recent)", "()"))
        for line in lines:
            self.assertNotIn("NOMODSEQ", line)
        return lines

    def cmd(self, c, command, status="OK"):
        lines = self.raw(c, command)
        self.assertEqual(lines[-1].split(" ")[1], status, (command, lines))
        return lines

    @staticmethod
    def highest(lines):
        got = [int(m.group(1)) for line in lines
               for m in [re.search(r"\[HIGHESTMODSEQ (\d+)\]", line)] if m]
        assert len(got) == 1, lines
        return got[0]

    @staticmethod
    def modseqs(lines):
        """{uid: modseq} of the untagged FETCH lines that carry both."""
        out = {}
        for line in lines:
            m = re.match(r"\* \d+ FETCH \(.*UID (\d+).*MODSEQ \((\d+)\)", line)
            m = m or re.match(r"\* \d+ FETCH \(.*MODSEQ \((\d+)\).*UID (\d+)", line)
            if m and line.index("UID") < line.index("MODSEQ"):
                out[int(m.group(1))] = int(m.group(2))
            elif m:
                out[int(m.group(2))] = int(m.group(1))
        return out

    def modseq_now(self, c):
        return self.modseqs(self.cmd(c, "UID FETCH 1:* (MODSEQ)"))

    def status_highest(self, c):
        lines = self.cmd(c, "STATUS INBOX (HIGHESTMODSEQ)")
        return int(re.search(r"HIGHESTMODSEQ (\d+)", lines[0]).group(1))



class Condstore(Folder):
    def test_capability_enable_select(self):
        c = self.client(select=None)
        self.assertIn("CONDSTORE", c.capabilities)
        self.assertEqual(self.cmd(c, "ENABLE CONDSTORE")[0], "* ENABLED CONDSTORE")
        self.assertEqual(self.cmd(c, "ENABLE CONDSTORE")[0], "* ENABLED", "once")
        h = self.highest(self.cmd(c, "SELECT INBOX (CONDSTORE)"))
        self.assertGreaterEqual(h, 1)
        self.assertEqual(self.highest(self.cmd(c, "EXAMINE INBOX (condstore)")), h)
        self.assertEqual(self.highest(self.cmd(c, "SELECT INBOX")), h, "on every SELECT")
        self.assertEqual(self.status_highest(c), h)
        self.cmd(c, "ENABLE CONDSTORE", "BAD")  # only in the authenticated state (RFC 5161)
        for bad in ("SELECT INBOX (QRESYNC (1 1))", "SELECT INBOX (FOO)", "SELECT INBOX ()",
                    "SELECT INBOX (CONDSTORE", "SELECT INBOX (CONDSTORE) x",
                    "STATUS INBOX (HIGHESTMODSEQS)", "ENABLE"):
            self.cmd(c, bad, "BAD")
        d = self.client(select=None)
        self.assertIn("[HIGHESTMODSEQ %d]" % h, " ".join(self.cmd(d, "SELECT INBOX")),
                      "also without CONDSTORE enabled")
        lines = self.cmd(d, "STORE 1 +FLAGS (\\Flagged)")
        self.assertEqual(lines[0], "* 1 FETCH (FLAGS (\\Flagged))", "no MODSEQ before enabling")
        self.cmd(d, "STATUS INBOX (HIGHESTMODSEQ)")  # CONDSTORE-enabling
        lines = self.cmd(d, "STORE 1 -FLAGS (\\Flagged)")
        self.assertRegex(lines[0], r"^\* 1 FETCH \(UID 1 MODSEQ \(\d+\) FLAGS \(\)\)$")

    def test_fetch_modseq_and_changedsince(self):
        c = self.client()
        h = self.highest(self.cmd(c, "SELECT INBOX (CONDSTORE)"))
        first = self.modseq_now(c)
        self.assertEqual(sorted(first), [1, 2, 3, 4])
        self.assertTrue(all(1 <= v <= h for v in first.values()), (first, h))
        self.assertEqual(self.cmd(c, "FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h)[:-1], [],
                         "nothing changed since HIGHESTMODSEQ")
        lines = self.cmd(c, "STORE 2 +FLAGS (\\Answered)")
        self.assertRegex(lines[0], r"^\* 2 FETCH \(UID 2 MODSEQ \(\d+\) FLAGS \(\\Answered\)\)$")
        new = self.modseqs(lines)[2]
        self.assertGreater(new, h)
        lines = self.cmd(c, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h)
        self.assertEqual(lines[:-1], ["* 2 FETCH (UID 2 MODSEQ (%d) FLAGS (\\Answered))" % new],
                         "only what changed, with its MODSEQ")
        self.assertEqual(len(self.cmd(c, "FETCH 1:* (UID) (CHANGEDSINCE 0)")), 5, "0: all")
        for bad in ("FETCH 1 (FLAGS) (CHANGEDSINCE x)", "FETCH 1 (FLAGS) (CHANGEDSINCE -1)",
                    "FETCH 1 (FLAGS) (CHANGEDSINCE %d)" % BIG, "FETCH 1 (FLAGS) (CHANGEDSINCE)",
                    "FETCH 1 (FLAGS) (VANISHED)", "FETCH 1 (FLAGS) (FOO 1)",
                    "FETCH 1 (FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 2)",
                    "FETCH 1 (FLAGS) CHANGEDSINCE 1", "FETCH 1 (MODSEQ) ()"):
            self.cmd(c, bad, "BAD")
        self.cmd(c, "FETCH 1 (FLAGS) (CHANGEDSINCE %d)" % (BIG - 1))
        lines = self.cmd(c, "STORE 2 +FLAGS (\\Answered)")
        self.assertEqual(self.modseqs(lines)[2], new, "a STORE that changes nothing: same MODSEQ")
        self.assertEqual(self.status_highest(c), new)
        lines = self.cmd(c, "STORE 3,4 +FLAGS.SILENT (\\Draft)")
        got = self.modseqs(lines)
        self.assertEqual(sorted(got), [3, 4], ".SILENT still tells the new MODSEQs: %s" % lines)
        self.assertEqual(got[3], got[4], "one STORE, one MODSEQ")
        self.assertGreater(got[3], new)
        self.assertNotIn("FLAGS", lines[0])
        lines = self.cmd(c, "STORE 3,4 +FLAGS.SILENT (\\Draft)")
        self.assertEqual(lines[:-1], [], "nothing changed: nothing told")

    def test_fetch_body_sets_seen_with_modseq(self):
        c = self.client()
        h = self.highest(self.cmd(c, "SELECT INBOX (CONDSTORE)"))
        lines = self.cmd(c, "FETCH 1 (BODY[TEXT])")
        text = " ".join(lines)
        m = re.search(r"UID 1 MODSEQ \((\d+)\)", text)
        self.assertTrue(m, lines)
        self.assertGreater(int(m.group(1)), h)
        self.assertIn("FLAGS (\\Seen)", text)
        self.assertEqual(self.modseq_now(c)[1], int(m.group(1)))
        self.cmd(c, "EXAMINE INBOX")
        self.assertNotIn("MODSEQ", " ".join(self.cmd(c, "FETCH 2 (BODY[TEXT])")),
                         "EXAMINE: no \\Seen, no MODSEQ")

    def test_unchangedsince(self):
        a, b = self.client(enable=True), self.client()
        before = self.modseq_now(a)
        m1 = before[1]
        lines = self.cmd(b, "STORE 1 +FLAGS (\\Flagged)")  # b has not enabled CONDSTORE
        lines = self.cmd(a, "STORE 1,2 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % max(before.values()))
        self.assertRegex(lines[-1], r"OK \[MODIFIED 1\]", lines)
        self.assertIn("FLAGS (\\Seen)", " ".join(l for l in lines if l.startswith("* 2 FETCH")))
        self.assertTrue([l for l in lines if l.startswith("* 1 FETCH") and "\\Flagged" in l],
                        "b's change is told with its MODSEQ: %s" % lines)
        self.assertNotIn("\\Seen", " ".join(l for l in lines if l.startswith("* 1 FETCH")))
        now = self.modseq_now(a)
        self.assertGreater(now[1], m1)
        lines = self.cmd(a, "UID STORE 1:4 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Deleted)" % now[1])
        self.assertRegex(lines[-1], r"OK \[MODIFIED 2\]", "UID STORE: the UID; 2 changed after")
        lines = self.cmd(a, "UID STORE 1:4 (UNCHANGEDSINCE 0) -FLAGS (\\Deleted)")
        self.assertRegex(lines[-1], r"OK \[MODIFIED 1:4\]", "0 fails every message")
        self.assertEqual([l for l in lines if "FETCH" in l], [])
        lines = self.cmd(a, "STORE 3 (unchangedsince %d) -FLAGS (\\Deleted)" % (BIG - 1))
        self.assertEqual(lines[-1].split(" ", 2)[2], "STORE completed")
        for bad in ("STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)",
                    "STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)",
                    "STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % BIG,
                    "STORE 1 (UNCHANGEDSINCE -2) +FLAGS (\\Seen)",
                    "STORE 1 (FOO 1) +FLAGS (\\Seen)", "STORE 1 (UNCHANGEDSINCE 1)",
                    "STORE 1 (UNCHANGEDSINCE 1)+FLAGS (\\Seen)"):
            self.cmd(a, bad, "BAD")
        self.cmd(a, "EXAMINE INBOX")
        self.cmd(a, "STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)", "NO")

    def test_modified_set_longer_than_a_line(self):
        """[MODIFIED set] names every message that failed, however long the set (it was cut
        to "internal error: reply too long" past 4096 octets)."""
        for i in range(5, 3001):
            self.inst.add_message(DEMO, yubintest.numbered_message(i))
        a, b = self.client(enable=True), self.client()
        since = self.status_highest(a)
        odd = list(range(1, 3001, 2))
        for k in range(0, len(odd), 250):
            self.cmd(b, "STORE %s +FLAGS.SILENT (\\Flagged)" % ",".join(map(str, odd[k:k + 250])))
        lines = self.cmd(a, "STORE 1:3000 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Seen)" % since)
        want = ",".join(map(str, odd))
        self.assertGreater(len(want), 4096)
        self.assertEqual(lines[-1].split(" ", 1)[1], "OK [MODIFIED %s] Conditional STORE failed"
                         % want)
        self.assertEqual(self.cmd(a, "SEARCH SEEN")[0], "* SEARCH " + " ".join(
            str(i) for i in range(2, 3001, 2)))

    def test_change_behind_the_back(self):
        c = self.client(enable=True)
        h = self.status_highest(c)
        m2 = self.modseq_now(c)[2]
        cur = os.path.join(self.inst.maildir(DEMO), "cur")
        name = sorted(os.listdir(cur))[1]
        base = name.split(":")[0]
        os.rename(os.path.join(cur, name), os.path.join(cur, base + ":2,F"))  # as mutt does
        lines = self.cmd(c, "NOOP")
        self.assertRegex(" ".join(lines), r"\* 2 FETCH \(UID 2 MODSEQ \((\d+)\) FLAGS \(\\Flagged\)\)")
        got = self.modseqs(lines)[2]
        self.assertGreater(got, h, "a new MODSEQ, above the HIGHESTMODSEQ before")
        lines = self.cmd(c, "STORE 2 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % m2)
        self.assertRegex(lines[-1], r"OK \[MODIFIED 2\]")
        # a rename the session has not refreshed yet fails the test too: it is refreshed under
        # the lock first
        os.rename(os.path.join(cur, base + ":2,F"), os.path.join(cur, base + ":2,FR"))
        lines = self.cmd(c, "STORE 2 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % got)
        self.assertRegex(lines[-1], r"OK \[MODIFIED 2\]", lines)
        self.assertIn("\\Answered", " ".join(lines), "the change is told")

    def test_two_sessions_search_status(self):
        a, b = self.client(enable=True), self.client(enable=True)
        h = self.status_highest(a)
        lines = self.cmd(b, "STORE 3 +FLAGS ($Work)")
        mb = self.modseqs(lines)[3]
        lines = self.cmd(a, "NOOP")
        self.assertIn("* 3 FETCH (UID 3 MODSEQ (%d) FLAGS ($Work))" % mb, lines)
        self.assertEqual(self.status_highest(a), mb)
        lines = self.cmd(a, "SEARCH MODSEQ %d" % (h + 1))
        self.assertEqual(lines[0], "* SEARCH 3 (MODSEQ %d)" % mb)
        lines = self.cmd(a, "UID SEARCH MODSEQ \"/flags/$work\" all %d" % mb)
        self.assertEqual(lines[0], "* SEARCH 3 (MODSEQ %d)" % mb)
        self.assertEqual(self.cmd(a, "SEARCH MODSEQ %d" % (mb + 1))[0], "* SEARCH", "no hit")
        lines = self.cmd(a, "SEARCH RETURN (MIN COUNT) MODSEQ 1")
        self.assertRegex(lines[0], r'^\* ESEARCH \(TAG "\w+"\) MIN 1 COUNT 4 MODSEQ %d$' % mb)
        lines = self.cmd(a, "UID SEARCH RETURN (MIN) MODSEQ 1")
        self.assertRegex(lines[0], r'^\* ESEARCH \(TAG "\w+"\) UID MIN 1 MODSEQ (\d+)$')
        self.assertEqual(int(lines[0].rsplit(" ", 1)[1]), self.modseq_now(a)[1],
                         "MIN alone: the MODSEQ of the message reported")
        self.assertEqual(self.cmd(a, "SEARCH SEEN")[0], "* SEARCH", "no MODSEQ key: no MODSEQ")
        for bad in ("SEARCH MODSEQ", "SEARCH MODSEQ x", "SEARCH MODSEQ %d" % BIG,
                    "SEARCH MODSEQ \"/flags/\\\\seen\" 5", "SEARCH MODSEQ \"/flags/\" all 5",
                    "SEARCH MODSEQ \"/x/y\" all 5", "SEARCH MODSEQ \"/flags/x\" mine 5"):
            self.cmd(a, bad, "BAD")
        c = self.client(select=None)
        self.assertEqual(c.append("INBOX", None, None, b"Subject: new\r\n\r\nx\r\n")[0], "OK")
        self.assertIn("* 5 EXISTS", self.cmd(a, "NOOP"))
        after_append = self.status_highest(a)
        self.assertGreater(after_append, mb, "APPEND raises HIGHESTMODSEQ")
        self.assertGreater(self.modseq_now(a)[5], mb)
        self.cmd(b, "STORE 4 +FLAGS.SILENT (\\Deleted)")
        self.cmd(b, "EXPUNGE")
        self.assertGreater(self.status_highest(a), after_append + 1, "EXPUNGE raises it too")


class Qresync(Folder):
    """QRESYNC (RFC 7162 §3.2): ENABLE QRESYNC, VANISHED instead of EXPUNGE, SELECT (QRESYNC
    (uidvalidity modseq [known-uids [seq-match]])) with VANISHED (EARLIER) and the changed
    messages' FETCH, UID FETCH (CHANGEDSINCE n VANISHED), [CLOSED]."""

    def qclient(self):
        c = self.client(select=None)
        self.assertEqual(self.cmd(c, "ENABLE QRESYNC")[0], "* ENABLED QRESYNC")
        return c

    def changes(self):
        """Before: (UIDVALIDITY, HIGHESTMODSEQ); then UID 2 is expunged and UID 3 flagged by
        another session."""
        b = self.client()
        lines = self.cmd(b, "SELECT INBOX")
        uv = int(re.search(r"UIDVALIDITY (\d+)", " ".join(lines)).group(1))
        h = self.highest(lines)
        self.cmd(b, "STORE 2 +FLAGS.SILENT (\\Deleted)")
        self.cmd(b, "EXPUNGE")
        self.cmd(b, "UID STORE 3 +FLAGS.SILENT (\\Flagged)")
        return uv, h

    def test_enable_and_vanished(self):
        c = self.client(select=None)
        self.assertIn("QRESYNC", c.capabilities)
        self.cmd(c, "SELECT INBOX (QRESYNC (1 1))", "BAD")  # not enabled
        self.assertEqual(self.cmd(c, "ENABLE QRESYNC")[0], "* ENABLED QRESYNC")
        self.assertEqual(self.cmd(c, "ENABLE CONDSTORE QRESYNC")[0], "* ENABLED", "implied, once")
        self.cmd(c, "SELECT INBOX")
        self.assertIn("* OK [CLOSED] the folder before is closed", self.cmd(c, "SELECT INBOX"))
        b = self.qclient()
        self.cmd(b, "SELECT INBOX")
        self.cmd(b, "STORE 2,3 +FLAGS.SILENT (\\Deleted)")
        lines = self.cmd(b, "EXPUNGE")
        self.assertEqual(lines[:-1], ["* VANISHED 2:3"], "VANISHED, not EXPUNGE")
        lines = self.cmd(c, "NOOP")
        self.assertEqual(lines[:-1], ["* VANISHED 2:3"])
        self.assertEqual(self.cmd(c, "FETCH 2 (UID)")[0], "* 2 FETCH (UID 4)", "renumbered")
        self.cmd(b, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(self.cmd(b, "MOVE 2 Archive")[1], "* VANISHED 4", "MOVE too")
        self.assertEqual(self.cmd(b, "UID EXPUNGE 1")[:-1], ["* VANISHED 1"])

    def test_select_qresync(self):
        uv, h = self.changes()
        c = self.qclient()
        lines = self.cmd(c, "SELECT INBOX (QRESYNC (%d %d))" % (uv, h))
        self.assertIn("* VANISHED (EARLIER) 2", lines)
        fetches = [l for l in lines if " FETCH " in l]
        self.assertEqual(len(fetches), 1, lines)
        self.assertRegex(fetches[0], r"^\* 2 FETCH \(UID 3 FLAGS \(\\Flagged\) MODSEQ \((\d+)\)\)$")
        self.assertLess(lines.index("* VANISHED (EARLIER) 2"), lines.index(fetches[0]))
        now = self.highest(lines)
        lines = self.cmd(c, "EXAMINE INBOX (QRESYNC (%d %d 1:3,5:4294967295 (1:2 1:2)))" % (uv, h))
        self.assertIn("* VANISHED (EARLIER) 2", lines)
        self.assertEqual(len([l for l in lines if " FETCH " in l]), 1)
        lines = self.cmd(c, "SELECT INBOX (QRESYNC (%d %d 4))" % (uv, h))
        self.assertEqual([l for l in lines if "VANISHED" in l or " FETCH " in l], [],
                         "only the known UIDs")
        lines = self.cmd(c, "SELECT INBOX (QRESYNC (%d %d))" % (uv + 1, h))
        self.assertEqual([l for l in lines if "VANISHED" in l or " FETCH " in l], [],
                         "another UIDVALIDITY: nothing (the client resyncs in full)")
        lines = self.cmd(c, "SELECT INBOX (QRESYNC (%d %d))" % (uv, now))
        self.assertEqual([l for l in lines if "VANISHED" in l or " FETCH " in l],
                         ["* VANISHED (EARLIER) 2"],
                         "nothing changed since: no FETCH; the index does not know when UID 2 "
                         "went, so it is told again")
        for bad in ("(QRESYNC (0 1))", "(QRESYNC (1))", "(QRESYNC (1 x))", "(QRESYNC 1 1)",
                    "(QRESYNC (1 0))", "(QRESYNC (1 1 1:x))", "(QRESYNC (1 1 1:3 (1:3)))",
                    "(QRESYNC (1 1) QRESYNC (1 1))", "(QRESYNC (1 %d))" % BIG):
            self.cmd(c, "SELECT INBOX " + bad, "BAD")
        self.assertEqual(self.highest(self.cmd(c, "SELECT INBOX (CONDSTORE QRESYNC (%d %d))"
                                               % (uv, h))), now)

    def test_uid_fetch_vanished(self):
        uv, h = self.changes()
        c = self.qclient()
        self.cmd(c, "SELECT INBOX")
        lines = self.cmd(c, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % h)
        self.assertEqual(lines[0], "* VANISHED (EARLIER) 2")
        self.assertRegex(lines[1], r"^\* 2 FETCH \(UID 3 MODSEQ \(\d+\) FLAGS \(\\Flagged\)\)$")
        self.assertEqual(len(lines), 3)
        lines = self.cmd(c, "UID FETCH 3:4 (FLAGS) (VANISHED CHANGEDSINCE %d)" % h)
        self.assertFalse([l for l in lines if "VANISHED" in l], "none in 3:4")
        lines = self.cmd(c, "UID FETCH 1:2 (FLAGS) (CHANGEDSINCE %d VANISHED)" % (BIG - 1))
        self.assertEqual(lines[:-1], ["* VANISHED (EARLIER) 2"], "whatever the mod-sequence")
        for bad in ("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
                    "UID FETCH 1:* (FLAGS) (VANISHED)",
                    "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED VANISHED)"):
            self.cmd(c, bad, "BAD")
        d = self.client()
        self.cmd(d, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)", "BAD")  # no QRESYNC


class NeomuttCondstore(unittest.TestCase):
    """neomutt 2022's imap_condstore: SELECT (CONDSTORE) (its CONDSTORE-enabling command), and
    with a header cache UID FETCH 1:* (FLAGS) (CHANGEDSINCE <the cached HIGHESTMODSEQ>) when it
    opens the folder again; with imap_qresync also ENABLE QRESYNC and (CHANGEDSINCE n
    VANISHED), whose VANISHED (EARLIER) drops a message expunged while it was away."""

    def setUp(self):
        self.inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(self.inst.stop)
        self.tdir = os.path.join(self.inst.dir, "transcripts")
        os.mkdir(self.tdir, 0o700)
        os.chown(self.tdir, self.inst.uid, self.inst.gid)
        for s in ("mutt first", "mutt second", "mutt third"):
            self.inst.add_message(DEMO, b"From: a@remote.test\nSubject: %s\n\nbody\n" % s.encode())
        self.port = self.inst.serve_inetd("imap4-in", "-X", self.tdir)
        self.tmp = tempfile.mkdtemp(prefix="yubin-condstore-mutt-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.term = yubintest.Tmux("condstore")
        self.addCleanup(self.term.stop)

    def neomutt(self, qresync=False):
        muttrc = os.path.join(self.tmp, "muttrc")
        with open(muttrc, "w", encoding="utf-8") as f:
            f.write(f"""
set folder="imap://{DEMO.replace('@', '%40')}@127.0.0.1:{self.port}/"
set imap_pass="demo"
set spoolfile="+INBOX"
set ssl_starttls=no
set ssl_force_tls=no
set imap_condstore=yes
set imap_qresync={"yes" if qresync else "no"}
set header_cache="{self.tmp}/hcache"
set message_cachedir=""
set record=""
set mark_old=no
set sort=date-sent
set mail_check=1
set timeout=1
set wait_key=no
set index_format="%4C %Z %s"
""")
        self.term.start(f"neomutt -n -F {muttrc}", dict(os.environ, HOME=self.tmp, TERM="xterm"))

    def quit_then_other(self):
        """neomutt quits (its LOGOUT in the transcript); another client selects INBOX."""
        self.term.keys("q")
        deadline = time.monotonic() + 30
        while "LOGOUT" not in self.transcripts() and time.monotonic() < deadline:
            time.sleep(0.2)
        other = imaplib.IMAP4("127.0.0.1", self.port, timeout=60)
        self.addCleanup(yubintest.imap_logout_quietly, other)
        other.login(DEMO, "demo")
        other.select("INBOX")
        return other

    def transcripts(self):
        text = ""
        for path in glob.glob(os.path.join(self.tdir, "*")):
            with open(path, encoding="utf-8", errors="replace") as f:
                text += f.read()
        return text

    def test_resync_with_changedsince(self):
        self.neomutt()
        screen = self.term.wait_for(self, r"mutt third")
        self.assertNotRegex(screen, r"!.*mutt second")
        other = self.quit_then_other()
        typ, data = other.search(None, "SUBJECT", '"mutt second"')
        self.assertEqual(other.store(data[0].decode(), "+FLAGS", "(\\Flagged)")[0], "OK")
        other.logout()
        self.term.stop()
        self.neomutt()
        self.term.wait_for(self, r"!.*mutt second")  # the flag is seen
        text = self.transcripts()
        self.assertRegex(text, r"SELECT \"?INBOX\"? \(CONDSTORE\)")
        self.assertRegex(text, r"\(CHANGEDSINCE \d+\)", "neomutt resynced by MODSEQ")
        self.assertRegex(text, r"FETCH \(UID \d+ MODSEQ \(\d+\) FLAGS \([^)]*\\Flagged")
        self.term.keys("q")

    def test_qresync_vanished(self):
        self.neomutt(qresync=True)
        self.term.wait_for(self, r"mutt third")
        other = self.quit_then_other()
        typ, data = other.search(None, "SUBJECT", '"mutt second"')
        other.store(data[0].decode(), "+FLAGS", "(\\Deleted)")
        other.expunge()
        typ, data = other.search(None, "SUBJECT", '"mutt third"')
        other.store(data[0].decode(), "+FLAGS", "(\\Flagged)")
        other.logout()
        self.term.stop()
        self.neomutt(qresync=True)
        screen = self.term.wait_for(self, r"!.*mutt third")
        self.assertNotIn("mutt second", screen, "the expunged message is gone")
        text = self.transcripts()
        self.assertIn("ENABLE QRESYNC", text)
        self.assertRegex(text, r"UID FETCH \S+ \(FLAGS\) \(CHANGEDSINCE \d+ VANISHED\)")
        self.assertIn("VANISHED (EARLIER) 2", text)
        self.term.keys("q")


if __name__ == "__main__":
    unittest.main()
