"""swaks delivers through smtp-in, as an administrator would test a server from the shell.

Once with swaks's own default message under openbsd-inetd, once with a message file
(`--data @file`: LF line ends, a leading dot, 8-bit bytes) under systemd-socket-activate;
the Maildir copy is then checked byte for byte. It only ever connects to 127.0.0.1.
"""
import os
import shutil
import subprocess
import unittest

import mailcheck
import yubintest

SENDER = "admin@remote.test"
RCPT = "demo@example.test"
MESSAGE = (b"From: Admin <admin@remote.test>\n"
           b"To: Demo <demo@example.test>\n"
           b"Subject: swaks file test\n"
           b"\n"
           b"Hello from swaks.\n"
           b".leading dot, quoted by swaks and unquoted by smtp-in\n"
           b"8-bit: \xc3\xa5\xc3\xa4\xc3\xb6 \xe2\x82\xac\n"
           b"bye\n")


@unittest.skipUnless(shutil.which("swaks"), "swaks is not installed (apt-get install swaks)")
class Swaks(unittest.TestCase):
    def swaks(self, port, *extra):
        p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port),
                            "--from", SENDER, "--to", RCPT, "--helo", "admin.remote.test",
                            "--timeout", "30", *extra],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace")[-3000:])
        out = p.stdout.decode(errors="replace")
        self.assertRegex(out, r"(?m)^<[-~] +250 2\.0\.0 Ok: queued as \S+$")
        self.assertRegex(out, r"(?m)^<[-~] +221 ")
        return out

    def test_default_message_under_inetd(self):
        with yubintest.Instance() as inst:
            port = inst.serve_inetd("smtp-in")
            out = self.swaks(port)
            self.assertIn("PIPELINING", out)
            msgs = mailcheck.stored_messages(inst, RCPT)
            self.assertEqual(len(msgs), 1)
            st = msgs[0]
            mailcheck.check_stored(self, st, inst, SENDER, [RCPT], "admin.remote.test")
            self.assertEqual(st.header("To"), [RCPT])
            self.assertEqual(st.header("From"), [SENDER])
            self.assertTrue(st.header("X-Mailer")[0].startswith("swaks"))
            self.assertIn(b"\n\nThis is a test mailing\n", st.data)

    def test_message_file_under_systemd(self):
        with yubintest.Instance() as inst:
            port = inst.serve_systemd("smtp-in")
            path = os.path.join(inst.dir, "message.eml")
            with open(path, "wb") as f:
                f.write(MESSAGE)
            self.swaks(port, "--data", "@" + path, "--pipeline")
            msgs = mailcheck.stored_messages(inst, RCPT)
            self.assertEqual(len(msgs), 1)
            st = msgs[0]
            mailcheck.check_stored(self, st, inst, SENDER, [RCPT], "admin.remote.test")
            # swaks ends DATA with one more CRLF of its own after the file.
            self.assertEqual(st.after_trace(), MESSAGE + b"\n")
