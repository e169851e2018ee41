"""test_queue_limits: queue-run against hostile or odd next hops (issue 8 §4, §5, §7).

A dnsmasq (dnsserver.py) serves the MX records below; smtpsink.py listens on 127.0.0.41-44 as
the remote MX hosts and can drip its greeting one byte a minute or refuse recipients over a
count with 452. Messages are queued with the queue-inject driver as smtp-in queues them and
queue-run is run as the timer would run it, with small limits in yubin.conf so that every test
stays short. Nothing here contacts anything but 127.0.0.0/8.
"""
import os
import subprocess
import time
import unittest

import yubintest
from smtpsink import SMTPSink
import test_relay
from test_relay import message

RECORDS = [
    "remote.test MX 10 mx.remote.test",
    "mx.remote.test A 127.0.0.41",
    # one MX that greets one byte a minute
    "drip.test MX 10 mx.drip.test",
    "mx.drip.test A 127.0.0.42",
    # three of them
    "drip3.test MX 10 a.drip3.test",
    "drip3.test MX 20 b.drip3.test",
    "drip3.test MX 30 c.drip3.test",
    "a.drip3.test A 127.0.0.42",
    "b.drip3.test A 127.0.0.43",
    "c.drip3.test A 127.0.0.44",
    # MX records that point back at this host (mx.example.test is the site's hostname;
    # 127.0.0.1 is an address of this host's loopback interface)
    "loop.test MX 10 mx.loop.test",
    "mx.loop.test A 127.0.0.1",
    "secondary.test MX 10 mx.example.test",
    "secondary.test MX 20 other.secondary.test",
    "other.secondary.test A 127.0.0.42",
    "mx.example.test A 127.0.0.43",
    "backup.test MX 5 primary.backup.test",
    "backup.test MX 10 mx.example.test",
    "primary.backup.test A 127.0.0.41",
    "literal.test A 127.0.0.1",
]

SINK_ADDRS = ["127.0.0.41", "127.0.0.42", "127.0.0.43", "127.0.0.44"]
SENDER = "demo@example.test"
POSTMASTER = "postmaster@example.test"

class QueueLimitsTest(unittest.TestCase):
    def setUp(self):
        self.dns = test_relay.dns_server(RECORDS)
        self.sink = SMTPSink(SINK_ADDRS)
        self.site = yubintest.Instance(users=(SENDER, POSTMASTER), conf={
            "dns_resolver": self.dns.resolver, "smtp_port": str(self.sink.port),
            "connect_timeout": "5"})

    def tearDown(self):
        self.sink.close()
        self.site.stop()

    def set_conf(self, **kw):
        self.site.settings.update({k: str(v) for k, v in kw.items()})
        self.site.write_conf()

    # the queue helpers of test_relay (functions of self.site, self.sink and assertions)
    inject = test_relay.RelayTest.inject
    run_queue = test_relay.RelayTest.run_queue
    qdir = test_relay.RelayTest.qdir
    entries = test_relay.RelayTest.entries
    env = test_relay.RelayTest.env
    reports = test_relay.RelayTest.reports

    def report_status(self, msg):
        """(Final-Recipient, Action, Status, Diagnostic-Code) of a one-recipient report."""
        self.assertEqual(msg.get_content_type(), "multipart/report")
        blocks = msg.get_payload()[1].get_payload()
        per = [b for b in blocks[1:] if b["Final-Recipient"]]
        self.assertEqual(len(per), 1, blocks)
        return tuple((per[0][h] or "").strip() for h in
                     ("Final-Recipient", "Action", "Status", "Diagnostic-Code"))

    # -- §7: no NUL byte ever goes out -------------------------------------------------
    def test_nul_in_a_queued_message_is_never_sent(self):
        # what smtp-in of an older release let in: a NUL line that a next hop dropping NULs
        # would read as the end of DATA, followed by smuggled commands
        body = "Hello.\n\x00.\nMAIL FROM:<evil@remote.test>\nRCPT TO:<victim@remote.test>\n"
        data = message("with a nul", body=body)
        self.assertIn(b"\n\x00.\n", data)
        self.inject(["bob@remote.test"], data)
        out = self.run_queue()
        self.assertEqual(self.sink.messages, [], out)
        self.assertNotIn("MAIL FROM:<demo", out, "not even the transaction was started")
        reps = self.reports()
        self.assertEqual(len(reps), 1, out)
        rcpt, action, status, diag = self.report_status(reps[0])
        self.assertEqual((rcpt, action, status), ("rfc822; bob@remote.test", "failed", "5.6.0"))
        self.assertIn("NUL", diag)
        self.assertEqual(self.entries(), [])

    # -- §5: recipients per transaction ----------------------------------------------------
    def many(self, n):
        return [f"r{i:03d}@remote.test" for i in range(n)]

    def test_100_recipients_per_transaction_by_default(self):
        self.inject(self.many(250), message("to 250"))
        out = self.run_queue()
        self.assertEqual([len(m.rcpts) for m in self.sink.messages], [100, 100, 50], out)
        self.assertEqual(sorted(r for m in self.sink.messages for r in m.rcpts), self.many(250))
        self.assertEqual(self.sink.connections, {"127.0.0.41": 1}, "over one connection")
        self.assertEqual(self.entries(), [])

    def too_many(self, reply):
        # the server takes 40 per transaction and says so to the 41st and later RCPTs
        self.set_conf(relay_max_rcpts=1024)
        self.sink.max_rcpts = 40
        self.sink.too_many_reply = reply
        self.inject(self.many(90), message("to 90"))
        out = self.run_queue()
        self.assertEqual([len(m.rcpts) for m in self.sink.messages], [40, 40, 10], out)
        self.assertEqual(sorted(r for m in self.sink.messages for r in m.rcpts), self.many(90))
        self.assertEqual(self.sink.connections, {"127.0.0.41": 1}, "same server, new transactions")
        self.assertEqual(self.entries(), [], "nothing deferred")
        self.assertEqual(self.reports(), [], "nothing bounced")

    def test_452_too_many_recipients_goes_on_in_a_new_transaction(self):
        self.too_many("452 4.5.3 too many recipients")

    def test_552_too_many_recipients_is_taken_as_452(self):
        self.too_many("552 5.5.3 too many recipients")

    def test_452_to_every_recipient_is_deferred(self):
        self.sink.max_rcpts = 0
        qid = self.inject(self.many(3), message("to nobody yet"))
        self.run_queue()
        self.assertEqual(self.sink.messages, [])
        self.assertEqual([(r["state"], r["attempts"]) for r in self.env(qid)["rcpts"]],
                         [("pending", 1)] * 3)

    # -- §5: mail that would loop back to this host is bounced 5.4.6 ----------------------
    def check_loop(self, domain):
        self.inject([f"x@{domain}"], message(f"to {domain}"))
        out = self.run_queue()
        self.assertEqual(self.sink.connections, {}, out)
        reps = self.reports()
        self.assertEqual(len(reps), 1, out)
        rcpt, action, status, _ = self.report_status(reps[0])
        self.assertEqual((rcpt, action, status), (f"rfc822; x@{domain}", "failed", "5.4.6"))
        self.assertIn(f"mail for {domain} loops back to myself", reps[0].as_string())
        self.assertEqual(self.entries(), [])

    def test_mx_at_our_own_address_loops(self):
        self.check_loop("loop.test")

    def test_implicit_mx_at_our_own_address_loops(self):
        self.check_loop("literal.test")

    def test_we_are_the_best_mx_loops(self):
        # the worse MX is never tried: it would send the mail back to us
        self.check_loop("secondary.test")

    def test_we_are_a_backup_mx_the_better_one_gets_it(self):
        self.inject(["x@backup.test"], message("to backup"))
        out = self.run_queue()
        self.assertEqual([m.host for m in self.sink.messages], ["127.0.0.41"], out)
        self.assertEqual(self.entries(), [])

    def test_a_smarthost_on_this_host_is_no_loop(self):
        # a content filter on loopback: no MX lookup, no loop check
        filt = SMTPSink(["127.0.0.1"])
        try:
            self.set_conf(smarthost=f"127.0.0.1:{filt.port}")
            self.inject(["x@loop.test"], message("through the filter"))
            out = self.run_queue()
            self.assertEqual([m.rcpts for m in filt.messages], [["x@loop.test"]], out)
        finally:
            filt.close()

    # -- §7: stale tmp files are swept --------------------------------------------------
    def make_file(self, path, age_hours, owned=True):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("half a message\n")
        t = time.time() - age_hours * 3600
        os.utime(path, (t, t))
        if owned:
            os.chown(path, self.site.uid, self.site.gid)
        return path

    def mkdirs(self, path):
        """Makes path and its missing parents, owned by the mail account."""
        parts = []
        while not os.path.isdir(path):
            parts.append(path)
            path = os.path.dirname(path)
        for d in reversed(parts):
            os.mkdir(d, 0o700)
            os.chown(d, self.site.uid, self.site.gid)

    def test_stale_tmp_files_are_swept_and_links_never_followed(self):
        st = self.site.state_dir
        md = self.site.maildir(SENDER)
        for d in (os.path.join(st, "tmp"), os.path.join(md, "tmp"), os.path.join(md, ".Sent", "tmp")):
            self.mkdirs(d)
        old = [self.make_file(os.path.join(st, "tmp", "1.old"), 40),
               self.make_file(os.path.join(md, "tmp", "2.old"), 40),
               self.make_file(os.path.join(md, ".Sent", "tmp", "3.old"), 40)]
        kept = [self.make_file(os.path.join(st, "tmp", "4.fresh"), 1),
                self.make_file(os.path.join(st, "tmp", "5.day"), 30),
                self.make_file(os.path.join(st, "tmp", ".dotfile"), 40)]
        # links the mail account could plant, to a tree it could otherwise remove from
        outside = os.path.join(self.site.dir, "outside")
        self.mkdirs(os.path.join(outside, "u", "tmp"))
        kept += [self.make_file(os.path.join(outside, "u", "tmp", "6.old"), 40),
                 self.make_file(os.path.join(outside, "7.old"), 40)]
        os.symlink(outside, os.path.join(st, "mail", "evil.test"))
        self.mkdirs(os.path.join(st, "mail", "example.test", "bob"))
        os.symlink(os.path.join(outside, "u", "tmp"),
                   os.path.join(st, "mail", "example.test", "bob", "tmp"))
        link = os.path.join(st, "tmp", "8.link")
        os.symlink(os.path.join(outside, "7.old"), link)
        os.utime(link, (time.time() - 40 * 3600,) * 2, follow_symlinks=False)
        self.run_queue()
        self.assertEqual([p for p in old if os.path.exists(p)], [], "40 hours old: removed")
        self.assertEqual([p for p in kept if not os.path.exists(p)], [], "the rest is kept")
        self.assertTrue(os.path.islink(link), "a link is never removed (nor followed)")
        self.assertIn("removed 3 stale tmp files", "\n".join(self.site.syslog.lines()))
        # at most one sweep an hour (the time of state_dir/.tmp-swept)
        late = self.make_file(os.path.join(st, "tmp", "9.old"), 40)
        self.run_queue()
        self.assertTrue(os.path.exists(late), "swept less than an hour ago")
        stamp = os.path.join(st, ".tmp-swept")
        os.utime(stamp, (time.time() - 3700,) * 2)
        self.run_queue()
        self.assertFalse(os.path.exists(late), "an hour later")

    # -- §4: a slow MX holds a connection, a destination and a pass for a bounded time -----
    def test_session_limit_cuts_an_mx_that_greets_a_byte_a_minute(self):
        self.set_conf(relay_session_limit=2)
        self.sink.drip = {"127.0.0.42"}
        qid = self.inject(["x@drip.test"], message("to the drip"))
        start = time.monotonic()
        out = self.run_queue(timeout=40)  # without the limit: 300 s for the greeting alone
        self.assertLess(time.monotonic() - start, 40)
        self.assertEqual(self.sink.messages, [])
        r = self.env(qid)["rcpts"][0]
        self.assertEqual((r["state"], r["attempts"]), ("pending", 1), out)
        self.assertIn("session time limit (2 s)", r["reply"])
        self.assertGreaterEqual(r["next"], int(time.time()) + 200, "deferred as any 4xx is")

    def test_destination_limit_across_mx_hosts(self):
        # each of the three MX hosts would take its whole session limit: the destination's
        # limit ends the second session early (or leaves no time for one, on a slow machine)
        # and the third host is never tried
        self.set_conf(relay_session_limit=2, relay_destination_limit=3)
        self.sink.drip = {"127.0.0.42", "127.0.0.43", "127.0.0.44"}
        qid = self.inject(["x@drip3.test"], message("to three drips"))
        out = self.run_queue(timeout=40)
        self.assertIn("127.0.0.42", self.sink.connections, out)
        self.assertNotIn("127.0.0.44", self.sink.connections, "no time left for the third")
        r = self.env(qid)["rcpts"][0]
        self.assertEqual((r["state"], r["attempts"]), ("pending", 1), out)
        self.assertIn("time limit for drip3.test in this pass (3 s)", r["reply"])

    def start_queue(self, log):
        """queue-run -v in the background, stderr to the file log (workers left running keep
        it open: a pipe would make the caller wait for them)."""
        with open(log, "ab") as f:
            return subprocess.Popen([yubintest.program("queue-run"), "-C", self.site.conf, "-v"],
                                    stdout=subprocess.DEVNULL, stderr=f)

    def test_a_run_does_not_wait_for_stragglers(self):
        self.set_conf(queue_run_limit=2, relay_session_limit=6, relay_destination_limit=20)
        self.sink.drip = {"127.0.0.42"}
        qid = self.inject(["x@drip.test"], message("straggler"))
        self.inject(["y@remote.test"], message("quick one"))
        log = os.path.join(self.site.dir, "queue-run.log")
        start = time.monotonic()
        first = self.start_queue(log)
        self.assertEqual(first.wait(timeout=30), 0)
        self.assertLess(time.monotonic() - start, 5, "the run ended at its limit, not the "
                        "worker's: " + open(log, errors="replace").read())
        self.assertEqual(self.sink.open_now, 1, "the straggler still holds its connection")
        self.assertTrue(self.sink.wait_for(lambda: len(self.sink.messages) == 1, 10),
                        "the quick destination was served")
        # the next run finds the entry locked by the straggler and leaves it alone
        second = self.start_queue(log)
        self.assertEqual(second.wait(timeout=30), 0)
        self.assertTrue(self.sink.wait_for(lambda: self.sink.open_now == 0, 20))
        self.assertTrue(self.sink.wait_for(lambda: self.env(qid)["rcpts"][0]["attempts"], 10))
        time.sleep(1)  # the second run's worker gets the lock: the recipient is no longer due
        text = open(log, errors="replace").read()
        self.assertEqual(self.sink.connections.get("127.0.0.42"), 1, text)
        self.assertIn("run time limit (2 s) reached: ", text)
        r = self.env(qid)["rcpts"][0]
        self.assertEqual((r["state"], r["attempts"]), ("pending", 1), text)
        self.assertIn("session time limit (6 s)", r["reply"])

if __name__ == "__main__":
    unittest.main()
