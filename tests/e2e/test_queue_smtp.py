"""test_queue_smtp: the whole outbound path as a user sees it — smtplib -> smtp-in (under
openbsd-inetd) -> the queue -> queue-run, started by smtp-in itself, detached -> the remote MX
(an SMTP sink on 127.0.0.21, found through dnsmasq).

Nobody runs queue-run by hand here: the message must arrive because smtp-in started it. While
the remote host holds the message, the queue entry's data and the local recipient's Maildir
copy must be one file (one data write, hard-linked). Skipped while smtp-in does not queue
relay recipients yet.
"""
import os
import smtplib
import time
import unittest

import yubintest
from dnsserver import DNSServer
from smtpsink import SMTPSink

RECORDS = ["remote.test MX 10 mx.remote.test", "mx.remote.test A 127.0.0.21"]


class SmtpToQueue(unittest.TestCase):
    def setUp(self):
        self.dns = DNSServer()
        self.dns.start(RECORDS)
        self.sink = SMTPSink(["127.0.0.21"])
        self.site = yubintest.Instance(users=("demo@example.test",), conf={
            "dns_resolver": self.dns.resolver, "smtp_port": str(self.sink.port),
            "connect_timeout": "5", "relay_networks": "127.0.0.0/8"})
        self.port = self.site.serve_inetd("smtp-in")

    def tearDown(self):
        self.sink.close()
        self.site.stop()
        self.dns.stop()

    def send(self, rcpts, subject):
        msg = (f"From: demo@example.test\r\nTo: bob@remote.test\r\nSubject: {subject}\r\n"
               f"Message-ID: <{subject}.{time.time_ns()}@example.test>\r\n\r\nHello.\r\n")
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as c:
            c.ehlo("client.example.test")
            c.mail("demo@example.test")
            for r in rcpts:
                code, text = c.rcpt(r)
                self.assertEqual(code, 250, text)
            code, text = c.data(msg.encode())
            self.assertEqual(code, 250, text)
        return msg

    def queue_files(self):
        q = os.path.join(self.site.state_dir, "queue")
        return sorted(os.listdir(q)) if os.path.isdir(q) else []

    def test_smtp_in_starts_queue_run(self):
        self.send(["bob@remote.test", "carol@remote.test"], "detached")
        self.assertTrue(self.sink.wait_for(lambda: len(self.sink.messages) == 1, 20),
                        "\n".join(self.site.syslog.lines()))
        m = self.sink.messages[0]
        self.assertEqual(sorted(m.rcpts), ["bob@remote.test", "carol@remote.test"])
        self.assertEqual(m.sender, "demo@example.test")
        self.assertIn(b"Received: from client.example.test", m.data)
        self.assertNotIn(b"Return-Path", m.data)
        self.assertTrue(self.sink.wait_for(lambda: self.queue_files() == [], 10),
                        self.queue_files())

    def test_one_data_file_for_local_and_remote(self):
        self.sink.stall = True
        self.send(["demo@example.test", "bob@remote.test"], "linked")
        self.assertTrue(self.sink.stalled.wait(20))
        msgs = [n for n in self.queue_files() if n.endswith(".msg")]
        self.assertEqual(len(msgs), 1)
        qst = os.stat(os.path.join(self.site.state_dir, "queue", msgs[0]))
        names = self.site.message_names("demo@example.test")
        self.assertEqual(len(names), 1)
        mst = os.stat(os.path.join(self.site.maildir("demo@example.test"), "new", names[0]))
        self.assertEqual(qst.st_ino, mst.st_ino, "the queue links the Maildir's data")
        self.sink.stall = False
        self.sink.release.set()  # the stalled session hangs up; the entry stays for later


if __name__ == "__main__":
    unittest.main()
