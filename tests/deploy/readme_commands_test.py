"""deploy/README.md names the Debian packages of every program its shell commands run.

The page says which of Debian 12's packages a fleet needs ("Everything here is Debian 12's:
..."). This test reads the page's ```sh blocks, finds the program each command runs (after
`|`, `&&`, `;`, `do`, `until`...), and checks that the package of each is named in that
sentence. A program missing from SOURCES below fails the test too: say where it comes from.

Usage: readme_commands_test.py README.md
"""

import re
import shlex
import sys

# Where each program the page runs comes from: a Debian package the page must name; None for
# Debian's essential and required packages, on every Debian 12 system (coreutils, grep,
# passwd); "repository" for what this repository builds or needs to build (tools/bootstrap.sh).
SOURCES = {
    "install": None,
    "mkdir": None,
    "mv": None,
    "printf": None,
    "sleep": None,
    "grep": None,
    "useradd": None,
    "systemctl": "systemd",
    "journalctl": "systemd",
    "systemd-analyze": "systemd",
    "haproxy": "haproxy",
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "curl": "curl",
    "bazel": "repository",
    "brrrctl": "repository",
    "brrr-echo": "repository",
    "brrr-bench": "repository",
}

# Shell words that are not programs, and the words that start a new command after them.
KEYWORDS = {"do", "done", "then", "else", "fi", "until", "while", "if", "!", "{", "}"}
SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")"}


def shell_blocks(text):
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)


def programs(block):
    """The programs the block's commands run, in order."""
    found = []
    # A backslash-newline continues a line; each line is parsed on its own otherwise.
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.commenters = "#"
        lexer.whitespace_split = True
        start = True  # the next word starts a command
        in_for = False  # within `for NAME in WORDS;`
        for word in lexer:
            if word in SEPARATORS:
                start = True
                in_for = False
                continue
            if in_for:
                continue
            if not start:
                continue
            if word in KEYWORDS:
                continue
            if word == "for":
                in_for = True
                continue
            if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
                continue  # an assignment before the command, or alone
            found.append(word.rsplit("/", 1)[-1])
            start = False
    return found


def named_packages(text):
    match = re.search(r"Everything here is Debian 12's:(.*?)\.\n", text, flags=re.S)
    if match is None:
        return None
    return set(re.findall(r"[a-z][a-z0-9+-]*", match.group(1)))


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    named = named_packages(text)
    if named is None:
        print("readme_commands_test: FAIL: no \"Everything here is Debian 12's: ...\" sentence")
        return 1
    blocks = shell_blocks(text)
    if not blocks:
        print("readme_commands_test: FAIL: no ```sh blocks")
        return 1
    failures = []
    seen = set()
    for block in blocks:
        for program in programs(block):
            if program in seen:
                continue
            seen.add(program)
            if program not in SOURCES:
                failures.append(f"{program}: not in SOURCES (readme_commands_test.py): which package has it?")
            elif SOURCES[program] not in (None, "repository") and SOURCES[program] not in named:
                failures.append(f"{program}: its package, {SOURCES[program]}, is not named in \"Everything here is "
                                f"Debian 12's: ...\"")
    print("programs run:", " ".join(sorted(seen)))
    print("packages named:", " ".join(sorted(named)))
    for f in failures:
        print("readme_commands_test: FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
