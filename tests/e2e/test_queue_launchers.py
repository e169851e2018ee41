"""test_queue_launchers: what starts queue-run every minute — systemd/queue-run.service +
queue-run.timer, and the crontab line in inetd/crontab — as the build generates them.

The units must pass `systemd-analyze verify` (with ExecStart pointed at the build), run as the
mail account with the same hardening as the handlers, and the timer must fire every minute.
The crontab line must run every minute as the mail account, and its command (pointed at the
build, with -C for a scratch site) must empty a queue when started as that account. It never
touches the system's own systemd, cron or inetd configuration.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yubintest
from smtpsink import SMTPSink
from test_launchers import make_vars, read_build

BUILD = yubintest.BUILD
SRC = yubintest.SRC


class QueueRunLaunchers(unittest.TestCase):
    def setUp(self):
        self.vars = make_vars()
        self.dir = tempfile.mkdtemp(prefix="yubin-qunits-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def to_build(self, text):
        return text.replace(self.vars["sbindir"] + "/", os.path.join(BUILD, "bin") + "/")

    def test_units_verify_clean(self):
        service = read_build("systemd/queue-run.service")
        self.assertNotIn("@sbindir@", service)
        self.assertRegex(service, r"(?m)^ExecStart=" + re.escape(self.vars["sbindir"]) +
                         r"/queue-run$")
        for key in ("Type=oneshot", "User=yubin", "NoNewPrivileges=yes", "ProtectSystem=strict",
                    "ReadWritePaths=/var/lib/yubin", "CapabilityBoundingSet=\n"):
            self.assertIn(key, service)
        with open(os.path.join(SRC, "systemd", "queue-run.timer")) as f:
            timer = f.read()
        self.assertRegex(timer, r"(?m)^OnUnitInactiveSec=1min$")
        self.assertRegex(timer, r"(?m)^WantedBy=timers.target$")
        for name, text in (("queue-run.service", self.to_build(service)),
                           ("queue-run.timer", timer)):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        for name in ("queue-run.service", "queue-run.timer"):
            with self.subTest(unit=name):
                p = subprocess.run(["systemd-analyze", "verify", "--man=no",
                                    os.path.join(self.dir, name)],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))

    def cron_line(self):
        lines = [ln for ln in read_build("inetd/crontab").splitlines()
                 if ln.strip() and not ln.startswith("#")]
        self.assertEqual(len(lines), 1, lines)
        fields = lines[0].split()
        self.assertEqual(fields[:5], ["*"] * 5, "every minute")
        self.assertEqual(fields[5], "yubin", "as the mail account")
        self.assertEqual(fields[6], self.vars["sbindir"] + "/queue-run")
        return fields[5], fields[6:]

    @unittest.skipUnless(os.geteuid() == 0, "needs root to start it as the mail account")
    def test_cron_command_runs_as_the_account(self):
        user, argv = self.cron_line()
        argv = [self.to_build(argv[0]), *argv[1:]]
        sink = SMTPSink(["127.0.0.21"])
        site = yubintest.Instance(users=("demo@example.test",),
                                  conf={"smarthost": f"127.0.0.21:{sink.port}"})
        try:
            inject = os.path.join(BUILD, "tests", "unit", "queue-inject")
            p = subprocess.run([inject, "-C", site.conf, "-f", "demo@example.test",
                                "x@elsewhere.test"], input=b"Subject: cron\n\nhi\n",
                               capture_output=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            p = subprocess.run(["runuser", "-u", site.account, "--", *argv, "-C", site.conf],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(len(sink.messages), 1)
            self.assertEqual(os.listdir(os.path.join(site.state_dir, "queue")), [])
        finally:
            sink.close()
            site.stop()


if __name__ == "__main__":
    unittest.main()
