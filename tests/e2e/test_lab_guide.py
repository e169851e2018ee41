"""test_lab_guide: the lab guide (docs/LAB.md, and yubin-lab(7) made from it) run as written.

Every `lab HOST` block of the guide is run in order: `instructor` commands on this machine
with `sh -c`, the others inside the lab with `yubin-lab shell HOST sh -c`. The guide brings the
lab up (`yubin-lab up 3`) and takes it down at the end; the test only points yubin-lab at a
scratch directory and a namespace prefix of its own (YUBIN_LAB_DIR, YUBIN_LAB_NAME), and reads
the guide's /var/lib/yubin-lab and ylab as those. Each command's output must show the lines
the guide shows (labguide.py says how they are compared) and its exit status must be the one
the guide gives. Also: man/yubin-lab.7 is what labguide.py makes of docs/LAB.md.
"""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import labguide
import netns
import yubintest

LAB = os.path.join(yubintest.SRC, "bin", "yubin-lab")
WAIT = 30.0


class Guide(unittest.TestCase):
    def test_man_page_is_made_from_the_guide(self):
        with open(labguide.GUIDE) as f:
            want = labguide.man(f.read())
        with open(os.path.join(yubintest.SRC, "man", "yubin-lab.7")) as f:
            self.assertEqual(f.read(), want, "run: python3 tests/e2e/labguide.py man > "
                             "man/yubin-lab.7")

    def test_the_guide_as_written(self):
        reason = netns.unavailable()
        if reason:
            self.skipTest(reason)
        for tool in ("nsd", "inetd", "swaks", "mpop", "dig"):
            if shutil.which(tool) is None:
                self.skipTest(f"{tool} is not installed (./quickstart installs it)")
        top = tempfile.mkdtemp(prefix="yubin-guide-")
        os.chmod(top, 0o755)
        self.dir = os.path.join(top, "lab")
        self.name = f"yg{os.getpid() % 1000000}"
        self.env = dict(os.environ, YUBIN_LAB_DIR=self.dir, YUBIN_LAB_NAME=self.name,
                        YUBIN_BIN=os.path.join(yubintest.BUILD, "bin"),
                        PATH=os.path.dirname(LAB) + ":" + os.environ["PATH"])
        self.env.pop("YUBIN_LAB_NET", None)
        self.top = top
        self.addCleanup(self.cleanup)
        with open(labguide.GUIDE) as f:
            steps = labguide.steps(f.read())
        self.assertGreater(len(steps), 10)
        self.assertEqual((steps[0].host, steps[0].commands[0][0]), ("instructor", "yubin-lab up 3"))
        for n, step in enumerate(steps, 1):
            self.run_step(n, step)

    def cleanup(self):
        if os.path.exists(os.path.join(self.dir, "lab.json")):
            subprocess.run([LAB, "down"], env=self.env, capture_output=True, timeout=120)
        shutil.rmtree(self.top, ignore_errors=True)

    def ours(self, line):
        line = line.replace("/var/lib/yubin-lab", self.dir)
        return re.sub(r"\bylab\b", self.name, line)

    def run_step(self, n, step):
        deadline = time.monotonic() + (WAIT if step.retry else 0)
        while True:
            problem = self.try_step(step)
            if problem is None:
                return
            if time.monotonic() > deadline:
                self.fail(f"block {n} on {step.host}: {problem}\n{self.logs()}")
            time.sleep(0.5)

    def logs(self):
        out = []
        for g in ("g1", "g2", "g3"):
            path = os.path.join(self.dir, g, "maillog")
            if os.path.exists(path):
                with open(path) as f:
                    out.append(f"--- {g}/maillog\n" + "".join(f.readlines()[-30:]))
        return "\n".join(out)

    def try_step(self, step):
        """None when every command of the block printed what the guide says, else why not."""
        for command, expected, status in step.commands:
            if step.host == "instructor":
                argv = ["sh", "-c", command]
            else:
                argv = [LAB, "shell", step.host, "sh", "-c", command]
            p = subprocess.run(argv, env=self.env, cwd=self.top, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=120)
            lost = labguide.missing([self.ours(e) for e in expected], p.stdout)
            if lost is not None or p.returncode != status:
                return (f"$ {command}\n{p.stdout}(exit {p.returncode}, the guide says "
                        f"{status}; line not found: {lost!r})")
        return None


if __name__ == "__main__":
    unittest.main()
