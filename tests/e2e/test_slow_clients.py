"""test_slow_clients: smtp-in and pop3-in end (exit, not hang) within their timeouts when the
client is silent, when it trickles one byte a second, and when it stops reading our replies.

Each handler is started the way inetd starts it (the accepted TCP socket on stdin and stdout,
as root, dropping to the mail account), so the test can wait for the process itself to exit.
command_timeout, data_timeout and pop3_timeout are 3 seconds (and the junk-command limit out of
the way); a handler still running well after that fails the test (and is killed).
SlowClientsOverTls: the same over implicit TLS (-T), the deadlines holding inside OpenSSL's
reads and writes: silent after the handshake, one TLS record trickled a byte a second (OpenSSL
waits for the rest of it), a RETR over TLS never read."""
import os
import socket
import ssl
import subprocess
import threading
import time
import unittest

import yubintest

TIMEOUT = 3     # command_timeout and data_timeout of the site
GRACE = 6       # seconds after the timeout in which the handler must have exited
TRICKLE = 1.0   # seconds between the bytes of a trickling client
BIG = b"Subject: big\n\n" + b"".join(b"%07d " % i + b"y" * 92 + b"\n" for i in range(120000))


class SlowClients(unittest.TestCase):
    def setUp(self):
        self.inst = yubintest.Instance(conf={"command_timeout": str(TIMEOUT),
                                             "data_timeout": str(TIMEOUT),
                                             "pop3_timeout": str(TIMEOUT),
                                             "max_junk_commands": "100000"})
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.inst.stop()

    def start(self, name, *extra, rcvbuf=None):
        """Connect to NAME run on the accepted socket, as inetd does. Returns (client, proc)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as lst:
            lst.bind(("127.0.0.1", 0))
            lst.listen(1)
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            client.connect(lst.getsockname())
            conn, _ = lst.accept()
        with conn:
            p = subprocess.Popen(self.inst.argv(name, *extra), stdin=conn, stdout=conn,
                                 stderr=subprocess.DEVNULL)
        self.procs.append(p)
        client.settimeout(10)
        return client, p

    def read_line(self, client):
        data = b""
        while not data.endswith(b"\n"):
            chunk = client.recv(1)
            if not chunk:
                break
            data += chunk
        return data

    def read_all(self, client, limit=5.0):
        """Everything until EOF (or limit seconds)."""
        client.settimeout(limit)
        data = b""
        try:
            while True:
                chunk = client.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return data

    def wait_exit(self, p, since, what):
        try:
            p.wait(timeout=max(0.1, since + TIMEOUT + GRACE - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.fail(f"{what}: still running {TIMEOUT + GRACE} s after the client went slow")
        return time.monotonic() - since

    def trickle(self, client, p, data):
        """Send data one byte a second while p runs; stop at EOF/reset or after 4 timeouts."""
        end = time.monotonic() + 4 * TIMEOUT + GRACE
        for b in data:
            if p.poll() is not None or time.monotonic() > end:
                return
            try:
                client.send(bytes([b]))
            except OSError:
                return
            time.sleep(TRICKLE)

    def trickle_case(self, name, before, slow, expect):
        client, p = self.start(name)
        with client:
            for line in before:
                if line is not None:
                    client.sendall(line)
                self.read_line(client)
            since = time.monotonic()
            t = threading.Thread(target=self.trickle, args=(client, p, slow), daemon=True)
            t.start()
            took = self.wait_exit(p, since, f"{name} with a trickling client")
            t.join(timeout=TRICKLE + 2)
            self.assertIn(expect, self.read_all(client, 2))
            self.assertGreaterEqual(took, TIMEOUT - 0.5)

    # -- smtp-in ----------------------------------------------------------------------
    def test_smtp_silent(self):
        client, p = self.start("smtp-in")
        with client:
            self.assertTrue(self.read_line(client).startswith(b"220 "))
            since = time.monotonic()
            self.wait_exit(p, since, "smtp-in with a silent client")
            self.assertIn(b"421 4.4.2", self.read_all(client))
        self.assertEqual(p.returncode, 1)

    def test_smtp_trickle_command(self):
        self.trickle_case("smtp-in", [None], b"NOOP " * 40 + b"\r\n", b"421 4.4.2")

    def test_smtp_trickle_data(self):
        before = [None, b"HELO client.test\r\n", b"MAIL FROM:<a@remote.test>\r\n",
                  b"RCPT TO:<demo@example.test>\r\n", b"DATA\r\n"]
        self.trickle_case("smtp-in", before, b"Subject: slow" + b"x" * 100 + b"\r\n",
                          b"421 4.4.2")
        self.assertEqual(self.inst.messages("demo@example.test"), [])

    def test_smtp_stops_reading(self):
        """Pipelined HELP commands whose replies the client never reads."""
        client, p = self.start("smtp-in", rcvbuf=4096)
        with client:
            self.assertTrue(self.read_line(client).startswith(b"220 "))
            client.setblocking(False)
            chunk = b"HELP\r\n" * 2000
            last_progress = time.monotonic()
            while time.monotonic() - last_progress < 1.0 and p.poll() is None:
                try:
                    client.send(chunk)
                    last_progress = time.monotonic()
                except BlockingIOError:
                    time.sleep(0.05)
                except OSError:
                    break
            since = last_progress
            took = self.wait_exit(p, since, "smtp-in with a client that stops reading")
        self.assertLess(took, 2 * TIMEOUT + GRACE)

    # -- pop3-in ----------------------------------------------------------------------
    def login(self, client):
        self.assertTrue(self.read_line(client).startswith(b"+OK"))
        client.sendall(b"USER demo@example.test\r\n")
        self.assertTrue(self.read_line(client).startswith(b"+OK"))
        client.sendall(b"PASS demo\r\n")
        self.assertTrue(self.read_line(client).startswith(b"+OK"))

    def test_pop3_silent(self):
        client, p = self.start("pop3-in")
        with client:
            self.assertTrue(self.read_line(client).startswith(b"+OK"))
            since = time.monotonic()
            self.wait_exit(p, since, "pop3-in with a silent client")
            self.assertIn(b"-ERR autologout", self.read_all(client))

    def test_pop3_trickle(self):
        self.trickle_case("pop3-in", [None], b"USER demo@example.test" + b"x" * 40 + b"\r\n",
                          b"-ERR autologout")

    def test_pop3_stops_reading(self):
        """RETR of a 12 MB message (more than the socket buffers hold), never read."""
        self.inst.add_message("demo@example.test", BIG)
        client, p = self.start("pop3-in", rcvbuf=4096)
        with client:
            self.login(client)
            client.sendall(b"RETR 1\r\n")
            since = time.monotonic()
            took = self.wait_exit(p, since, "pop3-in with a client that stops reading")
        self.assertLess(took, 2 * TIMEOUT + GRACE)
        self.assertEqual(len(self.inst.messages("demo@example.test", "cur")), 1)


class TlsChannel:
    """A TLS client over a plain socket through memory BIOs (ssl.SSLObject), so the test
    decides when each encrypted byte goes out: records can be sent whole or a byte at a
    time."""

    def __init__(self, sock, cafile):
        ctx = ssl.create_default_context(cafile=cafile)
        self.sock, self.inc, self.out = sock, ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="mx.example.test")
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.out.read())
                data = self.sock.recv(65536)
                if not data:
                    raise AssertionError("the server closed during the handshake")
                self.inc.write(data)
        self.sock.sendall(self.out.read())

    def records(self, data):
        """The encrypted bytes that carry data (not sent)."""
        self.obj.write(data)
        return self.out.read()

    def send(self, data):
        self.sock.sendall(self.records(data))

    def read_line(self):
        data = b""
        while not data.endswith(b"\n"):
            try:
                got = self.obj.read(1)
                if not got:  # the server's close_notify
                    return data
                data += got
                continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return data
            chunk = self.sock.recv(65536)
            if not chunk:
                return data
            self.inc.write(chunk)
        return data

    def read_all(self, limit=5.0):
        """Plaintext until the server closes (or limit seconds)."""
        self.sock.settimeout(limit)
        data = b""
        while True:
            try:
                got = self.obj.read(65536)
                if not got:
                    return data
                data += got
                continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ssl.SSLError):
                return data
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                return data
            if not chunk:
                return data
            self.inc.write(chunk)


class SlowClientsOverTls(unittest.TestCase):
    """The same ends over implicit TLS (-T): the deadlines hold inside OpenSSL's reads and
    writes too."""
    tearDown = SlowClients.tearDown
    start = SlowClients.start
    wait_exit = SlowClients.wait_exit
    trickle = SlowClients.trickle

    def setUp(self):
        SlowClients.setUp(self)
        self.cert = self.inst.use_tls()

    def tls(self, name, rcvbuf=None):
        client, p = self.start(name, "-T", rcvbuf=rcvbuf)
        return client, TlsChannel(client, self.cert), p

    def test_smtp_silent_after_the_handshake(self):
        client, t, p = self.tls("smtp-in")
        with client:
            self.assertTrue(t.read_line().startswith(b"220 "))
            since = time.monotonic()
            self.wait_exit(p, since, "smtp-in over TLS with a silent client")
            self.assertIn(b"421 4.4.2", t.read_all())

    def test_smtp_trickles_one_tls_record(self):
        """One command in one TLS record, sent a byte a second: OpenSSL waits for the rest
        of the record, and the command deadline still ends the session."""
        client, t, p = self.tls("smtp-in")
        with client:
            self.assertTrue(t.read_line().startswith(b"220 "))
            record = t.records(b"NOOP\r\n")
            since = time.monotonic()
            th = threading.Thread(target=self.trickle, args=(client, p, record), daemon=True)
            th.start()
            took = self.wait_exit(p, since, "smtp-in with a trickled TLS record")
            th.join(timeout=TRICKLE + 2)
            self.assertGreaterEqual(took, TIMEOUT - 0.5)
            self.assertGreater(len(record) * TRICKLE, TIMEOUT + GRACE, "it outlasts the timeout")

    def test_pop3_stops_reading_over_tls(self):
        """RETR of a 12 MB message over TLS, never read: SSL_write waits under the deadline."""
        self.inst.add_message("demo@example.test", BIG)
        client, t, p = self.tls("pop3-in", rcvbuf=4096)
        with client:
            self.assertTrue(t.read_line().startswith(b"+OK"))
            for line in (b"USER demo@example.test\r\n", b"PASS demo\r\n"):
                t.send(line)
                self.assertTrue(t.read_line().startswith(b"+OK"))
            t.send(b"RETR 1\r\n")
            since = time.monotonic()
            took = self.wait_exit(p, since, "pop3-in over TLS with a client that stops reading")
        self.assertLess(took, 2 * TIMEOUT + GRACE)
        self.assertEqual(len(self.inst.messages("demo@example.test", "cur")), 1)


if __name__ == "__main__":
    unittest.main()
