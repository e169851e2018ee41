"""FETCH through imap4-in with Python's imaplib (issue 10 §2; lib/imapfetch behind lib/imapcmd):
a MIME message's BODYSTRUCTURE and ENVELOPE, numbered sections and .MIME, partial fetches,
BINARY decoding base64 with NUL octets (literal8) and quoted-printable, BINARY.SIZE, a part
whose encoding cannot be decoded answered NO [UNKNOWN-CTE], \\Seen set by BODY[] and shown in
the same response but not by BODY.PEEK nor in an EXAMINEd folder, and a 3 MB message whose
BODY[] is the stored file with CRLF, octet for octet. Only 127.0.0.1 is contacted.
"""
import base64
import imaplib
import unittest

import yubintest

DEMO = "demo@example.test"
BLOB = bytes(range(256)) * 3
MIME = (b"From: Ann <ann@remote.test>\n"
        b"To: demo@example.test\n"
        b"Subject: parts\n"
        b"Content-Type: multipart/mixed; boundary=zz\n"
        b"\n"
        b"--zz\n"
        b"Content-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: quoted-printable\n"
        b"\n"
        b"caf=C3=A9 soft=\n"
        b"break\n"
        b"--zz\n"
        b"Content-Type: application/octet-stream\n"
        b"Content-Transfer-Encoding: base64\n"
        b"\n" + base64.encodebytes(BLOB) +
        b"--zz\n"
        b"Content-Type: application/x-old\n"
        b"Content-Transfer-Encoding: x-uuencode\n"
        b"\n"
        b"begin 644 x\n"
        b"--zz--\n")
BIG = b"Subject: big\n\n" + b"".join(b"line %07d of a big message\n" % i for i in range(110000))


class ImapFetch(unittest.TestCase):
    def setUp(self):
        self.inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(self.inst.stop)
        self.inst.add_message(DEMO, MIME)
        self.inst.add_message(DEMO, BIG)
        self.port = self.inst.serve_inetd("imap4-in")

    def client(self, readonly=False):
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=60)
        self.addCleanup(yubintest.imap_logout_quietly, c)
        self.assertEqual(c.login(DEMO, "demo")[0], "OK")
        self.assertEqual(c.select("INBOX", readonly=readonly)[0], "OK")
        return c

    def fetch(self, c, what, msg="1"):
        typ, data = c.fetch(msg, what)
        self.assertEqual(typ, "OK", data)
        return data

    def test_structure_and_sections(self):
        c = self.client()
        data = self.fetch(c, "(BODYSTRUCTURE ENVELOPE)")[0]
        self.assertIn(b'("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 22 2 '
                      b'NIL NIL NIL NIL)', data)
        self.assertIn(b'"mixed" ("boundary" "zz")', data)
        self.assertIn(b'ENVELOPE (NIL "parts" (("Ann" NIL "ann" "remote.test"))', data)
        data = self.fetch(c, "(BODY.PEEK[1.MIME] BODY.PEEK[1]<0.8> BODY.PEEK[HEADER.FIELDS "
                             "(subject)])")
        parts = {}  # b"1 (BODY[1.MIME] {85}", b" BODY[1]<0> {8}", ...: name -> octets
        for d in data:
            if isinstance(d, tuple):
                name = d[0].rsplit(b" {", 1)[0].strip()
                parts[name[3:] if name.startswith(b"1 (") else name] = d[1]
        self.assertEqual(parts[b"BODY[1.MIME]"], b"Content-Type: text/plain; charset=utf-8\r\n"
                         b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
        self.assertEqual(parts[b"BODY[1]<0>"], b"caf=C3=A")
        self.assertEqual(parts[b"BODY[HEADER.FIELDS (SUBJECT)]"], b"Subject: parts\r\n\r\n")

    def test_binary(self):
        c = self.client()
        data = self.fetch(c, "(BINARY.SIZE[2] BINARY.PEEK[2] BINARY.PEEK[1])")
        self.assertIn(b"BINARY.SIZE[2] %d " % len(BLOB), data[0][0])
        self.assertTrue(data[0][0].endswith(b"BINARY[2] ~{%d}" % len(BLOB)), data[0][0])
        self.assertEqual(data[0][1], BLOB, "base64 decoded, NULs and all, as literal8")
        self.assertEqual(data[1][1], "café softbreak".encode(), "quoted-printable decoded")
        typ, data = c.fetch("1", "(UID BINARY.PEEK[3])")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[UNKNOWN-CTE]", data[0])
        self.assertEqual(self.fetch(c, "(BODY.PEEK[3])")[0][1], b"begin 644 x",
                         "BODY[] sends what BINARY cannot decode, as it is")

    def test_seen(self):
        c = self.client(readonly=True)
        self.fetch(c, "(BODY[TEXT]<0.4>)")
        self.assertNotIn(b"\\Seen", self.fetch(c, "(FLAGS)")[0], "EXAMINE: no \\Seen")
        c = self.client()
        self.fetch(c, "(BODY.PEEK[])")
        self.assertNotIn(b"\\Seen", self.fetch(c, "(FLAGS)")[0], "PEEK: no \\Seen")
        data = self.fetch(c, "(BODY[TEXT]<0.4>)")
        self.assertIn(b"FLAGS (\\Seen)", data[1], "the FLAGS change in the same response")
        self.assertIn(b"\\Seen", self.fetch(c, "(FLAGS)")[0])
        c.logout()
        c = self.client()
        self.assertIn(b"\\Seen", self.fetch(c, "(FLAGS)")[0], "set on disk")

    def test_big_body_octet_for_octet(self):
        c = self.client()
        data = self.fetch(c, "(RFC822.SIZE BODY.PEEK[])", "2")
        want = BIG.replace(b"\n", b"\r\n")
        self.assertIn(b"RFC822.SIZE %d " % len(want), data[0][0])
        self.assertEqual(len(data[0][1]), len(want))
        self.assertEqual(data[0][1], want)
        data = self.fetch(c, "(BODY.PEEK[TEXT]<3000000.100000>)", "2")
        self.assertEqual(data[0][1], want[len(b"Subject: big\r\n\r\n") + 3000000:][:100000])


if __name__ == "__main__":
    unittest.main()
