"""test_check: yubin-check (issue 11 §3) and sendmail -bv / -bt, which run it.

The check mode against broken files: every error of yubin.conf, the users file and the
aliases file at once, each with file:line, and the exit status EX_CONFIG; modes and owners of
the state directories, and what the mail account can reach. The address mode against real DNS
answers from dnsmasq: MX order, null MX, implicit MX, NXDOMAIN; alias and list expansion as a
tree with owners. A broken aliases line, which makes smtp-in answer 451 to every local RCPT,
is named with its line. TLS (CheckTls): the certificate and key as the handlers load them
(missing, unreadable, not PEM, mismatch, expired: errors; expiring within 14 days: a warning),
tls_protocols as queue-run takes them, the tls_policy_file.
"""
import os
import re
import subprocess
import unittest

import yubintest
from dnsserver import DNSServer

EX_NOUSER, EX_DATAERR, EX_CONFIG, EX_NOINPUT = 67, 65, 78, 66


def check(site, *args, stdin=None, prog="yubin-check"):
    p = subprocess.run([yubintest.program(prog), "-C", site.conf, *args], capture_output=True,
                       text=True, timeout=60, input=stdin)
    return p.returncode, p.stdout + p.stderr


class CheckMode(unittest.TestCase):
    def setUp(self):
        self.site = yubintest.Instance(
            domains=("example.test", "other.test"),
            aliases={"postmaster@example.test": ["demo"], "postmaster@other.test": ["demo@example.test"]})

    def tearDown(self):
        self.site.stop()

    def test_good_site_passes(self):
        rc, out = check(self.site)
        self.assertEqual(rc, 0, out)
        self.assertIn("0 error(s), 0 warning(s)", out)
        self.assertIn(f"ok: {self.site.users_file}: 1 mailbox(es)", out)

    def test_every_error_at_once_with_file_and_line(self):
        with open(self.site.conf, "a") as f:
            f.write("bogus_key 1\nmax_hops many\n")
        conf_lines = len(open(self.site.conf).read().splitlines())
        with open(self.site.users_file, "a") as f:
            f.write("no colon at all\nbob@example.test:plaintext\n"
                    f"DEMO@example.test:{yubintest.DEMO_HASH}\n")
        with open(self.site.aliases_file, "a") as f:
            f.write("team@example.test: |/bin/sh\nno colon\nlist@example.test:\n"
                    "list2@example.test: nobody\n")
        rc, out = check(self.site)
        self.assertEqual(rc, EX_CONFIG, out)
        c, u, a = self.site.conf, self.site.users_file, self.site.aliases_file
        for want in (f"error: {c}:{conf_lines - 1}: unknown key 'bogus_key'",
                     f"error: {c}:{conf_lines}: bad value for 'max_hops'",
                     f"error: {u}:2: expected 'user@domain:$argon2id$...'",
                     f"error: {u}:3: not an argon2id hash",
                     f"error: {u}:4: a mailbox is listed twice: demo@example.test (first at line 1)",
                     f"error: {a}:3: programs and files are not alias targets",
                     f"error: {a}:4: expected 'name@domain: target, ...'",
                     f"error: {a}:5: an alias without targets: list@example.test",
                     f"warning: {a}:6: list2@example.test: member nobody@example.test is neither"):
            self.assertIn(want, out)
        self.assertIn("8 error(s), 1 warning(s)", out)

    def test_broken_aliases_line_explains_the_451(self):
        with open(self.site.aliases_file, "a") as f:
            f.write("sales@example.test alice\n")
        rc, out = check(self.site, "demo@example.test")
        self.assertEqual(rc, 75, out)  # EX_TEMPFAIL: what smtp-in would answer
        self.assertIn("451 4.3.0", out)
        self.assertIn(f"{self.site.aliases_file}:3: expected", out)
        rc, out = check(self.site)
        self.assertIn(f"error: {self.site.aliases_file}:3: expected", out)

    def test_yubin_user_list_warns_of_broken_files(self):
        """yubin-user list used to say nothing while smtp-in answered 451 to everything."""
        with open(self.site.aliases_file, "a") as f:
            f.write("sales@example.test alice\n")
        with open(self.site.users_file, "a") as f:
            f.write("no colon\n")
        p = subprocess.run([yubintest.program("yubin-user"), "-C", self.site.conf, "list"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "demo@example.test\n")
        self.assertIn(f"warning: {self.site.aliases_file}:3: expected", p.stderr)
        self.assertIn("every local recipient gets 451", p.stderr)
        self.assertIn(f"warning: {self.site.users_file}:2: expected", p.stderr)

    def test_missing_config_is_no_input(self):
        p = subprocess.run([yubintest.program("yubin-check"), "-C", "/nonexistent/yubin.conf"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, EX_NOINPUT)
        self.assertIn("/nonexistent/yubin.conf: No such file", p.stdout)

    def test_no_postmaster_is_a_warning(self):
        self.site.write_aliases({})
        rc, out = check(self.site)
        self.assertEqual(rc, 0, out)
        self.assertIn("no alias or mailbox postmaster@example.test (RFC 5321", out)
        self.assertIn("postmaster@other.test", out)

    @unittest.skipIf(os.geteuid() != 0, "owners and the account's reach need root")
    def test_state_modes_owners_and_reach(self):
        mail = os.path.join(self.site.state_dir, "mail")
        os.mkdir(mail, 0o755)  # root's, and open
        users = self.site.users_file
        os.chmod(users, 0o644)
        rc, out = check(self.site)
        self.assertEqual(rc, EX_CONFIG, out)
        self.assertIn(f"error: {mail}: owned by uid 0, not by {self.site.account} "
                      f"(chown {self.site.account}: {mail})", out)
        self.assertNotIn("chown -R", out, "root must not recurse through the account's tree")
        self.assertIn(f"warning: {mail}: mode 0755", out)
        self.assertIn(f"error: {users}: mode 0644: every account can read the password hashes",
                      out)
        os.chmod(users, 0o640)
        os.chown(mail, self.site.uid, self.site.gid)
        os.chmod(mail, 0o700)
        os.chmod(self.site.dir, 0o700)  # the account can no longer reach the state directory
        rc, out = check(self.site)
        self.assertEqual(rc, EX_CONFIG, out)
        self.assertIn(f"error: {self.site.state_dir}: the account {self.site.account} cannot "
                      "use it", out)
        os.chmod(self.site.dir, 0o755)
        self.assertEqual(check(self.site)[0], 0)

    @unittest.skipIf(os.geteuid() != 0, "owners and the account's reach need root")
    def test_users_file_is_for_the_password_service_alone(self):
        users = self.site.users_file
        self.assertEqual(check(self.site)[0], 0)
        os.chown(users, 0, self.site.gid)  # as before yubin-auth: the handlers' group
        rc, out = check(self.site)
        self.assertEqual(rc, EX_CONFIG, out)
        self.assertIn(f"error: {users}: the account {self.site.account} can read the password "
                      "hashes", out)
        self.assertIn(f"error: {users}: {self.site.auth_account} (the password service) cannot "
                      "read it", out)


class AddressMode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DNSServer()
        cls.dns.start([
            "example.org MX 20 mx2.example.org",
            "example.org MX 10 mx1.example.org",
            "mx1.example.org A 127.0.0.11",
            "mx2.example.org A 127.0.0.12",
            "mx2.example.org AAAA ::1",
            "nomail.test MX 0 .",
            "plain.test A 127.0.0.13",
            "example.test MX 10 mx.example.test",
            "mx.example.test A 127.0.0.1",
            "other.test MX 10 mx.elsewhere.test",
            "mx.elsewhere.test A 127.0.0.14",
        ])

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def setUp(self):
        self.site = yubintest.Instance(
            domains=("example.test", "other.test"),
            users=("demo@example.test", "alice@example.test"),
            aliases={"postmaster@example.test": ["demo"],
                     "team@example.test": ["alice", "lists", "friend@example.org"],
                     "lists@example.test": ["demo", "team"],
                     "owner-team@example.test": ["demo"]},
            conf={"dns_resolver": self.dns.resolver})

    def tearDown(self):
        self.site.stop()

    def test_mx_order_with_addresses(self):
        rc, out = check(self.site, "someone@example.org")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"1\. MX 10 mx1\.example\.org: 127\.0\.0\.11\n"
                              r"\s+2\. MX 20 mx2\.example\.org: 127\.0\.0\.12, ::1\n")
        self.assertIn("relayed only for authenticated sessions", out)

    def test_null_mx_implicit_mx_nxdomain(self):
        rc, out = check(self.site, "a@nomail.test", "b@plain.test", "c@nowhere.test")
        self.assertEqual(rc, 0, out)  # all three are accepted (and bounce or go later)
        self.assertIn("nomail.test has a null MX: it accepts no mail", out)
        self.assertIn("5.1.10", out)
        self.assertIn("no MX record, so the domain's own address (implicit MX)", out)
        self.assertIn("1. implicit MX 0 plain.test: 127.0.0.13", out)
        self.assertIn("nowhere.test: 5.1.2", out)
        self.assertIn("NXDOMAIN", out)

    def test_alias_tree_with_owner(self):
        rc, out = check(self.site, "team@example.test")
        self.assertEqual(rc, 0, out)
        a = self.site.aliases_file
        tree = re.search(r"team@example\.test: alias .*?(?=    smtp-in accepts)", out, re.S)
        self.assertIsNotNone(tree, out)
        lines = tree.group(0).splitlines()
        self.assertRegex(lines[0], rf"team@example\.test: alias \({re.escape(a)}:\d+\), "
                                   r"owner owner-team@example\.test")
        self.assertEqual(lines[1].strip(), "alice@example.test: local mailbox")
        self.assertRegex(lines[2], r"^\s{8}lists@example\.test: alias")
        self.assertRegex(lines[3], r"^\s{12}demo@example\.test: local mailbox")
        self.assertRegex(lines[4], r"^\s{12}team@example\.test: .*met again inside itself")
        self.assertRegex(lines[5], r"^\s{8}friend@example\.org:")
        self.assertIn("1. MX 10 mx1.example.org", lines[6] + lines[7])
        self.assertIn("smtp-in accepts it: 2 local mailbox(es), 1 remote address(es); bounces "
                      "go to the list owner owner-team@example.test", out)

    def test_local_mailbox_and_unknown_user(self):
        rc, out = check(self.site, "demo", "nobody@example.test")
        self.assertEqual(rc, EX_NOUSER, out)
        self.assertIn("demo@example.test\n    local mailbox: "
                      f"{self.site.state_dir}/mail/example.test/demo/", out)
        self.assertIn("550 5.1.1 <nobody@example.test>: no such user here", out)
        rc, out = check(self.site, "not an address")
        self.assertEqual(rc, EX_DATAERR, out)

    def test_addresses_from_stdin(self):
        rc, out = check(self.site, "-a", stdin="demo@example.test\n# comment\n\nalice\n")
        self.assertEqual(rc, 0, out)
        self.assertIn("demo@example.test\n", out)
        self.assertIn("alice@example.test\n", out)

    def test_dns_of_the_local_domains(self):
        rc, out = check(self.site, "-n")
        self.assertEqual(rc, 0, out)
        self.assertIn("ok: DNS example.test: an MX names this host (mx.example.test)", out)
        self.assertIn("1. MX 10 mx.example.test: 127.0.0.1  (this host)", out)
        self.assertIn("warning: DNS other.test: no MX names this host", out)

    def test_sendmail_bv_and_bt_run_it(self):
        for mode in ("-bv", "-bt"):
            rc, out = check(self.site, mode, "nobody@example.test", "team@example.test",
                            prog="sendmail")
            self.assertEqual(rc, EX_NOUSER, out)
            self.assertIn("550 5.1.1 <nobody@example.test>", out)
            self.assertIn("owner owner-team@example.test", out)
        rc, out = check(self.site, "-bt", prog="sendmail", stdin="demo\n")
        self.assertEqual(rc, 0, out)
        self.assertIn("demo@example.test\n    local mailbox", out)



class CheckTls(unittest.TestCase):
    """tls_cert_file and tls_key_file checked as smtp-in and pop3-in load them."""

    def setUp(self):
        self.site = yubintest.Instance(aliases={"postmaster@example.test": ["demo"]})
        self.addCleanup(self.site.stop)

    def use(self, cert, key):
        self.site.settings.update({"tls_cert_file": cert, "tls_key_file": key})
        self.site.write_conf()
        return check(self.site)

    def use_new(self, days):
        """A new pair valid for days more, checked: yubin-check must pass. Its path, the output."""
        cert, key = self.site.make_certificate(days=days)
        rc, out = self.use(cert, key)
        self.assertEqual(rc, 0, out)
        return cert, out

    def test_good_certificate(self):
        cert, out = self.use_new(90)
        self.assertRegex(out, rf"ok: tls_cert_file {re.escape(cert)}: CN=mx\.example\.test, "
                              r"valid until \d{4}-\d\d-\d\d \d\d:\d\d UTC \(\d+ days\)")
        self.assertIn("0 error(s), 0 warning(s)", out)

    def test_no_certificate_no_finding(self):
        rc, out = check(self.site)
        self.assertEqual(rc, 0, out)
        self.assertNotIn("tls_", out)

    def test_each_bad_certificate_or_key(self):
        good_cert, good_key = self.site.make_certificate()
        _, other_key = self.site.make_certificate(prefix="other")
        old_cert, old_key = self.site.make_certificate(prefix="old", days=-1)
        junk = os.path.join(self.site.dir, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        missing = os.path.join(self.site.dir, "missing.pem")
        cases = [
            (missing, good_key, f"tls_cert_file {missing}: No such file or directory"),
            (good_cert, missing, f"tls_key_file {missing}: No such file or directory"),
            (junk, good_key, f"tls_cert_file {junk}: no PEM certificate"),
            (good_cert, junk, f"tls_key_file {junk}: no usable PEM private key"),
            (good_cert, other_key, f"tls_key_file {other_key}: the key does not match the "
                                   f"certificate in {good_cert}"),
            (old_cert, old_key, f"tls_cert_file {old_cert}: the certificate expired on "
                                "2020-02-01 00:00 UTC"),
        ]
        for cert, key, why in cases:
            with self.subTest(why=why):
                rc, out = self.use(cert, key)
                self.assertEqual(rc, EX_CONFIG, out)
                self.assertIn(f"error: {why}", out)
                self.assertIn("smtp-in answers 421 and pop3-in -ERR to every client"
                              if "No such file" in why else
                              "STARTTLS and STLS are refused, with 454 and -ERR, and -T closes",
                              out)

    def test_expiring_within_14_days_is_a_warning(self):
        cert, out = self.use_new(10)
        self.assertRegex(out, rf"warning: tls_cert_file {re.escape(cert)}: the certificate "
                              r"expires on \d{4}-\d\d-\d\d \d\d:\d\d UTC, in (9|10) days: renew it")
        self.assertIn("0 error(s), 1 warning(s)", out)

    @unittest.skipIf(os.geteuid() != 0, "a root-only key needs root")
    def test_root_only_key_read_as_another_account(self):
        """The handlers read the key as root; yubin-check run as the mail account cannot."""
        cert, key = self.site.make_certificate()
        self.site.settings.update({"tls_cert_file": cert, "tls_key_file": key})
        self.site.write_conf()
        p = subprocess.run([yubintest.program("yubin-check"), "-C", self.site.conf],
                           capture_output=True, text=True, timeout=60,
                           preexec_fn=yubintest.as_user(self.site.account))
        self.assertIn(f"error: tls_key_file {key}: Permission denied", p.stdout)
        self.assertIn("warning: run yubin-check as root: the handlers read the key as root",
                      p.stdout)
        self.assertEqual(check(self.site)[0], 0, "as root it is fine")

    def test_outbound_policy(self):
        policy = os.path.join(self.site.dir, "tls-policy")
        with open(policy, "w") as f:
            f.write("remote.test encrypt\nother.test sometimes\n")
        self.site.settings.update({"tls_policy_file": policy, "tls_protocols": "TLSv1.4"})
        self.site.write_conf()
        rc, out = check(self.site)
        self.assertEqual(rc, EX_CONFIG, out)
        self.assertIn(f"error: tls_policy_file {policy}:2: unknown level \"sometimes\"", out)
        self.assertIn("error: TLS client context: tls_protocols: unknown protocol \"TLSv1.4\"", out)


if __name__ == "__main__":
    unittest.main()
