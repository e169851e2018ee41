"""IMAP extensions of imap4-in with Python's imaplib over a real socket (issue 10): a SEARCH on
flags, keywords or UIDs never stats nor opens a message file (strace attached to the session
counts the file system calls of that one command, for a folder of 20 and of 400 messages:
none names a message, and there are as few for 400 as for 20).
Only 127.0.0.1 is contacted.
"""
import imaplib
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

import yubintest

DEMO = "demo@example.test"


def message(i):
    return (b"From: sender%d@remote.test\nTo: demo@example.test\nSubject: number %d\n\n"
            b"body %d\n" % (i, i, i))


def quietly_logout(c):
    try:
        c.logout()
    except (OSError, imaplib.IMAP4.error):
        pass


class Session(unittest.TestCase):
    """A site with DEMO's mailbox served by openbsd-inetd; client() logs in and selects."""

    def setUp(self):
        self.inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(self.inst.stop)
        self.port = self.inst.serve_inetd("imap4-in")

    def client(self, folder="INBOX", readonly=False):
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=60)
        self.addCleanup(quietly_logout, c)
        self.assertEqual(c.login(DEMO, "demo")[0], "OK")
        if folder is not None:
            self.assertEqual(c.select(folder, readonly=readonly)[0], "OK")
        return c

    def ok(self, reply):
        self.assertEqual(reply[0], "OK", reply)
        return reply[1]


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
        pid = self.handler_pid()
        log = os.path.join(self.inst.dir, "strace.log")
        st = subprocess.Popen(["strace", "-p", str(pid), "-o", log, "-s", "100",
                               "-e", "trace=%file,read"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        try:
            self.assertIn("attached", st.stderr.readline())
            if command == "UID":
                verb, rest = args.split(" ", 1)
                self.ok(c.uid(verb, rest))
            else:
                self.ok(c.search(None, args))
            c.noop()  # the read of this NOOP ends the SEARCH's part of the log
            deadline = time.monotonic() + 30
            while b"NOOP" not in self.read(log):
                self.assertLess(time.monotonic(), deadline, "strace wrote no more")
                time.sleep(0.05)
        finally:
            st.send_signal(signal.SIGINT)
            st.communicate(timeout=30)
        lines = self.read(log).decode("utf-8", "replace").splitlines()
        start = next(i for i, l in enumerate(lines) if l.startswith("read(") and "SEARCH" in l)
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("read("))
        return [l for l in lines[start + 1:end] if not l.startswith("read(")]

    def handler_pid(self):
        inetd = self.inst.procs[-1].pid
        pids = yubintest.children(inetd)
        self.assertEqual(len(pids), 1, pids)
        return pids[0]

    @staticmethod
    def read(path):
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

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
            self.inst.add_message(DEMO, message(i), sub="cur" if i % 3 else "new")
        small = self.measure()
        for i in range(20, 400):
            self.inst.add_message(DEMO, message(i), sub="cur")
        big = self.measure()
        # What is left is the refresh of the folder (its directories, the index and its lock),
        # a few calls whatever the size; more when the directory changed within the second.
        for counts in (small, big):
            for query, n in counts.items():
                self.assertLessEqual(n, 10, f"{query}: {n} file system calls")


if __name__ == "__main__":
    unittest.main()
