"""test_mailbox_reconcile: an index written anew from the directories (yubin-index(5),
"Opening a folder") in bounded memory: pop3-in's first login on a folder of 20,000 messages
and imap4-in's SELECT after thousands were added, removed and renamed behind the index's back
each peak (VmHWM) within 16 octets a message and a fixed allowance above an empty session, not
with every name held (not checked in a sanitizer build, whose RSS is ASan's); UIDs stay those
the index gave, new files are numbered in base-name order (also when they are sorted through
spilled runs), the index matches the files; two base names with the same 32-bit hash are
never merged; names that are not "<base>:2,<sorted letters>" are kept as the files have
them."""
import os
import random
import re
import subprocess
import time
import unittest

import yubintest
from test_mailbox import read_index

USER = "demo@example.test"
N = 20000
# what a session may hold above an empty one: its 16-octet records (24 allowed) and a fixed
# 1 MiB (the sort chunk, the runs' buffers, stdio); holding the names took over 200 a message
LIMIT_PER_MESSAGE = 24
LIMIT_FIXED = 1 << 20
# two base names with the same FNV-1a hash (the reconcile's 32-bit key)
COLLIDE = ("1700000000.M522789P1.host,S=4,W=5", "1700000000.M739192P1.host,S=4,W=5")


class Session:
    """One handler on pipes, as under inetd."""

    def __init__(self, inst, name):
        self.p = inst.pipe(name)
        self.buf = b""

    def send(self, line):
        self.p.stdin.write(line + b"\r\n")
        self.p.stdin.flush()

    def until(self, start):
        """The lines read up to and including the first that starts with start."""
        lines = []
        while True:
            idx = self.buf.find(b"\n")
            if idx < 0:
                chunk = os.read(self.p.stdout.fileno(), 1 << 16)
                if not chunk:
                    raise AssertionError(f"the handler closed the connection after {lines!r}")
                self.buf += chunk
                continue
            line, self.buf = self.buf[:idx].rstrip(b"\r"), self.buf[idx + 1:]
            lines.append(line)
            if line.startswith(start):
                return lines

    def hwm(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) * 1024

    def close(self, line):
        self.send(line)
        self.p.communicate(timeout=60)


class Reconcile(unittest.TestCase):
    def setUp(self):
        self.inst = yubintest.Instance(conf={"auth_delay_ms": "0"})
        self.addCleanup(self.inst.stop)
        self.md = self.inst.maildir(USER)
        self.cur = os.path.join(self.md, "cur")
        self.inst.add_message(USER, b"Subject: seed\n\nseed\n", sub="cur")

    def put(self, names):
        """Files of those names in cur/: hard links of one message (quick to make)."""
        one = os.path.join(self.md, "tmp", "one")
        with open(one, "wb") as f:
            f.write(b"Subject: x\n\nbody\n")
        subprocess.run(["chown", yubintest.run_account(), one], check=True)
        for name in names:
            os.link(one, os.path.join(self.cur, name))
        os.unlink(one)

    def pop3(self):
        """(messages, VmHWM) of a POP3 session once logged in."""
        s = Session(self.inst, "pop3-in")
        s.until(b"+OK")
        s.send(b"USER " + USER.encode())
        s.until(b"+OK")
        s.send(b"PASS demo")
        s.until(b"+OK")
        s.send(b"STAT")
        count = int(s.until(b"+OK")[-1].split()[1])
        hwm = s.hwm()
        s.close(b"QUIT")
        return count, hwm

    def imap(self):
        """(EXISTS, VmHWM) of an IMAP session once INBOX is selected."""
        s = Session(self.inst, "imap4-in")
        s.until(b"* OK")
        s.send(b"a LOGIN " + USER.encode() + b" demo")
        self.assertIn(b"a OK", s.until(b"a ")[-1])
        s.send(b"b SELECT INBOX")
        lines = s.until(b"b ")
        self.assertIn(b"b OK", lines[-1])
        exists = [int(x.split()[1]) for x in lines if x.endswith(b" EXISTS")]
        hwm = s.hwm()
        s.close(b"c LOGOUT")
        return exists[0], hwm

    def tool(self):
        """mailbox-tool's listing: {uid: name}."""
        p = subprocess.run([os.path.join(yubintest.BUILD, "tests", "unit", "mailbox-tool"),
                            self.md], capture_output=True, text=True, timeout=120,
                           preexec_fn=yubintest.as_user(yubintest.run_account()))
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [line.split(" ", 3) for line in p.stdout.splitlines()[1:]]
        return {int(uid): name for uid, _uidl, _crlf, name in rows}

    def assert_bounded(self, what, hwm, empty, n):
        with open(yubintest.program("pop3-in"), "rb") as f:
            if b"__asan_init" in f.read():
                return  # a sanitizer build: its RSS is ASan's shadow memory and quarantine
        limit = empty + LIMIT_PER_MESSAGE * n + LIMIT_FIXED
        self.assertLess(hwm, limit, f"{what}: VmHWM {hwm // 1024} KiB, an empty session "
                        f"{empty // 1024} KiB, allowed {limit // 1024} KiB for {n} messages")

    def assert_index_matches(self):
        _v, _n, entries = read_index(self.md)
        self.assertEqual(sorted(entries.values()), sorted(os.listdir(self.cur)))
        return entries

    def test_first_login_and_reconcile_bounded(self):
        _, pop_empty = self.pop3()
        _, imap_empty = self.imap()
        # delivery names, created in a random order (readdir order is not name order)
        names = [f"{1700000000 + i}.M{i:06d}P{i}.bench,S=17,W=20:2,{'S' if i % 3 else ''}"
                 for i in range(N)]
        random.Random(10).shuffle(names)
        self.put(names)
        count, hwm = self.pop3()
        self.assertEqual(count, N + 1)
        self.assert_bounded("pop3-in's first login", hwm, pop_empty, N)
        first = self.assert_index_matches()
        by_uid = [first[u].split(":")[0] for u in sorted(first) if u > 1]  # 1: the seed
        self.assertEqual(by_uid, sorted(by_uid), "numbered in base-name order")
        time.sleep(1.1)  # the index's directory times are then trusted
        # behind the back: 5,000 removed, 5,000 added, 500 flagged
        rng = random.Random(11)
        gone = set(rng.sample(names, 5000))
        for name in gone:
            os.unlink(os.path.join(self.cur, name))
        kept = [n for n in names if n not in gone]
        flagged = rng.sample(kept, 500)
        for name in flagged:
            base, flags = name.split(":2,")
            os.rename(os.path.join(self.cur, name),
                      os.path.join(self.cur, base + ":2,F" + flags))
        added = [f"{1800000000 + i}.M{i:06d}P{i}.new,S=17,W=20:2," for i in range(5000)]
        rng.shuffle(added)
        self.put(added)
        exists, hwm = self.imap()
        self.assertEqual(exists, N + 1)
        self.assert_bounded("imap4-in's SELECT after changes", hwm, imap_empty, N)
        now = self.assert_index_matches()
        old_uid = {name.split(":")[0]: uid for uid, name in first.items()}
        top = max(first)
        fresh = []
        for uid, name in now.items():
            base = name.split(":")[0]
            if base in old_uid:
                self.assertEqual(uid, old_uid[base], f"{name} keeps its UID")
            else:
                self.assertGreater(uid, top, f"{name} is new")
                fresh.append((uid, base))
        self.assertEqual(len(fresh), 5000)
        self.assertEqual([b for _, b in sorted(fresh)], sorted(b for _, b in fresh),
                         "the new ones numbered in base-name order")
        for name in flagged:
            base, flags = name.split(":2,")
            self.assertEqual(now[old_uid[base]], base + ":2,F" + flags)

    def test_same_hash_never_merged(self):
        a, b = COLLIDE
        self.put([a + ":2,S"])
        uid_a = [u for u, n in self.tool().items() if n.startswith(a)][0]
        os.unlink(os.path.join(self.cur, a + ":2,S"))
        self.put([b + ":2,"])  # a new base with a's hash, a gone
        got = self.tool()
        uid_b = [u for u, n in got.items() if n.startswith(b)][0]
        self.assertNotIn(uid_a, got, "a's UID went with it")
        self.assertGreater(uid_b, uid_a, "b is a new message")
        self.put([a + ":2,F"])  # a back: again a new message, b keeps its UID
        got = self.tool()
        self.assertEqual(got[uid_b], b + ":2,")
        uid_a2 = [u for u, n in got.items() if n.startswith(a)][0]
        self.assertGreater(uid_a2, uid_b)
        self.assert_index_matches()

    def test_odd_names_kept(self):
        odd = ["1700000001.a.host,S=2,W=3:2,SF", "1700000002.b.host,S=2,W=3:2,SX",
               "1700000003.c.host,S=2,W=3:2,S", "1700000004.d.host,S=2,W=3"]
        self.put(odd)
        before = self.tool()
        uid = {n.split(":")[0]: u for u, n in before.items()}
        # behind the back: b's odd name changed, c's plain one too, a and d left as they are
        os.rename(os.path.join(self.cur, odd[1]), os.path.join(self.cur, odd[1] + "R"))
        os.rename(os.path.join(self.cur, odd[2]),
                  os.path.join(self.cur, "1700000003.c.host,S=2,W=3:2,RS"))
        self.put(["1700000005.e.host,S=2,W=3:2,"])
        got = self.tool()
        self.assertEqual(sorted(got.values()), sorted(os.listdir(self.cur)))
        for name in got.values():
            base = name.split(":")[0]
            if base in uid:
                self.assertEqual(got[uid[base]], name, "the same UID, the file's name")
        self.assert_index_matches()


if __name__ == "__main__":
    unittest.main()
