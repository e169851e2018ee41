"""test_dane: queue-run's DANE (RFC 7672) against a real signed zone and a real validating
resolver, all on loopback.

The zone dane.test is signed with ldns-signzone (keys from ldns-keygen) and served by nsd on
127.0.0.61; unbound on 127.0.0.63 validates it from the zone's own trust anchor (no root
hints: its only upstream is that nsd, so nothing outside is ever asked) and is queue-run's
dns_resolver. The MX hosts are smtpsink.py on 127.0.0.62 with a self-signed certificate:
good.dane.test has a TLSA 3 1 1 record of its key, bad.dane.test one that matches nothing,
plain.dane.test none. The zone, the keys and both servers are made once for the class.
"""
import hashlib
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import unittest

import yubintest
from smtpsink import SMTPSink, common_free_port
import test_relay
import test_tls_out

NSD, UNBOUND, MX = "127.0.0.61", "127.0.0.63", "127.0.0.62"
TOOLS = ("nsd", "unbound", "ldns-keygen", "ldns-signzone", "openssl")


def spki_sha256(cert):
    der = ssl.PEM_cert_to_DER_cert(open(cert).read())
    p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-pubkey"], input=der,
                       capture_output=True, check=True, timeout=30)
    p = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=p.stdout,
                       capture_output=True, check=True, timeout=30)
    return hashlib.sha256(p.stdout).hexdigest()


def zone_text(port, good_hash):
    wrong = hashlib.sha256(b"not this key").hexdigest()
    return "\n".join([
        "$ORIGIN dane.test.", "$TTL 300",
        "@ SOA ns.dane.test. hostmaster.dane.test. 1 3600 600 86400 300",
        "@ NS ns.dane.test.", f"ns A {NSD}",
        "good MX 10 mx.good.dane.test.", f"mx.good A {MX}",
        f"_{port}._tcp.mx.good TLSA 3 1 1 {good_hash}",
        "bad MX 10 mx.bad.dane.test.", f"mx.bad A {MX}",
        f"_{port}._tcp.mx.bad TLSA 3 1 1 {wrong}",
        "plain MX 10 mx.plain.dane.test.", f"mx.plain A {MX}", ""])


def wait_udp_answer(addr, port, name, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(port), f"@{addr}",
                            name, "MX"], capture_output=True, text=True)
        if p.returncode == 0 and p.stdout.strip():
            return True
        time.sleep(0.2)
    return False


@unittest.skipIf(any(shutil.which(t) is None for t in TOOLS), f"needs {', '.join(TOOLS)}")
class Dane(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.dir = cls.tmp.name
        cls.procs = []
        cls.cert, cls.key = test_tls_out.make_cert(d, "mx.good.dane.test")
        cls.port = common_free_port([MX])
        zone = os.path.join(d, "dane.test.zone")
        with open(zone, "w") as f:
            f.write(zone_text(cls.port, spki_sha256(cls.cert)))
        keys = []
        for ksk in (False, True):
            p = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", *(["-k"] if ksk else []),
                                "dane.test"], cwd=d, capture_output=True, text=True, check=True,
                               timeout=60)
            keys.append(p.stdout.strip())
        subprocess.run(["ldns-signzone", "-n", zone, *keys], cwd=d, check=True,
                       capture_output=True, timeout=60)
        with open(os.path.join(d, keys[1] + ".key")) as f:
            anchor = " ".join(f.read().split())
        cls.nsd_port, cls.unbound_port = common_free_port([NSD]), common_free_port([UNBOUND])
        cls.start_nsd(d)
        cls.start_unbound(d, anchor)
        cls.shared_sink = SMTPSink([MX], port=cls.port)

    @classmethod
    def start_nsd(cls, d):
        conf = os.path.join(d, "nsd.conf")
        with open(conf, "w") as f:
            f.write(f'server:\n    ip-address: {NSD}\n    port: {cls.nsd_port}\n'
                    f'    username: ""\n    chroot: ""\n    zonesdir: "{d}"\n'
                    f'    zonelistfile: "{d}/zone.list"\n    xfrdfile: "{d}/xfrd.state"\n'
                    f'    pidfile: "{d}/nsd.pid"\n    logfile: "{d}/nsd.log"\n'
                    '    database: ""\n    server-count: 1\n    verbosity: 1\n'
                    'remote-control:\n    control-enable: no\n'
                    'zone:\n    name: dane.test\n    zonefile: dane.test.zone.signed\n')
        cls.procs.append(subprocess.Popen(["nsd", "-d", "-c", conf], stdout=subprocess.DEVNULL,
                                          stderr=open(os.path.join(d, "nsd.out"), "w")))
        if not wait_udp_answer(NSD, cls.nsd_port, "good.dane.test"):
            log = open(os.path.join(d, "nsd.out")).read()
            cls.tearDownClass()
            raise RuntimeError("nsd does not answer: " + log)

    @classmethod
    def start_unbound(cls, d, anchor):
        conf = os.path.join(d, "unbound.conf")
        with open(conf, "w") as f:
            # Its only upstream is the nsd above, for "." too: no root hints are ever used.
            f.write(f'server:\n    interface: {UNBOUND}\n    port: {cls.unbound_port}\n'
                    '    do-daemonize: no\n    username: ""\n    chroot: ""\n'
                    f'    directory: "{d}"\n    pidfile: "{d}/unbound.pid"\n'
                    '    use-syslog: no\n    logfile: ""\n    verbosity: 1\n'
                    '    num-threads: 1\n    do-ip6: no\n    do-not-query-localhost: no\n'
                    '    qname-minimisation: no\n    access-control: 127.0.0.0/8 allow\n'
                    '    module-config: "validator iterator"\n    val-log-level: 2\n'
                    f'    trust-anchor: "{anchor}"\n'
                    '    local-zone: "test." nodefault\n'  # RFC 6761 names: served from nsd
                    'remote-control:\n    control-enable: no\n'
                    f'stub-zone:\n    name: "dane.test"\n    stub-addr: {NSD}@{cls.nsd_port}\n'
                    f'stub-zone:\n    name: "."\n    stub-addr: {NSD}@{cls.nsd_port}\n')
        cls.unbound_log = os.path.join(d, "unbound.out")
        cls.procs.append(subprocess.Popen(["unbound", "-d", "-c", conf],
                                          stdout=subprocess.DEVNULL,
                                          stderr=open(cls.unbound_log, "w")))
        if not wait_udp_answer(UNBOUND, cls.unbound_port, "good.dane.test"):
            log = open(cls.unbound_log).read()
            cls.tearDownClass()
            raise RuntimeError("unbound does not answer: " + log)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "shared_sink", None):
            cls.shared_sink.close()
        for p in cls.procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        cls.procs = []
        cls.tmp.cleanup()

    def setUp(self):
        self.sink = self.shared_sink  # one listener for the class: the TLSA records name its port
        self.sink.messages = []
        self.sink.tls = test_tls_out.server_context(self.cert, self.key)
        self.site = yubintest.Instance(users=("demo@example.test",), conf={
            "dns_resolver": f"{UNBOUND}:{self.unbound_port}", "smtp_port": str(self.port),
            "connect_timeout": "5", "command_timeout": "10"})

    def tearDown(self):
        self.site.stop()

    inject = test_relay.RelayTest.inject
    run_queue = test_relay.RelayTest.run_queue
    qdir = test_relay.RelayTest.qdir
    entries = test_relay.RelayTest.entries
    policy = test_tls_out.OutboundTLS.policy
    env_text = test_tls_out.TLSCase.env_text
    log = test_tls_out.TLSCase.log
    deliver_one = test_tls_out.TLSCase.deliver_one

    def test_resolver_validates(self):
        p = subprocess.run(["dig", "+dnssec", "-p", str(self.unbound_port), f"@{UNBOUND}",
                            f"_{self.port}._tcp.mx.good.dane.test", "TLSA"],
                           capture_output=True, text=True, timeout=30)
        self.assertRegex(p.stdout, r"flags: qr rd ra ad;", p.stdout)

    def test_matching_tlsa_record_delivers(self):
        qid, out = self.deliver_one("bob@good.dane.test")
        self.assertIsNotNone(self.sink.messages[0].tls)
        self.assertIn("DANE: 1 usable TLSA record(s) of 1", out)
        self.assertRegex(self.log(), rf"{qid}: to=<bob@good\.dane\.test> delivered attempt=1 "
                         r"tls=TLSv1\.[23]/\S+/dane: 250")

    def test_wrong_tlsa_record_defers(self):
        qid = self.inject(["bob@bad.dane.test"])
        out = self.run_queue("-f")
        self.assertEqual(self.sink.messages, [], out)
        env = self.env_text(qid)
        self.assertRegex(env, r"rcpt pending 1 \d+ bob@bad\.dane\.test - 4\.7\.5 TLS with "
                         r"127\.0\.0\.62:\d+ \(dane\): certificate matches no TLSA record", env)
        self.assertRegex(self.log(), r"to=<bob@bad\.dane\.test> deferred attempt=1: 4\.7\.5\\x20TLS"
                         r"\\x20with\\x20127\.0\.0\.62:\d+\\x20\(dane\):\\x20certificate\\x20matches"
                         r"\\x20no\\x20TLSA\\x20record")

    def test_wrong_tlsa_record_is_never_sent_in_clear(self):
        self.sink.tls = None  # the MX stops offering STARTTLS: DANE still requires it
        qid = self.inject(["bob@bad.dane.test"])
        out = self.run_queue("-f")
        self.assertEqual(self.sink.messages, [], out)
        self.assertIn("4.7.4 no STARTTLS offered", self.env_text(qid))

    def test_signed_domain_without_tlsa_is_opportunistic(self):
        self.inject(["bob@plain.dane.test"])
        out = self.run_queue("-f")
        self.assertEqual(len(self.sink.messages), 1, out)
        self.assertIsNotNone(self.sink.messages[0].tls)

    def test_dane_policy_without_tlsa_defers(self):
        self.policy("plain.dane.test dane\n")
        qid = self.inject(["bob@plain.dane.test"])
        out = self.run_queue("-f")
        self.assertEqual(self.sink.messages, [], out)
        self.assertIn("4.7.5 no authenticated TLSA records for mx.plain.dane.test",
                      self.env_text(qid))


if __name__ == "__main__":
    unittest.main()
