"""test_root_paths: programs run as root never follow a link the mail account planted under
state_dir (DESIGN.md §5.7, issue 8 §1). The mail account owns state_dir, so it can make
state/mail/<domain> or a user's Maildir a symbolic link to any directory; yubin-user add and
del, run as root, must refuse it with a clear message and a nonzero exit, and leave the
target tree (owners, modes, files) and the users file exactly as they were."""
import os
import stat
import subprocess
import tempfile
import shutil
import unittest

import yubintest


def run(inst, *args, stdin=None):
    return subprocess.run([yubintest.program("yubin-user"), "-C", inst.conf, *args],
                          input=stdin, capture_output=True, text=True, timeout=60)


def snapshot(top):
    """Every path below top (top included) with its owner, mode and contents."""
    out = {}
    for root, dirs, files in os.walk(top):
        for name in [""] + dirs + files:
            path = os.path.join(root, name) if name else root
            st = os.lstat(path)
            data = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    data = f.read()
            out[os.path.relpath(path, top)] = (st.st_uid, st.st_gid, st.st_mode, data)
    return out


@unittest.skipUnless(os.geteuid() == 0, "the attack is on yubin-user run as root")
class SymlinkAttack(unittest.TestCase):
    def setUp(self):
        self.inst = yubintest.Instance(users=("demo@example.test",))
        self.addCleanup(self.inst.stop)
        # A tree only root may change, standing in for /etc.
        self.target = tempfile.mkdtemp(prefix="yubin-root-tree-")
        self.addCleanup(shutil.rmtree, self.target, True)
        os.chmod(self.target, 0o755)
        for d in ("demo", "demo/new", "demo/cur", "demo/tmp", "other"):
            os.mkdir(os.path.join(self.target, d), 0o755)
        for f in ("passwd", "demo/new/1.x,S=2,W=3", "other/shadow"):
            with open(os.path.join(self.target, f), "w") as fh:
                fh.write("root's\n")
        self.mail = os.path.join(self.inst.state_dir, "mail")
        self.as_mail_account(os.mkdir, self.mail, 0o700)
        self.before = snapshot(self.target)
        with open(self.inst.users_file) as f:
            self.users_before = f.read()

    def as_mail_account(self, fn, *args):
        """What the mail account itself can do: own what it makes under state_dir."""
        fn(*args)
        os.lchown(args[0] if fn is not os.symlink else args[1], self.inst.uid, self.inst.gid)

    def plant(self, link, points_to):
        self.as_mail_account(os.symlink, points_to, link)

    def assert_refused(self, p):
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("symbolic link: refused", p.stderr)
        if "del" in p.args:
            self.assertIn("nothing changed", p.stderr)
        self.assertEqual(snapshot(self.target), self.before, "the root-owned tree changed")
        with open(self.inst.users_file) as f:
            self.assertEqual(f.read(), self.users_before, "the users file changed")

    def test_add_domain_link(self):
        self.plant(os.path.join(self.mail, "example.test"), self.target)
        self.assert_refused(run(self.inst, "add", "--stdin", "new@example.test", stdin="pw\n"))

    def test_add_user_link(self):
        self.as_mail_account(os.mkdir, os.path.join(self.mail, "example.test"), 0o700)
        self.plant(os.path.join(self.mail, "example.test", "new"), self.target)
        self.assert_refused(run(self.inst, "add", "--stdin", "new@example.test", stdin="pw\n"))

    def test_add_subdirectory_link(self):
        md = os.path.join(self.mail, "example.test", "new")
        self.as_mail_account(os.mkdir, os.path.dirname(md), 0o700)
        self.as_mail_account(os.mkdir, md, 0o700)
        self.plant(os.path.join(md, "cur"), self.target)
        self.assert_refused(run(self.inst, "add", "--stdin", "new@example.test", stdin="pw\n"))

    def test_del_domain_link(self):
        self.plant(os.path.join(self.mail, "example.test"), self.target)
        self.assert_refused(run(self.inst, "del", "--yes", "demo@example.test"))

    def test_del_user_link(self):
        self.as_mail_account(os.mkdir, os.path.join(self.mail, "example.test"), 0o700)
        self.plant(os.path.join(self.mail, "example.test", "demo"),
                   os.path.join(self.target, "demo"))
        self.assert_refused(run(self.inst, "del", "--yes", "demo@example.test"))

    def test_del_removes_links_inside_not_their_targets(self):
        self.inst.add_message("demo@example.test", b"Subject: x\n\ny\n")
        md = self.inst.maildir("demo@example.test")
        self.plant(os.path.join(md, "new", "evil"), os.path.join(self.target, "passwd"))
        self.plant(os.path.join(md, "cur", "evil-dir"), os.path.join(self.target, "other"))
        p = run(self.inst, "del", "--yes", "demo@example.test")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.lexists(md))
        self.assertEqual(snapshot(self.target), self.before, "a link was followed")

    def test_add_as_root_gives_the_mail_account_its_directories(self):
        p = run(self.inst, "add", "--stdin", "new@example.test", stdin="pw\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        md = self.inst.maildir("new@example.test")
        for d in (os.path.dirname(md), md, *(os.path.join(md, s) for s in ("tmp", "new", "cur"))):
            st = os.lstat(d)
            self.assertTrue(stat.S_ISDIR(st.st_mode), d)
            self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                             (self.inst.uid, self.inst.gid, 0o700), d)


if __name__ == "__main__":
    unittest.main()
