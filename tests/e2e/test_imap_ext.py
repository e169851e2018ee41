"""IMAP extensions of imap4-in with Python's imaplib over a real socket (issue 10). BINARY
(RFC 3516): CAPABILITY lists it; APPEND takes a literal8 (~{n}, ~{n+}) and keeps its NUL
octets, which FETCH BINARY gives back; a NUL in a plain literal is BAD and nothing is stored;
IMAP4rev2 has BINARY built in. SEARCHRES (RFC 5182): SEARCH RETURN (SAVE) and "$" in FETCH,
STORE, COPY, MOVE, SEARCH and their UID forms, pipelined after the SEARCH, emptied by SELECT,
EXAMINE, UNSELECT and CLOSE and by a SEARCH with SAVE answered NO, shrunk by an EXPUNGE made
by another session. A SEARCH on flags, keywords or UIDs never stats nor opens a
message file (strace attached to the session
counts the file system calls of that one command, for a folder of 20 and of 400 messages:
none names a message, and there are as few for 400 as for 20).
Only 127.0.0.1 is contacted.
"""
import imaplib
import os
import re
import shutil
import unittest

import yubintest

DEMO = "demo@example.test"


class Session(unittest.TestCase):
    """A site with DEMO's mailbox served by openbsd-inetd; client() logs in and selects."""

    def setUp(self):
        self.inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(self.inst.stop)
        self.port = self.inst.serve_inetd("imap4-in")

    def client(self, folder="INBOX", readonly=False):
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=60)
        self.addCleanup(yubintest.imap_logout_quietly, c)
        self.assertEqual(c.login(DEMO, "demo")[0], "OK")
        if folder is not None:
            self.assertEqual(c.select(folder, readonly=readonly)[0], "OK")
        return c

    def ok(self, reply):
        self.assertEqual(reply[0], "OK", reply)
        return reply[1]

    def raw(self, c, command, literal=None, sync=True):
        """One command imaplib cannot form (a literal8), sent on imaplib's own connection:
        command ends in the literal's announcement when literal is given. The lines the
        server answered, up to and including the tagged one."""
        tag = c._new_tag().decode()
        c.send(f"{tag} {command}\r\n".encode())
        if literal is not None:
            if sync:
                self.assertTrue(c.readline().startswith(b"+ "), "a continuation first")
            c.send(literal + b"\r\n")
        lines = []
        while not lines or not lines[-1].startswith(tag.encode() + b" "):
            lines.append(c.readline())
        return lines


# A binary part: every octet but CR and LF (the store keeps lines with LF ends, so line ends
# come back as CRLF; RFC 3516 §6), NULs among them.
BLOB = bytes(b for b in range(256) if b not in (10, 13)) * 4
BINARY_MSG = (b"From: ann@remote.test\r\nSubject: blob\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: application/octet-stream\r\n"
              b"Content-Transfer-Encoding: binary\r\n\r\n" + BLOB)


class Binary(Session):
    def test_capability(self):
        c = self.client(folder=None)
        self.assertIn("BINARY", c.capabilities)

    def test_append_literal8_keeps_nuls(self):
        c = self.client()
        for sync in (True, False):
            plus = "" if sync else "+"
            lines = self.raw(c, f"APPEND INBOX (\\Seen) ~{{{len(BINARY_MSG)}{plus}}}",
                             BINARY_MSG, sync)
            self.assertRegex(lines[-1], rb" OK \[APPENDUID \d+ \d+\] APPEND completed")
        self.ok(c.noop())
        stored = self.inst.messages(DEMO, "cur")
        self.assertEqual(len(stored), 2)
        self.assertEqual(stored[0], BINARY_MSG.replace(b"\r\n", b"\n"), "NULs stored as they are")
        data = self.ok(c.fetch("1:2", "(BINARY.SIZE[1] BINARY.PEEK[1])"))
        for i in (0, 2):
            self.assertIn(b"BINARY.SIZE[1] %d " % len(BLOB), data[i][0])
            self.assertTrue(data[i][0].endswith(b"BINARY[1] ~{%d}" % len(BLOB)), data[i][0])
            self.assertEqual(data[i][1], BLOB)
        body = self.ok(c.fetch("1", "(BODY.PEEK[1])"))[0][1]
        self.assertEqual(body, BLOB.replace(b"\0", b"\x80"), "BODY[] has no NUL (RFC 9051)")

    def test_nul_in_a_plain_literal_is_refused(self):
        c = self.client()
        with self.assertRaises(imaplib.IMAP4.error) as e:
            c.append("INBOX", None, None, b"Subject: nul\r\n\r\nA\0B\r\n")
        self.assertIn("NUL octet in a literal", str(e.exception))
        self.ok(c.noop())
        self.assertEqual(self.inst.messages(DEMO, "cur") + self.inst.messages(DEMO), [])
        self.assertEqual(self.ok(c.append("INBOX", None, None, b"Subject: ok\r\n\r\nfine\r\n"))
                         [0][:11], b"[APPENDUID ")

    def test_literal8_only_for_appends_message(self):
        c = self.client()
        lines = self.raw(c, "SEARCH SUBJECT ~{4}")
        self.assertRegex(lines[-1], rb" BAD literal8 \(~\{n\}\) is only for APPEND's message")
        lines = self.raw(c, "LOGOUT ~{4+}", b"blob", sync=False)  # read through, then dropped
        self.assertRegex(lines[-1], rb" BAD literal8")
        self.ok(c.noop())

    def test_imap4rev2_has_binary(self):
        c = self.client(folder=None)
        self.assertEqual(c.enable("IMAP4rev2")[0], "OK")
        self.assertIn(b"IMAP4rev2", c.untagged_responses.get("ENABLED", [b""])[0])
        lines = self.raw(c, f"APPEND INBOX ~{{{len(BINARY_MSG)}}}", BINARY_MSG)
        self.assertRegex(lines[-1], rb" OK \[APPENDUID ")
        self.ok(c.select("INBOX"))
        data = self.ok(c.fetch("1", "(BINARY.PEEK[1])"))
        self.assertEqual(data[0][1], BLOB)

    def test_unknown_cte(self):
        self.inst.add_message(DEMO, b"Subject: uu\nContent-Transfer-Encoding: x-uuencode\n\n"
                                    b"begin 644 x\n")
        c = self.client()
        for item in ("BINARY.PEEK[1]", "BINARY.SIZE[1]"):
            typ, data = c.fetch("1", f"({item})")
            self.assertEqual(typ, "NO", item)
            self.assertIn(b"[UNKNOWN-CTE]", data[0], item)
        self.assertEqual(self.ok(c.fetch("1", "(BODY.PEEK[1])"))[0][1], b"begin 644 x\r\n")


class SearchRes(Session):
    def setUp(self):
        super().setUp()
        for i in range(1, 7):  # UIDs 1..6: 2, 4, 6 are from "even"
            self.inst.add_message(DEMO, b"From: %s@remote.test\nSubject: n%d\n\nx\n" % (
                b"even" if i % 2 == 0 else b"odd", i))

    def saved(self, c):
        """The UIDs "$" names now."""
        data = self.ok(c.uid("SEARCH", "$"))
        return [int(u) for u in data[0].split()]

    def test_save_then_use(self):
        c = self.client()
        self.assertIn("SEARCHRES", c.capabilities)
        self.assertEqual(self.ok(c.search(None, "RETURN (SAVE) FROM even")), [None],
                         "SAVE alone: no untagged answer")
        self.assertEqual(self.saved(c), [2, 4, 6])
        data = self.ok(c.fetch("$", "(UID)"))
        self.assertEqual(data, [b"2 (UID 2)", b"4 (UID 4)", b"6 (UID 6)"])
        self.ok(c.uid("STORE", "$", "+FLAGS", "(\\Flagged)"))
        self.assertEqual(self.ok(c.search(None, "FLAGGED"))[0], b"2 4 6")
        self.ok(c.copy("$", "Archive"))
        self.assertIn(b"(MESSAGES 3)", self.ok(c.status("Archive", "(MESSAGES)"))[0])
        # MIN and MAX only: "$" is those two; a SEARCH using "$" while saving reads the old one
        self.ok(c.uid("SEARCH", "RETURN (MIN MAX SAVE) $"))
        self.assertEqual(self.saved(c), [2, 6])
        self.ok(c.uid("MOVE", "$", "Trash"))
        self.assertEqual(self.ok(c.search(None, "ALL"))[0], b"1 2 3 4")
        self.assertEqual(self.saved(c), [], "moved away: no longer in \"$\"")
        self.assertIn(b"(MESSAGES 2)", self.ok(c.status("Trash", "(MESSAGES)"))[0])

    def test_pipelined_after_the_search(self):
        c = self.client()
        c.send(b"p1 SEARCH RETURN (SAVE) SUBJECT n3\r\np2 FETCH $ (UID)\r\n"
               b"p3 UID STORE $ +FLAGS.SILENT (\\Seen)\r\n")
        lines = []
        while not lines or not lines[-1].startswith(b"p3 "):
            lines.append(c.readline())
        self.assertEqual(lines, [b"p1 OK SEARCH completed\r\n", b"* 3 FETCH (UID 3)\r\n",
                                 b"p2 OK FETCH completed\r\n", b"p3 OK STORE completed\r\n"])
        self.assertEqual(self.ok(c.search(None, "SEEN"))[0], b"3")

    def test_emptied(self):
        c = self.client()
        for reset in (lambda: c.select("INBOX"), lambda: c.select("INBOX", readonly=True),
                      lambda: (c.unselect(), c.select("INBOX")),
                      lambda: (c.close(), c.select("INBOX"))):
            self.ok(c.search(None, "RETURN (SAVE) ALL"))
            self.assertEqual(len(self.saved(c)), 6)
            reset()
            self.assertEqual(self.saved(c), [])
            self.assertEqual(self.ok(c.fetch("$", "(UID)")), [None], "an empty set: OK")
        self.ok(c.search(None, "RETURN (SAVE) ALL"))
        lines = self.raw(c, "SEARCH RETURN (SAVE) CHARSET KOI8-R FROM x")  # imaplib puts
        self.assertRegex(lines[-1], rb" NO \[BADCHARSET")  # CHARSET before RETURN
        self.assertEqual(self.saved(c), [], "a SEARCH with SAVE answered NO empties it")
        self.ok(c.search(None, "RETURN (SAVE) FROM odd"))
        with self.assertRaises(imaplib.IMAP4.error):
            c.search(None, "RETURN (SAVE) BLURDYBLOOP")
        self.assertEqual(self.saved(c), [1, 3, 5], "a BAD one leaves it")
        with self.assertRaises(imaplib.IMAP4.error):
            c.fetch("$,1", "(UID)")

    def test_expunge_by_another_session_shrinks_it(self):
        c = self.client()
        self.ok(c.search(None, "RETURN (SAVE) FROM even"))
        other = self.client()
        self.ok(other.store("2", "+FLAGS.SILENT", "(\\Deleted)"))
        self.ok(other.expunge())
        other.logout()
        self.ok(c.noop())
        self.assertEqual(self.saved(c), [4, 6])
        self.assertEqual(self.ok(c.fetch("$", "(UID)")), [b"3 (UID 4)", b"5 (UID 6)"])


@unittest.skipUnless(shutil.which("strace") and os.geteuid() == 0,
                     "needs strace and root (to trace the handler after it dropped privileges)")
class SearchWithoutFiles(Session):
    """SEARCH on flags, keywords and UIDs answers from the index: no stat (INTERNALDATE) and no
    open of a message, whatever the folder's size."""

    QUERIES = [("SEARCH", "UNSEEN"), ("SEARCH", "DELETED"), ("SEARCH", "FLAGGED"),
               ("SEARCH", "KEYWORD $Junk"), ("SEARCH", "OR SEEN UNDELETED"),
               ("UID", "SEARCH UID 2:7"), ("UID", "SEARCH UID 3,9:* UNFLAGGED")]

    def traced(self, c, command, args):
        """The file system calls (strace's %file class) imap4-in makes while it answers one
        command, as strace lines."""
        pid = yubintest.only_child(self.inst.procs[-1].pid)
        log = os.path.join(self.inst.dir, "strace.log")

        def act():
            if command == "UID":
                verb, rest = args.split(" ", 1)
                self.ok(c.uid(verb, rest))
            else:
                self.ok(c.search(None, args))
            c.noop()  # the read of this NOOP ends the SEARCH's part of the log
        lines = yubintest.strace_lines(pid, log, act)
        start = next(i for i, l in enumerate(lines) if l.startswith("read(") and "SEARCH" in l)
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("read("))
        return [l for l in lines[start + 1:end] if not l.startswith("read(")]

    def measure(self):
        c = self.client()
        counts = {}
        for command, args in self.QUERIES:
            calls = self.traced(c, command, args)
            on_messages = [l for l in calls if re.search(r",S=\d+", l)]
            self.assertEqual(on_messages, [], f"{command} {args} touched message files")
            counts[(command, args)] = len(calls)
        c.logout()
        return counts

    def test_flag_and_uid_searches_touch_no_message_file(self):
        for i in range(20):
            self.inst.add_message(DEMO, yubintest.numbered_message(i),
                                  sub="cur" if i % 3 else "new")
        small = self.measure()
        for i in range(20, 400):
            self.inst.add_message(DEMO, yubintest.numbered_message(i), sub="cur")
        big = self.measure()
        # What is left is the refresh of the folder (its directories, the index and its lock),
        # a few calls whatever the size; more when the directory changed within the second.
        for counts in (small, big):
            for query, n in counts.items():
                self.assertLessEqual(n, 10, f"{query}: {n} file system calls")


if __name__ == "__main__":
    unittest.main()
