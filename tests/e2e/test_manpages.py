"""test_manpages: the manual is complete and renders cleanly.

A program or file format without its page is not done. This checks, from the sources and the
built programs, what an administrator relies on when reading man/:
- every bin/*.c program has man/NAME.8 under its installed name;
- every file format has its section-5 page, and yubin(7) exists;
- every page renders with `groff -man -ww -z` (and for an ASCII or UTF-8 terminal) without a
  warning, and has .TH with its own name and section, NAME, DESCRIPTION and SEE ALSO;
- dist_man_MANS in Makefile.am lists exactly the pages in man/;
- every SEE ALSO reference names a page in man/ or an installed system page;
- every option in a program's usage text (what it prints for a bad option; for smtp-in and
  pop3-in, which print nothing on stderr under inetd, the getopt string in the source) is in its
  page;
- every key of lib/conf.c's table is described in yubin.conf(5), and yubin.conf(5) describes no
  key the table does not have;
- options and example lines use \\- (ASCII hyphen-minus when pasted);
- every <sysexits.h> code a program returns is in its EXIT STATUS, and every error reply
  smtp-in or pop3-in can send is in a page;
- yubin(7) names every other page, and every page names yubin(7).
"""
import glob
import os
import re
import shutil
import subprocess
import unittest

import yubintest

SRC = yubintest.SRC
MAN = os.path.join(SRC, "man")
FORMATS = ("yubin.conf.5", "yubin-users.5", "yubin-aliases.5", "yubin-queue.5")
# Programs whose stderr is the client's socket under inetd: the getopt string in the source.
SILENT = ("smtp-in", "pop3-in", "imap4-in")


def programs():
    return sorted(os.path.basename(p)[:-2] for p in glob.glob(os.path.join(SRC, "bin", "*.c")))


def pages():
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(MAN, "*.[1-9]")))


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def render(page):
    """The page as plain ASCII text (no bold, no hyphenation tricks)."""
    p = subprocess.run(["groff", "-man", "-Tascii", "-P-cbou", "-rHY=0", os.path.join(MAN, page)],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError(f"{page}: groff failed: {p.stderr}")
    # undo line-end hyphenation and fill, so "-C conf" split across lines still matches
    return re.sub(r"\s+", " ", p.stdout)


def see_also(page):
    text = read(os.path.join(MAN, page))
    m = re.search(r"^\.SH\s+\"?SEE ALSO\"?\s*$(.*?)(?=^\.SH|\Z)", text, re.M | re.S)
    if m is None:
        return None
    return re.findall(r"([A-Za-z0-9_.+-]+)\s*\"?\s*\((\d)\w*\)", m.group(1).replace("\\-", "-"))


def system_page_exists(name, section):
    if shutil.which("man") is None:
        return True  # no man-db to ask; yubin's own pages are still checked
    p = subprocess.run(["man", "-w", section, name], capture_output=True, text=True, timeout=30)
    return p.returncode == 0


def usage_options(name):
    """The option tokens ("-f", "--stdin", "-bp") the program's usage text names."""
    if name in SILENT:
        src = read(os.path.join(SRC, "bin", name + ".c"))
        if "handler_start(" in src:  # pop3-in and imap4-in take their options there
            src = read(os.path.join(SRC, "lib", "handler.c"))
        m = re.search(r'getopt\(\s*argc\s*,\s*argv\s*,\s*"([^"]*)"', src)
        assert m, f"{name}: no getopt string in the source"
        return sorted("-" + ch for ch in m.group(1) if ch != ":")
    p = subprocess.run([yubintest.program(name), "-Z"], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode != 0, f"{name} -Z succeeded"
    usage = p.stderr[p.stderr.find("usage:"):]
    assert "usage:" in p.stderr, f"{name} -Z printed no usage: {p.stderr!r}"
    return sorted(set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", usage)))


def conf_keys():
    src = read(os.path.join(SRC, "lib", "conf.c"))
    table = src[src.index("conf_keys[] = {"):]
    table = table[:table.index("};")]
    return re.findall(r"\{(?:STR|NUM)\((\w+),", table)


class Pages(unittest.TestCase):
    def test_every_program_has_its_page(self):
        have = pages()
        for name in programs():
            self.assertIn(name + ".8", have, f"bin/{name}.c has no man/{name}.8")
        for page in FORMATS + ("yubin.7",):
            self.assertIn(page, have)

    def test_every_page_renders_without_warnings(self):
        for page in pages():
            # the default device, and a plain terminal (LANG=C man): no character it lacks
            for device in ([], ["-Tascii"], ["-Tutf8"]):
                p = subprocess.run(["groff", "-man", "-ww", "-z", *device,
                                    os.path.join(MAN, page)],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual((p.returncode, p.stderr), (0, ""), f"{page} {device}")
            text = read(os.path.join(MAN, page))
            th = re.search(r"^\.TH\s+(\S+)\s+(\S+)", text, re.M)
            self.assertIsNotNone(th, f"{page}: no .TH")
            name, section = page.rsplit(".", 1)
            self.assertEqual((th.group(1).strip('"').lower(), th.group(2)), (name, section), page)
            for sect in ("NAME", "DESCRIPTION", "SEE ALSO"):
                self.assertRegex(text, rf"(?m)^\.SH\s+\"?{sect}\"?\s*$", f"{page}: no {sect}")

    def test_dist_man_mans_lists_every_page(self):
        am = read(os.path.join(SRC, "Makefile.am"))
        listed = set()
        for m in re.finditer(r"^dist_man_MANS\s*\+?=((?:.*\\\n)*.*)$", am, re.M):
            listed.update(os.path.basename(w) for w in re.findall(r"man/\S+", m.group(1)))
        self.assertEqual(sorted(listed), pages())

    def test_see_also_names_existing_pages(self):
        have = set(pages())
        for page in pages():
            refs = see_also(page)
            self.assertTrue(refs, f"{page}: empty SEE ALSO")
            for name, section in refs:
                if f"{name}.{section}" in have:
                    continue
                self.assertFalse(name.startswith("yubin") or f"{name}.8" in have,
                                 f"{page}: SEE ALSO {name}({section}) is not in man/")
                self.assertTrue(system_page_exists(name, section),
                                f"{page}: SEE ALSO {name}({section}) exists nowhere")

    def test_usage_options_are_documented(self):
        for name in programs():
            text = render(name + ".8")
            opts = usage_options(name)
            self.assertTrue(opts, f"{name}: no options found")
            missing = [o for o in opts
                       if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text)]
            self.assertEqual(missing, [], f"{name}.8 does not describe these options")

    def test_conf_keys_are_documented(self):
        keys = conf_keys()
        self.assertGreater(len(keys), 20)
        src = read(os.path.join(MAN, "yubin.conf.5"))
        documented = set()
        for m in re.finditer(r"^\.TP\n\.BR?\s+(.*)$", src, re.M):
            documented.update(re.findall(r"[a-z][a-z0-9]*_[a-z0-9_]+|\b[a-z]+\b",
                                         m.group(1).replace('"', " ")))
        missing = [k for k in keys if k not in documented]
        self.assertEqual(missing, [], "keys without a .TP entry in yubin.conf.5")
        extra = {k for k in documented if "_" in k} - set(keys)
        self.assertFalse(extra, f"yubin.conf.5 describes keys conf.c does not know: {extra}")

    def test_exit_codes_are_documented(self):
        """Every <sysexits.h> code a program returns is in its page's EXIT STATUS, by name or
        number."""
        numbers = dict(re.findall(r"#\s*define\s+(EX_\w+)\s+(\d+)",
                                  read("/usr/include/sysexits.h")))
        for name in programs():
            used = set(re.findall(r"\b(EX_[A-Z]+)\b", read(os.path.join(SRC, "bin", name + ".c"))))
            text = render(name + ".8")
            m = re.search(r" EXIT STATUS (.*?)(?= [A-Z][A-Z ]{3,} |$)", text)
            self.assertTrue(m or not used, f"{name}.8 has no EXIT STATUS section")
            section = m.group(1) if m else ""
            missing = [ex for ex in sorted(used - {"EX_OK"})
                       if ex not in section and not re.search(rf"\b{numbers[ex]}\b", section)]
            self.assertEqual(missing, [], f"{name}.8 EXIT STATUS lacks these codes")

    def test_error_replies_are_documented(self):
        """Every 4xx/5xx reply with its enhanced code that smtp-in (and lib/route, which it
        uses at RCPT) can send is in smtp-in(8) or yubin-aliases(5); every POP3 response code
        of pop3-in is in pop3-in(8)."""
        src = "".join(read(os.path.join(SRC, *f)) for f in (("bin", "smtp-in.c"),
                                                              ("lib", "route.c")))
        codes = sorted(set(re.findall(r'"([45]\d\d)[ -]([45]\.\d+\.\d+)', src)))
        self.assertGreater(len(codes), 20)
        text = render("smtp-in.8") + render("yubin-aliases.5")
        missing = [f"{c} {e}" for c, e in codes if f"{c} {e}" not in text]
        self.assertEqual(missing, [], "replies of smtp-in that no page describes")
        src = read(os.path.join(SRC, "bin", "pop3-in.c"))
        resp = sorted(set(re.findall(r"-ERR (\[[A-Z/-]+\])", src)))
        self.assertTrue(resp)
        text = render("pop3-in.8")
        self.assertEqual([r for r in resp if r not in text], [], "POP3 response codes")

    def test_examples_paste_as_typed(self):
        """A plain '-' may render as a Unicode hyphen (U+2010): an option or a command in an
        example must be written '\\-' so that it pastes as the ASCII one."""
        for page in pages():
            in_example = False
            for n, line in enumerate(read(os.path.join(MAN, page)).splitlines(), 1):
                if line.startswith(".nf"):
                    in_example = True
                elif line.startswith(".fi"):
                    in_example = False
                if line.startswith('.\\"'):
                    continue
                bad = (in_example and not line.startswith(".") and re.search(r"(?<!\\)-", line)) \
                    or re.search(r"(?:^|[\s\"(\[|])-[-A-Za-z]", line)
                self.assertFalse(bad, f"{page}:{n}: unescaped '-': {line}")

    def test_overview_names_every_page(self):
        refs = {f"{n}.{s}" for n, s in see_also("yubin.7")}
        self.assertEqual(sorted(refs & set(pages())), sorted(set(pages()) - {"yubin.7"}))
        for page in set(pages()) - {"yubin.7"}:
            self.assertIn(("yubin", "7"), see_also(page), f"{page}: SEE ALSO has no yubin(7)")


if __name__ == "__main__":
    unittest.main()
