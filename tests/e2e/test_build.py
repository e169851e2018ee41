"""test_build: the autotools build does what an administrator and a packager expect.

`make install DESTDIR=...` puts every program, man page and launcher file in place, with the
real sbindir in the units and inetd lines; `make distcheck` (when YUBIN_DISTCHECK=1, set by
./quickstart test for the plain build) builds, checks and installs from the tarball.
"""
import glob
import os
import re
import subprocess
import tempfile
import unittest

import yubintest


def make(*args, timeout=600):
    return subprocess.run(["make", "-C", yubintest.BUILD, "-s", *args], capture_output=True,
                          text=True, timeout=timeout)


class Install(unittest.TestCase):
    def test_install_destdir(self):
        with tempfile.TemporaryDirectory() as dest:
            p = make("install", f"DESTDIR={dest}")
            self.assertEqual(p.returncode, 0, p.stderr[-3000:])
            files = [os.path.relpath(f, dest) for f in glob.glob(f"{dest}/**", recursive=True)
                     if os.path.isfile(f)]
            sbin = [f for f in files if re.search(r"/sbin/[^/]+$", f)]
            # every program in bin/ is installed, and every program has its man page
            for src in glob.glob(os.path.join(yubintest.SRC, "bin", "*.c")):
                name = os.path.basename(src)[:-2]
                self.assertTrue(any(f.endswith("/sbin/" + name) for f in sbin), name)
                self.assertTrue(any(re.search(rf"/man8/{re.escape(name)}\.8$", f) for f in files),
                                f"no man page installed for {name}")
            for page in ("man5/yubin.conf.5", "man7/yubin.7"):
                self.assertTrue(any(f.endswith(page) for f in files), page)
            units = [f for f in files if f.endswith((".service", ".socket"))]
            self.assertTrue(any(f.endswith("smtp-in.socket") for f in units), units)
            for unit in units:
                with open(os.path.join(dest, unit)) as f:
                    text = f.read()
                self.assertNotIn("@sbindir@", text, unit)
                for exe in re.findall(r"^ExecStart=-?(\S+)", text, re.M):
                    self.assertTrue(os.path.exists(dest + exe), f"{unit}: {exe} not installed")
            for f in sbin:
                mode = os.stat(os.path.join(dest, f)).st_mode
                self.assertFalse(mode & 0o6000, f"{f} must not be setuid or setgid")

    def test_install_site_files(self):
        """sysconfdir/yubin gets a sample yubin.conf, an empty users file (0640) and an aliases
        file with postmaster and abuse that yubin's own parsers accept; a second install keeps
        what the administrator changed; under DESTDIR nothing is chowned; uninstall removes
        only what is still as installed."""
        with tempfile.TemporaryDirectory() as dest:
            p = make("install", f"DESTDIR={dest}")
            self.assertEqual(p.returncode, 0, p.stderr[-3000:])
            etc = glob.glob(f"{dest}/**/etc/yubin", recursive=True)
            self.assertEqual(len(etc), 1, etc)
            etc = etc[0]
            users = os.stat(os.path.join(etc, "users"))
            self.assertEqual((users.st_size, users.st_mode & 0o777), (0, 0o640))
            self.assertEqual((users.st_uid, users.st_gid), (os.getuid(), os.getgid()),
                             "nothing is chowned under DESTDIR")
            self.assertIn("chgrp yubin-auth", p.stdout + p.stderr, "install says what to run")
            aliases = open(os.path.join(etc, "aliases")).read()
            self.assertRegex(aliases, r"(?m)^postmaster@example\.org: ")
            self.assertRegex(aliases, r"(?m)^abuse@example\.org: ")
            conf = os.path.join(etc, "yubin.conf")
            self.assertRegex(open(conf).read(), r"(?m)^#\s*\w+ ")  # commented
            # the sample and the aliases file load with the servers' parsers
            test_conf = os.path.join(dest, "check.conf")
            with open(test_conf, "w") as f:
                f.write(open(conf).read() + f"aliases_file {etc}/aliases\n"
                        f"users_file {etc}/users\n")
            c = subprocess.run([yubintest.program("yubin-check"), "-C", test_conf,
                                "postmaster@example.org", "abuse@example.org"],
                               capture_output=True, text=True, timeout=60)
            self.assertNotIn("error:", c.stdout, c.stdout)
            self.assertIn("postmaster@example.org: alias", c.stdout)
            self.assertIn("admin@example.org: no such mailbox", c.stdout, "not made yet")
            self.assertIn("abuse@example.org: alias", c.stdout)
            # the administrator's own files survive a second install
            with open(conf, "a") as f:
                f.write("max_hops 20\n")
            with open(os.path.join(etc, "users"), "w") as f:
                f.write(f"alice@example.org:{yubintest.DEMO_HASH}\n")
            p = make("install", f"DESTDIR={dest}")
            self.assertEqual(p.returncode, 0, p.stderr[-3000:])
            self.assertIn("max_hops 20", open(conf).read())
            self.assertIn("alice@example.org", open(os.path.join(etc, "users")).read())
            p = make("uninstall", f"DESTDIR={dest}")
            self.assertEqual(p.returncode, 0, p.stderr[-3000:])
            self.assertEqual(sorted(os.listdir(etc)), ["users", "yubin.conf"],
                             "changed files stay, the untouched aliases file goes")

    @unittest.skipUnless(os.environ.get("YUBIN_DISTCHECK") == "1",
                         "make distcheck runs in the plain build of ./quickstart test")
    def test_distcheck(self):
        p = make("distcheck", timeout=900)
        self.assertEqual(p.returncode, 0, (p.stdout + p.stderr)[-4000:])
        self.assertIn("archives ready for distribution", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
