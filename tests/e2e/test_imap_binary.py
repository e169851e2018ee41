"""BINARY (RFC 3516) of a whole message with imaplib over a real socket (issue 10): BINARY[]
and BINARY.SIZE[] of a message whose body is its only part decode that body's base64 or
quoted-printable (its header then says "Content-Transfer-Encoding: binary"), as BINARY[1]
does; an encoding imap4-in cannot decode (x-uuencode) is NO [UNKNOWN-CTE] for BINARY[],
BINARY.SIZE[] and BINARY[1] alike, with nothing of the message sent; BINARY[] of a multipart
message is the message as it is (a multipart's own encoding can only be 7bit, 8bit or binary,
RFC 2045 §6.4); BODY[] is never decoded. Only 127.0.0.1 is contacted.
"""
import base64
import imaplib
import unittest

import yubintest

DEMO = "demo@example.test"
DATA = bytes(range(1, 256)).replace(b"\n", b"").replace(b"\r", b"") + b"\0end"
B64 = (b"From: ann@remote.test\nSubject: b64\nMIME-Version: 1.0\n"
       b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
       + base64.encodebytes(DATA))
QP = (b"From: ann@remote.test\nSubject: qp\nContent-Transfer-Encoding: Quoted-Printable\n"
      b"Content-Type: text/plain; charset=utf-8\n\ncaf=C3=A9 =3D soft=\nbreak\n")
UU = (b"From: ann@remote.test\nSubject: uu\nContent-Transfer-Encoding: x-uuencode\n\n"
      b"begin 644 x\n#86)C\n`\nend\n")
MULTI = (b"From: ann@remote.test\nSubject: multi\nMIME-Version: 1.0\n"
         b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
         b"Content-Transfer-Encoding: base64\n\naGVsbG8=\n--b--\n")
B64_HEADER = (b"Content-Transfer-Encoding: binary\r\nFrom: ann@remote.test\r\nSubject: b64\r\n"
              b"MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n\r\n")
QP_HEADER = (b"Content-Transfer-Encoding: binary\r\nFrom: ann@remote.test\r\nSubject: qp\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\n\r\n")


class WholeMessage(unittest.TestCase):
    def setUp(self):
        self.inst = yubintest.Instance(users=(DEMO,))
        self.addCleanup(self.inst.stop)
        for data in (B64, QP, UU, MULTI):  # sequence numbers 1 2 3 4
            self.inst.add_message(DEMO, data)
        self.port = self.inst.serve_inetd("imap4-in")
        self.c = imaplib.IMAP4("127.0.0.1", self.port, timeout=60)
        self.addCleanup(yubintest.imap_logout_quietly, self.c)
        self.assertEqual(self.c.login(DEMO, "demo")[0], "OK")
        self.assertEqual(self.c.select("INBOX")[0], "OK")

    def fetch(self, seq, items):
        typ, data = self.c.fetch(seq, items)
        self.assertEqual(typ, "OK", data)
        return data[0]

    def test_base64_body_decoded(self):
        head, body = self.fetch("1", "(BINARY.SIZE[] BINARY.PEEK[])")
        self.assertEqual(body, B64_HEADER + DATA)
        self.assertIn(b"BINARY.SIZE[] %d " % len(body), head)
        self.assertTrue(head.endswith(b"BINARY[] ~{%d}" % len(body)), "a NUL: literal8")
        self.assertEqual(self.fetch("1", "(BINARY.PEEK[1])")[1], DATA, "as BINARY[1]")
        _, part = self.fetch("1", "(BINARY.PEEK[]<%d.8>)" % len(B64_HEADER))
        self.assertEqual(part, DATA[:8], "a partial counts decoded octets")
        self.assertEqual(self.fetch("1", "(BODY.PEEK[])")[1], B64.replace(b"\n", b"\r\n"),
                         "BODY[] is the message as it is")

    def test_quoted_printable_body_decoded(self):
        head, body = self.fetch("2", "(BINARY.SIZE[] BINARY.PEEK[])")
        self.assertEqual(body, QP_HEADER + "café = softbreak\r\n".encode())
        self.assertIn(b"BINARY.SIZE[] %d " % len(body), head)
        self.assertTrue(head.endswith(b"BINARY[] {%d}" % len(body)), "no NUL: a literal")
        flags = self.fetch("2", "(FLAGS)")
        self.assertNotIn(b"\\Seen", flags, "PEEK")
        self.fetch("2", "(BINARY[])")
        self.assertIn(b"\\Seen", self.fetch("2", "(FLAGS)"), "BINARY[] sets \\Seen")

    def test_unknown_encoding_is_refused(self):
        for item in ("BINARY.PEEK[]", "BINARY.SIZE[]", "BINARY.PEEK[1]", "BINARY[]<0.4>"):
            typ, data = self.c.fetch("3", f"({item})")
            self.assertEqual(typ, "NO", item)
            self.assertIn(b"[UNKNOWN-CTE]", data[0], item)
            self.assertNotIn(3, [int(x.split()[0]) for x in
                                 self.c.untagged_responses.pop("FETCH", [])
                                 if isinstance(x, bytes)], f"{item}: nothing of it sent")
        self.assertNotIn(b"\\Seen", self.fetch("3", "(FLAGS)"), "a refused BINARY[] reads "
                         "nothing, so sets no \\Seen")
        self.assertEqual(self.fetch("3", "(BODY.PEEK[TEXT])")[1],
                         b"begin 644 x\r\n#86)C\r\n`\r\nend\r\n", "BODY[] is still served")
        data = self.fetch("1:2", "(BINARY.SIZE[])")
        self.assertIn(b"BINARY.SIZE[]", data)

    def test_multipart_as_it_is(self):
        head, body = self.fetch("4", "(BINARY.SIZE[] BINARY.PEEK[])")
        self.assertEqual(body, MULTI.replace(b"\n", b"\r\n"))
        self.assertIn(b"BINARY.SIZE[] %d " % len(body), head)
        self.assertEqual(self.fetch("4", "(BINARY.PEEK[1])")[1], b"hello", "its part decoded")


if __name__ == "__main__":
    unittest.main()
