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

    @unittest.skipUnless(os.environ.get("YUBIN_DISTCHECK") == "1",
                         "make distcheck runs in the plain build of ./quickstart test")
    def test_distcheck(self):
        p = make("distcheck", timeout=900)
        self.assertEqual(p.returncode, 0, (p.stdout + p.stderr)[-4000:])
        self.assertIn("archives ready for distribution", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
