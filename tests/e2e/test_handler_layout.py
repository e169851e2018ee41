"""The resident memory of one TLS session of a static handler (issue 9: at most 4 MiB, flat for
a big message) and the link layout that keeps it there: real clients (smtplib starttls and
SMTP_SSL with AUTH, poplib stls, imaplib starttls and IMAP4_SSL) against the handlers under
openbsd-inetd, the handler's VmHWM read from /proc before the client quits; the build's link
maps (bin/NAME.map) show the sections of tools/hot-sections.list together, in its order, in
.text.hot, .rodata.hot and .data.rel.ro.hot; a list naming members no library has still links.
Only 127.0.0.1 is contacted.
"""
import importlib.machinery
import imaplib
import os
import poplib
import smtplib
import ssl
import subprocess
import tempfile
import unittest

import yubintest

DEMO = "demo@example.test"
LIMIT_KIB = 4 * 1024  # issue 9's bound for one TLS session
LIST = os.path.join(yubintest.SRC, "tools", "hot-sections.list")
HOT = {".text": ".text.hot", ".rodata": ".rodata.hot", ".data.rel.ro": ".data.rel.ro.hot"}


def static_handler(name):
    """None if bin/NAME is a static executable, else why the RSS bound does not apply."""
    with open(yubintest.program(name), "rb") as f:
        image = f.read()
    if b"__asan_init" in image:
        return ("a sanitizer build: its RSS is ASan's shadow memory and the shared libraries, "
                "nothing the bound is about")
    out = subprocess.run(["readelf", "-lW", yubintest.program(name)], capture_output=True,
                         text=True, check=True).stdout
    if "INTERP" in out:
        return "linked dynamically (--disable-static-handlers): the bound is for static ones"
    return None


def hot_list():
    with open(LIST) as f:
        return [tuple(line.split()[:2]) for line in f if line.strip() and line[0] != "#"]


def tool():
    path = os.path.join(yubintest.SRC, "tools", "hot-sections")
    return importlib.machinery.SourceFileLoader("hot_sections", path).load_module()


def output_sections(path):
    """{(file, input section): (output section, address)} of a GNU ld map."""
    return {(f, sec): (out, addr) for addr, _, f, sec, out in tool().parse_map(path) if out}


class Rss(unittest.TestCase):
    def site(self):
        inst = yubintest.Instance(users=(DEMO,), conf={"max_message_size": "100M"})
        self.addCleanup(inst.stop)
        inst.use_tls()
        inst.add_message(DEMO, b"From: a@remote.test\nSubject: x\n\n" + b"line of text\n" * 300)
        return inst

    def handler(self, inst, name, *extra):
        why = static_handler(name)
        if why:
            self.skipTest(f"{name}: {why}")
        port = inst.serve_inetd(name, *extra)
        return port, inst.procs[-1].pid

    def peak_kib(self, inetd):
        pids = yubintest.children(inetd)
        self.assertEqual(len(pids), 1, pids)
        return yubintest.rss_kib(pids[0], "VmHWM")

    def context(self):
        return ssl._create_unverified_context()

    def smtp_peak(self, size, implicit=False):
        inst = self.site()
        port, inetd = self.handler(inst, "smtp-in", *(("-s", "-T") if implicit else ()))
        if implicit:
            c = smtplib.SMTP_SSL("127.0.0.1", port, context=self.context(), timeout=60)
            c.login(DEMO, "demo")
        else:
            c = smtplib.SMTP("127.0.0.1", port, timeout=60)
            c.starttls(context=self.context())
        body = b"Subject: rss\r\n\r\n" + b"x" * 76 + b"\r\n"
        c.sendmail(DEMO if implicit else "a@remote.test", [DEMO], body * (size // len(body)))
        peak = self.peak_kib(inetd)
        c.quit()
        return peak

    def test_smtp_starttls_4k(self):
        peak = self.smtp_peak(4096)
        self.assertLessEqual(peak, LIMIT_KIB, f"smtp-in over STARTTLS peaked at {peak} KiB")

    def test_smtp_starttls_big_message_is_flat(self):
        small, big = self.smtp_peak(4096), self.smtp_peak(10 * 1000 * 1000)
        self.assertLessEqual(big, LIMIT_KIB, f"10 MB over STARTTLS: {big} KiB")
        self.assertLess(big - small, 256, f"4 KiB: {small} KiB, 10 MB: {big} KiB")

    def test_smtp_implicit_tls_with_auth(self):
        peak = self.smtp_peak(4096, implicit=True)
        self.assertLessEqual(peak, LIMIT_KIB, f"smtp-in -s -T peaked at {peak} KiB")

    def test_pop3_stls(self):
        inst = self.site()
        port, inetd = self.handler(inst, "pop3-in")
        c = poplib.POP3("127.0.0.1", port, timeout=60)
        c.stls(context=self.context())
        c.user(DEMO)
        c.pass_("demo")
        c.retr(1)
        peak = self.peak_kib(inetd)
        c.quit()
        self.assertLessEqual(peak, LIMIT_KIB, f"pop3-in over STLS peaked at {peak} KiB")

    def imap_peak(self, implicit):
        inst = self.site()
        port, inetd = self.handler(inst, "imap4-in", *(("-T",) if implicit else ()))
        if implicit:
            c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=self.context(), timeout=60)
        else:
            c = imaplib.IMAP4("127.0.0.1", port, timeout=60)
            c.starttls(ssl_context=self.context())
        c.login(DEMO, "demo")
        c.select("INBOX")
        c.fetch("1", "(FLAGS BODY.PEEK[])")
        peak = self.peak_kib(inetd)
        c.logout()
        return peak

    def test_imap_starttls(self):
        peak = self.imap_peak(False)
        self.assertLessEqual(peak, LIMIT_KIB, f"imap4-in over STARTTLS peaked at {peak} KiB")

    def test_imap_implicit_tls(self):
        peak = self.imap_peak(True)
        self.assertLessEqual(peak, LIMIT_KIB, f"imap4-in -T peaked at {peak} KiB")


class Layout(unittest.TestCase):
    def test_listed_sections_are_together_in_list_order(self):
        why = static_handler("smtp-in")
        if why:
            self.skipTest(f"smtp-in: {why}")
        wanted = hot_list()
        self.assertGreater(len(wanted), 500, "tools/hot-sections.list is nearly empty")
        found = set()
        for name in ("smtp-in", "pop3-in", "imap4-in"):
            path = os.path.join(yubintest.BUILD, "bin", name + ".map")
            self.assertTrue(os.path.exists(path), f"no link map {path}: the static handlers "
                            "are not linked with the layout (configure.ac, Makefile.am)")
            placed = output_sections(path)
            last = {}
            for key in wanted:
                if key not in placed:
                    continue  # not linked into this handler
                found.add(key)
                out, addr = placed[key]
                kind = next(k for k in sorted(HOT, key=len, reverse=True)
                            if key[1].startswith(k))
                self.assertEqual(out, HOT[kind], f"{name}: {key} is in {out}")
                if key[1].startswith((".rodata.str", ".rodata.cst")):
                    continue  # merged with their equals: no order of their own
                self.assertGreater(addr, last.get(out, -1), f"{name}: {key} out of list order")
                last[out] = addr
            self.assertIn(".text.hot", last, f"{name}: no .text.hot")
        # A list made for another OpenSSL or C library matches little: say how to remake it.
        if len(found) < 0.9 * len(wanted):
            self.skipTest(f"only {len(found)} of the {len(wanted)} listed sections are linked: "
                          "the list is for another OpenSSL or C library; run tools/hot-sections")

    def test_members_no_library_has_do_not_break_the_link(self):
        if static_handler("smtp-in"):
            self.skipTest("the layout is for static handlers only")
        with tempfile.TemporaryDirectory() as d:
            listing = os.path.join(d, "list")
            with open(listing, "w") as f:
                f.write("# a list for another OpenSSL\nlibcrypto.a:libcrypto-lib-none.o .text\n"
                        "libssl.a:libssl-lib-none.o .rodata\nnone.o .data.rel.ro\n"
                        "libc.a:printf.o .text\n")
            script = os.path.join(d, "layout.ld")
            with open(script, "w") as f:
                subprocess.run(["awk", "-f", os.path.join(yubintest.SRC, "tools", "layout.awk"),
                                listing], stdout=f, check=True)
            src = os.path.join(d, "hello.c")
            with open(src, "w") as f:
                f.write('#include <stdio.h>\nint main(int argc, char **argv) '
                        '{ printf("hello %d\\n", argc); return 0; }\n')
            exe = os.path.join(d, "hello")
            p = subprocess.run(["cc", "-static", "-o", exe, src, f"-Wl,-T,{script}",
                                f"-Wl,-Map,{exe}.map"], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(subprocess.run([exe], capture_output=True).stdout, b"hello 1\n")
            self.assertEqual(output_sections(exe + ".map").get(("libc.a:printf.o", ".text"),
                                                               ("?",))[0], ".text.hot")


if __name__ == "__main__":
    unittest.main()
