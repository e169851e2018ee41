"""test_queue_limits: queue-run against hostile or odd next hops (issue 8 §4, §5, §7).

A dnsmasq (dnsserver.py) serves the MX records below; smtpsink.py listens on 127.0.0.41-44 as
the remote MX hosts and can drip its greeting one byte a minute or refuse recipients over a
count with 452. Messages are queued with the queue-inject driver as smtp-in queues them and
queue-run is run as the timer would run it, with small limits in yubin.conf so that every test
stays short. Nothing here contacts anything but 127.0.0.0/8.
"""
import os
import subprocess
import unittest

import yubintest
from smtpsink import SMTPSink
import test_relay
from test_relay import message

RECORDS = [
    "remote.test MX 10 mx.remote.test",
    "mx.remote.test A 127.0.0.41",
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


if __name__ == "__main__":
    unittest.main()
