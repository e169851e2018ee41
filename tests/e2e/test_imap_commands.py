"""test_imap_commands: imap4-in's folder and message commands with Python's imaplib, over
STARTTLS on the imap port and implicit TLS (IMAP4_SSL, -T) under openbsd-inetd: LIST (patterns,
SPECIAL-USE, LIST-EXTENDED, LIST-STATUS), LSUB, STATUS, CREATE, DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, APPEND (flags, date, APPENDUID, LITERAL+, a literal too large), FETCH, STORE,
SEARCH, COPY, MOVE and their UID forms, each with its error cases (bad sequence sets, wrong
state, a folder that does not exist, a bad charset), and what a second session is told of the
first one's changes. Nothing but 127.0.0.1 is contacted.
"""
import imaplib
import os
import re
import socket
import ssl
import time
import unittest

import yubintest

PASSWORD = "demo"
USERS = tuple(f"{n}@example.test" for n in
              ("folders", "append", "msgs", "tls", "two", "state", "utf7", "raw"))
TIMEOUT = 30
MSGS = [
    b"From: Alice <alice@remote.test>\nTo: msgs@example.test\nSubject: first\n"
    b"Date: Tue, 1 Dec 2026 10:00:00 +0000\nMessage-ID: <1@remote.test>\n\nHello one.\n",
    b"From: Bob <bob@remote.test>\nTo: msgs@example.test\nSubject: second one\n\n"
    b"The body of the second.\n",
    b"From: Carol <carol@remote.test>\nSubject: third\nContent-Type: text/plain\n\n"
    b"needle in the third body\n",
]


def crlf(data):
    return data.replace(b"\n", b"\r\n")


def quietly(c):
    try:
        c.logout()
    except (imaplib.IMAP4.error, OSError, EOFError):
        pass


def tagged(c, typ, data):
    """The text of a tagged reply as imaplib returns it."""
    return typ, b" ".join(d if isinstance(d, bytes) else b"" for d in data if d is not None)


class Site:
    """One site for the whole module: a certificate, imap4-in under openbsd-inetd on a
    STARTTLS port and an implicit TLS port."""
    inst = None

    @classmethod
    def get(cls):
        if cls.inst is None:
            inst = yubintest.Instance(users=USERS, conf={"max_message_size": "100000",
                                                              "max_errors": "100"})
            cls.cert = inst.use_tls()
            cls.port = inst.serve_inetd("imap4-in")
            cls.ssl_port = inst.serve_inetd("imap4-in", "-T")
            cls.inst = inst
        return cls

    @classmethod
    def stop(cls):
        if cls.inst is not None:
            cls.inst.stop()
            cls.inst = None


def tearDownModule():
    Site.stop()


class ImapTest(unittest.TestCase):
    def setUp(self):
        self.site = Site.get()
        self.inst = self.site.inst

    def context(self):
        return ssl.create_default_context(cafile=self.site.cert)

    def login(self, user, implicit=False):
        if implicit:
            c = imaplib.IMAP4_SSL("127.0.0.1", self.site.ssl_port, ssl_context=self.context(),
                                  timeout=TIMEOUT)
        else:
            c = imaplib.IMAP4("127.0.0.1", self.site.port, timeout=TIMEOUT)
            c.starttls(self.context())
        c.login(user, PASSWORD)
        self.addCleanup(quietly, c)
        return c

    def cmd(self, c, name, *args):
        """A command imaplib has no method for (or whose state check is in the way): the
        tagged status and text, the untagged responses left in c.untagged_responses."""
        tag = c._command(name, *args)
        typ, data = c._command_complete(name, tag)
        return tagged(c, typ, data)

    def untagged(self, c, name):
        return c.untagged_responses.pop(name, [])


class Folders(ImapTest):
    USER = "folders@example.test"

    def test_list_special_use(self):
        c = self.login(self.USER)
        typ, data = c.list()
        self.assertEqual(typ, "OK")
        lines = [d.decode() for d in data]
        self.assertEqual(lines[0], '(\\HasNoChildren) "." "INBOX"')
        for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
            self.assertIn(f'(\\HasNoChildren \\{name}) "." "{name}"', lines)
        typ, data = c.list('""', '""')
        self.assertEqual(data, [b'(\\Noselect) "." ""'])
        typ, data = c.list('""', "inbox")
        self.assertEqual(data, [b'(\\HasNoChildren) "." "INBOX"'])
        self.assertEqual(self.cmd(c, "LIST", '(SPECIAL-USE) "" *')[0], "OK")
        special = [d.decode() for d in self.untagged(c, "LIST")]
        self.assertEqual(len(special), 5, special)
        self.assertFalse(any("INBOX" in s for s in special))

    def test_create_rename_delete(self):
        c = self.login(self.USER)
        self.assertEqual(c.create("Projects.2026")[0], "OK")
        typ, data = c.list('""', "%")
        self.assertIn(b'(\\HasChildren) "." "Projects"', data)
        self.assertNotIn(b"Projects.2026", b" ".join(data))
        typ, data = c.list("Projects.", "%")
        self.assertEqual(data, [b'(\\HasNoChildren) "." "Projects.2026"'])
        typ, data = tagged(c, *c.create("Projects.2026"))
        self.assertEqual(typ, "NO")
        self.assertIn(b"[ALREADYEXISTS]", data)
        self.assertEqual(tagged(c, *c.create("INBOX"))[0], "NO")
        self.assertEqual(c.create("Trailing.")[0], "OK")
        self.assertEqual(c.list('""', "Trailing")[1], [b'(\\HasNoChildren) "." "Trailing"'])
        typ, data = tagged(c, *c.create('"a*b"'))
        self.assertEqual(typ, "NO")

        self.assertEqual(c.rename("Projects.2026", "Projects.2027")[0], "OK")
        self.assertEqual(c.list("Projects.", "*")[1], [b'(\\HasNoChildren) "." "Projects.2027"'])
        typ, data = tagged(c, *c.rename("Nowhere", "Else"))
        self.assertEqual(typ, "NO")
        self.assertIn(b"[NONEXISTENT]", data)
        typ, data = tagged(c, *c.rename("Trailing", "Sent"))
        self.assertIn(b"[ALREADYEXISTS]", data)

        typ, data = tagged(c, *c.delete("Projects"))
        self.assertEqual(typ, "NO", "a folder with children is not deleted")
        self.assertIn(b"[HASCHILDREN]", data)
        self.assertEqual(c.delete("Projects.2027")[0], "OK")
        self.assertEqual(c.delete("Projects")[0], "OK")
        self.assertEqual(tagged(c, *c.delete("INBOX"))[0], "NO")
        typ, data = tagged(c, *c.delete("Projects"))
        self.assertIn(b"[NONEXISTENT]", data)
        self.assertEqual(c.list('""', "Projects*")[1], [None])

    def test_subscriptions(self):
        c = self.login(self.USER)
        self.assertEqual(c.subscribe("Sent")[0], "OK")
        self.assertEqual(c.subscribe("Lists.imap")[0], "OK", "a name that is no folder")
        typ, data = c.lsub('""', "*")
        self.assertIn(b'() "." "Sent"', data)
        self.assertIn(b'(\\Noselect) "." "Lists.imap"', data)
        typ, data = c.lsub('""', "%")
        self.assertIn(b'(\\Noselect) "." "Lists"', data)
        self.assertEqual(self.cmd(c, "LIST", '"" * RETURN (SUBSCRIBED)')[0], "OK")
        lines = self.untagged(c, "LIST")
        self.assertIn(b'(\\HasNoChildren \\Subscribed \\Sent) "." "Sent"', lines)
        self.assertEqual(self.cmd(c, "LIST", '(SUBSCRIBED) "" *')[0], "OK")
        self.assertIn(b'(\\NonExistent \\Subscribed) "." "Lists.imap"',
                      self.untagged(c, "LIST"))
        self.assertEqual(c.unsubscribe("Lists.imap")[0], "OK")
        self.assertNotIn(b"Lists.imap", b" ".join(x or b"" for x in c.lsub('""', "*")[1]))
        typ, data = tagged(c, *c.subscribe('"bad&"'))
        self.assertEqual(typ, "NO")

    def test_status_and_list_status(self):
        user = self.USER
        self.inst.add_message(user, MSGS[0])
        self.inst.add_message(user, MSGS[1], sub="cur")
        c = self.login(user)
        typ, data = c.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT SIZE)")
        self.assertEqual(typ, "OK")
        m = re.match(rb'"INBOX" \(MESSAGES (\d+) UIDNEXT (\d+) UIDVALIDITY (\d+) UNSEEN (\d+) '
                     rb'RECENT (\d+) SIZE (\d+)\)', data[0])
        self.assertIsNotNone(m, data)
        self.assertEqual(int(m.group(1)), 2)
        self.assertEqual(int(m.group(4)), 2)
        self.assertEqual(int(m.group(6)), len(crlf(MSGS[0])) + len(crlf(MSGS[1])))
        typ, data = tagged(c, *c.status("Nowhere", "(MESSAGES)"))
        self.assertEqual(typ, "NO")
        self.assertIn(b"[NONEXISTENT]", data)
        with self.assertRaises(imaplib.IMAP4.error):
            c.status("INBOX", "(BOGUS)")
        self.assertEqual(self.cmd(c, "LIST", '"" % RETURN (STATUS (MESSAGES UNSEEN))')[0], "OK")
        status = self.untagged(c, "STATUS")
        self.assertIn(b'"INBOX" (MESSAGES 2 UNSEEN 2)', status)
        self.assertIn(b'"Sent" (MESSAGES 0 UNSEEN 0)', status)
        c.select("INBOX")
        typ, data = c.status("INBOX", "(MESSAGES)")
        self.assertEqual(data, [b'"INBOX" (MESSAGES 2)'], "STATUS of the selected folder")

    def test_modified_utf7(self):
        c = self.login("utf7@example.test")
        name = '"Entw&APw-rfe"'
        self.assertEqual(c.create(name)[0], "OK")
        self.assertIn(b'(\\HasNoChildren) "." "Entw&APw-rfe"', c.list()[1])
        for bad in (b'"&AGE-"', b'"caf\xc3\xa9"', b'"&Jjo"'):
            typ, data = self.cmd(c, "CREATE", bad)
            self.assertEqual(typ, "NO", bad)
        self.assertEqual(c.select(name)[0], "OK")


class Append(ImapTest):
    USER = "append@example.test"
    MESSAGE = b"From: me@example.test\r\nSubject: a draft\r\n\r\nnot finished\r\n"

    def test_append_flags_date_appenduid(self):
        c = self.login(self.USER)
        when = time.mktime((1996, 7, 17, 2, 44, 25, 0, 0, -1))
        typ, data = c.append("Drafts", "(\\Draft \\Seen)", imaplib.Time2Internaldate(when),
                             self.MESSAGE)
        self.assertEqual(typ, "OK")
        m = re.match(rb"\[APPENDUID (\d+) 1\]", data[0])
        self.assertIsNotNone(m, data)
        typ, data = c.status("Drafts", "(UIDVALIDITY MESSAGES)")
        self.assertIn(b"UIDVALIDITY %s MESSAGES 1" % m.group(1), data[0])
        c.select("Drafts", readonly=True)
        typ, data = c.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        self.assertIn(b"\\Draft", data[0][0])
        self.assertIn(b"\\Seen", data[0][0])
        self.assertIn(b"RFC822.SIZE %d" % len(self.MESSAGE), data[0][0])
        self.assertEqual(data[0][1], self.MESSAGE)
        self.assertEqual(imaplib.Internaldate2tuple(data[0][0])[:6], time.localtime(when)[:6])
        files = os.listdir(os.path.join(self.inst.maildir(self.USER), ".Drafts", "cur"))
        self.assertEqual(len(files), 1)
        self.assertTrue(files[0].endswith(":2,DS"), files)

    def test_append_errors(self):
        c = self.login(self.USER)
        typ, data = tagged(c, *c.append("Nowhere", None, None, self.MESSAGE))
        self.assertEqual(typ, "NO")
        self.assertIn(b"[TRYCREATE]", data)
        with self.assertRaises(imaplib.IMAP4.error):
            c.append("INBOX", "(\\Bogus)", None, self.MESSAGE)
        with self.assertRaises(imaplib.IMAP4.error):
            c.append("INBOX", None, '"31-Foo-2026 10:00:00 +0000"', self.MESSAGE)
        typ, data = tagged(c, *c.append("INBOX", None, None, b"x" * 200000))
        self.assertEqual(typ, "NO", "a literal over max_message_size")
        self.assertIn(b"TOOBIG", data)
        self.assertEqual(c.noop()[0], "OK", "the session goes on")


class Raw:
    """A line-level client over implicit TLS, for what imaplib will not send."""

    def __init__(self, test, user):
        sock = socket.create_connection(("127.0.0.1", test.site.ssl_port), timeout=TIMEOUT)
        self.s = test.context().wrap_socket(sock, server_hostname="127.0.0.1")
        self.f = self.s.makefile("rb")
        test.addCleanup(self.close)
        assert self.f.readline().startswith(b"* OK")
        if user:
            self.cmd(b"L LOGIN %s %s" % (user.encode(), PASSWORD.encode()))

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, line, tag=None):
        """Sends line (CRLF added) and reads through the tagged reply: all lines read."""
        tag = tag or line.split(b" ", 1)[0]
        self.send(line + b"\r\n")
        return self.until(tag)

    def until(self, tag):
        out = []
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError(b"".join(out))
            out.append(line)
            if line.startswith(tag + b" "):
                return out

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class RawCommands(ImapTest):
    def test_literal_plus_and_too_large(self):
        r = Raw(self, "raw@example.test")
        msg = b"Subject: literal+\r\n\r\nsent without waiting\r\n"
        out = r.cmd(b"A1 APPEND INBOX (\\Flagged) {%d+}\r\n" % len(msg) + msg)
        self.assertTrue(out[-1].startswith(b"A1 OK [APPENDUID "), out)
        self.assertFalse(any(l.startswith(b"+") for l in out), "no continuation for {n+}")
        out = r.cmd(b"A2 APPEND INBOX {200000}")
        self.assertRegex(out[-1], rb"^A2 NO \[TOOBIG\]")
        self.assertFalse(any(l.startswith(b"+") for l in out))
        out = r.cmd(b"A3 APPEND Nowhere {5+}\r\nhello")
        self.assertRegex(out[-1], rb"^A3 NO \[TRYCREATE\]")
        out = r.cmd(b"A4 APPEND INBOX {0}")
        self.assertRegex(out[-1], rb"^A4 (NO|BAD) ")
        out = r.cmd(b"A5 NOOP")
        self.assertRegex(out[-1], rb"^A5 OK", "in step after the refused literals")

    def test_wrong_state(self):
        r = Raw(self, None)
        for line in (b"B1 LIST \"\" *", b"B2 STATUS INBOX (MESSAGES)", b"B3 CREATE x",
                     b"B4 APPEND INBOX {1+}\r\nx"):
            out = r.cmd(line)
            self.assertRegex(out[-1], rb"^B\d (BAD|NO) ", line)
        r.cmd(b"L LOGIN state@example.test demo")
        for line in (b"C1 FETCH 1 FLAGS", b"C2 STORE 1 +FLAGS (\\Seen)", b"C3 SEARCH ALL",
                     b"C4 COPY 1 Sent", b"C5 MOVE 1 Sent", b"C6 UID FETCH 1 FLAGS"):
            out = r.cmd(line)
            self.assertRegex(out[-1], rb"^C\d (BAD|NO) ", line)
        out = r.cmd(b"C7 LIST \"\" INBOX")
        self.assertRegex(out[-1], rb"^C7 OK")


class Messages(ImapTest):
    USER = "msgs@example.test"

    def setUp(self):
        super().setUp()
        md = self.inst.maildir(self.USER)
        if not os.path.isdir(os.path.join(md, "cur")) or not self.inst.message_names(
                self.USER, "cur"):
            for m in MSGS:
                self.inst.add_message(self.USER, m)

    def test_fetch_store_search_copy_move(self):
        c = self.login(self.USER)
        typ, data = c.select("INBOX")
        self.assertEqual(data, [b"3"])
        typ, data = c.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
        self.assertEqual(len(data), 3)
        for i, d in enumerate(data):
            self.assertIn(b"RFC822.SIZE %d" % len(crlf(MSGS[i])), d)
        typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
        self.assertTrue(all(b"UID " in d for d in data), data)
        for bad in ("4", "0", "1:x", "*:5"):
            with self.assertRaises(imaplib.IMAP4.error, msg=bad):
                c.fetch(bad, "(FLAGS)")
        with self.assertRaises(imaplib.IMAP4.error):
            c.fetch("1", "(BOGUS)")
        typ, data = c.uid("FETCH", "99", "(FLAGS)")
        self.assertEqual((typ, data), ("OK", [None]), "a UID that does not exist: nothing")

        typ, data = c.fetch("2", "(BODY.PEEK[])")
        self.assertEqual(data[0][1], crlf(MSGS[1]))
        self.assertNotIn(b"\\Seen", c.fetch("2", "(FLAGS)")[1][0])
        typ, data = c.fetch("2", "(BODY[])")
        self.assertIn(b"\\Seen", c.fetch("2", "(FLAGS)")[1][0], "BODY[] sets \\Seen")

        typ, data = c.store("1:2", "+FLAGS", "(\\Flagged)")
        self.assertEqual(len(data), 2)
        self.assertIn(b"\\Flagged", data[0])
        typ, data = c.store("1", "-FLAGS.SILENT", "(\\Flagged)")
        self.assertEqual((typ, data), ("OK", [None]))
        typ, data = c.uid("STORE", "3", "FLAGS", "(\\Answered $Label1)")
        self.assertRegex(data[0], rb"UID 3 FLAGS \(.*\\Answered")
        self.assertIn(b"$Label1", data[0])
        with self.assertRaises(imaplib.IMAP4.error):
            c.store("1", "+FLAGS", "(\\Recent)")
        with self.assertRaises(imaplib.IMAP4.error):
            c.store("9", "+FLAGS", "(\\Seen)")

        self.assertEqual(c.search(None, "ALL"), ("OK", [b"1 2 3"]))
        self.assertEqual(c.search(None, "FLAGGED"), ("OK", [b"2"]))
        self.assertEqual(c.search(None, "BODY", "needle"), ("OK", [b"3"]))
        self.assertEqual(c.search(None, "KEYWORD", "$Label1"), ("OK", [b"3"]))
        self.assertEqual(c.uid("SEARCH", "SUBJECT", '"second"'), ("OK", [b"2"]))
        self.assertEqual(c.search("UTF-8", "FROM", "carol"), ("OK", [b"3"]))
        typ, data = tagged(c, *c.search("KOI8-R", "ALL"))
        self.assertEqual(typ, "NO")
        self.assertIn(b"[BADCHARSET", data)
        with self.assertRaises(imaplib.IMAP4.error):
            c.search(None, "BOGUS")

        typ, data = tagged(c, *c.copy("1:2", "Archive"))
        self.assertEqual(typ, "OK")
        self.assertRegex(data, rb"^\[COPYUID \d+ 1:2 1:2\]")
        typ, data = tagged(c, *c.copy("1", "Nowhere"))
        self.assertEqual(typ, "NO")
        self.assertIn(b"[TRYCREATE]", data)
        typ, data = tagged(c, *c.uid("COPY", "99", "Archive"))
        self.assertEqual(typ, "OK")
        self.assertNotIn(b"COPYUID", data)

        typ, data = self.cmd(c, "MOVE", "1", "Trash")
        self.assertEqual(typ, "OK")
        self.assertEqual(self.untagged(c, "EXPUNGE"), [b"1"])
        self.assertRegex(b" ".join(self.untagged(c, "OK")), rb"\[COPYUID \d+ 1 1\]")
        typ, data = self.cmd(c, "UID", "MOVE", "3", "Trash")
        self.assertEqual(typ, "OK")
        self.assertEqual(self.untagged(c, "EXPUNGE"), [b"2"])
        self.assertEqual(c.status("Trash", "(MESSAGES)")[1], [b'"Trash" (MESSAGES 2)'])
        self.assertEqual(c.search(None, "ALL"), ("OK", [b"1"]))
        typ, data = self.cmd(c, "MOVE", "1", "Nowhere")
        self.assertIn(b"[TRYCREATE]", data)

        c.select("Trash", readonly=True)
        typ, data = tagged(c, *c.store("1", "+FLAGS", "(\\Deleted)"))
        self.assertEqual(typ, "NO", "STORE in a folder selected read-only")
        self.assertIn(b"[READ-ONLY]", data)
        typ, data = self.cmd(c, "MOVE", "1", "INBOX")
        self.assertEqual(typ, "NO", "MOVE out of a folder selected read-only")


class Tls(ImapTest):
    def test_imap4_ssl(self):
        user = "tls@example.test"
        self.inst.add_message(user, MSGS[0])
        c = self.login(user, implicit=True)
        self.assertEqual(c.select("INBOX"), ("OK", [b"1"]))
        typ, data = c.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(data[0][1], b"Subject: first\r\n\r\n")
        self.assertEqual(c.list('""', "Sent")[1], [b'(\\HasNoChildren \\Sent) "." "Sent"'])
        self.assertEqual(c.create('"Over TLS"')[0], "OK")
        self.assertEqual(c.copy("1", '"Over TLS"')[0], "OK")
        self.assertEqual(c.status('"Over TLS"', "(MESSAGES)")[1],
                         [b'"Over TLS" (MESSAGES 1)'])


class TwoSessions(ImapTest):
    def test_changes_seen_by_the_other_session(self):
        user = "two@example.test"
        for m in MSGS:
            self.inst.add_message(user, m)
        a = self.login(user)
        b = self.login(user, implicit=True)
        a.select("INBOX")
        b.select("INBOX")
        b.store("2", "+FLAGS", "(\\Flagged)")
        a.noop()
        fetches = self.untagged(a, "FETCH")
        self.assertTrue(any(b"\\Flagged" in f for f in fetches), fetches)
        typ, _ = self.cmd(b, "MOVE", "1", "Archive")
        self.assertEqual(typ, "OK")
        a.noop()
        self.assertEqual(self.untagged(a, "EXPUNGE"), [b"1"])
        self.assertEqual(a.search(None, "ALL"), ("OK", [b"1 2"]))
        self.untagged(a, "EXISTS")  # what SELECT said (imaplib keeps it)
        b.append("INBOX", None, None, b"Subject: new\r\n\r\nnew\r\n")
        a.noop()
        self.assertEqual(self.untagged(a, "EXISTS"), [b"3"])
        typ, data = a.fetch("3", "(UID)")
        self.assertEqual(data, [b"3 (UID 4)"], "UIDs agree between the sessions")


if __name__ == "__main__":
    unittest.main()
