"""test_runner: tests/run itself counts what it runs, whatever the tests print.

A unit test that prints bytes that are not UTF-8 (memory, say) is a failure shown with the
bytes escaped; the runner never crashes on it, and the rest of the tally still counts. An e2e
test whose subtests fail counts as failed (it once counted as nothing at all).
"""
import json
import os
import stat
import subprocess
import sys
import tempfile
import unittest

import yubintest

RUNNER = os.path.join(yubintest.SRC, "tests", "run")


def fake_build(directory, scripts):
    """A build tree whose tests/unit holds the given test programs (name -> shell body)."""
    unit = os.path.join(directory, "tests", "unit")
    os.makedirs(unit)
    for name, body in scripts.items():
        path = os.path.join(unit, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, stat.S_IRWXU)


class NotUtf8(unittest.TestCase):
    def run_unit(self, scripts):
        with tempfile.TemporaryDirectory() as d:
            fake_build(d, scripts)
            return subprocess.run([sys.executable, RUNNER, "--build", d, "--only", "unit"],
                                  capture_output=True, text=True, errors="backslashreplace",
                                  timeout=60)

    def test_bytes_that_are_not_utf8_fail_and_are_escaped(self):
        p = self.run_unit({
            "test-good": "echo 'ok 1 - fine'; echo 'ok 2 - fine too'\n",
            "test-memory": r"printf 'ok 1 - loads (@=\342\315)\nok 2 - plain\n'" + "\n",
        })
        self.assertNotIn("Traceback", p.stdout + p.stderr)
        self.assertEqual(p.stdout.strip().splitlines()[-1], "3 passed, 2 failed", p.stdout)
        self.assertIn(r"\xe2\xcd", p.stdout)

    def test_utf8_output_is_counted_as_before(self):
        p = self.run_unit({"test-kana": "echo 'ok 1 - 郵便'; echo 'not ok 2 - 郵便'\n"})
        self.assertEqual(p.stdout.strip().splitlines()[-1], "1 passed, 1 failed", p.stdout)


SUBTESTS = """import unittest

class T(unittest.TestCase):
    def test_one_subtest_fails(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertNotEqual(i, 1)

    def test_subtests_pass(self):
        for i in range(2):
            with self.subTest(i=i):
                self.assertTrue(True)
"""


class E2eModule(unittest.TestCase):
    def test_failed_subtest_is_a_failure(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "runner_subtests_probe.py"), "w") as f:
                f.write(SUBTESTS)
            p = subprocess.run([sys.executable, RUNNER, "--e2e-module",
                                "runner_subtests_probe"], capture_output=True, text=True,
                               timeout=60, cwd=d, env=dict(os.environ, PYTHONPATH=d))
        outcomes = json.loads(p.stdout.strip().splitlines()[-1])
        states = sorted((test_id.rsplit(".", 1)[-1], state) for test_id, state, _ in outcomes)
        self.assertEqual(states, [("test_one_subtest_fails (i=1)", "fail"),
                                  ("test_subtests_pass", "ok")], p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
