"""yubintest: what every end-to-end test needs to run yubin the way an administrator would.

An Instance is a complete yubin site in a scratch directory: yubin.conf, a state_dir owned by
the unprivileged account, a users file in the real format, an aliases file, and a syslog
socket the test can read. It starts the real programs under the real launchers
(openbsd-inetd, systemd-socket-activate) on a free loopback port, and stops them again.
Nothing here contacts anything but 127.0.0.0/8.
"""
import contextlib
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BUILD = os.environ.get("YUBIN_BUILD", os.path.abspath("build"))
SRC = os.environ.get("YUBIN_SRC", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
# A real argon2id hash of the password "demo" (crypto_pwhash_str, interactive limits).
# Every test site signs SRS addresses (yubin.conf(5), srs_secret_file) with this secret.
SRS_TEST_SECRET = "yubin test site SRS secret, not for real use"
DEMO_HASH = ("$argon2id$v=19$m=65536,t=2,p=1$47Lc297jCosEwjzTvd33jA$"
             "s5TfnANLy78TZtYSGz3Xt+vHx+jhI63xgLs5EWkUH9M")


def program(name):
    """Path of a built program (bin/NAME in the build tree)."""
    return os.path.join(BUILD, "bin", name)


def run_account():
    """The account the handlers serve as: 'yubin' when we are root, else ourselves."""
    if os.geteuid() == 0:
        return os.environ.get("YUBIN_TEST_USER", "yubin")
    return pwd.getpwuid(os.geteuid()).pw_name


def auth_account():
    """The account yubin-auth serves as: 'yubin-auth' when we are root (./quickstart makes
    it), else ourselves."""
    if os.geteuid() == 0:
        return os.environ.get("YUBIN_TEST_AUTH_USER", "yubin-auth")
    return pwd.getpwuid(os.geteuid()).pw_name


def imap_logout_quietly(c):
    """LOGOUT an imaplib client in a cleanup, whatever state its connection is in."""
    try:
        c.logout()
    except (imaplib.IMAP4.error, OSError, EOFError):
        pass


def numbered_message(i):
    """Message number i of a test folder for demo@example.test: sender, Subject and body say i."""
    return (b"From: sender%d@remote.test\nTo: demo@example.test\nSubject: number %d\n\n"
            b"body %d\n" % (i, i, i))


def only_child(parent, timeout=30):
    """The one process parent (an inetd) runs, once the others have ended (the session of
    serve_inetd's probe connection, say); an AssertionError if they do not within timeout."""
    deadline = time.monotonic() + timeout
    while len(pids := children(parent)) != 1:
        if time.monotonic() > deadline:
            raise AssertionError(f"one session expected, found {pids}")
        time.sleep(0.05)
    return pids[0]


def read_bytes(path):
    """The content of path, or b"" while it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def strace_lines(pid, log, act):
    """The file system calls and reads (strace's %file and read) that PID makes while act()
    runs, as strace lines (strace attached, so root for a handler that dropped privileges).
    act ends with a NOOP on the session: its read closes the log."""
    st = subprocess.Popen(["strace", "-p", str(pid), "-o", log, "-s", "200",
                           "-e", "trace=%file,read"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    try:
        if "attached" not in st.stderr.readline():
            raise AssertionError("strace could not attach")
        act()
        deadline = time.monotonic() + 30
        while b"NOOP" not in read_bytes(log):
            if time.monotonic() > deadline:
                raise AssertionError("strace wrote no more")
            time.sleep(0.05)
    finally:
        st.send_signal(signal.SIGINT)
        st.communicate(timeout=30)
    return read_bytes(log).decode("utf-8", "replace").splitlines()


class Tmux:
    """A program on a terminal of its own tmux server (neomutt under test): start it, read the
    screen, wait for a pattern on it, send keys; stop() kills the server."""

    def __init__(self, name):
        self.sock = f"yubin-test-{name}-{os.getpid()}"

    def run(self, *args):
        return subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True,
                              timeout=30, check=True).stdout.decode(errors="replace")

    def start(self, command, env):
        subprocess.run(["tmux", "-L", self.sock, "new-session", "-d", "-s", "main", "-x", "160",
                        "-y", "40", command], env=env, check=True, timeout=30)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "main")

    def wait_for(self, test, pattern, timeout=30):
        """The screen once it shows the regular expression pattern; test.fail after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.screen()
            if re.search(pattern, s):
                return s
            time.sleep(0.2)
        test.fail(f"the terminal never showed {pattern!r}:\n{self.screen()}")

    def keys(self, *keys):
        self.run("send-keys", "-t", "main", *keys)

    def stop(self):
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True, timeout=30)


def as_user(name):
    """preexec_fn that becomes NAME (when we are root); None when we are not root."""
    if os.geteuid() != 0:
        return None
    pw = pwd.getpwnam(name)

    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return drop


def rss_kib(pid, field="VmRSS"):
    """A memory figure of /proc/PID/status in KiB (VmRSS, VmHWM, ...); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def children(parent):
    """The processes whose parent is parent (the handlers one inetd started: other tests on
    the machine run handlers of their own)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                out.append(int(pid))
        except (OSError, IndexError, ValueError):
            pass
    return out


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def wait_unix(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {path}")


def client_server_net(case, prefix, tag):
    """For a TestCase's setUp: a bridge prefix.0/24 with hosts "srv" (.10) and "client" (.20),
    each in its own namespace (tests/e2e/netns), closed at the case's cleanup; or the case is
    skipped where namespaces cannot be made."""
    import netns
    reason = netns.unavailable()
    if reason:
        case.skipTest(reason)
    net = netns.Network(prefix, tag=tag)
    case.addCleanup(net.close)
    net.add_host("srv", 10)
    net.add_host("client", 20)
    return net


class SyslogCatcher:
    """A unix datagram socket standing in for /dev/log; lines() returns what arrived."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.setblocking(False)
        self.seen = []

    def lines(self):
        while True:
            try:
                self.seen.append(self.sock.recv(65536).decode("utf-8", "replace"))
            except BlockingIOError:
                return list(self.seen)

    def wait_for(self, text, timeout=10.0):
        """Until a line containing text has arrived, or timeout seconds: the lines so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not any(text in l for l in self.lines()):
            time.sleep(0.1)
        return self.lines()

    def close(self):
        self.sock.close()


class Instance:
    """One yubin site in a temporary directory."""

    def __init__(self, domains=("example.test",), users=("demo@example.test",),
                 aliases=None, conf=None, hostname="mx.example.test", netns=None,
                 auth=True):
        self.netns = netns  # a network namespace (ip netns) the launchers run in, or None
        self.dir = tempfile.mkdtemp(prefix="yubin-e2e-")
        os.chmod(self.dir, 0o755)
        self.account = run_account()
        pw = pwd.getpwnam(self.account)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.auth_account = auth_account()
        try:
            self.auth_gid = pwd.getpwnam(self.auth_account).pw_gid
        except KeyError:
            raise RuntimeError(f"no account {self.auth_account!r} for yubin-auth: "
                               "./quickstart makes it") from None
        self.state_dir = os.path.join(self.dir, "state")
        os.mkdir(self.state_dir, 0o700)
        os.chown(self.state_dir, self.uid, self.gid)
        self.users_file = os.path.join(self.dir, "users")
        self.aliases_file = os.path.join(self.dir, "aliases")
        self.srs_secret_file = os.path.join(self.dir, "srs-secret")
        self.syslog = SyslogCatcher(os.path.join(self.dir, "log.sock"))
        self.procs = []
        self.settings = {
            "hostname": hostname,
            "local_domains": " ".join(domains),
            "state_dir": self.state_dir,
            "users_file": self.users_file,
            "aliases_file": self.aliases_file,
            "srs_secret_file": self.srs_secret_file,
            "user": self.account,
            "syslog_socket": self.syslog.path,
            "auth_socket": os.path.join(self.dir, "auth.sock"),
            "auth_user": self.auth_account,
            "command_timeout": "30",
            "data_timeout": "30",
            # Tests open many connections at once from 127.0.0.1; the default (20) is for
            # the tests of the limit itself (test_connlimit) to set.
            "max_connections_per_client": "1000",
            # The plaintext tests log in without TLS, as a site without a certificate may
            # choose to; the TLS tests (test_tls_smtp, test_tls_pop3) set it back to "no".
            "auth_without_tls": "yes",
        }
        self.settings.update(conf or {})
        self.write_users({u: DEMO_HASH for u in users})
        self.write_aliases(aliases or {})
        self._write_private(self.srs_secret_file, SRS_TEST_SECRET + "\n")
        self.write_conf()
        self.auth = None
        if auth:
            self.start_auth()

    # -- files -------------------------------------------------------------------------
    def make_certificate(self, name="mx.example.test", days=30, prefix="tls"):
        """A self-signed P-256 certificate for NAME (and 127.0.0.1, ::1) made with openssl
        req; the key 0600 and root's when we are root (the handlers read it before they drop
        privileges). Returns (cert path, key path); yubin.conf is not changed."""
        cert = os.path.join(self.dir, f"{prefix}-cert.pem")
        key = os.path.join(self.dir, f"{prefix}-key.pem")
        if days < 0:  # expired: openssl req cannot date back, openssl ca -selfsign can
            self._expired_certificate(name, cert, key)
            return cert, key
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", str(days), "-subj",
                        f"/CN={name}", "-addext",
                        f"subjectAltName=DNS:{name},IP:127.0.0.1,IP:::1",
                        "-keyout", key, "-out", cert],
                       check=True, capture_output=True, timeout=60)
        os.chmod(key, 0o600)
        os.chmod(cert, 0o644)
        return cert, key

    def _expired_certificate(self, name, cert, key):
        ca = os.path.join(self.dir, "expired-ca")
        os.mkdir(ca)
        cnf = os.path.join(ca, "ca.cnf")
        with open(cnf, "w") as f:
            f.write(f"[ca]\ndefault_ca = d\n[d]\ndatabase = {ca}/index\n"
                    f"new_certs_dir = {ca}\nserial = {ca}/serial\ndefault_md = sha256\n"
                    "policy = p\n[p]\ncommonName = supplied\n")
        open(os.path.join(ca, "index"), "w").close()
        with open(os.path.join(ca, "serial"), "w") as f:
            f.write("01\n")
        csr = os.path.join(ca, "req.pem")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
                        "-keyout", key, "-out", csr], check=True, capture_output=True, timeout=60)
        subprocess.run(["openssl", "ca", "-batch", "-config", cnf, "-selfsign", "-keyfile", key,
                        "-in", csr, "-out", cert, "-notext", "-startdate", "20200101000000Z",
                        "-enddate", "20200201000000Z"],
                       check=True, capture_output=True, timeout=60)
        os.chmod(key, 0o600)
        os.chmod(cert, 0o644)

    def use_tls(self, cert=None, key=None, **settings):
        """tls_cert_file and tls_key_file (a new certificate by default), auth_without_tls
        no, and any other settings, into yubin.conf. Returns the certificate's path."""
        if cert is None:
            cert, key = self.make_certificate()
        self.settings.update({"tls_cert_file": cert, "tls_key_file": key,
                              "auth_without_tls": "no", **settings})
        self.write_conf()
        return cert

    def write_conf(self):
        self.conf = os.path.join(self.dir, "yubin.conf")
        with open(self.conf, "w") as f:
            for key, value in self.settings.items():
                f.write(f"{key} {value}\n")
        os.chmod(self.conf, 0o644)

    def _write_private(self, path, text, gid=None):
        with open(path, "w") as f:
            f.write(text)
        os.chown(path, 0, self.gid if gid is None else gid) if os.geteuid() == 0 else None
        os.chmod(path, 0o640)

    def write_users(self, users):
        """users: {address: argon2id hash}. Root's, group of yubin-auth, 0640, as
        yubin-user writes it: the handlers' account cannot read it."""
        self._write_private(self.users_file,
                            "".join(f"{a}:{h}\n" for a, h in users.items()), self.auth_gid)

    def write_aliases(self, aliases):
        """aliases: {address: [target, ...]}."""
        self._write_private(self.aliases_file, "".join(
            f"{a}: {', '.join(t)}\n" for a, t in aliases.items()))

    def maildir(self, address):
        local, domain = address.lower().rsplit("@", 1)
        return os.path.join(self.state_dir, "mail", domain, local)

    def messages(self, address, sub="new"):
        """The bytes of every message in the Maildir's new/ (or cur/), oldest name first."""
        d = os.path.join(self.maildir(address), sub)
        if not os.path.isdir(d):
            return []
        out = []
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                out.append(f.read())
        return out

    def message_names(self, address, sub="new"):
        d = os.path.join(self.maildir(address), sub)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def add_message(self, address, data, sub="new", when=None):
        """Put one message (bytes, LF line ends) into ADDRESS's Maildir the way delivery
        names it (<unique>,S=<bytes>,W=<crlf bytes>; ':2,' in cur/), creating the Maildir
        owned by the mail account. Returns the file name."""
        md = self.maildir(address)
        for d in (os.path.dirname(os.path.dirname(md)), os.path.dirname(md), md,
                  *(os.path.join(md, s) for s in ("tmp", "new", "cur"))):
            if not os.path.isdir(d):
                os.mkdir(d, 0o700)
                os.chown(d, self.uid, self.gid)
        self._seq = getattr(self, "_seq", 0) + 1
        stamp = int(time.time() if when is None else when)
        crlf = len(data) + data.count(b"\n") - data.count(b"\r\n")
        name = (f"{stamp}.M{self._seq:06d}R{os.urandom(8).hex()}.test,"
                f"S={len(data)},W={crlf}" + (":2," if sub == "cur" else ""))
        path = os.path.join(md, sub, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, self.uid, self.gid)
        os.chmod(path, 0o600)
        return name

    # -- the password service -----------------------------------------------------------
    def start_auth(self, *extra):
        """Start yubin-auth on the site's auth_socket (as root it becomes auth_user), and
        wait until it answers. Stopped by stop(), or by stop_auth(). A yubin.conf it
        refuses (a test of a configuration error) leaves the site without one."""
        self.auth = subprocess.Popen([program("yubin-auth"), "-C", self.conf, *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        path = self.settings["auth_socket"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.auth.poll() is not None:
                err = self.auth.stderr.read().decode("utf-8", "replace")
                if self.auth.returncode == 78:  # EX_CONFIG: a test of a bad yubin.conf, which
                    self.auth = None            # the handlers refuse on their own
                    return None
                raise RuntimeError("yubin-auth did not start: " + err)
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(path)
                    return self.auth
                except OSError:
                    time.sleep(0.01)
        raise RuntimeError(f"yubin-auth does not answer on {path}")

    def stop_auth(self):
        if self.auth is not None and self.auth.poll() is None:
            self.auth.terminate()
            try:
                self.auth.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.auth.kill()
                self.auth.wait()
        if self.auth is not None:
            self.auth.stderr.close()
        self.auth = None

    # -- launchers ---------------------------------------------------------------------
    def _env(self):
        env = dict(os.environ)
        return env

    def in_netns(self):
        """The block runs in the site's network namespace (netns.enter), if it has one."""
        if self.netns is None:
            return contextlib.nullcontext()
        import netns
        return netns.enter(self.netns)

    def argv(self, name, *extra):
        return [program(name), "-C", self.conf, *extra]

    def pipe(self, name, *extra, **kw):
        """Start one handler on pipes (the client address is then 'local')."""
        return subprocess.Popen(self.argv(name, *extra), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)

    def serve_inetd(self, name, *extra, host="127.0.0.1", as_root=True, port=None,
                    wait="nowait.2147483647"):
        """Serve NAME with openbsd-inetd on PORT (default: a free one), WAIT its wait/max
        field; returns the port."""
        with self.in_netns():
            return self._serve_inetd(name, extra, host, as_root, port or free_port(host), wait)

    def _serve_inetd(self, name, extra, host, as_root, port, wait):
        user = "root" if (as_root and os.geteuid() == 0) else self.account
        conf = os.path.join(self.dir, f"inetd-{name}-{port}.conf")
        with open(conf, "w") as f:
            f.write(f"{host}:{port} stream tcp {wait} {user} {program(name)} "
                    f"{name} -C {self.conf} {' '.join(extra)}\n")
        # -i: stay in the foreground; -E: keep the environment (sanitizer options).
        p = subprocess.Popen(["inetd", "-i", "-E", conf], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        wait_port(host, port)
        return port

    def serve_inetd_unix(self, name="smtp-in", *extra, as_root=True, path=None):
        """Serve NAME with openbsd-inetd on a Unix-domain stream socket (the local_socket
        sendmail(8) submits over; default DIR/smtp.sock, written into yubin.conf); returns
        the path."""
        path = path or os.path.join(self.dir, "smtp.sock")
        user = "root" if (as_root and os.geteuid() == 0) else self.account
        conf = os.path.join(self.dir, f"inetd-{name}-unix.conf")
        with open(conf, "w") as f:
            f.write(f"{path} stream unix nowait.2147483647 {user} {program(name)} "
                    f"{name} -C {self.conf} {' '.join(extra)}\n")
        self.settings["local_socket"] = path
        self.write_conf()
        p = subprocess.Popen(["inetd", "-i", "-E", conf], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        wait_unix(path)
        return path

    def serve_systemd(self, name, *extra, host="127.0.0.1"):
        """Serve NAME with systemd-socket-activate --inetd --accept; returns the port."""
        port = free_port(host)
        p = subprocess.Popen(["systemd-socket-activate", "--inetd", "-a", "-l",
                              f"{host}:{port}", *self.argv(name, *extra)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        wait_port(host, port)
        return port

    def stop(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs = []
        self.stop_auth()
        self.syslog.close()
        if not os.environ.get("YUBIN_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
