"""pop3-in and imap4-in turn Nagle's algorithm off on a TCP connection (lib/handler): netio
writes only whole buffers or the end of a reply, and with Nagle on the last, partial segment
of every reply over 16 KiB (a UID FETCH or UIDL listing) waited for the client's delayed ACK,
40 ms on Linux (bench/compare's IMAP rows found it). Checked on the handler's own socket,
taken from the running process with pidfd_getfd(2) (root only), under openbsd-inetd; a handler
on a pipe has no socket option to set and still serves.
"""
import ctypes
import os
import socket
import time
import unittest

import yubintest

SYS_PIDFD_OPEN, SYS_PIDFD_GETFD = 434, 438


def socket_of(pid, fd):
    """Descriptor FD of process PID as a socket here (a duplicate taken with pidfd_getfd)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        raise OSError(ctypes.get_errno(), "pidfd_open")
    try:
        dup = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if dup < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
    finally:
        os.close(pidfd)
    return socket.socket(fileno=dup)


@unittest.skipUnless(os.geteuid() == 0, "pidfd_getfd of another account's process needs root")
class NoNagle(unittest.TestCase):
    def setUp(self):
        self.inst = yubintest.Instance()
        self.addCleanup(self.inst.stop)

    def handler_socket(self, port, greeting):
        """Connects and reads the greeting; returns the serving handler's end of this
        connection (its fd 1, found among inetd's children by its peer address)."""
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.addCleanup(s.close)
        self.assertTrue(s.recv(512).startswith(greeting))
        inetd = self.inst.procs[-1].pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait_port's probe may still have a handler
            for pid in yubintest.children(inetd):
                try:
                    theirs = socket_of(pid, 1)
                except OSError:
                    continue
                try:  # the probe's handler may have lost its peer: ENOTCONN
                    ours = theirs.getpeername() == s.getsockname()
                except OSError:
                    ours = False
                if ours:
                    self.addCleanup(theirs.close)
                    return theirs
                theirs.close()
            time.sleep(0.02)
        self.fail("no handler of inetd's serves this connection")

    def check(self, program, greeting):
        theirs = self.handler_socket(self.inst.serve_inetd(program), greeting)
        self.assertEqual(theirs.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1,
                         f"{program}'s connection still has Nagle's algorithm on")

    def test_imap4_in(self):
        self.check("imap4-in", b"* OK")

    def test_pop3_in(self):
        self.check("pop3-in", b"+OK")

    def test_a_pipe_still_serves(self):
        p = self.inst.pipe("imap4-in")
        out, _ = p.communicate(b"a LOGOUT\r\n", timeout=30)
        self.assertIn(b"a OK", out)


if __name__ == "__main__":
    unittest.main()
