"""imap4-in's LOGIN, as the file system sees it (strace attached to the session, as root): the
first login makes the Maildir and its special folders; a later one only looks them up, eight
entries below the Maildir, no mkdir and no file created (each is a directory read when the page
cache is cold); a folder or a subdirectory removed behind its back is made again at the next
login. Only 127.0.0.1 is contacted.
"""
import imaplib
import os
import shutil
import time
import unittest

import yubintest

DEMO = "demo@example.test"
SPECIAL = ("Sent", "Drafts", "Trash", "Junk", "Archive")


@unittest.skipUnless(shutil.which("strace") and os.geteuid() == 0,
                     "needs strace and root (to trace the handler after it dropped privileges)")
class LoginFileCalls(unittest.TestCase):
    def setUp(self):
        self.inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(self.inst.stop)
        self.port = self.inst.serve_inetd("imap4-in")
        self.root = os.path.join(self.inst.state_dir, "mail", "example.test", "demo")

    def traced_login(self):
        """The file system calls (strace's %file class) of one LOGIN, from the client's line to
        the client's next (the NOOP), as strace lines; then the session logs out."""
        inetd = self.inst.procs[-1].pid
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=60)
        log = os.path.join(self.inst.dir, f"strace-{time.monotonic_ns()}.log")

        def act():
            self.assertEqual(c.login(DEMO, "demo")[0], "OK")
            c.noop()  # the read of this NOOP ends the LOGIN's part of the log
        lines = yubintest.strace_lines(yubintest.only_child(inetd), log, act)
        c.logout()
        deadline = time.monotonic() + 30
        while yubintest.children(inetd):  # the next login is the only session
            self.assertLess(time.monotonic(), deadline, "the session did not end")
            time.sleep(0.05)
        start = next(i for i, l in enumerate(lines) if l.startswith("read(0,") and "LOGIN" in l)
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("read(0,"))
        return [l for l in lines[start + 1:end] if not l.startswith("read(")]

    def assert_complete(self):
        for sub in ("tmp", "new", "cur"):
            self.assertTrue(os.path.isdir(os.path.join(self.root, sub)), sub)
        for name in SPECIAL:
            folder = os.path.join(self.root, "." + name)
            for sub in ("tmp", "new", "cur"):
                self.assertTrue(os.path.isdir(os.path.join(folder, sub)), (name, sub))
            self.assertTrue(os.path.isfile(os.path.join(folder, "maildirfolder")), name)

    def test_a_later_login_only_looks(self):
        first = self.traced_login()
        self.assertTrue(any(l.startswith("mkdir(") for l in first), first)
        self.assert_complete()
        later = self.traced_login()
        made = [l for l in later if l.startswith(("mkdir", "creat")) or "O_CREAT" in l]
        self.assertEqual(made, [], "\n".join(later))
        self.assertLessEqual(len(later), 12, "\n".join(later))

    def test_what_was_removed_is_made_again(self):
        self.traced_login()
        shutil.rmtree(os.path.join(self.root, ".Trash"))
        os.rmdir(os.path.join(self.root, "tmp"))
        again = self.traced_login()
        self.assertTrue(any(l.startswith("mkdir(") and ".Trash" in l for l in again), again)
        self.assert_complete()


if __name__ == "__main__":
    unittest.main()
