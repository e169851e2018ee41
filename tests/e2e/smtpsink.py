"""smtpsink: a small real SMTP server on loopback addresses, standing in for remote MX hosts.

    sink = SMTPSink(["127.0.0.21", "127.0.0.22"])     # one port, free on every address
    sink.rcpt_reply = lambda host, rcpt: "550 5.1.1 no such user" if ... else None
    sink.data_reply = lambda host, msg: "451 4.3.0 try later"      # None: 250
    sink.stall = True            # hold the reply to the final "." until released / closed
    sink.stall = {"127.0.0.22"}  # ... only on these addresses
    sink.drip = {"127.0.0.22"}   # greet one byte a minute (drip_interval seconds) on these
    sink.max_rcpts = 100         # too_many_reply to every RCPT of a transaction past this many
    sink.too_many_reply = "552 5.5.3 too many recipients"   # (default: 452 4.5.3 ...)
    ...
    sink.tls = ssl_context       # offer STARTTLS (RFC 3207) with this server context
    sink.tls_break = True        # ... but answer 220 to STARTTLS and then send junk, not TLS
    sink.tls_break = "early"     # ... or send a reply right behind the 220 (CVE-2011-0411)
    sink.implicit_tls = ssl_ctx  # TLS from the first byte (a smarthost's port 465)
    sink.auth = ("user", "pw")   # offer AUTH PLAIN LOGIN, require it for MAIL (530 without)
    sink.logins                  # [(user, password)] of every AUTH tried, in order
    sink.messages                # [Message(host, sender, rcpts, data, tls)], 2xx-acknowledged
                                 # only; tls is (version, cipher) of the session, or None
    sink.connections             # {host: count}
    sink.most_at_once            # the most connections open at the same time (all hosts)
    sink.wait_for(lambda: len(sink.messages) == 3, timeout=10)
    sink.close()

It speaks enough ESMTP for a relay client (EHLO with PIPELINING, SIZE, 8BITMIME,
ENHANCEDSTATUSCODES; HELO; MAIL; RCPT; DATA with dot-unstuffing; RSET; NOOP; QUIT), reads
pipelined commands, can wait `latency` seconds before every reply, and refuses a bare LF or a
line over 1000 octets with 500 and a hang-up (as a strict server would), so a client that
sends one is caught. It only ever listens on the loopback addresses it is given. Every thread
and socket is released by close().
"""
import base64
import select
import socket
import ssl
import threading
import time
from collections import namedtuple

Message = namedtuple("Message", "host sender rcpts data tls", defaults=(None,))


def common_free_port(addrs):
    """A TCP port free on every address of addrs."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((addrs[0], 0))
            port = s.getsockname()[1]
        ok = True
        for a in addrs:
            try:
                with socket.socket() as t:
                    t.bind((a, port))
            except OSError:
                ok = False
                break
        if ok:
            return port
    raise RuntimeError("no common free port")


class SMTPSink:
    def __init__(self, addrs, port=None, latency=0.0):
        self.addrs = list(addrs)
        self.port = port or common_free_port(self.addrs)
        self.latency = latency
        self.rcpt_reply = lambda host, rcpt: None
        self.data_reply = lambda host, msg: None
        self.stall = False
        self.drip = set()
        self.drip_interval = 60.0
        self.max_rcpts = None
        self.too_many_reply = "452 4.5.3 too many recipients"
        self.tls = None
        self.tls_break = False
        self.implicit_tls = None
        self.auth = None
        self.logins = []
        self.stalled = threading.Event()   # set when a final "." is being held
        self.release = threading.Event()
        self.messages = []
        self.connections = {}
        self.open_now = 0
        self.most_at_once = 0
        self.lock = threading.Lock()
        self.closing = False
        self.listeners = []
        self.threads = []
        self.conns = []
        for a in self.addrs:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((a, self.port))
            s.listen(128)
            self.listeners.append(s)
            t = threading.Thread(target=self._accept, args=(s, a), daemon=True)
            t.start()
            self.threads.append(t)

    # -- server ---------------------------------------------------------------------------
    def _accept(self, s, host):
        while not self.closing:
            try:
                c, _ = s.accept()
            except OSError:
                return
            with self.lock:
                self.connections[host] = self.connections.get(host, 0) + 1
                self.open_now += 1
                self.most_at_once = max(self.most_at_once, self.open_now)
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c, host), daemon=True).start()

    def _send(self, f, text):
        if self.latency:
            time.sleep(self.latency)
        f.write(text.encode() + b"\r\n")
        f.flush()

    def _drip(self, f, sock, text):
        """Sends text one byte per drip_interval seconds; False once the client hung up (or
        close() was called) meanwhile."""
        for byte in (text + "\r\n").encode():
            f.write(bytes([byte]))
            f.flush()
            deadline = time.monotonic() + self.drip_interval
            while time.monotonic() < deadline:
                if self.closing:
                    return False
                if select.select([sock], [], [], 0.05)[0] and not sock.recv(1, socket.MSG_PEEK):
                    return False
        return True

    def _line(self, f):
        line = f.readline(1001)
        if not line:
            return None
        if not line.endswith(b"\r\n") or b"\r" in line[:-2] or b"\n" in line[:-2]:
            return b"\x00bad"
        return line[:-2]

    def _serve(self, c, host):
        c.settimeout(60)
        if self.implicit_tls:
            try:
                c = self.implicit_tls.wrap_socket(c, server_side=True)
            except (OSError, ValueError):
                c.close()
                return
        f = c.makefile("rwb")
        try:
            self._session(f, host, c)
        except (OSError, ValueError):
            pass
        finally:
            with self.lock:
                self.open_now -= 1
            try:
                f.close()
                c.close()
            except OSError:
                pass

    def _session(self, f, host, sock):
        greeting = f"220 {host} ESMTP sink"
        if host not in self.drip:
            self._send(f, greeting)
        elif not self._drip(f, sock, greeting):
            return
        sender, rcpts, authed = None, [], False
        tls = (sock.version(), sock.cipher()[0]) if self.implicit_tls else None
        while True:
            line = self._line(f)
            if line is None:
                return
            if line == b"\x00bad":
                self._send(f, "500 5.5.2 bare CR/LF or line too long")
                return
            cmd = line.decode("utf-8", "replace")
            verb = cmd[:4].upper()
            if verb == "EHLO":
                starttls = "250-STARTTLS\r\n" if self.tls and not tls else ""
                auth = "250-AUTH PLAIN LOGIN\r\n" if self.auth else ""
                self._send(f, f"250-{host}\r\n250-PIPELINING\r\n250-SIZE 50000000\r\n"
                              f"{starttls}{auth}250-8BITMIME\r\n250 ENHANCEDSTATUSCODES")
            elif verb == "AUTH" and self.auth:
                authed = self._auth(f, cmd.split()[1:])
            elif verb == "MAIL" and self.auth and not authed:
                self._send(f, "530 5.7.0 authentication required")
            elif cmd.upper() == "STARTTLS" and self.tls and not tls:
                if self.tls_break == "early":  # plaintext that pretends to come after TLS
                    f.write(b"220 2.0.0 ready to start TLS\r\n250 injected\r\n")
                    f.flush()
                    return
                self._send(f, "220 2.0.0 ready to start TLS")
                if self.tls_break:
                    sock.recv(4096)  # the ClientHello
                    f.write(b"this is not TLS\r\n" * 4)
                    f.flush()
                    return
                sock = self.tls.wrap_socket(sock, server_side=True)
                f = sock.makefile("rwb")
                tls = (sock.version(), sock.cipher()[0])
                sender, rcpts = None, []
            elif verb == "HELO":
                self._send(f, f"250 {host}")
            elif verb == "MAIL":
                sender, rcpts = cmd[10:].split(">")[0].lstrip("<"), []
                self._send(f, "250 2.1.0 ok")
            elif verb == "RCPT":
                rcpt = cmd[8:].split(">")[0].lstrip("<")
                reply = self.rcpt_reply(host, rcpt)
                if self.max_rcpts is not None and len(rcpts) >= self.max_rcpts:
                    reply = self.too_many_reply
                if reply is None:
                    rcpts.append(rcpt)
                self._send(f, reply or "250 2.1.5 ok")
            elif verb == "DATA":
                if sender is None or not rcpts:
                    self._send(f, "554 5.5.1 no valid recipients")
                    continue
                self._send(f, "354 go ahead")
                if not self._data(f, host, sender, rcpts, tls):
                    return
                sender, rcpts = None, []
            elif verb == "RSET":
                sender, rcpts = None, []
                self._send(f, "250 2.0.0 ok")
            elif verb == "NOOP":
                self._send(f, "250 2.0.0 ok")
            elif verb == "QUIT":
                self._send(f, "221 2.0.0 bye")
                return
            else:
                self._send(f, "502 5.5.1 unknown command")

    def _auth(self, f, args):
        """AUTH PLAIN [initial response] or AUTH LOGIN: True on 235."""
        def b64(text):
            return base64.b64decode(text).decode()
        try:
            if args[0].upper() == "PLAIN":
                if len(args) < 2:
                    self._send(f, "334 ")
                    args.append(self._line(f).decode())
                _, user, password = b64(args[1]).split("\0")
            elif args[0].upper() == "LOGIN":
                self._send(f, "334 VXNlcm5hbWU6")
                user = b64(self._line(f).decode())
                self._send(f, "334 UGFzc3dvcmQ6")
                password = b64(self._line(f).decode())
            else:
                self._send(f, "504 5.5.4 unknown mechanism")
                return False
        except (ValueError, IndexError, AttributeError):
            self._send(f, "501 5.5.2 bad AUTH")
            return False
        self.logins.append((user, password))
        if (user, password) == tuple(self.auth):
            self._send(f, "235 2.7.0 authenticated")
            return True
        self._send(f, "535 5.7.8 bad credentials")
        return False

    def _data(self, f, host, sender, rcpts, tls=None):
        body = []
        while True:
            line = self._line(f)
            if line is None or line == b"\x00bad":
                return False
            if line == b".":
                break
            body.append(line[1:] if line.startswith(b".") else line)
        msg = Message(host, sender, list(rcpts), b"\r\n".join(body) + b"\r\n", tls)
        if self.stall is True or (self.stall and host in self.stall):
            self.stalled.set()
            while not self.release.wait(0.1):
                if self.closing:
                    return False
            return False  # released: hang up without an answer
        reply = self.data_reply(host, msg)
        if reply is None or reply.startswith("2"):
            with self.lock:
                self.messages.append(msg)
        self._send(f, reply or "250 2.0.0 queued")
        return True

    # -- helpers --------------------------------------------------------------------------
    def wait_for(self, cond, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.05)
        return cond()

    def close(self):
        self.closing = True
        self.release.set()
        for s in self.listeners:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes the accept() (else the port stays bound)
            except OSError:
                pass
            s.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
