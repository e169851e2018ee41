"""test_mx: lib/mx against a real DNS server (dnsmasq on 127.0.0.x), through the mx-lookup
driver (tests/unit/mx-lookup.c), the way queue-run will use it.

Each test starts its own dnsmasq with the records it needs and stops it in tearDown. The driver
prints "result <domain> ok|temp|perm <ms> <why>" and "mx <domain> <pref> <host> <addrs...>".
"""
import os
import subprocess
import time
import unittest

import yubintest
from dnsserver import DNSServer, silent_udp_port

RECORDS = [
    # preference order, given out of order
    "order.test MX 30 c.order.test",
    "order.test MX 10 a.order.test",
    "order.test MX 20 b.order.test",
    "a.order.test A 127.0.0.21",
    "b.order.test A 127.0.0.22",
    "c.order.test A 127.0.0.23",
    # three of equal preference and one backup
    "equal.test MX 10 x.equal.test",
    "equal.test MX 10 y.equal.test",
    "equal.test MX 10 z.equal.test",
    "equal.test MX 20 w.equal.test",
    "x.equal.test A 127.0.0.31",
    "y.equal.test A 127.0.0.32",
    "z.equal.test A 127.0.0.33",
    "w.equal.test A 127.0.0.34",
    # no MX: the domain's own addresses
    "implicit.test A 127.0.0.41",
    "implicit.test AAAA ::1",
    # null MX
    "nomail.test MX 0 .",
    # IPv6 only exchange
    "six.test MX 5 mx.six.test",
    "mx.six.test AAAA ::1",
    # an exchange without any address is skipped
    "skip.test MX 10 nowhere.skip.test",
    "skip.test MX 20 there.skip.test",
    "there.skip.test A 127.0.0.51",
    # no exchange has an address
    "noaddr.test MX 10 nowhere.noaddr.test",
    # exists, but no MX and no address
    "notes.test TXT hello",
    # an MX pointing to a CNAME, tolerated
    "cname.test MX 10 alias.cname.test",
    "alias.cname.test CNAME real.cname.test",
    "real.cname.test A 127.0.0.61",
    # the only exchange lives in a zone whose server fails: temporary, not permanent
    "halfbroken.test MX 10 mx.broken.test",
    # a zone answered SERVFAIL, and one never answered
    "broken.test SERVFAIL",
    "slow.test TIMEOUT",
]


def many_mx():
    """20 MX records with long names: the answer is over 512 octets (TCP after truncation)
    and more than lib/mx keeps (16)."""
    recs = []
    for i in range(20):
        host = f"mail-exchanger-number-{i:02d}.a-rather-long-name.many.test"
        recs.append(f"many.test MX {100 - i} {host}")
        recs.append(f"{host} A 127.0.1.{i + 1}")
    return recs


class MxTest(unittest.TestCase):
    def setUp(self):
        self.driver = os.path.join(yubintest.BUILD, "tests", "unit", "mx-lookup")
        if not os.access(self.driver, os.X_OK):
            self.fail(f"{self.driver} is not built (make)")
        self.dns = DNSServer()
        self.dns.start(RECORDS + many_mx())
        self.silent = None

    def tearDown(self):
        self.dns.stop()
        if self.silent:
            self.silent.close()

    def lookup(self, *domains, resolver=None, timeout=5, hosts=False):
        """Runs the driver; returns {domain: (status, why, [(pref, host, [addrs])], ms)}."""
        p = subprocess.run([self.driver, *(["-H"] if hosts else []), "-r",
                            resolver or self.dns.resolver, "-t", str(timeout), *domains],
                           capture_output=True, text=True,
                           timeout=timeout * len(domains) + 10)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = {}
        for line in p.stdout.splitlines():
            words = line.split()
            if words[0] == "result":
                out[words[1]] = (words[2], " ".join(words[4:]), [], int(words[3]))
            elif words[0] == "mx":
                out[words[1]][2].append((int(words[2]), words[3], words[4:]))
        return out

    def test_preference_order(self):
        st, why, hosts, _ = self.lookup("order.test")["order.test"]
        self.assertEqual(st, "ok", why)
        self.assertEqual(hosts, [(10, "a.order.test", ["127.0.0.21"]),
                                 (20, "b.order.test", ["127.0.0.22"]),
                                 (30, "c.order.test", ["127.0.0.23"])])

    def test_equal_preferences_are_shuffled(self):
        firsts, orders = set(), set()
        for _ in range(30):
            st, why, hosts, _ = self.lookup("equal.test")["equal.test"]
            self.assertEqual(st, "ok", why)
            self.assertEqual([h[0] for h in hosts], [10, 10, 10, 20])
            self.assertEqual(hosts[3][1], "w.equal.test")
            firsts.add(hosts[0][1])
            orders.add(tuple(h[1] for h in hosts[:3]))
        self.assertGreaterEqual(len(firsts), 2, "equal hosts always came in one order")
        self.assertGreaterEqual(len(orders), 3, orders)

    def test_cache_one_lookup_per_run(self):
        out = self.lookup("equal.test", "EQUAL.test", "equal.test.")
        self.assertEqual(self.dns.queries("equal.test", "MX"), 1, self.dns.log_text())
        results = [out[d][2] for d in ("equal.test", "EQUAL.test", "equal.test.")]
        self.assertEqual(results[0], results[1])
        self.assertEqual(results[0], results[2])

    def test_additional_section_is_used(self):
        st, why, hosts, _ = self.lookup("order.test")["order.test"]
        self.assertEqual(st, "ok", why)
        # dnsmasq puts the exchanges' A records into the additional section: no A queries.
        self.assertEqual(self.dns.queries("a.order.test", "A"), 0, self.dns.log_text())
        self.assertEqual(self.dns.queries("a.order.test", "AAAA"), 1, self.dns.log_text())

    def test_implicit_mx(self):
        st, why, hosts, _ = self.lookup("implicit.test")["implicit.test"]
        self.assertEqual(st, "ok", why)
        self.assertEqual(hosts, [(0, "implicit.test", ["127.0.0.41", "::1"])])

    def test_null_mx(self):
        st, why, hosts, _ = self.lookup("nomail.test")["nomail.test"]
        self.assertEqual(st, "perm")
        self.assertTrue(why.startswith("5.1.10 "), why)
        self.assertEqual(hosts, [])

    def test_nxdomain(self):
        st, why, hosts, _ = self.lookup("nosuchdomain.test")["nosuchdomain.test"]
        self.assertEqual(st, "perm")
        self.assertTrue(why.startswith("5.1.2 ") and "NXDOMAIN" in why, why)

    def test_no_mx_no_address(self):
        st, why, _, _ = self.lookup("notes.test")["notes.test"]
        self.assertEqual(st, "perm")
        self.assertTrue(why.startswith("5.1.2 "), why)

    def test_servfail_is_temporary(self):
        st, why, hosts, _ = self.lookup("x.broken.test")["x.broken.test"]
        self.assertEqual(st, "temp")
        self.assertTrue(why.startswith("4.4.3 ") and "SERVFAIL" in why, why)
        self.assertEqual(hosts, [])

    def test_exchange_servfail_is_temporary(self):
        st, why, hosts, _ = self.lookup("halfbroken.test")["halfbroken.test"]
        self.assertEqual(st, "temp", why)
        self.assertTrue(why.startswith("4.4.3 "), why)

    def test_timeout_is_temporary_and_bounded(self):
        self.silent, port = silent_udp_port()
        start = time.monotonic()
        domains = ("order.test", "other.test", "third.test", "fourth.test", "fifth.test")
        out = self.lookup(*domains, resolver=f"127.0.0.1:{port}", timeout=1)
        took = time.monotonic() - start
        for d in domains:
            st, why, hosts, ms = out[d]
            self.assertEqual(st, "temp", why)
            self.assertTrue(why.startswith("4.4.3 "), why)
            self.assertEqual(hosts, [])
        for d in domains[:3]:
            ms = out[d][3]
            self.assertLess(ms, 1500, f"{d} took {ms} ms with a 1 s timeout")
            self.assertGreater(ms, 500, f"{d} gave up early: {ms} ms")
        # three silent lookups in a row: the server counts as dead for the rest of the run
        for d in domains[3:]:
            self.assertLess(out[d][3], 200, out)
        self.assertLess(took, 4.5)

    def test_forwarded_timeout_is_temporary(self):
        # one slow zone costs its own timeout and does not stop the other lookups
        out = self.lookup("x.slow.test", "order.test", "y.slow.test", "z.slow.test",
                          "implicit.test", timeout=1)
        for d in ("x.slow.test", "y.slow.test", "z.slow.test"):
            st, why, _, ms = out[d]
            self.assertEqual(st, "temp", why)
            self.assertLess(ms, 1500)
        self.assertEqual(out["order.test"][0], "ok", out)
        self.assertEqual(out["implicit.test"][0], "ok", out)

    def test_ipv6_aaaa(self):
        st, why, hosts, _ = self.lookup("six.test")["six.test"]
        self.assertEqual(st, "ok", why)
        self.assertEqual(hosts, [(5, "mx.six.test", ["::1"])])

    def test_resolver_over_ipv6(self):
        dns6 = DNSServer()
        try:
            dns6.start(["v6res.test MX 1 mx.v6res.test", "mx.v6res.test A 127.0.0.71"],
                       addr="::1")
            self.assertTrue(dns6.resolver.startswith("[::1]:"), dns6.resolver)
            st, why, hosts, _ = self.lookup("v6res.test", resolver=dns6.resolver)["v6res.test"]
            self.assertEqual(st, "ok", why)
            self.assertEqual(hosts, [(1, "mx.v6res.test", ["127.0.0.71"])])
        finally:
            dns6.stop()

    def test_addressless_exchange_is_skipped(self):
        st, why, hosts, _ = self.lookup("skip.test")["skip.test"]
        self.assertEqual(st, "ok", why)
        self.assertEqual(hosts, [(20, "there.skip.test", ["127.0.0.51"])])
        st, why, hosts, _ = self.lookup("noaddr.test")["noaddr.test"]
        self.assertEqual(st, "perm")
        self.assertTrue(why.startswith("5.4.4 "), why)

    def test_mx_to_cname_is_tolerated(self):
        st, why, hosts, _ = self.lookup("cname.test")["cname.test"]
        self.assertEqual(st, "ok", why)
        self.assertEqual(hosts, [(10, "alias.cname.test", ["127.0.0.61"])])

    def test_large_answer_over_tcp_and_bounded(self):
        st, why, hosts, _ = self.lookup("many.test")["many.test"]
        self.assertEqual(st, "ok", why)
        self.assertEqual(len(hosts), 16)
        self.assertEqual([h[0] for h in hosts], list(range(81, 97)))
        self.assertEqual(hosts[0][2], ["127.0.1.20"])

    def test_domain_literal_needs_no_dns(self):
        self.silent, port = silent_udp_port()
        out = self.lookup("[127.0.0.9]", "[IPv6:::1]", resolver=f"127.0.0.1:{port}", timeout=2)
        self.assertEqual(out["[127.0.0.9]"][:3], ("ok", "", [(0, "[127.0.0.9]", ["127.0.0.9"])]))
        self.assertEqual(out["[IPv6:::1]"][:3], ("ok", "", [(0, "[ipv6:::1]", ["::1"])]))
        self.assertLess(out["[127.0.0.9]"][3], 100)

    def test_host_lookup_for_smarthost(self):
        out = self.lookup("a.order.test", "order.test", "127.0.0.5", "implicit.test",
                          "nosuch.order.test", hosts=True)
        self.assertEqual(out["a.order.test"][:3],
                         ("ok", "", [(0, "a.order.test", ["127.0.0.21"])]))
        self.assertEqual(out["127.0.0.5"][:3], ("ok", "", [(0, "127.0.0.5", ["127.0.0.5"])]))
        self.assertEqual(out["implicit.test"][2], [(0, "implicit.test", ["127.0.0.41", "::1"])])
        # a host lookup never asks for MX
        self.assertEqual(out["order.test"][0], "perm", out["order.test"])
        self.assertEqual(self.dns.queries("order.test", "MX"), 0)
        self.assertTrue(out["nosuch.order.test"][1].startswith("5.1.2 "), out)


class LinkTest(unittest.TestCase):
    def test_handlers_do_not_link_ldns(self):
        """smtp-in and pop3-in start fast: they never load ldns (DESIGN.md section 8)."""
        for name in ("smtp-in", "pop3-in", "maildir-deliver"):
            path = yubintest.program(name)
            if not os.path.exists(path):
                continue
            p = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30)
            if "not a dynamic executable" in p.stdout + p.stderr:
                # a statically linked handler: no ldns code may be inside it either
                syms = subprocess.run(["nm", path], capture_output=True, text=True, timeout=30)
                self.assertEqual(syms.returncode, 0, syms.stderr)
                self.assertIn("sodium_init", syms.stdout, "nm sees no symbols at all")
                self.assertNotIn(" ldns_", syms.stdout, f"{name} contains ldns")
                continue
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertNotIn("libldns", p.stdout, f"{name} links ldns")
        self.assertTrue(os.path.exists(yubintest.program("smtp-in")), "smtp-in is not built")
        driver = os.path.join(yubintest.BUILD, "tests", "unit", "mx-lookup")
        p = subprocess.run(["ldd", driver], capture_output=True, text=True, timeout=30)
        self.assertIn("libldns", p.stdout, "the check itself would not see ldns")


if __name__ == "__main__":
    unittest.main()
