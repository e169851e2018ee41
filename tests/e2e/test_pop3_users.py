"""test_pop3_users: yubin-user as an administrator runs it (with --stdin, and on a real
pseudo-terminal for the no-echo prompts and the question before mail is removed), checked
through the users file, the Maildir on disk and a real pop3-in login."""
import fcntl
import os
import poplib
import pty
import select
import stat
import subprocess
import termios
import time
import unittest

import yubintest

TIMEOUT = 15


def run(inst, *args, stdin=None):
    return subprocess.run([yubintest.program("yubin-user"), "-C", inst.conf, *args],
                          input=stdin, capture_output=True, text=True, timeout=60)


def pop_login(inst, user, password):
    """True if pop3-in (on pipes) accepts the login."""
    p = subprocess.run(inst.argv("pop3-in"), capture_output=True, timeout=30,
                       input=f"USER {user}\r\nPASS {password}\r\nQUIT\r\n".encode())
    lines = p.stdout.split(b"\r\n")
    return lines[2].startswith(b"+OK")


class OnTerminal:
    """yubin-user with a pseudo-terminal as its controlling terminal (/dev/tty)."""

    def __init__(self, inst, *args):
        self.master, slave = os.openpty()

        def make_ctty():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.p = subprocess.Popen([yubintest.program("yubin-user"), "-C", inst.conf, *args],
                                  stdin=slave, stdout=slave, stderr=slave,
                                  preexec_fn=make_ctty)
        os.close(slave)
        self.seen = b""

    def expect(self, text):
        deadline = time.monotonic() + TIMEOUT
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.master], [], [], left)[0]:
                raise AssertionError(f"no {text!r} in {self.seen!r}")
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"closed before {text!r}: {self.seen!r}")
            self.seen += chunk

    def send(self, line):
        os.write(self.master, line + b"\n")

    def finish(self):
        rc = self.p.wait(timeout=TIMEOUT)
        try:
            while select.select([self.master], [], [], 0.2)[0]:
                chunk = os.read(self.master, 4096)
                if not chunk:
                    break
                self.seen += chunk
        except OSError:
            pass
        os.close(self.master)
        return rc


class YubinUser(unittest.TestCase):
    def setUp(self):
        self.inst = yubintest.Instance(users=("demo@example.test",))
        self.addCleanup(self.inst.stop)
        self.before = os.stat(self.inst.users_file)

    def assert_file_kept(self):
        st = os.stat(self.inst.users_file)
        self.assertEqual(stat.S_IMODE(st.st_mode), stat.S_IMODE(self.before.st_mode))
        self.assertEqual((st.st_uid, st.st_gid), (self.before.st_uid, self.before.st_gid))

    def users_text(self):
        with open(self.inst.users_file) as f:
            return f.read()

    def test_add_list_passwd_del(self):
        p = run(self.inst, "add", "--stdin", "Carol@Example.test", stdin="c4rol pass\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_file_kept()
        self.assertIn("carol@example.test:$argon2id$", self.users_text())
        self.assertNotIn("c4rol", self.users_text())
        md = self.inst.maildir("carol@example.test")
        for d in (md, os.path.join(md, "new"), os.path.join(md, "cur"), os.path.join(md, "tmp")):
            st = os.stat(d)
            self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (self.inst.uid, 0o700), d)
        self.assertEqual(run(self.inst, "list").stdout.split(),
                         ["demo@example.test", "carol@example.test"])
        self.assertTrue(pop_login(self.inst, "carol@example.test", "c4rol pass"))

        p = run(self.inst, "passwd", "--stdin", "carol@example.test", stdin="n3w\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_file_kept()
        self.assertFalse(pop_login(self.inst, "carol@example.test", "c4rol pass"))
        self.assertTrue(pop_login(self.inst, "carol@example.test", "n3w"))

        self.inst.add_message("carol@example.test", b"Subject: keep\n\nme\n")
        p = run(self.inst, "del", "carol@example.test", stdin="y\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("--keep-mail or --yes", p.stderr)
        self.assertIn("carol@example.test", self.users_text())

        p = run(self.inst, "del", "--keep-mail", "carol@example.test")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_file_kept()
        self.assertNotIn("carol@", self.users_text())
        self.assertEqual(len(self.inst.messages("carol@example.test")), 1, "mail kept")
        self.assertFalse(pop_login(self.inst, "carol@example.test", "n3w"))
        self.assertEqual(run(self.inst, "del", "--yes", "carol@example.test").returncode, 1)

    def test_del_yes_removes_mail(self):
        self.inst.add_message("demo@example.test", b"Subject: x\n\ny\n")
        p = run(self.inst, "del", "--yes", "demo@example.test")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(self.inst.maildir("demo@example.test")))
        self.assertEqual(run(self.inst, "list").stdout, "")

    def test_bad_input_refused(self):
        for address, why in (("no-at-sign", "user@domain"), ("a b@example.test", "user part"),
                             ("x@example..test", "domain"), ("x@elsewhere.test",
                                                             "not in local_domains"),
                             ("demo@example.test", "already exists")):
            p = run(self.inst, "add", "--stdin", address, stdin="pw\n")
            self.assertEqual(p.returncode, 1, address)
            self.assertIn(why, p.stderr, address)
        p = run(self.inst, "add", "--stdin", "empty@example.test", stdin="\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("empty password", p.stderr)
        p = run(self.inst, "add", "new@example.test", "s3cret")
        self.assertEqual(p.returncode, 64, "a password on the command line is a usage error")
        p = run(self.inst, "passwd", "--stdin", "ghost@example.test", stdin="pw\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such user", p.stderr)
        self.assertEqual(run(self.inst, "list").stdout.split(), ["demo@example.test"])
        self.assert_file_kept()

    def test_terminal_no_echo_twice(self):
        t = OnTerminal(self.inst, "add", "dave@example.test")
        t.expect(b"New password: ")
        t.send(b"d4ve-secret")
        t.expect(b"Again: ")
        t.send(b"d4ve-secret")
        self.assertEqual(t.finish(), 0, t.seen)
        self.assertNotIn(b"d4ve-secret", t.seen, "the password was not echoed")
        self.assertTrue(pop_login(self.inst, "dave@example.test", "d4ve-secret"))

        t = OnTerminal(self.inst, "passwd", "dave@example.test")
        t.expect(b"New password: ")
        t.send(b"one")
        t.expect(b"Again: ")
        t.send(b"two")
        self.assertEqual(t.finish(), 1)
        self.assertIn(b"differ", t.seen)
        self.assertTrue(pop_login(self.inst, "dave@example.test", "d4ve-secret"))

    def test_terminal_asks_before_removing_mail(self):
        self.inst.add_message("demo@example.test", b"Subject: x\n\ny\n")
        t = OnTerminal(self.inst, "del", "demo@example.test")
        t.expect(b"[y/N]")
        t.send(b"n")
        self.assertEqual(t.finish(), 1)
        self.assertIn("demo@example.test", self.users_text())
        t = OnTerminal(self.inst, "del", "demo@example.test")
        t.expect(b"(1 messages)? [y/N]")
        t.send(b"y")
        self.assertEqual(t.finish(), 0, t.seen)
        self.assertNotIn("demo@example.test", self.users_text())
        self.assertFalse(os.path.exists(self.inst.maildir("demo@example.test")))

    def test_rehash_on_new_limits(self):
        self.inst.settings["pwhash_opslimit"] = "3"
        self.inst.write_conf()
        self.assertEqual(run(self.inst, "list").stdout, "demo@example.test\tneeds-rehash\n")
        p = run(self.inst, "passwd", "--stdin", "demo@example.test", stdin="fresh\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("old hash used other limits", p.stdout)
        self.assertIn("t=3,", self.users_text())
        self.assertEqual(run(self.inst, "list").stdout, "demo@example.test\n")


if __name__ == "__main__":
    unittest.main()
