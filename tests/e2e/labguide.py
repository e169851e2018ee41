"""labguide: the lab guide (docs/LAB.md) as data, and as the man page yubin-lab(7).

    python3 tests/e2e/labguide.py man  > man/yubin-lab.7   # regenerate the page from the guide

The guide's runnable steps are fenced blocks whose info string is `lab HOST [retry]`: HOST is
`instructor` (the machine itself) or a lab host (g1, dns, client, ...). In a block, a line
`$ command` is a command, the lines after it are the output it must print: each line must
appear in that order (other lines may come between), compared with runs of blanks as one
blank; `<*>` stands for any text; a line `...` is for the reader only; a line `(exit N)` says
the command ends with status N (else 0). `retry`: the block is run again (up to WAIT seconds)
until its output matches, for mail that takes a moment to arrive.

The man page is made from the same text, so the two cannot say different things; test_lab_guide
checks that man/yubin-lab.7 is what `man` below makes of docs/LAB.md.
"""
import os
import re
import sys

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUIDE = os.path.join(SRC, "docs", "LAB.md")


class Step:
    def __init__(self, host, retry):
        self.host, self.retry, self.commands = host, retry, []  # [(command, [expected], exit)]


def steps(text):
    """The runnable blocks of the guide, in order."""
    out, block = [], None
    for line in text.splitlines():
        if block is None:
            m = re.match(r"^```lab (\S+)( retry)?\s*$", line)
            if m:
                block = Step(m.group(1), bool(m.group(2)))
            continue
        if line.startswith("```"):
            out.append(block)
            block = None
        elif line.startswith("$ "):
            block.commands.append([line[2:], [], 0])
        elif re.fullmatch(r"\(exit (\d+)\)", line):
            block.commands[-1][2] = int(line[6:-1])
        elif line.strip() != "...":
            block.commands[-1][1].append(line)
    return out


def _norm(s):
    return " ".join(s.split())


def line_matches(expected, got):
    parts = [re.escape(_norm(p)) for p in expected.split("<*>")]
    return re.fullmatch(r"\s*(.*?)\s*".join(parts) if len(parts) > 1 else parts[0],
                        _norm(got)) is not None


def missing(expected, output):
    """The first expected line not found (in order) in output, or None."""
    lines = output.splitlines()
    i = 0
    for want in expected:
        while i < len(lines) and not line_matches(want, lines[i]):
            i += 1
        if i == len(lines):
            return want
        i += 1
    return None


# ---- markdown to man(7) ----------------------------------------------------------------------

def _roff_text(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return s


def _inline(s):
    """`code` in bold, **bold** in bold, name`(N)` as a reference; the rest escaped."""
    out = []
    for i, part in enumerate(re.split(r"(`[^`]*`|\*\*[^*]*\*\*)", s)):
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append("\\fB" + _roff_text(part[1:-1]) + "\\fR")
        elif part.startswith("**") and part.endswith("**") and len(part) > 3:
            out.append("\\fB" + _roff_text(part[2:-2]) + "\\fR")
        else:
            out.append(_roff_text(part))
    return "".join(out)


def _line(s):
    """A roff text line: one that starts with . or ' is protected."""
    return "\\&" + s if s[:1] in (".", "'") else s


def man(text):
    out = [".\\\" yubin-lab(7): the lab guide. Made from docs/LAB.md by tests/e2e/labguide.py:",
           ".\\\" edit the guide, then run: python3 tests/e2e/labguide.py man > man/yubin-lab.7",
           '.TH YUBIN-LAB 7 "2026" "yubin" "Miscellaneous Information Manual"',
           ".SH NAME",
           "yubin-lab \\- the lab guide: a mail course's seed lab done with yubin",
           ".SH DESCRIPTION"]
    lines = text.splitlines()
    i = 0
    para = []

    def flush():
        if para:
            out.append(".PP")
            out.extend(_line(_inline(p)) for p in para)
            para.clear()

    while i < len(lines):
        line = lines[i]
        if line.startswith("# "):
            i += 1
            continue  # the title: NAME says it
        if line.startswith("## "):
            flush()
            out.append(".SH " + _inline(line[3:]).upper())
        elif line.startswith("```"):
            flush()
            info = line[3:].strip()
            if info.startswith("lab "):
                host = info.split()[1]
                out.append(".PP")
                out.append(f"On \\fB{host}\\fR:")
            out.append(".RS 4")
            out.append(".EX")
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                out.append(_line(_roff_text(lines[i])))
                i += 1
            out.append(".EE")
            out.append(".RE")
        elif line.startswith("- "):
            flush()
            item = [line[2:]]
            while i + 1 < len(lines) and lines[i + 1].startswith("  "):
                i += 1
                item.append(lines[i].strip())
            out.append(".IP \\(bu 2")
            out.extend(_line(_inline(p)) for p in item)
        elif line.strip() == "":
            flush()
        else:
            para.append(line)
        i += 1
    flush()
    out += [".SH SEE ALSO", ".BR yubin-lab (8),", ".BR yubin (7),", ".BR yubin.conf (5),",
            ".BR yubin-aliases (5),", ".BR yubin-user (8),", ".BR yubin-check (8),", ".BR smtp-in (8),",
            ".BR pop3-in (8),", ".BR queue-run (8),", ".BR mailq (8),", ".BR nsd (8),",
            ".BR inetd (8)"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["man"]:
        with open(GUIDE) as f:
            sys.stdout.write(man(f.read()))
    else:
        sys.exit("usage: labguide.py man > man/yubin-lab.7")
