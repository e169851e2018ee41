"""test_imap_clients: imap4-in with the mail programs people use, under openbsd-inetd with a
test certificate: mbsync (isync) syncing both ways (flags, a deletion, a new folder, mail that
arrived meanwhile), offlineimap3 (down and up), fetchmail over IMAP delivering through
maildir-deliver, curl imap:// with STARTTLS and imaps:// (LIST, a message by UID, SEARCH,
an upload), neomutt driven under tmux (open the mailbox, read, flag, move to another folder,
delete) with a second client that sees the change; and two IMAP sessions and one POP3 session
on one mailbox at once (nothing shown twice or lost, UIDs stable, UIDVALIDITY changed only by
a rebuilt index). Nothing but loopback is contacted (the clients connect to localhost, the
name the test certificate is made for).
"""
import imaplib
import os
import poplib
import re
import shutil
import ssl
import subprocess
import tempfile
import time
import unittest

import yubintest

PASSWORD = "demo"
USERS = tuple(f"{n}@example.test" for n in
              ("mbsync", "offline", "fm", "fmdest", "curl", "mutt", "three"))
TIMEOUT = 120
HOST = "localhost"


def message(subject, body="hello\n", sender="alice@remote.test"):
    return (f"From: {sender}\nTo: someone@example.test\nSubject: {subject}\n"
            f"Message-ID: <{subject.replace(' ', '.')}@remote.test>\n"
            f"Date: Tue, 1 Dec 2026 10:00:00 +0000\n\n{body}").encode()


class Site:
    inst = None

    @classmethod
    def get(cls):
        if cls.inst is None:
            inst = yubintest.Instance(users=USERS)
            # mbsync and offlineimap match the name they connect to against the certificate's
            # DNS names only (no IP addresses): they connect to localhost
            cert, key = inst.make_certificate(name=HOST)
            cls.cert = inst.use_tls(cert, key)
            cls.port = inst.serve_inetd("imap4-in")
            cls.ssl_port = inst.serve_inetd("imap4-in", "-T")
            cls.pop_port = inst.serve_inetd("pop3-in", "-T")
            cls.inst = inst
        return cls


def tearDownModule():
    if Site.inst is not None:
        Site.inst.stop()
        Site.inst = None


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.site = Site.get()
        self.inst = self.site.inst
        self.tmp = tempfile.mkdtemp(prefix="yubin-imap-client-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def imap(self, user):
        ctx = ssl.create_default_context(cafile=self.site.cert)
        c = imaplib.IMAP4_SSL("127.0.0.1", self.site.ssl_port, ssl_context=ctx, timeout=30)
        c.login(user, PASSWORD)
        self.addCleanup(yubintest.imap_logout_quietly, c)
        return c

    def run_tool(self, argv, **kw):
        p = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, **kw)
        out = (p.stdout + p.stderr).decode(errors="replace")
        self.assertEqual(p.returncode, 0, f"{argv[0]} failed:\n{out}")
        return out

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def server_subjects(self, c, folder):
        typ, data = c.select(folder, readonly=True)
        self.assertEqual(typ, "OK", data)
        if data == [b"0"]:
            return []
        typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        out = []
        for d in data:
            if isinstance(d, tuple):
                flags = re.search(rb"FLAGS \(([^)]*)\)", d[0]).group(1).decode()
                out.append((d[1].decode().strip().removeprefix("Subject: "), flags))
        return sorted(out)


def local_messages(maildir):
    """(subject, maildir flags) of every message of a local Maildir."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), "rb") as f:
                m = re.search(rb"^Subject: (.*)$", f.read(), re.M)
            flags = name.split(":2,", 1)[1] if ":2," in name else ""
            out.append((m.group(1).decode() if m else "", flags))
    return sorted(out)


def find_local(maildir, subject):
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                if f"Subject: {subject}\n".encode() in f.read():
                    return os.path.join(d, name)
    raise AssertionError(f"no local message {subject!r} in {maildir}")


def deliver_local(maildir, data):
    os.makedirs(os.path.join(maildir, "tmp"), exist_ok=True)
    os.makedirs(os.path.join(maildir, "cur"), exist_ok=True)
    os.makedirs(os.path.join(maildir, "new"), exist_ok=True)
    name = f"{int(time.time())}.local{os.urandom(4).hex()}.client"
    with open(os.path.join(maildir, "new", name), "wb") as f:
        f.write(data)


class Mbsync(ClientTest):
    USER = "mbsync@example.test"

    def rc(self, local):
        return self.write("mbsyncrc", f"""
IMAPAccount yubin
Host {HOST}
Port {self.site.port}
User {self.USER}
Pass {PASSWORD}
SSLType STARTTLS
CertificateFile {self.site.cert}
AuthMechs LOGIN

IMAPStore far
Account yubin

MaildirStore near
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :far:
Near :near:
Patterns *
Create Both
Remove None
Expunge Both
SyncState *
""")

    def test_sync_both_ways(self):
        for s in ("one", "two", "three"):
            self.inst.add_message(self.USER, message(s))
        local = os.path.join(self.tmp, "Mail")
        os.mkdir(local)
        rc = self.rc(local)
        self.run_tool(["mbsync", "-c", rc, "-a"])
        self.assertEqual([s for s, _ in local_messages(os.path.join(local, "INBOX"))],
                         ["one", "three", "two"])
        for folder in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
            self.assertTrue(os.path.isdir(os.path.join(local, folder, "cur")), folder)

        # up: a flag, a deletion, a new folder with a message, a message into Archive
        path = find_local(os.path.join(local, "INBOX"), "one")
        os.rename(path, path.split(":2,")[0] + ":2,FS")
        os.unlink(find_local(os.path.join(local, "INBOX"), "two"))
        deliver_local(os.path.join(local, "Projects"), message("made here"))
        deliver_local(os.path.join(local, "Archive"), message("archived here"))
        # down: mail that arrived on the server meanwhile
        self.inst.add_message(self.USER, message("four"))
        self.run_tool(["mbsync", "-c", rc, "-a"])

        c = self.imap(self.USER)
        inbox = self.server_subjects(c, "INBOX")
        self.assertEqual([s for s, _ in inbox], ["four", "one", "three"])
        flags = dict(inbox)["one"]
        self.assertIn("\\Flagged", flags)
        self.assertIn("\\Seen", flags)
        self.assertIn(b'"Projects"', b" ".join(c.list()[1]))
        self.assertEqual([s for s, _ in self.server_subjects(c, "Projects")], ["made here"])
        self.assertEqual([s for s, _ in self.server_subjects(c, "Archive")], ["archived here"])
        self.assertIn("four", [s for s, _ in local_messages(os.path.join(local, "INBOX"))])

        # a flag set and a message deleted on the server come down too
        c.select("INBOX")
        typ, data = c.search(None, "SUBJECT", "three")
        c.store(data[0], "+FLAGS", "(\\Deleted)")
        c.expunge()
        typ, data = c.search(None, "SUBJECT", "four")
        c.store(data[0], "+FLAGS", "(\\Answered)")
        self.run_tool(["mbsync", "-c", rc, "-a"])
        near = dict(local_messages(os.path.join(local, "INBOX")))
        self.assertEqual(sorted(near), ["four", "one"])
        self.assertIn("R", near["four"])
        out = self.run_tool(["mbsync", "-c", rc, "-a", "-V"])
        self.assertNotRegex(out, r"(?i)error|warning")


class OfflineImap(ClientTest):
    USER = "offline@example.test"

    def test_sync_down_and_up(self):
        for s in ("alpha", "beta"):
            self.inst.add_message(self.USER, message(s))
        local = os.path.join(self.tmp, "Mail")
        rc = self.write("offlineimaprc", f"""
[general]
accounts = test
metadata = {self.tmp}/meta
ui = basic

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}

[Repository remote]
type = IMAP
remotehost = {HOST}
remoteport = {self.site.ssl_port}
remoteuser = {self.USER}
remotepass = {PASSWORD}
ssl = yes
sslcacertfile = {self.site.cert}
""")
        argv = ["offlineimap", "-c", rc, "-o", "-u", "basic"]
        self.run_tool(argv)
        self.assertEqual([s for s, _ in local_messages(os.path.join(local, "INBOX"))],
                         ["alpha", "beta"])
        path = find_local(os.path.join(local, "INBOX"), "alpha")
        os.rename(path, path.split(":2,")[0] + ":2,S" if ":2," in path else path + ":2,S")
        deliver_local(os.path.join(local, "Sent"), message("sent offline"))
        self.run_tool(argv)
        c = self.imap(self.USER)
        inbox = dict(self.server_subjects(c, "INBOX"))
        self.assertIn("\\Seen", inbox["alpha"])
        self.assertNotIn("\\Seen", inbox["beta"])
        self.assertEqual([s for s, _ in self.server_subjects(c, "Sent")], ["sent offline"])


class Fetchmail(ClientTest):
    def test_fetch_into_maildir_deliver(self):
        src, dest = "fm@example.test", "fmdest@example.test"
        for s in ("fetched one", "fetched two"):
            self.inst.add_message(src, message(s))
        rc = self.write("fetchmailrc", f"""
set no syslog
poll {HOST} service {self.site.ssl_port} protocol IMAP auth password
  user "{src}" there with password "{PASSWORD}" is "root" here
  ssl sslcertfile "{self.site.cert}" sslcertck
  mda "{yubintest.program('maildir-deliver')} -C {self.inst.conf} {dest}"
""")
        env = dict(os.environ, FETCHMAILHOME=self.tmp, HOME=self.tmp)
        self.run_tool(["fetchmail", "-f", rc, "--nodetach", "-v"], env=env)
        got = sorted(re.search(rb"Subject: (.*)", m).group(1).decode()
                     for m in self.inst.messages(dest))
        self.assertEqual(got, ["fetched one", "fetched two"])
        c = self.imap(src)
        self.assertEqual(self.server_subjects(c, "INBOX"), [], "fetched and expunged")


class Curl(ClientTest):
    USER = "curl@example.test"

    def curl(self, url, *extra):
        return self.run_tool(["curl", "-sS", "--cacert", self.site.cert, "-u",
                              f"{self.USER}:{PASSWORD}", *extra, url])

    def test_list_fetch_search_upload(self):
        self.inst.add_message(self.USER, message("by curl", "curl reads this\n"))
        self.inst.add_message(self.USER, message("second curl"))
        out = self.curl(f"imap://{HOST}:{self.site.port}/", "--ssl-reqd")
        self.assertIn('* LIST (\\HasNoChildren) "." "INBOX"', out)
        self.assertIn('"Sent"', out)
        out = self.curl(f"imaps://{HOST}:{self.site.ssl_port}/INBOX;UID=1")
        self.assertIn("Subject: by curl", out)
        self.assertIn("curl reads this", out)
        out = self.curl(f"imaps://{HOST}:{self.site.ssl_port}/INBOX?SUBJECT%20second")
        self.assertIn("* SEARCH 2", out)
        up = os.path.join(self.tmp, "up.eml")
        with open(up, "wb") as f:
            f.write(message("uploaded").replace(b"\n", b"\r\n"))
        self.curl(f"imaps://{HOST}:{self.site.ssl_port}/Drafts", "-T", up)
        c = self.imap(self.USER)
        self.assertEqual([s for s, _ in self.server_subjects(c, "Drafts")], ["uploaded"])


class Neomutt(ClientTest):
    USER = "mutt@example.test"

    def screen(self):
        return self.term.screen()

    def wait_for(self, pattern, timeout=30):
        return self.term.wait_for(self, pattern, timeout)

    def keys(self, *keys):
        self.term.keys(*keys)

    def test_read_flag_move_delete(self):
        for s in ("mutt first", "mutt second", "mutt third"):
            self.inst.add_message(self.USER, message(s, f"body of {s}\n"))
        other = self.imap(self.USER)
        other.select("INBOX")
        muttrc = self.write("muttrc", f"""
set folder="imaps://{self.USER.replace('@', '%40')}@{HOST}:{self.site.ssl_port}/"
set imap_pass="{PASSWORD}"
set spoolfile="+INBOX"
set ssl_ca_certificates_file="{self.site.cert}"
set ssl_starttls=no
set header_cache=""
set message_cachedir=""
set record=""
set move=no
set delete=yes
set confirmappend=no
set confirmcreate=no
set mark_old=no
set sort=date-sent
set imap_keepalive=300
set mail_check=1
set timeout=1
set wait_key=no
set index_format="%4C %Z %s"
""")
        self.term = yubintest.Tmux("mutt")
        self.term.start(f"neomutt -n -F {muttrc}", dict(os.environ, HOME=self.tmp, TERM="xterm"))
        self.addCleanup(self.term.stop)
        self.wait_for(r"mutt third")
        self.keys("1", "Enter")   # the first message (jump to 1)
        self.keys("Enter")        # read it
        self.wait_for(r"body of mutt first")
        self.keys("i")            # back to the index
        self.wait_for(r"mutt third")
        self.keys("F")            # flag message 1
        self.keys("2", "Enter", "s")  # save (move) message 2
        self.wait_for(r"(?i)save to mailbox")
        self.keys("C-u", "=Archive", "Enter")
        time.sleep(0.5)
        self.keys("3", "Enter", "d")  # delete message 3
        self.keys("$")            # sync
        time.sleep(1)
        self.keys("$")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            inbox = self.server_subjects(self.imap(self.USER), "INBOX")
            if [s for s, _ in inbox] == ["mutt first"]:
                break
            time.sleep(0.5)
        self.assertEqual([s for s, _ in inbox], ["mutt first"], self.screen())
        self.assertIn("\\Flagged", inbox[0][1])
        self.assertIn("\\Seen", inbox[0][1])
        c = self.imap(self.USER)
        self.assertEqual([s for s, _ in self.server_subjects(c, "Archive")], ["mutt second"])
        # the second client, selected all along, is told
        other.noop()
        self.assertEqual(len(other.untagged_responses.pop("EXPUNGE", [])), 2)
        typ, data = other.fetch("1", "(FLAGS)")
        self.assertIn(b"\\Flagged", data[0])
        self.keys("q")


class ThreeSessions(ClientTest):
    USER = "three@example.test"

    def uids(self, c):
        typ, data = c.uid("SEARCH", "ALL")
        return [int(x) for x in data[0].split()]

    def test_two_imap_one_pop3(self):
        for i in range(5):
            self.inst.add_message(self.USER, message(f"shared {i}"))
        a, b = self.imap(self.USER), self.imap(self.USER)
        a.select("INBOX")
        validity = a.response("UIDVALIDITY")[1][0]
        b.select("INBOX")
        self.assertEqual(self.uids(a), [1, 2, 3, 4, 5])
        self.assertEqual(self.uids(b), [1, 2, 3, 4, 5])
        ctx = ssl.create_default_context(cafile=self.site.cert)
        p = poplib.POP3_SSL("127.0.0.1", self.site.pop_port, context=ctx, timeout=30)
        p.user(self.USER)
        p.pass_(PASSWORD)
        self.assertEqual(p.stat()[0], 5, "POP3 sees every message once")
        uidls = [l.split()[1] for l in p.uidl()[1]]
        self.assertEqual(len(set(uidls)), 5)

        self.inst.add_message(self.USER, message("arrives during"))
        for c in (a, b):  # what SELECT said (imaplib keeps it)
            c.untagged_responses.pop("EXISTS", None)
        a.noop()
        b.noop()
        self.assertEqual(a.untagged_responses.pop("EXISTS", []), [b"6"])
        self.assertEqual(b.untagged_responses.pop("EXISTS", []), [b"6"])
        self.assertEqual(self.uids(a), [1, 2, 3, 4, 5, 6])
        b.store("2", "+FLAGS", "(\\Deleted)")
        b.expunge()
        a.noop()
        self.assertEqual(a.untagged_responses.pop("EXPUNGE", []), [b"2"])
        self.assertEqual(self.uids(a), [1, 3, 4, 5, 6])
        p.dele(1)
        p.quit()
        a.noop()
        b.noop()
        self.assertEqual(a.untagged_responses.pop("EXPUNGE", []), [b"1"])
        self.assertEqual(self.uids(a), [3, 4, 5, 6])
        self.assertEqual(self.uids(b), [3, 4, 5, 6])
        typ, data = a.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = [d[1].strip() for d in data if isinstance(d, tuple)]
        self.assertEqual(subjects, [b"Subject: shared 2", b"Subject: shared 3",
                                    b"Subject: shared 4", b"Subject: arrives during"])

        c = self.imap(self.USER)
        c.select("INBOX")
        self.assertEqual(c.response("UIDVALIDITY")[1][0], validity, "UIDVALIDITY stable")
        self.assertEqual(self.uids(c), [3, 4, 5, 6])
        c.close()
        os.unlink(os.path.join(self.inst.maildir(self.USER), "yubin-index"))
        time.sleep(1.1)  # a rebuilt index takes the time as its UIDVALIDITY
        d = self.imap(self.USER)
        d.select("INBOX")
        self.assertNotEqual(d.response("UIDVALIDITY")[1][0], validity,
                            "a rebuilt index has a new UIDVALIDITY")


if __name__ == "__main__":
    unittest.main()
