"""test_auth: the password service, yubin-auth(8), with real POP3 and SMTP clients.

- 200 parallel POP3 logins with wrong passwords keep the memory of the whole site (yubin-auth
  and every pop3-in) under a stated bound: auth_max_parallel argon2id arenas in the service,
  and handlers that never allocate one. Before the service, each handler verified in its own
  process: 200 x 64 MiB, about 12.5 GiB.
- Failed logins from one client address, or for one user from many addresses, are slowed
  across connections: parallel connections that each try one wrong password take at least
  the sum of the growing delays (without the service each connection only waited its own
  first delay).
- Beyond auth_max_queue waiting checks, a login gets a temporary failure.
- A handler, running as the mail account, cannot open the users file, and logs in anyway.
- Only the handlers' account may ask the service (SO_PEERCRED).
- With the service down, POP3 says -ERR [SYS/TEMP] and submission 454 4.7.0, and both log why.
Nothing here contacts anything but 127.0.0.0/8 and the site's own Unix sockets.
"""
import base64
import os
import poplib
import re
import smtplib
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest

import yubintest

MIB = 1024 * 1024


class POP3From(poplib.POP3):
    """poplib.POP3 connecting from a chosen loopback address."""

    def __init__(self, host, port, source, timeout):
        self.source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))


def pop3_try(port, user, password, source="127.0.0.1"):
    """One connection, one USER/PASS; the server's answer to PASS (or the error text)."""
    try:
        p = POP3From("127.0.0.1", port, source, timeout=120)
        p.user(user)
        try:
            return p.pass_(password).decode()
        except poplib.error_proto as e:
            return e.args[0].decode()
        finally:
            try:
                p.quit()
            except (poplib.error_proto, OSError):
                pass
    except OSError as e:
        return f"error {e}"


def parallel(n, fn):
    results = [None] * n

    def run(i):
        results[i] = fn(i)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


class Memory(unittest.TestCase):
    def test_200_parallel_wrong_logins_keep_memory_bounded(self):
        """The bound: yubin-auth at most auth_max_parallel (2) x 64 MiB + 48 MiB, each
        pop3-in at most 24 MiB (under ASan too: no handler ever maps an argon2 arena), the
        whole site at most 128 + 48 + 200 x 24 MiB at any sample, and the sum of the
        handlers far below one arena each (200 x 64 MiB)."""
        inst = yubintest.Instance(conf={"auth_delay_ms": "0", "auth_max_queue": "256",
                                        "pwhash_opslimit": "1", "max_auth_failures": "1"})
        self.addCleanup(inst.stop)
        port = inst.serve_inetd("pop3-in")
        inetd = inst.procs[-1].pid
        peak = {"site": 0, "handlers": 0, "count": 0, "one": 0}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                handlers = yubintest.children(inetd)
                sizes = [yubintest.rss_kib(p, "VmHWM") for p in handlers]
                h = sum(yubintest.rss_kib(p) for p in handlers)
                peak["one"] = max([peak["one"]] + sizes)
                site = h + yubintest.rss_kib(inst.auth.pid)
                peak["site"] = max(peak["site"], site)
                peak["handlers"] = max(peak["handlers"], h)
                peak["count"] = max(peak["count"], len(handlers))
                time.sleep(0.02)
        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        # one in twenty a known user (the real 64 MiB, t=2 hash), the rest unknown (the dummy
        # hash with the configured limits: 64 MiB, t=1)
        got = parallel(200, lambda i: pop3_try(
            port, "demo@example.test" if i % 20 == 0 else f"nobody{i}@example.test", "wrong"))
        elapsed = time.monotonic() - started
        stop.set()
        sampler.join()
        service_peak = yubintest.rss_kib(inst.auth.pid, "VmHWM")
        self.assertEqual([g for g in got if not g.startswith("-ERR [AUTH]")], [])
        print(f"# 200 wrong logins in {elapsed:.1f} s; peak: service {service_peak // 1024} MiB, "
              f"{peak['count']} handlers at once {peak['handlers'] // 1024} MiB, "
              f"site {peak['site'] // 1024} MiB, largest handler {peak['one']} KiB")
        self.assertGreaterEqual(peak["count"], 50, "the logins did not run in parallel")
        self.assertLessEqual(service_peak, (2 * 64 + 48) * 1024)
        self.assertGreaterEqual(service_peak, 64 * 1024, "the service did not verify at all")
        self.assertLessEqual(peak["handlers"], 200 * 24 * 1024)
        self.assertLessEqual(peak["site"], (2 * 64 + 48 + 200 * 24) * 1024)
        self.assertLessEqual(peak["one"], 24 * 1024)

    def test_beyond_the_queue_a_temporary_failure(self):
        """auth_max_parallel 1, auth_max_queue 1: of five checks asked at once, one runs, one
        waits, and three are told TEMP at once (the handler then says -ERR [SYS/TEMP], as
        for the service down)."""
        inst = yubintest.Instance(conf={"auth_delay_ms": "0", "auth_max_queue": "1",
                                        "auth_max_parallel": "1"})
        self.addCleanup(inst.stop)
        socks = []
        for i in range(5):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(60)
            s.connect(inst.settings["auth_socket"])
            socks.append(s)
        u = base64.b64encode(b"demo@example.test").decode()
        for s in socks:
            s.sendall(f"PASS pop3 local {u} d3Jvbmc=\n".encode())
        got = []
        for s in socks:
            got.append(s.recv(200).decode())
            s.close()
        self.assertEqual(sum(g.startswith("TEMP too many logins") for g in got), 3, got)
        self.assertEqual(sum(g.startswith("NO ") for g in got), 2, got)
        time.sleep(0.1)
        self.assertTrue(any("busy: 1 checks running and 1 waiting" in l
                            for l in inst.syslog.lines()))


class AcrossConnections(unittest.TestCase):
    """auth_delay_ms 100: after n failures a key waits 100 x 2^(n-1) ms. Five parallel
    connections with one wrong password each: the first two may run together, the others
    wait 200, 400 and 800 ms after the failure before them, and the last answer is held
    1600 ms: at least 3 s in all. Without the service each waits only its own 100 ms."""

    def slowed(self, sources, users):
        inst = yubintest.Instance(conf={"auth_delay_ms": "100"})
        self.addCleanup(inst.stop)
        port = inst.serve_inetd("pop3-in")
        started = time.monotonic()
        got = parallel(5, lambda i: pop3_try(port, users[i], "wrong", sources[i]))
        elapsed = time.monotonic() - started
        self.assertTrue(all(g.startswith("-ERR [AUTH]") for g in got), got)
        self.assertGreaterEqual(elapsed, 2.8, "failures were not slowed across connections")
        self.assertLess(elapsed, 60)
        time.sleep(0.1)
        return inst

    def test_one_address_many_connections(self):
        inst = self.slowed(["127.0.0.1"] * 5, [f"u{i}@example.test" for i in range(5)])
        self.assertTrue(any("login delayed: client=127.0.0.1 failures=" in l
                            for l in inst.syslog.lines()), inst.syslog.lines()[-5:])

    def test_one_user_many_addresses(self):
        inst = self.slowed([f"127.0.0.{i + 2}" for i in range(5)], ["demo@example.test"] * 5)
        self.assertTrue(any("login failed: user=<demo@example.test>" in l and "delay=" in l
                            for l in inst.syslog.lines()))

    def test_a_right_password_after_failures_waits_then_works(self):
        inst = yubintest.Instance(conf={"auth_delay_ms": "300"})
        self.addCleanup(inst.stop)
        port = inst.serve_inetd("pop3-in")
        self.assertTrue(pop3_try(port, "demo@example.test", "wrong").startswith("-ERR [AUTH]"))
        started = time.monotonic()
        self.assertTrue(pop3_try(port, "demo@example.test", "demo").startswith("+OK"))
        # the first failure held its own answer 300 ms; the new connection's check waits for
        # whatever is left of it: never more than the delay
        self.assertLess(time.monotonic() - started, 10)


class Isolation(unittest.TestCase):
    def setUp(self):
        self.inst = yubintest.Instance()
        self.addCleanup(self.inst.stop)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to run as the mail account")
    def test_handler_account_cannot_open_the_users_file(self):
        p = subprocess.run(["cat", self.inst.users_file], capture_output=True,
                           preexec_fn=yubintest.as_user(self.inst.account), timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"Permission denied", p.stderr)
        # ... and pop3-in, dropping to that account, logs in all the same
        h = self.inst.pipe("pop3-in")
        out, _ = h.communicate(b"USER demo@example.test\r\nPASS demo\r\nQUIT\r\n", timeout=30)
        self.assertIn(b"+OK demo@example.test has 0 messages", out)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to connect as another account")
    def test_only_the_handlers_account_may_ask(self):
        path = self.inst.settings["auth_socket"]
        os.chmod(path, 0o666)  # past the socket's mode: SO_PEERCRED still refuses
        code = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
                "s.settimeout(1)\ntry: print(s.recv(100)); sys.exit()\nexcept OSError: pass\n"
                "s.sendall(b'USER ZGVtb0BleGFtcGxlLnRlc3Q=\\n'); print(s.recv(100))")
        p = subprocess.run(["python3", "-c", code, path], capture_output=True, text=True,
                           preexec_fn=yubintest.as_user("nobody"), timeout=30)
        self.assertIn("BAD not allowed", p.stdout, p.stderr)
        p = subprocess.run(["python3", "-c", code, path], capture_output=True, text=True,
                           preexec_fn=yubintest.as_user(self.inst.account), timeout=30)
        self.assertIn("OK demo@example.test", p.stdout, p.stderr)
        time.sleep(0.1)
        self.assertTrue(any("refused a connection from uid" in l for l in self.inst.syslog.lines()))

    def test_malformed_requests_are_refused_and_others_served(self):
        path = self.inst.settings["auth_socket"]
        for bad in (b"HELLO\n", b"PASS pop3 local !!! !!!\n", b"USER a b\n", b"x" * 5000):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(path)
                s.sendall(bad)
                self.assertTrue(s.recv(200).startswith(b"BAD"), bad[:20])
        # a name with a space is no mailbox, even if a hand edit put it in the file (the
        # answer names the mailbox in one word)
        self.inst.write_users({"demo@example.test": yubintest.DEMO_HASH,
                               "a b@example.test": yubintest.DEMO_HASH})
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(path)
            for user, want in ((b"a b@example.test", b"NO "), (b"demo@example.test",
                                                              b"OK demo@example.test ")):
                u, pw = (base64.b64encode(x).decode() for x in (user, b"demo"))
                s.sendall(f"PASS pop3 local {u} {pw}\n".encode())
                self.assertTrue(s.recv(200).startswith(want), user)


class Daemon(unittest.TestCase):
    def test_detached_daemon_binds_serves_and_stops(self):
        """-D, for inetd sites: returns once the socket is bound, serves from the background,
        refuses a second copy on the same socket, and removes its socket on SIGTERM."""
        inst = yubintest.Instance(auth=False)
        self.addCleanup(inst.stop)
        path = os.path.join(inst.dir, "run", "auth.sock")  # a directory it makes
        inst.settings["auth_socket"] = path
        inst.write_conf()
        argv = [yubintest.program("yubin-auth"), "-C", inst.conf, "-D"]
        p = subprocess.run(argv, capture_output=True, timeout=30)
        self.assertEqual((p.returncode, p.stderr), (0, b""))
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(path)
            pid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                   struct.calcsize("3i")))[0]
            self.addCleanup(lambda: os.path.exists(f"/proc/{pid}") and os.kill(pid, 9))
            u = base64.b64encode(b"demo@example.test").decode()
            s.sendall(f"USER {u}\n".encode())
            self.assertEqual(s.recv(200), b"OK demo@example.test\n")
        again = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        self.assertEqual(again.returncode, 71)
        self.assertIn("a yubin-auth already answers there", again.stderr)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        if os.geteuid() == 0:  # the directory it made is auth_user's: the socket goes
            self.assertFalse(os.path.exists(path))


    @unittest.skipUnless(os.geteuid() == 0, "needs root to connect as the handlers' account")
    def test_the_socket_appears_with_its_group_already_set(self):
        """A handler that finds auth_socket may connect at once: the socket is bound under a
        temporary name and renamed into place only once it has the handlers' group, so a
        start under load never answers EACCES (it did, once, in CI). strace holds every
        chown for half a second, which before made the window wide open."""
        inst = yubintest.Instance(auth=False)
        self.addCleanup(inst.stop)
        path = inst.settings["auth_socket"]
        code = ("import os,socket,sys,time\nend=time.monotonic()+20\n"
                "while not os.path.exists(sys.argv[1]) and time.monotonic()<end: pass\n"
                "s=socket.socket(socket.AF_UNIX)\n"
                "try: s.connect(sys.argv[1]); print('connected')\n"
                "except OSError as e: print(e)\n")
        watcher = subprocess.Popen(["python3", "-c", code, path], stdout=subprocess.PIPE,
                                   text=True, preexec_fn=yubintest.as_user(inst.account))
        slow_chown = "inject=chown,fchown,fchownat,lchown:delay_enter=500000"
        auth = subprocess.Popen(["strace", "-f", "-qq", "-o", "/dev/null", "-e", slow_chown,
                                 yubintest.program("yubin-auth"), "-C", inst.conf],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.addCleanup(lambda: (os.killpg(auth.pid, signal.SIGKILL), auth.wait()))
        out, _ = watcher.communicate(timeout=30)
        self.assertEqual(out.strip(), "connected")
        self.assertFalse(os.path.exists(path + ".new"))

    def test_a_file_in_the_sockets_place_is_left_alone(self):
        inst = yubintest.Instance(auth=False)
        self.addCleanup(inst.stop)
        path = inst.settings["auth_socket"]
        with open(path, "w") as f:
            f.write("not a socket\n")
        p = subprocess.run([yubintest.program("yubin-auth"), "-C", inst.conf, "-D"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("exists and is no socket", p.stderr)
        with open(path) as f:
            self.assertEqual(f.read(), "not a socket\n")


class ArenaIdle(unittest.TestCase):
    """A worker's argon2id memory (pwhash_memlimit, 64 MiB here) stays mapped for the logins
    that follow within auth_arena_idle seconds, and is given back after."""

    def private_kib(self, pid):
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"RssAnon:\s+(\d+) kB", f.read()).group(1))

    def login_and_watch(self, idle, seconds):
        inst = yubintest.Instance(auth=False)
        self.addCleanup(inst.stop)
        inst.settings["auth_arena_idle"] = str(idle)
        inst.write_conf()
        auth = inst.start_auth()
        before = self.private_kib(auth.pid)
        h = inst.pipe("pop3-in")
        out, _ = h.communicate(b"USER demo@example.test\r\nPASS demo\r\nQUIT\r\n", timeout=30)
        self.assertIn(b"+OK demo@example.test has", out)
        after = self.private_kib(auth.pid)
        self.assertGreater(after - before, 60 * 1024, "the arena is mapped after a login")
        deadline = time.monotonic() + seconds
        samples = [after]
        while time.monotonic() < deadline:
            time.sleep(0.2)
            samples.append(self.private_kib(auth.pid))
        return before, samples

    def test_memory_is_given_back_after_the_idle_time(self):
        before, samples = self.login_and_watch(3, 8)  # 3 s: room for a loaded machine
        self.assertLess(samples[-1] - before, 8 * 1024, samples)

    def test_an_idle_service_touches_none_of_its_big_tables(self):
        # 1,024 client slots of 4 KiB and 8,192 failure records of 288 B are static: only
        # those that come into use may be written (it was 6.4 MiB of RssAnon at start).
        with open(yubintest.program("yubin-auth"), "rb") as f:
            if b"__asan_init" in f.read():
                self.skipTest("a sanitizer build keeps its own memory")
        inst = yubintest.Instance(auth=False)
        self.addCleanup(inst.stop)
        auth = inst.start_auth()
        h = inst.pipe("pop3-in")
        h.communicate(b"USER demo@example.test\r\nPASS wrong\r\nQUIT\r\n", timeout=30)
        self.assertLess(self.private_kib(auth.pid) - 64 * 1024, 2 * 1024)  # the arena

    def test_memory_is_kept_within_the_idle_time(self):
        before, samples = self.login_and_watch(3600, 2)
        self.assertGreater(min(samples) - before, 60 * 1024, samples)


class ServiceDown(unittest.TestCase):
    def test_temporary_errors_and_a_log_line(self):
        inst = yubintest.Instance(auth=False)
        self.addCleanup(inst.stop)
        pop3 = inst.serve_inetd("pop3-in")
        sub = inst.serve_inetd("smtp-in", "-s")
        self.assertTrue(pop3_try(pop3, "demo@example.test", "demo").startswith("-ERR [SYS/TEMP]"))
        with smtplib.SMTP("127.0.0.1", sub, timeout=30) as s:
            s.ehlo("client.test")
            with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
                s.login("demo@example.test", "demo")
            self.assertEqual(e.exception.smtp_code, 454)
        time.sleep(0.1)
        lines = inst.syslog.lines()
        self.assertTrue(any("pop3-in" in l and "password service is not reachable" in l
                            for l in lines), lines[-5:])
        self.assertTrue(any("smtp-in" in l and "password service is not reachable" in l
                            for l in lines), lines[-5:])
        # and once it is back, the same handlers log in
        inst.start_auth()
        self.assertTrue(pop3_try(pop3, "demo@example.test", "demo").startswith("+OK"))


if __name__ == "__main__":
    unittest.main()
