"""test_two_sites: the post office between two sites that are separate hosts.

Four hosts, each a network namespace of its own (netns.py) on one private bridge, with
addresses in 10.253.0.0/24 and fd00:253::/64:

    dns        .2    dnsmasq (dnsserver.py): a.test MX mx.a.test, b.test MX mx.b.test
    mx.a.test  .10   site A: smtp-in on 25, smtp-in -s on 587, pop3-in on 110, each under
                     openbsd-inetd; queue-run started by smtp-in (or by the test). Its MX
                     host has only an AAAA record: mail from B to A travels over IPv6.
    mx.b.test  .20   site B: the same, with only an A record: mail from A to B is IPv4.
    client     .100  where alice's and bob's mail programs run

Each site is a yubintest.Instance whose dns_resolver is the dns host. Every step is a real
client: Python's smtplib submits with AUTH on 587, queue-run looks up the MX with ldns and
relays over the bridge, poplib and mpop fetch; bounces are parsed with Python's email package.
The namespaces have no route anywhere but their /24, so nothing leaves the machine, and
nothing outside them is contacted. Everything (processes, namespaces, veths, the bridge) is
removed in tearDown, also after a failure; names carry the pid so runs never clash.
"""
import email
import email.policy
import errno
import os
import poplib
import re
import smtplib
import socket
import subprocess
import time
import unittest

import netns
import yubintest
from dnsserver import DNSServer

NET, NET6 = "10.253.0", "fd00:253::"
DNS, MX_A, MX_B, CLIENT = f"{NET}.2", f"{NET}.10", f"{NET}.20", f"{NET}.100"
MX_A6, MX_B6 = f"{NET6}10", f"{NET6}20"
RECORDS = [
    "a.test MX 10 mx.a.test",
    "mx.a.test AAAA " + MX_A6,
    "b.test MX 10 mx.b.test",
    "mx.b.test A " + MX_B,
]
ALICE, BOB = "alice@a.test", "bob@b.test"
PASSWORD = "demo"  # yubintest.DEMO_HASH
WAIT = 20.0  # seconds any one delivery may take before the test gives up

def make_message(sender, to, subject, body, extra=""):
    msgid = f"<{subject.replace(' ', '-')}.{time.time_ns()}@{sender.split('@')[1]}>"
    head = (f"From: {sender}\nTo: {to}\nSubject: {subject}\nMessage-ID: {msgid}\n"
            f"Date: Mon, 23 Nov 2026 03:00:00 +0000\n{extra}")
    return msgid, (head + "\n" + body).encode()


BODY = ("Hello Bob,\n\n"
        ".a line that starts with a dot\n"
        "..and one with two\n"
        "From the start of a line\n"
        "trailing spaces   \n"
        "\ttab first\n"
        + "x" * 900 + "\n"
        "\n"
        "-- \nAlice\n")


def split(msg):
    """(header bytes, body bytes) of a message with LF line ends."""
    head, _, body = msg.replace(b"\r\n", b"\n").partition(b"\n\n")
    return head + b"\n", body


class TwoSites(unittest.TestCase):
    reason = None  # why namespaces cannot be made here (probed once, by the first setUp)

    def setUp(self):
        if TwoSites.reason is None:
            TwoSites.reason = netns.unavailable() or ""
        if TwoSites.reason:
            self.skipTest(TwoSites.reason)
        self.net = None
        self.dns = DNSServer()
        self.sites = {}
        self.inetd = {}
        try:
            self.start()
        except BaseException:
            self.tearDown()
            raise

    def start(self):
        self.net = netns.Network(NET, NET6)
        for host, addr in (("dns", DNS), ("a", MX_A), ("b", MX_B), ("client", CLIENT)):
            self.net.add_host(host, int(addr.rsplit(".", 1)[1]))
        with self.net.enter("dns"):
            self.dns.start(RECORDS, addr=DNS)
        for name, addr, domain, user in (("a", MX_A, "a.test", ALICE),
                                         ("b", MX_B, "b.test", BOB)):
            site = yubintest.Instance(
                domains=(domain,), users=(user, f"postmaster@{domain}"),
                hostname=f"mx.{domain}", netns=self.net.ns(name),
                conf={"dns_resolver": self.dns.resolver, "connect_timeout": "5",
                      "submission_address": f"{addr}:587"})
            self.sites[name] = site
            self.serve(name, "smtp-in", 25)
            if name == "a":
                self.serve6(name, "smtp-in", 25)
            self.serve(name, "smtp-in", 587, "-s")
            self.serve(name, "pop3-in", 110)

    def serve(self, name, program, port, *extra):
        site = self.sites[name]
        site.serve_inetd(program, *extra, host=site_addr(name), port=port)
        self.inetd[(name, port)] = site.procs[-1]

    def serve6(self, name, program, port):
        """program on [::]:port of site name, under openbsd-inetd (tcp6)."""
        site = self.sites[name]
        conf = os.path.join(site.dir, f"inetd6-{program}-{port}.conf")
        with open(conf, "w") as f:
            f.write(f"*:{port} stream tcp6 nowait.2147483647 root {yubintest.program(program)} "
                    f"{program} -C {site.conf}\n")
        with site.in_netns():
            p = subprocess.Popen(["inetd", "-i", "-E", conf], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        site.procs.append(p)
        self.net.wait_port(name, self.net.addr6(name), port)

    def tearDown(self):
        for site in self.sites.values():
            site.stop()
        self.dns.stop()
        if self.net:
            self.net.close()

    # -- the clients ----------------------------------------------------------------------
    def submit(self, site, user, rcpts, data, mail_options=()):
        """user's mail program submits data on site's port 587 with AUTH (from the client)."""
        with self.net.enter("client"):
            try:
                s = smtplib.SMTP(site_addr(site), 587, local_hostname="client.test", timeout=30)
            except smtplib.SMTPConnectError as e:
                self.fail(f"smtp-in -s (submission) on mx.{site}.test refused the client: {e}")
            with s:
                s.ehlo()
                self.assertTrue(s.has_extn("auth"),
                                f"smtp-in -s on mx.{site}.test offers no AUTH: {s.esmtp_features}")
                s.login(user, PASSWORD)
                # smtplib sends bytes as they are: the lines must end in CRLF already
                refused = s.sendmail(user, rcpts, data.replace(b"\n", b"\r\n"),
                                     mail_options=list(mail_options))
        self.assertEqual(refused, {})

    def pop_fetch(self, site, user, delete=False):
        """Every message in user's mailbox at site over POP3 (poplib), as bytes with CRLF."""
        with self.net.enter("client"):
            p = poplib.POP3(site_addr(site), 110, timeout=30)
            try:
                p.user(user)
                p.pass_(PASSWORD)
                out = []
                for i in range(1, len(p.list()[1]) + 1):
                    out.append(b"\r\n".join(p.retr(i)[1]) + b"\r\n")
                    if delete:
                        p.dele(i)
                p.quit()
            except BaseException:
                p.close()
                raise
        return out

    def mpop_fetch(self, site, user):
        """mpop fetches user's mail at site into a Maildir on the client (keep off)."""
        home = os.path.join(self.sites[site].dir, f"mpop-{user}")
        target = os.path.join(home, "Mail")
        for d in (home, target, *(os.path.join(target, s) for s in ("tmp", "new", "cur"))):
            os.makedirs(d, exist_ok=True)
        rc = os.path.join(home, "mpoprc")
        with open(rc, "w") as f:
            f.write(f"account {site}\nhost {site_addr(site)}\nport 110\ntls off\nauth user\n"
                    f"user {user}\npasswordeval echo {PASSWORD}\n"
                    f"delivery maildir {target}\nuidls_file {home}/uidls\nkeep off\n"
                    f"timeout 15\n")
        os.chmod(rc, 0o600)
        p = self.net.run("client", ["mpop", "-C", rc, "-q", site], capture_output=True,
                         text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        got = []
        for name in sorted(os.listdir(os.path.join(target, "new"))):
            with open(os.path.join(target, "new", name), "rb") as f:
                got.append(f.read())
        return got

    # -- the servers' side ------------------------------------------------------------------
    def wait_for(self, fn, what, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = fn()
            if value:
                return value
            time.sleep(0.05)
        self.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{self.logs()}")

    def delivered(self, site, user, msgid, count=1):
        """Waits until user's Maildir at site has count messages with msgid; returns them."""
        def found():
            got = [m for m in self.sites[site].messages(user)
                   if msgid.encode() in m.split(b"\n\n", 1)[0]]
            return got if len(got) >= count else None
        return self.wait_for(found, f"{msgid} in {user}'s Maildir at mx.{site}.test")

    def queue_run(self, site, *args):
        p = self.net.run(site, [yubintest.program("queue-run"), "-C", self.sites[site].conf,
                                "-v", *args], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stderr

    def mailq(self, site):
        p = self.net.run(site, [yubintest.program("mailq"), "-C", self.sites[site].conf],
                         capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def queue_entries(self, site):
        d = os.path.join(self.sites[site].state_dir, "queue")
        return sorted(n for n in os.listdir(d) if n.endswith(".env")) if os.path.isdir(d) else []

    def queue_run_idle(self, site):
        """True when no queue-run is running in site's namespace any more."""
        pids = netns.Network._pids(self.net.ns(site))
        for pid in pids:
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "queue-run":
                        return False
            except OSError:
                pass
        return True

    def logs(self):
        out = []
        for name, site in self.sites.items():
            out += [f"mx.{name}.test: {line}" for line in site.syslog.lines()[-30:]]
        return "\n".join(out)

    def check_report(self, data, to, reporter, rcpt, remote, msgid):
        """data is a valid RFC 3464 report to `to` from reporter: rcpt was refused with 550
        5.1.1 by remote; the headers of message msgid are attached."""
        msg = email.message_from_bytes(data, policy=email.policy.compat32)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertEqual(msg["Return-Path"], "<>")
        self.assertIn(f"MAILER-DAEMON@{reporter}", msg["From"])
        self.assertEqual(msg["To"].strip("<> "), to)
        parts = msg.get_payload()
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        blocks = parts[1].get_payload()
        self.assertEqual(blocks[0]["Reporting-MTA"].strip(), f"dns; {reporter}")
        per = [b for b in blocks[1:] if b["Final-Recipient"]]
        self.assertEqual(len(per), 1, blocks)
        self.assertEqual(per[0]["Final-Recipient"].strip(), f"rfc822; {rcpt}")
        self.assertEqual(per[0]["Action"].strip(), "failed")
        self.assertEqual(per[0]["Status"].strip(), "5.1.1")
        self.assertEqual(per[0]["Remote-MTA"].strip(), f"dns; {remote}")
        self.assertIn("550 5.1.1", per[0]["Diagnostic-Code"])
        self.assertIn(f"Message-ID: {msgid}", parts[2].get_payload())

    def received_trail(self, msg):
        head, _ = split(msg)
        return re.findall(rb"^Received: (.*(?:\n[ \t].*)*)", head, re.M)

    # -- the story --------------------------------------------------------------------------
    def test_hosts_are_isolated(self):
        """The namespaces reach each other and nothing else (no route off the bridge)."""
        for host in ("a", "b", "client"):
            routes = self.net.run(host, ["ip", "-4", "route"], capture_output=True,
                                  text=True).stdout
            self.assertEqual(routes.split(), f"{NET}.0/24 dev eth0 proto kernel scope link "
                             f"src {site_addr(host)}".split())
            routes6 = self.net.run(host, ["ip", "-6", "route"], capture_output=True,
                                   text=True).stdout
            self.assertEqual(sorted(r.split()[0] for r in routes6.splitlines()),
                             ["fd00:253::/64", "fe80::/64"], routes6)
            with self.net.enter(host):
                for far in ("192.0.2.1", "fd00::2", "8.8.8.8"):
                    with self.assertRaises(OSError) as cm:
                        socket.create_connection((far, 25), timeout=2)
                    self.assertEqual(cm.exception.errno, errno.ENETUNREACH, (host, far))
        with self.net.enter("client"):
            socket.create_connection((MX_B, 25), timeout=5).close()
            socket.create_connection((MX_A6, 25), timeout=5).close()

    def test_no_relay_without_auth(self):
        """The client host is not in relay_networks: port 25 takes mail for a.test only."""
        with self.net.enter("client"):
            with smtplib.SMTP(MX_A, 25, local_hostname="client.test", timeout=30) as s:
                s.ehlo()
                self.assertEqual(s.mail(ALICE)[0], 250)
                code, text = s.rcpt(BOB)
                self.assertEqual(code, 554, text)
                self.assertTrue(text.startswith(b"5.7.1"), text)
                self.assertEqual(s.rcpt(ALICE)[0], 250)
        self.assertEqual(self.queue_entries("a"), [])

    def test_alice_to_bob_and_reply(self):
        msgid, data = make_message(ALICE, BOB, "two sites", BODY)
        self.submit("a", ALICE, [BOB], data)
        self.delivered("b", BOB, msgid)
        self.assertGreaterEqual(self.dns.queries("b.test", "MX"), 1, "the MX came from DNS")

        # bob reads it with poplib (kept on the server) and then with mpop (which removes it)
        popped = self.pop_fetch("b", BOB)
        self.assertEqual(len(popped), 1)
        head, body = split(popped[0])
        self.assertEqual(body, split(data)[1], "the body arrives byte for byte")
        trail = self.received_trail(popped[0])
        self.assertEqual(len(trail), 2, trail)
        self.assertRegex(trail[0], hop("mx.a.test", MX_A, "mx.b.test"))
        self.assertRegex(trail[1], hop("client.test", CLIENT, "mx.a.test"))
        self.assertIn(b"Return-Path: <alice@a.test>", head)
        fetched = self.mpop_fetch("b", BOB)
        self.assertEqual(len(fetched), 1)
        self.assertEqual(split(fetched[0])[1], split(data)[1])
        self.assertTrue(fetched[0].replace(b"\r\n", b"\n").endswith(
            popped[0].replace(b"\r\n", b"\n")), "mpop and poplib got the same message")
        self.assertEqual(self.pop_fetch("b", BOB), [], "mpop deleted it (keep off)")

        # bob replies the same way in the other direction
        rid, reply = make_message(BOB, ALICE, "Re: two sites", "> Hello Bob,\n\nHi Alice.\n",
                                  extra=f"In-Reply-To: {msgid}\n")
        self.submit("b", BOB, [ALICE], reply)
        self.delivered("a", ALICE, rid)
        got = self.pop_fetch("a", ALICE, delete=True)
        self.assertEqual(len(got), 1)
        self.assertEqual(split(got[0])[1], split(reply)[1])
        trail = self.received_trail(got[0])
        self.assertEqual(len(trail), 2, trail)
        self.assertRegex(trail[0], hop("mx.b.test", "IPv6:" + MX_B6, "mx.a.test"))
        self.assertRegex(trail[1], hop("client.test", CLIENT, "mx.b.test"))
        self.assertIn(f"In-Reply-To: {msgid}".encode(), split(got[0])[0])
        self.wait_for(lambda: self.queue_entries("a") == [] and self.queue_entries("b") == [],
                      "both queues to be empty")

    def test_unknown_user_bounces_to_sender(self):
        """One message to a local mailbox, a remote one and a remote name that does not exist:
        the two copies arrive, and only the third comes back to alice as a report."""
        rcpts = ["nobody@b.test", BOB, "postmaster@a.test"]
        msgid, data = make_message(ALICE, ", ".join(rcpts), "to nobody", "Anybody there?\n")
        self.submit("a", ALICE, rcpts, data)
        reports = self.wait_for(lambda: self.sites["a"].messages(ALICE), "the bounce at A")
        self.assertEqual(len(reports), 1)
        self.delivered("b", BOB, msgid)
        self.delivered("a", "postmaster@a.test", msgid)
        self.assertEqual(self.sites["b"].messages("nobody@b.test"), [])
        # alice reads it over POP3 like any other mail
        popped = self.pop_fetch("a", ALICE)
        self.assertEqual(len(popped), 1)
        self.check_report(popped[0], ALICE, "mx.a.test", "nobody@b.test", "mx.b.test", msgid)
        self.wait_for(lambda: self.queue_entries("a") == [], "A's queue to be empty")

    def test_8bit_2mb_message_without_date_or_message_id(self):
        """A bare message from a simple program: site A adds Date and Message-ID once; 2 MB
        of 8-bit text crosses both sites unchanged (BODY=8BITMIME on the way)."""
        line = "Grüße aus A — 日本語のテキスト, line {:06d}\n"
        body = "".join(line.format(i) for i in range(40000)).encode()
        self.assertGreater(len(body), 2_000_000)
        data = b"From: alice@a.test\nTo: bob@b.test\nSubject: big\n\n" + body
        self.submit("a", ALICE, [BOB], data, mail_options=["BODY=8BITMIME"])
        got = self.wait_for(lambda: self.sites["b"].messages(BOB), "the message at B")
        self.assertEqual(len(got), 1)
        head, got_body = split(got[0])
        self.assertEqual(got_body, body)
        self.assertEqual(len(re.findall(rb"^Date: ", head, re.M | re.I)), 1, head)
        ids = re.findall(rb"^Message-ID: <[^<>@\s]+@mx\.a\.test>$", head, re.M | re.I)
        self.assertEqual(len(ids), 1, head)
        self.assertEqual(len(self.received_trail(got[0])), 2)
        self.wait_for(lambda: self.queue_entries("a") == [], "A's queue to be empty")

    def test_list_at_b_with_members_at_a(self):
        """alice at A writes to a list at B: B fans out to its local member and relays to the
        members at A (over IPv6) with the list's owner as the envelope sender, so the refusal
        of a member that does not exist goes back to the owner at B, not to alice."""
        self.sites["b"].write_aliases({"team@b.test": [BOB, ALICE, "gone@a.test"],
                                       "owner-team@b.test": [BOB]})
        msgid, data = make_message(ALICE, "team@b.test", "to the team", "Meeting at noon.\n")
        self.submit("a", ALICE, ["team@b.test"], data)
        at_b = self.delivered("b", BOB, msgid)[0]
        at_a = self.delivered("a", ALICE, msgid)[0]
        for got in (at_a, at_b):
            self.assertEqual(split(got)[1], b"Meeting at noon.\n")
            self.assertIn(b"\nTo: team@b.test\n", split(got)[0], "headers are not rewritten")
        for got in (at_a, at_b):
            self.assertTrue(got.startswith(b"Return-Path: <owner-team@b.test>\n"), got[:200])
        trail = self.received_trail(at_a)
        self.assertEqual(len(trail), 3, trail)
        self.assertRegex(trail[0], hop("mx.b.test", "IPv6:" + MX_B6, "mx.a.test"))
        self.assertRegex(trail[1], hop("mx.a.test", MX_A, "mx.b.test"))
        self.assertRegex(trail[2], hop("client.test", CLIENT, "mx.a.test"))
        bounces = self.wait_for(
            lambda: [m for m in self.sites["b"].messages(BOB)
                     if m.startswith(b"Return-Path: <>\n")], "the owner's bounce at B")
        self.assertEqual(len(bounces), 1)
        self.check_report(bounces[0], "owner-team@b.test", "mx.b.test", "gone@a.test",
                          "mx.a.test", msgid)
        self.wait_for(lambda: self.queue_entries("b") == [], "B's queue to be empty")
        self.assertEqual(len(self.sites["a"].messages(ALICE)), 1, "no bounce for the author")
        self.assertEqual(len(self.sites["b"].messages(BOB)), 2)

    def test_site_b_down_then_back(self):
        inetd = self.inetd.pop(("b", 25))
        os.killpg(inetd.pid, 9)
        inetd.wait(timeout=10)
        self.sites["b"].procs.remove(inetd)
        with self.net.enter("client"):
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection((MX_B, 25), timeout=5)

        msgid, data = make_message(ALICE, BOB, "while b is down", "Still there?\n")
        self.submit("a", ALICE, [BOB], data)
        entries = self.wait_for(lambda: self.queue_entries("a"), "the entry in A's queue")
        self.assertEqual(len(entries), 1)
        qid = entries[0][:-4]
        # smtp-in started a queue-run at once; once it is over, the entry waits for a retry
        self.wait_for(lambda: self.queue_run_idle("a") and "attempts 1" in self.mailq("a"),
                      "the first attempt")
        q = self.mailq("a")
        self.assertIn(qid, q)
        self.assertIn("from <alice@a.test>", q)
        line = [ln for ln in q.splitlines() if "<bob@b.test>" in ln]
        self.assertEqual(len(line), 1, q)
        self.assertRegex(line[0], r"<bob@b\.test>  pending  attempts 1  next \d+m  last\b.* "
                         r"4\.4\.1 cannot connect to 10\.253\.0\.20:25: Connection refused$", q)
        self.assertEqual(self.sites["b"].messages(BOB), [])

        # B is back; the next queue-run (forced: the retry is not due yet) delivers it once
        self.serve("b", "smtp-in", 25)
        out = self.queue_run("a", "-f")
        self.delivered("b", BOB, msgid)
        self.assertEqual(self.queue_entries("a"), [], out)
        self.assertIn("Mail queue is empty", self.mailq("a"))
        self.queue_run("a", "-f")
        got = [m for m in self.sites["b"].messages(BOB) if msgid.encode() in m]
        self.assertEqual(len(got), 1, "exactly once")
        self.assertEqual(split(got[0])[1], b"Still there?\n")


def hop(helo, addr, by):
    """A Received: field (without the name) saying helo at addr handed it to by."""
    return re.compile(rf"^from {re.escape(helo)} .*\[{re.escape(addr)}\].*by {re.escape(by)}\b"
                      .encode(), re.S)


def site_addr(name):
    return {"dns": DNS, "a": MX_A, "b": MX_B, "client": CLIENT}[name]


if __name__ == "__main__":
    unittest.main()
