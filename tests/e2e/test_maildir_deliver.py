"""maildir-deliver(8) end to end: the real program, started the way an MTA or fetchmail starts
it (as root when we are root, so it must drop to the yubin account), one message on stdin,
then the Maildirs are read back byte for byte and the exit codes checked against sysexits.
"""
import os
import re
import stat
import subprocess
import time
import unittest

import yubintest

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, EX_CONFIG = 64, 65, 67, 75, 78


def vm_hwm_kib(pid):
    """Peak resident set of a running process since its exec, in KiB, taken once it waits
    in read(0, ...) for more input (so after it started and consumed what was sent)."""
    deadline = time.monotonic() + 30
    while True:
        with open(f"/proc/{pid}/syscall") as f:
            fields = f.read().split()
        if fields[:2] == ["0", "0x0"]:  # x86_64 read on fd 0
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"never blocked in read(0): {fields[:2]}")
        time.sleep(0.01)
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def crlf_to_lf(data):
    return data.replace(b"\r\n", b"\n")


class MaildirDeliverTest(unittest.TestCase):
    def setUp(self):
        self.inst = yubintest.Instance(
            domains=("example.test", "other.test"),
            users=("demo@example.test", "two@example.test", "three@other.test"),
            aliases={"team@example.test": ["demo", "three@other.test", "team"],
                     "postmaster@example.test": ["team@example.test"],
                     "mixed@example.test": ["demo", "someone@remote.test"],
                     "ghost@example.test": ["nobody"]})
        self.addCleanup(self.inst.stop)

    def deliver(self, data, *args, conf=None):
        argv = [yubintest.program("maildir-deliver"), "-C", conf or self.inst.conf, *args]
        p = subprocess.run(argv, input=data, capture_output=True, timeout=60)
        return p.returncode, p.stderr.decode("utf-8", "replace")

    def only_message(self, address):
        names = self.inst.message_names(address)
        self.assertEqual(len(names), 1, names)
        path = os.path.join(self.inst.maildir(address), "new", names[0])
        with open(path, "rb") as f:
            return names[0], path, f.read()

    def check_name(self, name, body):
        m = re.fullmatch(r"(\d+\.[^,/]+\.[^,/]+),S=(\d+),W=(\d+)", name)
        self.assertIsNotNone(m, name)
        self.assertEqual(int(m.group(2)), len(body), "S= is the size on disk")
        self.assertEqual(int(m.group(3)), len(body) + body.count(b"\n"), "W= counts CRLF")

    def assert_nothing_delivered(self, *addresses):
        for a in addresses:
            self.assertEqual(self.inst.message_names(a), [], a)
        tmp = os.path.join(self.inst.state_dir, "tmp")
        self.assertEqual(os.listdir(tmp) if os.path.isdir(tmp) else [], [])

    def test_bytes_crlf_8bit_return_path(self):
        msg = (b"From: Ren\xc3\xa9 <rene@remote.test>\r\nSubject: caf\xc3\xa9 \xff\xfe\r\n"
               b"\r\nline one\r\n8-bit: \x80\x81\xfe\r\nan LF alone\nis a line end\r\n.\r\n"
               b"..dots\r\n")
        rc, err = self.deliver(msg, "-f", "rene@remote.test", "demo@example.test")
        self.assertEqual((rc, err), (0, ""))
        name, path, body = self.only_message("demo@example.test")
        want = b"Return-Path: <rene@remote.test>\n" + crlf_to_lf(msg)
        self.assertEqual(body, want)
        self.assertNotIn(b"\r\n", body)
        self.check_name(name, body)
        st = os.stat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual((st.st_uid, st.st_nlink), (self.inst.uid, 1))
        for sub in ("", "tmp", "new", "cur"):
            st = os.stat(os.path.join(self.inst.maildir("demo@example.test"), sub))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o700, sub)
            self.assertEqual(st.st_uid, self.inst.uid, sub)
        self.assertEqual(os.listdir(os.path.join(self.inst.state_dir, "tmp")), [])
        logs = " ".join(self.inst.syslog.lines())
        self.assertIn("to=<demo@example.test>", logs)

    def test_nul_and_bare_cr_refused(self):
        """A NUL octet or a CR not before LF is refused with EX_DATAERR, the octet named on
        stderr, and nothing is delivered to any recipient (DESIGN.md §5)."""
        chunk = b"x" * 8191
        cases = [
            (b"Subject: x\r\n\r\nab\0cd\r\n", b"a NUL octet at octet 17"),
            (b"Subject: x\r\n\r\nx\r\n\0.\r\nQUIT\r\n", b"a NUL octet"),
            (b"Subject: x\r\n\r\na bare\rCR\r\n", b"a bare CR"),
            (b"Subject: x\r\n\r\nCR CR LF\r\r\n", b"a bare CR"),
            (b"Subject: x\r\n\r\nthe last octet\r", b"a bare CR"),
            (chunk + b"\r" + b"no LF after the CR that ended the first read\n", b"a bare CR"),
        ]
        for data, what in cases:
            rc, err = self.deliver(data, "demo@example.test", "two@example.test")
            self.assertEqual(rc, EX_DATAERR, (data[-40:], err))
            self.assertIn(what.decode(), err)
            self.assertIn("nothing delivered", err)
            self.assert_nothing_delivered("demo@example.test", "two@example.test")
        rc, err = self.deliver(chunk + b"\r\nCRLF across the first read\r\n", "demo@example.test")
        self.assertEqual((rc, err), (0, ""))

    def test_lf_input_kept_and_last_line_ended(self):
        rc, err = self.deliver(b"Subject: lf\n\nno newline at the end", "demo@example.test")
        self.assertEqual((rc, err), (0, ""))
        name, _, body = self.only_message("demo@example.test")
        self.assertEqual(body, b"Subject: lf\n\nno newline at the end\n")
        self.check_name(name, body)

    def test_null_sender_and_case(self):
        rc, err = self.deliver(b"Subject: bounce\r\n\r\nx\r\n", "-f", "<>", "<DeMo@Example.TEST>")
        self.assertEqual((rc, err), (0, ""))
        _, _, body = self.only_message("demo@example.test")
        self.assertTrue(body.startswith(b"Return-Path: <>\nSubject: bounce\n"), body)

    def test_several_recipients_share_one_inode(self):
        rc, err = self.deliver(b"Subject: many\r\n\r\nhello\r\n", "demo@example.test",
                               "two@example.test", "three@other.test", "DEMO@example.test")
        self.assertEqual((rc, err), (0, ""))
        inodes = set()
        for a in ("demo@example.test", "two@example.test", "three@other.test"):
            name, path, body = self.only_message(a)
            self.assertEqual(body, b"Subject: many\n\nhello\n")
            self.check_name(name, body)
            st = os.stat(path)
            inodes.add(st.st_ino)
            self.assertEqual(st.st_nlink, 3)
        self.assertEqual(len(inodes), 1)

    def test_large_message_crlf_across_reads_and_flat_memory(self):
        # CRLF pairs land on every possible read boundary; 8-bit bytes everywhere.
        line = bytes(range(0x80, 0x80 + 61)) + b"\r\n"
        small = line * 10
        big = line * (50 * 1024 * 1024 // len(line))
        rss = []
        for data in (small, big):
            argv = [yubintest.program("maildir-deliver"), "-C", self.inst.conf,
                    "demo@example.test"]
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            for i in range(0, len(data), 1 << 20):
                p.stdin.write(data[i:i + (1 << 20)])
            p.stdin.flush()
            # The peak RSS since exec, taken while it waits for the end of its input.
            rss.append(vm_hwm_kib(p.pid))
            p.stdin.close()
            self.assertEqual(p.wait(timeout=60), 0, p.stderr.read())
            p.stderr.close()
        names = self.inst.message_names("demo@example.test")
        sizes = {}
        for n in names:
            with open(os.path.join(self.inst.maildir("demo@example.test"), "new", n), "rb") as f:
                body = f.read()
            self.check_name(n, body)
            sizes[len(body)] = body
        self.assertEqual(sizes[len(big) - len(big) // 63], crlf_to_lf(big))
        # A 50 MB message costs the same memory as a 630-byte one (512 KiB of slack).
        self.assertLess(rss[1] - rss[0], 512, f"peak RSS {rss} KiB")

    def test_alias_expands_to_local_mailboxes(self):
        # postmaster -> team -> demo, three, and team itself (a loop keeps a copy for team,
        # which is no mailbox); demo is also named directly: one copy each.
        rc, err = self.deliver(b"Subject: alias\r\n\r\nx\r\n", "Postmaster@example.test",
                               "demo@example.test")
        self.assertEqual((rc, err), (0, ""))
        for a in ("demo@example.test", "three@other.test"):
            _, _, body = self.only_message(a)
            self.assertEqual(body, b"Subject: alias\n\nx\n")
        self.assert_nothing_delivered("two@example.test")
        self.assertFalse(os.path.exists(self.inst.maildir("team@example.test")))

    def test_alias_with_remote_member_is_refused(self):
        rc, err = self.deliver(b"x\n", "demo@example.test", "mixed@example.test")
        self.assertEqual(rc, 69, err)  # EX_UNAVAILABLE: it cannot forward
        self.assertIn("someone@remote.test", err)
        self.assert_nothing_delivered("demo@example.test")

    def test_alias_without_mailboxes_is_no_user(self):
        rc, err = self.deliver(b"x\n", "ghost@example.test")
        self.assertEqual(rc, EX_NOUSER, err)

    def test_unknown_user_delivers_to_nobody(self):
        rc, err = self.deliver(b"Subject: x\n\nx\n", "demo@example.test", "nobody@example.test")
        self.assertEqual(rc, EX_NOUSER, err)
        self.assertIn("nobody@example.test", err)
        self.assertEqual(err.count("\n"), 1, "one line on stderr")
        self.assert_nothing_delivered("demo@example.test")

    def test_foreign_domain_and_routing_characters_are_no_user(self):
        # '%' and '!' are plain characters of a local part here: they never route anywhere.
        for addr in ("demo@remote.test", "demo%remote.test@example.test",
                     "remote.test!demo@example.test"):
            rc, err = self.deliver(b"x\n", addr)
            self.assertEqual(rc, EX_NOUSER, f"{addr}: {err}")
        self.assertEqual(os.listdir(self.inst.state_dir), [])

    def test_malformed_addresses(self):
        for bad in ("demo", "demo@", "@example.test", "a@b@example.test", "../x@example.test",
                    "a/b@example.test", ".demo@example.test", "demo@.example.test",
                    "de mo@example.test", "demo@example..test", "x" * 65 + "@example.test",
                    "\"a@b\"@example.test", "demo@[127.0.0.1]", "<demo@example.test",
                    "demo@example.test\n", "<demo@example.test>x", "d\xe9mo@example.test"):
            rc, err = self.deliver(b"x\n", "demo@example.test", bad)
            self.assertEqual(rc, EX_DATAERR, f"{bad!r}: {err}")
            self.assertIn("malformed", err)
        for bad in ("a b@c", "a\n@c", "<a<b>"):
            rc, err = self.deliver(b"x\n", "-f", bad, "demo@example.test")
            self.assertEqual(rc, EX_DATAERR, f"{bad!r}: {err}")
        self.assert_nothing_delivered("demo@example.test")

    def test_usage(self):
        rc, err = self.deliver(b"x\n")
        self.assertEqual(rc, EX_USAGE, err)
        self.assertIn("usage", err)
        rc, err = self.deliver(b"x\n", "-z", "demo@example.test")
        self.assertEqual(rc, EX_USAGE, err)
        self.assert_nothing_delivered("demo@example.test")

    def test_bad_config(self):
        rc, err = self.deliver(b"x\n", "demo@example.test",
                               conf=os.path.join(self.inst.dir, "missing.conf"))
        self.assertEqual(rc, EX_CONFIG, err)
        self.assertIn("missing.conf", err)
        bad = os.path.join(self.inst.dir, "bad.conf")
        with open(self.inst.conf) as f, open(bad, "w") as out:
            out.write(f.read() + "no_such_key 1\n")
        rc, err = self.deliver(b"x\n", "demo@example.test", conf=bad)
        self.assertEqual(rc, EX_CONFIG, err)
        self.assertIn("bad.conf:", err)
        self.assert_nothing_delivered("demo@example.test")

    def test_unusable_state_dir_is_temporary(self):
        # A file where the domain directory should be: the Maildir cannot be made.
        os.makedirs(os.path.join(self.inst.state_dir, "mail"))
        os.chown(os.path.join(self.inst.state_dir, "mail"), self.inst.uid, self.inst.gid)
        with open(os.path.join(self.inst.state_dir, "mail", "other.test"), "w"):
            pass
        rc, err = self.deliver(b"Subject: x\n\nx\n", "demo@example.test", "three@other.test")
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertIn("nothing delivered", err)
        self.assert_nothing_delivered("demo@example.test")


if __name__ == "__main__":
    unittest.main()
