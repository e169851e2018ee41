"""test_lab: `yubin-lab up 3`, a classroom of three groups, used the way students use it.

yubin-lab (bin/yubin-lab) puts each group's mail server in a network namespace of its own
(openbsd-inetd on the real ports 25, 587 and 110), nsd in another, loaded from zone files with
each group's MX record, and a client namespace, all on one bridge in 10.252.0.0/24 (this test's
own /24, so a lab an instructor runs at the same time on 10.254.0 is left alone). From the
client namespace, smtplib submits (AUTH on 587) from every group to every other group, and
poplib fetches each message from the receiving group's POP3 server; an unknown user at another
group and a domain that does not exist come back to the sender as bounces; `shell` runs a
command inside a group's host with the lab's resolv.conf. `down` must leave nothing behind: no
namespace, no process, no /etc/netns entry, no state directory.
"""
import email
import email.policy
import os
import poplib
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

import netns
import yubintest

LAB = os.path.join(yubintest.SRC, "bin", "yubin-lab")
NET = "10.252.0"
GROUPS = ("g1", "g2", "g3")
PASSWORD = "lab"
WAIT = 30.0


def addr(g):
    return f"{NET}.{10 + int(g[1:])}"


class Lab(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = netns.unavailable()
        if reason:
            raise unittest.SkipTest(reason)
        for tool in ("nsd", "inetd"):
            if shutil.which(tool) is None:
                raise unittest.SkipTest(f"{tool} is not installed (./quickstart installs it)")
        cls.top = tempfile.mkdtemp(prefix="yubin-lab-")
        os.chmod(cls.top, 0o755)
        cls.dir = os.path.join(cls.top, "lab")
        cls.name = f"yt{os.getpid() % 1000000}"
        cls.lab(["up", "3", "-n", cls.name, "-a", NET, "-B", os.path.join(yubintest.BUILD, "bin")])

    @classmethod
    def tearDownClass(cls):
        if os.path.exists(os.path.join(cls.dir, "lab.json")):
            cls.lab(["down"], check=False)
        shutil.rmtree(cls.top, ignore_errors=True)

    @classmethod
    def lab(cls, args, check=True, timeout=120):
        p = subprocess.run([LAB, "-d", cls.dir, *args], capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"yubin-lab {' '.join(args)}: {p.returncode}\n{p.stdout}"
                                 f"{p.stderr}")
        return p

    def submit(self, sender, rcpts, subject):
        g = sender.split("@")[1].split(".")[0]
        msg = (f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n\r\n"
               f"Hello from {g}.\r\n")
        with netns.enter(f"{self.name}-client"):
            with smtplib.SMTP(addr(g), 587, timeout=30) as c:
                c.login(sender, PASSWORD)
                refused = c.sendmail(sender, rcpts, msg)
        self.assertEqual(refused, {})

    def fetch(self, user):
        """Every message in user's mailbox, over POP3 from the client namespace."""
        g = user.split("@")[1].split(".")[0]
        with netns.enter(f"{self.name}-client"):
            pop = poplib.POP3(addr(g), 110, timeout=30)
            try:
                pop.user(user)
                pop.pass_(PASSWORD)
                out = []
                for i in range(1, pop.stat()[0] + 1):
                    lines = pop.retr(i)[1]
                    out.append(email.message_from_bytes(b"\r\n".join(lines),
                                                        policy=email.policy.default))
                return out
            finally:
                pop.quit()

    def wait_for(self, user, pred):
        deadline = time.monotonic() + WAIT
        while True:
            found = [m for m in self.fetch(user) if pred(m)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.3)

    def maillog(self, g):
        with open(os.path.join(self.dir, g, "maillog")) as f:
            return f.read()

    def test_1_mail_between_every_pair_of_groups(self):
        sent = []
        for a in GROUPS:
            for b in GROUPS:
                if a != b:
                    subject = f"from {a} to {b} {time.time_ns()}"
                    self.submit(f"alice@{a}.lab", [f"bob@{b}.lab"], subject)
                    sent.append((a, b, subject))
        for a, b, subject in sent:
            got = self.wait_for(f"bob@{b}.lab", lambda m: m["Subject"] == subject)
            self.assertEqual(len(got), 1, f"{a} -> {b}\n{self.maillog(a)}\n{self.maillog(b)}")
            self.assertEqual(got[0]["From"], f"alice@{a}.lab")
            self.assertIn(f"Received: from mail.{a}.lab", got[0].as_string())
        # and the sending group's transcript shows its queue-run talking to the other one
        names = os.listdir(os.path.join(self.dir, "g1", "transcripts"))
        self.assertTrue(any(".queue-run." in n for n in names), names)

    def test_2_bounces(self):
        self.submit("alice@g1.lab", ["nobody@g2.lab"], "to nobody")
        self.submit("alice@g3.lab", ["someone@nosuch.lab"], "to nowhere")
        got = self.wait_for("alice@g1.lab", lambda m: "nobody@g2.lab" in m.as_string()
                            and m.get_content_type() == "multipart/report")
        self.assertEqual(len(got), 1, self.maillog("g1"))
        self.assertRegex(got[0].as_string(), r"5\.1\.1")
        got = self.wait_for("alice@g3.lab", lambda m: "someone@nosuch.lab" in m.as_string()
                            and m.get_content_type() == "multipart/report")
        self.assertEqual(len(got), 1, self.maillog("g3"))

    def test_3_shell_and_dns(self):
        p = self.lab(["shell", "g2", "cat", "/etc/resolv.conf"])
        self.assertIn(f"nameserver {NET}.2", p.stdout)
        p = self.lab(["shell", "g2", "ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        self.assertIn(f"{addr('g2')}/24", p.stdout)
        p = self.lab(["shell", "client", "sh", "-c", "echo $PATH"])
        self.assertIn(os.path.join(yubintest.BUILD, "bin"), p.stdout)
        p = self.lab(["status"])
        self.assertRegex(p.stdout, r"g3 +\S+ +10\.252\.0\.13 +mail\.g3\.lab +[1-9]\d* processes")

    def test_9_down_leaves_nothing(self):
        pids = set()
        for host in ("dns", "client", *GROUPS):
            pids.update(netns.Network._pids(f"{self.name}-{host}"))
        self.assertTrue(pids)
        self.lab(["down"])
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        self.assertEqual([ns for ns in listed.split() if ns.startswith(self.name + "-")], [])
        self.assertEqual([p for p in pids if running(p)], [])
        self.assertEqual([p for p in os.listdir("/proc") if p.isdigit() and
                          self.dir.encode() in cmdline(p)], [])
        etc = os.listdir("/etc/netns") if os.path.isdir("/etc/netns") else []
        self.assertEqual([e for e in etc if e.startswith(self.name + "-")], [])
        self.assertFalse(os.path.exists(self.dir))
        self.assertEqual(os.listdir(self.top), [])


def running(pid):
    """Alive and not a zombie (a killed process waits for init to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


if __name__ == "__main__":
    unittest.main()
