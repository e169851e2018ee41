"""test_queue_admin: yubin-queue (issue 11 §7) on a real queue, with the real queue-run
relaying to a sink through a smarthost.

delete (an entry, a recipient, a domain, all), hold and release, requeue, flush one
domain; and delete while a queue-run is relaying the same entries: no message is delivered
twice, none that yubin-queue says it deleted is delivered, and every message is either
delivered or deleted.
"""
import os
import re
import subprocess
import threading
import time
import unittest

import yubintest
from smtpsink import SMTPSink

SENDER = "demo@example.test"
EX_NOINPUT, EX_USAGE = 66, 64


def body(token):
    return (f"From: <{SENDER}>\nSubject: {token}\nMessage-ID: <{token}@example.test>\n\n"
            f"token {token}\n").encode()


class QueueAdmin(unittest.TestCase):
    def setUp(self):
        self.sink = SMTPSink(["127.0.0.31"])
        self.site = yubintest.Instance(users=(SENDER,), conf={
            "smarthost": f"127.0.0.31:{self.sink.port}", "connect_timeout": "5"})

    def tearDown(self):
        self.sink.close()
        self.site.stop()

    def inject(self, rcpts, token):
        p = subprocess.run([os.path.join(yubintest.BUILD, "tests", "unit", "queue-inject"),
                            "-C", self.site.conf, "-f", SENDER, *rcpts],
                           input=body(token), capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.decode().strip()

    def yq(self, *args, ok=True):
        p = subprocess.run([yubintest.program("yubin-queue"), "-C", self.site.conf, *args],
                           capture_output=True, text=True, timeout=120)
        if ok:
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p

    def run_queue(self, *args):
        p = subprocess.run([yubintest.program("queue-run"), "-C", self.site.conf, *args],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)

    def envelope(self, qid):
        path = os.path.join(self.site.state_dir, "queue", qid + ".env")
        return open(path).read() if os.path.exists(path) else None

    def delivered(self):
        """token -> the recipients it reached, for every message the sink acknowledged."""
        out = {}
        for m in self.sink.messages:
            token = re.search(rb"token (\S+)", m.data).group(1).decode()
            out.setdefault(token, []).append(sorted(m.rcpts))
        return out

    def defer(self, qid):
        """Gives every pending recipient of qid a next attempt an hour away."""
        path = os.path.join(self.site.state_dir, "queue", qid + ".env")
        text = re.sub(r"^rcpt pending (\d+) \d+ ", lambda m: f"rcpt pending 1 "
                      f"{int(time.time()) + 3600} ", open(path).read(), flags=re.M)
        with open(path, "w") as f:
            f.write(text)

    def test_delete_entry_and_recipient_and_domain(self):
        a = self.inject(["x@one.test"], "A")
        b = self.inject(["y@one.test", "z@two.test"], "B")
        c = self.inject(["w@two.test"], "C")
        self.assertEqual(self.yq("delete", a).stdout, f"deleted {a}\n")
        self.assertIsNone(self.envelope(a))
        out = self.yq("-r", "Z@TWO.test", "delete").stdout
        self.assertEqual(out, f"deleted {b}: <z@two.test>\n")
        self.assertNotIn("z@two.test", self.envelope(b))
        out = self.yq("delete", "-d", "two.test").stdout
        self.assertEqual(out, f"deleted {c}: <w@two.test> (entry removed)\n")
        self.run_queue()
        self.assertEqual(self.delivered(), {"B": [["y@one.test"]]})
        p = self.yq("delete", a, ok=False)
        self.assertEqual(p.returncode, EX_NOINPUT)
        self.assertIn("no such entry", p.stderr)

    def test_hold_release_requeue(self):
        a = self.inject(["x@one.test"], "A")
        b = self.inject(["y@one.test"], "B")
        self.assertEqual(self.yq("hold", "-a").stdout.count("held "), 2)
        self.assertRegex(self.envelope(a), r"(?m)^flags held$")
        mailq = subprocess.run([yubintest.program("mailq"), "-C", self.site.conf],
                               capture_output=True, text=True, timeout=30).stdout
        self.assertIn("(held)", mailq)
        self.assertIn("next when released", mailq)
        self.run_queue("-f")  # not even forced: a held entry has nothing due
        self.assertEqual(self.delivered(), {})
        self.assertEqual(self.yq("release", a).stdout, f"released {a}\n")
        self.assertRegex(self.envelope(a), r"(?m)^flags -$")
        self.defer(a)
        self.run_queue()
        self.assertEqual(self.delivered(), {}, "not due yet")
        self.assertEqual(self.yq("requeue", "-r", "x@one.test").stdout,
                         f"requeued {a}: <x@one.test>\n")
        self.run_queue()
        self.assertEqual(self.delivered(), {"A": [["x@one.test"]]})
        self.assertIsNotNone(self.envelope(b), "b is still held")

    def test_flush_one_domain(self):
        a = self.inject(["x@one.test"], "A")
        b = self.inject(["y@two.test"], "B")
        self.defer(a)
        self.defer(b)
        p = self.yq("flush", "one.test")
        self.assertIn(f"requeued {a}: <x@one.test>", p.stdout)
        self.assertEqual(self.delivered(), {"A": [["x@one.test"]]})
        self.assertIsNone(self.envelope(a))
        self.assertIsNotNone(self.envelope(b))

    def test_usage(self):
        for args in ([], ["delete"], ["explode", "-a"], ["delete", "-a", "-d", "x.test"],
                     ["flush"], ["flush", "-r", "x@y.test"]):
            self.assertEqual(self.yq(*args, ok=False).returncode, EX_USAGE, args)

    def test_delete_during_a_queue_run(self):
        """queue-run relays 40 entries over one connection; the reply to the fourth DATA is
        held back while yubin-queue deletes the domain, so queue-run holds that entry's lock
        and yubin-queue must wait for it."""
        self.site.settings["max_parallel"] = "1"
        self.site.write_conf()
        stalled, go = threading.Event(), threading.Event()

        def data_reply(host, msg):
            if len(self.sink.messages) == 3 and not stalled.is_set():
                stalled.set()
                go.wait(60)
            return None

        self.sink.data_reply = data_reply
        ids = {self.inject([f"r{i}@one.test"], f"T{i}"): f"T{i}" for i in range(40)}
        run = subprocess.Popen([yubintest.program("queue-run"), "-C", self.site.conf],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.assertTrue(stalled.wait(60), "queue-run never reached the fourth message")
        yq = subprocess.Popen([yubintest.program("yubin-queue"), "-C", self.site.conf, "delete",
                               "-d", "one.test"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        self.assertIsNone(yq.poll(), "yubin-queue did not wait for the locked entry")
        go.set()
        out, err = yq.communicate(timeout=120)
        self.assertEqual(yq.returncode, 0, err)
        deleted = set(re.findall(r"^deleted (\S+?):", out, re.M))
        self.assertEqual(run.wait(timeout=120), 0, run.stderr.read())
        got = self.delivered()
        for token, rcpts in got.items():
            self.assertEqual(len(rcpts), 1, f"{token} delivered twice")
        tokens_deleted = {ids[i] for i in deleted}
        self.assertFalse(tokens_deleted & set(got), "a deleted message was delivered")
        self.assertEqual(tokens_deleted | set(got), set(ids.values()), "a message was lost")
        self.assertGreaterEqual(len(deleted), 30, out)
        self.assertEqual(os.listdir(os.path.join(self.site.state_dir, "queue")), [])

if __name__ == "__main__":
    unittest.main()
