"""test_relay: queue-run relaying queued mail to real SMTP servers found through real DNS.

A dnsmasq (dnsserver.py) on 127.0.0.x serves MX records for the test domains; a small SMTP
server (smtpsink.py) listens on 127.0.0.21-23 as the remote MX hosts (127.0.0.24 has nothing
listening: connections are refused). Messages are queued the way smtp-in queues them (the
queue-inject driver: data written once through lib/maildir, hard-linked into the queue), and
queue-run is run as an administrator or the timer would. Bounces arrive in the sender's
Maildir and are parsed with Python's email package as RFC 3464 reports.
"""
import atexit
import email
import email.policy
import os
import signal
import subprocess
import time
import unittest

import yubintest
from dnsserver import DNSServer
from smtpsink import SMTPSink

RECORDS = [
    "remote.test MX 10 mx.remote.test",
    "mx.remote.test A 127.0.0.21",
    "other.test MX 10 mx.other.test",
    "mx.other.test A 127.0.0.21",
    # the preferred MX refuses connections; the next one takes the mail
    "pref.test MX 10 down.pref.test",
    "pref.test MX 20 up.pref.test",
    "pref.test MX 30 last.pref.test",
    "down.pref.test A 127.0.0.24",
    "up.pref.test A 127.0.0.22",
    "last.pref.test A 127.0.0.23",
    # both MX hosts work: the lower preference gets everything (given out of order)
    "order.test MX 20 b.order.test",
    "order.test MX 10 a.order.test",
    "a.order.test A 127.0.0.22",
    "b.order.test A 127.0.0.23",
    "implicit.test A 127.0.0.23",
    # the preferred MX defers (4xx) the recipients; the backup takes them
    "grey.test MX 10 a.grey.test",
    "grey.test MX 20 b.grey.test",
    "a.grey.test A 127.0.0.22",
    "b.grey.test A 127.0.0.23",
    "nomail.test MX 0 .",
    "broken.test SERVFAIL",
    "slow.test TIMEOUT",
    # a second yubin site (smtp-in under openbsd-inetd) as the MX
    "yubin2.test MX 10 mx.yubin2.test",
    "mx.yubin2.test A 127.0.0.25",
]

SINK_ADDRS = ["127.0.0.21", "127.0.0.22", "127.0.0.23"]
SENDER = "demo@example.test"
POSTMASTER = "postmaster@example.test"


def message(subject, body="Hello.\n", msgid=None):
    msgid = msgid or f"<{subject.replace(' ', '-')}.{time.time_ns()}@example.test>"
    return (f"From: Demo <{SENDER}>\nTo: someone\nSubject: {subject}\n"
            f"Message-ID: {msgid}\nDate: Mon, 23 Nov 2026 02:00:00 +0000\n\n{body}").encode()


def parse_env(path):
    """An envelope file as a dict (the yubin-queue(5) format)."""
    out = {"rcpts": []}
    with open(path) as f:
        for line in f.read().splitlines():
            key, _, rest = line.partition(" ")
            if key == "rcpt":
                state, attempts, nxt, addr, host, *reply = rest.split(" ", 5)
                out["rcpts"].append({"state": state, "attempts": int(attempts),
                                     "next": int(nxt), "addr": addr, "host": host,
                                     "reply": reply[0] if reply else ""})
            else:
                out[key] = rest
    return out


_DNS = {}


def dns_server(records=None):
    """One dnsmasq per set of records (default: RECORDS), started on first use (tests/run runs
    each test on its own, without class fixtures) and stopped when the process exits."""
    key = tuple(records or RECORDS)
    if key not in _DNS:
        dns = DNSServer()
        dns.start(key)
        atexit.register(dns.stop)
        _DNS[key] = dns
    return _DNS[key]


class RelayTest(unittest.TestCase):
    def setUp(self):
        self.dns = dns_server()
        self.sink = SMTPSink(SINK_ADDRS)
        self.site = self.make_site()

    def make_site(self, **conf):
        settings = {"dns_resolver": self.dns.resolver, "smtp_port": str(self.sink.port),
                    "connect_timeout": "5"}
        settings.update(conf)
        return yubintest.Instance(users=(SENDER, POSTMASTER), conf=settings)

    def tearDown(self):
        self.sink.close()
        self.site.stop()

    # -- helpers --------------------------------------------------------------------------
    def inject(self, rcpts, data=None, sender=SENDER):
        p = subprocess.run(
            [os.path.join(yubintest.BUILD, "tests", "unit", "queue-inject"), "-C",
             self.site.conf, "-f", sender, *rcpts],
            input=data or message("test"), capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.decode().strip()

    def run_queue(self, *args, timeout=60, check=True):
        p = subprocess.run([yubintest.program("queue-run"), "-C", self.site.conf, "-v", *args],
                           capture_output=True, timeout=timeout)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        return p.stderr.decode(errors="replace")

    def qdir(self):
        return os.path.join(self.site.state_dir, "queue")

    def entries(self):
        d = self.qdir()
        return sorted(n[:-4] for n in os.listdir(d) if n.endswith(".env")) if os.path.isdir(
            d) else []

    def env(self, qid):
        return parse_env(os.path.join(self.qdir(), qid + ".env"))

    def edit_env(self, qid, fn):
        """Rewrites an envelope (as an administrator with an editor would, atomically)."""
        path = os.path.join(self.qdir(), qid + ".env")
        with open(path) as f:
            text = f.read()
        tmp = path + ".edit"
        with open(tmp, "w") as f:
            f.write(fn(text))
        st = os.stat(path)
        os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)

    def backdate(self, qid, seconds):
        def fn(text):
            lines = text.splitlines()
            for i, line in enumerate(lines):
                if line.startswith("created "):
                    lines[i] = f"created {int(line.split()[1]) - seconds}"
            return "\n".join(lines) + "\n"
        self.edit_env(qid, fn)

    def reports(self, address=SENDER):
        return [email.message_from_bytes(m, policy=email.policy.compat32)
                for m in self.site.messages(address)]

    def check_report(self, msg, action, status_prefix, rcpt, subject):
        """msg is a valid RFC 3464 report about rcpt, with the original header."""
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertEqual(msg["Return-Path"], "<>")
        self.assertIn("MAILER-DAEMON", msg["From"])
        parts = msg.get_payload()
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        blocks = parts[1].get_payload()
        self.assertIn("Reporting-MTA", blocks[0])
        per = [b for b in blocks[1:] if b["Final-Recipient"]]
        self.assertEqual(len(per), 1, blocks)
        self.assertEqual(per[0]["Final-Recipient"].strip(), f"rfc822; {rcpt}")
        self.assertEqual(per[0]["Action"].strip(), action)
        self.assertTrue(per[0]["Status"].strip().startswith(status_prefix), per[0]["Status"])
        headers = parts[2].get_payload()
        self.assertIn(f"Subject: {subject}", headers)
        self.assertNotIn("Return-Path", headers)
        return per[0]

    # -- delivery -------------------------------------------------------------------------
    def test_delivery_via_mx(self):
        data = message("via mx", body="Line one.\n.leading dot\n")
        qid = self.inject(["bob@remote.test", "carol@remote.test"], data)
        self.assertEqual(self.env(qid)["rcpts"][0]["state"], "pending")
        out = self.run_queue()
        self.assertEqual(len(self.sink.messages), 1, out)
        m = self.sink.messages[0]
        self.assertEqual(m.host, "127.0.0.21")
        self.assertEqual(m.sender, SENDER)
        self.assertEqual(sorted(m.rcpts), ["bob@remote.test", "carol@remote.test"])
        self.assertEqual(m.data, data.replace(b"\n", b"\r\n"), "CRLF, unstuffed, no Return-Path")
        self.assertEqual(self.entries(), [], "the entry is removed")
        self.assertEqual(os.listdir(self.qdir()), [])
        log = "\n".join(self.site.syslog.lines())
        self.assertIn("to=<bob@remote.test> delivered", log)

    def test_several_messages_per_connection_and_domain_grouping(self):
        self.site.settings["max_parallel"] = "2"  # no room for a second job per domain
        self.site.write_conf()
        for i in range(5):
            self.inject([f"u{i}@remote.test", f"u{i}@other.test"], message(f"batch {i}"))
        out = self.run_queue()
        self.assertEqual(len(self.sink.messages), 10, out)
        self.assertEqual(self.sink.connections.get("127.0.0.21"), 2,
                         "one connection per destination domain")
        self.assertEqual(self.entries(), [])

    def parallel_run(self, n):
        """n messages to remote.test through a sink that answers slowly; checks that every one
        arrived exactly once and returns (connections, most open at once)."""
        for i in range(n):
            self.inject([f"p{i}@remote.test"], message(f"parallel {i}"))
        self.sink.latency = 0.05
        out = self.run_queue(timeout=120)
        got = sorted(m.rcpts[0] for m in self.sink.messages)
        self.assertEqual(got, sorted(f"p{i}@remote.test" for i in range(n)), out)
        self.assertEqual(self.entries(), [])
        return sum(self.sink.connections.values()), self.sink.most_at_once

    def test_one_destination_uses_parallel_connections(self):
        # 40 messages, max_parallel 100: min(40, 20 per destination, 100) = 20 jobs of 2
        conns, most = self.parallel_run(40)
        self.assertEqual(conns, 20)
        self.assertGreater(most, 1, "connections to one destination overlap")
        self.assertLessEqual(most, 20, "never more than 20 at once to one destination")

    def test_parallel_connections_stay_within_max_parallel(self):
        self.site.settings["max_parallel"] = "4"
        self.site.write_conf()
        conns, most = self.parallel_run(40)
        self.assertEqual(conns, 4, "40 messages over 4 connections of 10")
        self.assertGreater(most, 1)
        self.assertLessEqual(most, 4, "never more than max_parallel at once")

    def test_preference_and_fallback_when_first_refuses(self):
        self.inject(["x@pref.test"])
        out = self.run_queue()
        self.assertEqual([m.host for m in self.sink.messages], ["127.0.0.22"], out)
        self.assertIn("down.pref.test", out)
        self.assertEqual(self.entries(), [])

    def test_lowest_preference_first(self):
        for i in range(3):
            self.inject([f"x{i}@order.test"])
        self.run_queue()
        self.assertEqual([m.host for m in self.sink.messages], ["127.0.0.22"] * 3)

    def test_implicit_mx(self):
        self.inject(["x@implicit.test"])
        out = self.run_queue()
        self.assertEqual([m.host for m in self.sink.messages], ["127.0.0.23"], out)

    def test_smarthost(self):
        self.site.settings["smarthost"] = f"127.0.0.23:{self.sink.port}"
        self.site.write_conf()
        self.inject(["a@remote.test", "b@nomail.test"])
        self.run_queue()
        self.assertEqual([m.host for m in self.sink.messages], ["127.0.0.23"])
        self.assertEqual(sorted(self.sink.messages[0].rcpts), ["a@remote.test", "b@nomail.test"])

    # -- failures and bounces -------------------------------------------------------------
    def test_null_mx_bounces_with_5_1_10(self):
        self.inject(["x@nomail.test"], message("to null mx"))
        self.run_queue()
        self.assertEqual(self.sink.messages, [])
        reps = self.reports()
        self.assertEqual(len(reps), 1)
        self.check_report(reps[0], "failed", "5.1.10", "x@nomail.test", "to null mx")
        self.assertEqual(self.entries(), [], "the original and the bounce are both done")

    def test_nxdomain_bounces(self):
        self.inject(["x@nosuchdomain.test"], message("to nowhere"))
        self.run_queue()
        reps = self.reports()
        self.assertEqual(len(reps), 1)
        self.check_report(reps[0], "failed", "5.1.2", "x@nosuchdomain.test", "to nowhere")

    def test_servfail_stays_queued(self):
        qid = self.inject(["x@broken.test"])
        before = int(time.time())
        self.run_queue()
        self.assertEqual(self.entries(), [qid])
        r = self.env(qid)["rcpts"][0]
        self.assertEqual((r["state"], r["attempts"]), ("pending", 1))
        self.assertTrue(r["reply"].startswith("4.4.3"), r)
        self.assertGreaterEqual(r["next"], before + 300)
        self.assertEqual(self.reports(), [])
        # not due yet: another run leaves it alone
        self.run_queue()
        self.assertEqual(self.env(qid)["rcpts"][0]["attempts"], 1)
        mailq = subprocess.run([yubintest.program("mailq"), "-C", self.site.conf],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(mailq.returncode, 0, mailq.stderr)
        self.assertIn(qid, mailq.stdout)
        self.assertIn("<x@broken.test>  pending  attempts 1", mailq.stdout)
        self.assertIn("from <demo@example.test>", mailq.stdout)

    def test_remote_4xx_retry_then_success(self):
        self.sink.rcpt_reply = lambda host, rcpt: "451 4.7.1 greylisted, try later"
        qid = self.inject(["grey@remote.test"])
        self.run_queue()
        r = self.env(qid)["rcpts"][0]
        self.assertEqual((r["state"], r["attempts"]), ("pending", 1))
        self.assertIn("451 4.7.1 greylisted", r["reply"])
        self.assertEqual(r["host"], "mx.remote.test")
        self.assertEqual(self.sink.messages, [])
        mailq = subprocess.run([yubintest.program("mailq"), "-C", self.site.conf],
                               capture_output=True, text=True, timeout=30)
        self.assertRegex(mailq.stdout, r"<grey@remote.test>  pending  attempts 1  next [45]m  "
                         r"last from mx.remote.test: 451 4.7.1 greylisted, try later\n")
        self.sink.rcpt_reply = lambda host, rcpt: None
        self.run_queue()
        self.assertEqual(self.sink.messages, [], "not due yet")
        self.run_queue("-f")
        self.assertEqual(len(self.sink.messages), 1)
        self.assertEqual(self.entries(), [])
        self.assertEqual(self.reports(), [])

    def test_4xx_tries_the_next_mx(self):
        self.sink.rcpt_reply = (lambda host, rcpt: "451 4.7.1 greylisted"
                                if host == "127.0.0.22" else None)
        self.site.settings["max_parallel"] = "1"  # the three messages in one job
        self.site.write_conf()
        for i in range(3):
            self.inject([f"g{i}@grey.test"], message(f"grey {i}"))
        out = self.run_queue()
        self.assertEqual([m.host for m in self.sink.messages], ["127.0.0.23"] * 3, out)
        self.assertEqual(self.sink.connections, {"127.0.0.22": 1, "127.0.0.23": 1},
                         "one connection to each, kept for the job")
        self.assertEqual(self.entries(), [])

    def test_4xx_everywhere_keeps_the_last_reply(self):
        self.sink.rcpt_reply = lambda host, rcpt: f"452 4.2.2 full at {host}"
        qid = self.inject(["g@grey.test"])
        self.run_queue()
        r = self.env(qid)["rcpts"][0]
        self.assertEqual((r["state"], r["host"]), ("pending", "b.grey.test"))
        self.assertEqual(r["reply"], "452 4.2.2 full at 127.0.0.23")

    def test_remote_5xx_bounces_valid_rfc3464(self):
        self.sink.rcpt_reply = (lambda host, rcpt: "550 5.1.1 <nobody@remote.test>: no such user"
                                if rcpt.startswith("nobody") else None)
        self.inject(["nobody@remote.test", "bob@remote.test"], message("partly bad"))
        self.run_queue()
        self.assertEqual(len(self.sink.messages), 1)
        self.assertEqual(self.sink.messages[0].rcpts, ["bob@remote.test"])
        reps = self.reports()
        self.assertEqual(len(reps), 1)
        per = self.check_report(reps[0], "failed", "5.1.1", "nobody@remote.test", "partly bad")
        self.assertIn("550 5.1.1", per["Diagnostic-Code"])
        self.assertIn("mx.remote.test", per["Remote-MTA"] or "")
        self.assertEqual(reps[0]["To"].strip("<> "), SENDER)
        self.assertEqual(self.entries(), [])

    def test_remote_5xx_after_data(self):
        self.sink.data_reply = lambda host, msg: "554 5.7.1 rejected as spam"
        self.inject(["bob@remote.test"], message("spammy"))
        self.run_queue()
        reps = self.reports()
        self.assertEqual(len(reps), 1)
        self.check_report(reps[0], "failed", "5.7.1", "bob@remote.test", "spammy")

    def test_expiry_bounces(self):
        self.sink.rcpt_reply = lambda host, rcpt: "451 4.3.0 not now"
        qid = self.inject(["late@remote.test"], message("too late"))
        self.backdate(qid, 6 * 86400)
        self.run_queue()
        reps = [r for r in self.reports() if "failed" in str(r)]
        self.assertEqual(len(reps), 1)
        per = self.check_report(reps[0], "failed", "5.4.7", "late@remote.test", "too late")
        self.assertIn("451 4.3.0", str(per))
        self.assertEqual(self.entries(), [])

    def test_delay_warning_once(self):
        self.site.settings["delay_warning"] = "60"
        self.site.write_conf()
        self.sink.rcpt_reply = lambda host, rcpt: "451 4.3.0 not now"
        qid = self.inject(["slow@remote.test"], message("slow one"))
        self.backdate(qid, 120)
        self.run_queue()
        reps = self.reports()
        self.assertEqual(len(reps), 1)
        self.check_report(reps[0], "delayed", "4.", "slow@remote.test", "slow one")
        self.assertIn("warned", self.env(qid)["flags"])
        self.run_queue("-f")
        self.assertEqual(len(self.reports()), 1, "one warning per entry")
        self.assertEqual(self.entries(), [qid])

    def test_no_bounce_for_null_sender(self):
        self.sink.rcpt_reply = lambda host, rcpt: "550 5.1.1 no such user"
        self.inject(["nobody@remote.test"], message("a bounce"), sender="")
        self.run_queue()
        self.assertEqual(self.entries(), [])
        self.assertEqual(self.reports(), [])
        self.assertEqual(self.reports(POSTMASTER), [])
        self.assertIn("no bounce for a null sender", "\n".join(self.site.syslog.lines()))

    def test_failed_bounce_goes_to_postmaster_once(self):
        self.sink.rcpt_reply = lambda host, rcpt: "550 5.1.1 no such user"
        self.inject(["nobody@remote.test"], message("double"), sender="gone@remote.test")
        self.run_queue()
        reps = self.reports(POSTMASTER)
        self.assertEqual(len(reps), 1)
        self.check_report(reps[0], "failed", "5.1.1", "gone@remote.test",
                          "Undelivered Mail Returned to Sender")
        self.assertEqual(self.entries(), [])

    def test_local_recipient_in_queue(self):
        data = message("local retry")
        self.inject([SENDER], data)
        self.run_queue()
        msgs = self.site.messages(SENDER)
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].startswith(b"Return-Path: <demo@example.test>\n"))
        self.assertTrue(msgs[0].endswith(data))
        self.assertEqual(self.entries(), [])

    def test_relay_to_a_second_yubin_site(self):
        remote = yubintest.Instance(domains=("yubin2.test",), users=("bob@yubin2.test",),
                                    hostname="mx.yubin2.test")
        try:
            port = remote.serve_inetd("smtp-in", host="127.0.0.25")
            site = self.make_site(smtp_port=str(port))
            self.site.stop()
            self.site = site
            data = message("yubin to yubin", body="Hi Bob.\n.dot line\n")
            self.inject(["bob@yubin2.test", "nobody@yubin2.test"], data)
            out = self.run_queue()
            got = remote.messages("bob@yubin2.test")
            self.assertEqual(len(got), 1, out)
            self.assertTrue(got[0].startswith(b"Return-Path: <demo@example.test>\n"), got[0])
            self.assertIn(b"Received: from mx.example.test", got[0])
            self.assertTrue(got[0].endswith(data), "the same bytes, LF on disk, dot unstuffed")
            reps = self.reports()
            self.assertEqual(len(reps), 1, out)
            per = self.check_report(reps[0], "failed", "5.1.1", "nobody@yubin2.test",
                                    "yubin to yubin")
            self.assertIn("mx.yubin2.test", per["Remote-MTA"])
            self.assertEqual(self.entries(), [])
        finally:
            remote.stop()

    def test_unknown_local_recipient_in_queue_bounces(self):
        self.inject(["ghost@example.test"], message("to a ghost"))
        self.run_queue()
        reps = self.reports()
        self.assertEqual(len(reps), 1)
        self.check_report(reps[0], "failed", "5.1.1", "ghost@example.test", "to a ghost")

    def test_mailq_as_each_user(self):
        mailq = [yubintest.program("mailq"), "-C", self.site.conf]
        p = subprocess.run(mailq, capture_output=True, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout), (0, "Mail queue is empty\n"))
        qid = self.inject(["x@broken.test"], message("listed"))
        if os.geteuid() != 0:
            self.skipTest("needs root to run mailq as other accounts")
        p = subprocess.run(["runuser", "-u", self.site.account, "--", *mailq],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(qid, p.stdout)
        self.assertRegex(p.stdout, r"\d+ bytes  age \d+s  from <demo@example.test>")
        p = subprocess.run(["runuser", "-u", "nobody", "--", *mailq],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 77, "another account cannot read the queue")
        self.assertIn("cannot read", p.stderr)

    # -- concurrency and crashes ------------------------------------------------------------
    def test_two_concurrent_runs_deliver_once(self):
        ids = [self.inject([f"r{i}@remote.test", f"r{i}@other.test"], message(f"conc {i}"))
               for i in range(40)]
        self.sink.latency = 0.01
        argv = [yubintest.program("queue-run"), "-C", self.site.conf]
        procs = [subprocess.Popen(argv, stderr=subprocess.PIPE) for _ in range(2)]
        for p in procs:
            p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0)
        self.assertEqual(self.entries(), [])
        seen = sorted((tuple(m.rcpts), m.data.split(b"Subject: ")[1].split(b"\r\n")[0])
                      for m in self.sink.messages)
        self.assertEqual(len(seen), 80, "every message once per destination")
        self.assertEqual(len(set(seen)), 80, "none twice")
        self.assertEqual(len(ids), 40)

    def test_one_slow_host_does_not_hold_up_the_rest(self):
        self.inject(["slow@order.test"], message("to the slow host"))
        for i in range(3):
            self.inject([f"fast{i}@remote.test"], message(f"fast {i}"))
        self.sink.stall = {"127.0.0.22"}
        p = subprocess.Popen([yubintest.program("queue-run"), "-C", self.site.conf],
                             stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            self.assertTrue(self.sink.stalled.wait(30))
            self.assertTrue(self.sink.wait_for(lambda: len(self.sink.messages) == 3, 30),
                            "the other destination is served while one host stalls")
            self.assertIsNone(p.poll())
            self.sink.release.set()
            p.wait(timeout=60)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        # the stalled host hung up without an answer: the next MX took it
        self.assertEqual(self.sink.messages[-1].host, "127.0.0.23")
        self.assertEqual(self.sink.messages[-1].rcpts, ["slow@order.test"])
        self.assertEqual(self.entries(), [])

    def test_slow_dns_does_not_hold_up_the_rest(self):
        qid = self.inject(["x@slow.test"], message("slow zone"))
        self.inject(["y@remote.test"], message("quick zone"))
        start = time.monotonic()
        p = subprocess.Popen([yubintest.program("queue-run"), "-C", self.site.conf],
                             stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            self.assertTrue(self.sink.wait_for(lambda: len(self.sink.messages) == 1, 30))
            quick = time.monotonic() - start
            p.wait(timeout=60)
            whole = time.monotonic() - start
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.assertLess(quick, 3, "delivered while the other zone's lookup was timing out")
        self.assertGreater(whole, 5, "the slow lookup did take its timeout")
        r = self.env(qid)["rcpts"][0]
        self.assertEqual(r["state"], "pending")
        self.assertTrue(r["reply"].startswith("4.4.3"), r)

    def test_killed_mid_delivery_loses_nothing(self):
        first = self.inject(["a@remote.test"], message("first"))
        self.run_queue()
        self.assertEqual(len(self.sink.messages), 1)
        qid = self.inject(["b@remote.test"], message("second"))
        self.sink.stall = True
        p = subprocess.Popen([yubintest.program("queue-run"), "-C", self.site.conf],
                             stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            self.assertTrue(self.sink.stalled.wait(30), "the sink saw the message")
        finally:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        self.sink.release.set()
        self.assertEqual(self.entries(), [qid], "still queued after the kill")
        self.assertEqual(self.env(qid)["rcpts"][0]["state"], "pending")
        self.sink.stall = False
        self.run_queue("-f")
        self.assertEqual(sorted(m.rcpts[0] for m in self.sink.messages),
                         ["a@remote.test", "b@remote.test"], "each once")
        self.assertEqual(self.entries(), [])
        self.assertNotEqual(first, qid)


if __name__ == "__main__":
    unittest.main()
