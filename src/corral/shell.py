"""Shell commands as `/bin/sh -c` will run them: is a command one simple
command that `exec` can prefix?

Owned here because `corral start` and every export target must agree: a
simple command is run as `exec COMMAND`, so the shell replaces itself and the
app is the supervised process (its exit code, its stop signal, its grace).
dash, the `/bin/sh` of Debian, Ubuntu and most container images, forks a
plain `sh -c 'python app.py'` instead of replacing itself, so without `exec`
the supervisor would own the shell and the app would be its child: a stop
signal kills the shell at once and the app drains unseen.

The scanner is deliberately conservative: anything it cannot be sure of is
"not simple" and runs as written, under a shell that the supervisor then
tracks as a whole process group.
"""

from __future__ import annotations

import re

SHELL_KEYWORDS = frozenset(
    [
        "!",
        "{",
        "}",
        "[[",
        "]]",
        "case",
        "do",
        "done",
        "elif",
        "else",
        "esac",
        "fi",
        "for",
        "function",
        "if",
        "in",
        "select",
        "then",
        "time",
        "until",
        "while",
        "coproc",
    ]
)
SHELL_BUILTINS = frozenset(
    [
        ".",
        ":",
        "alias",
        "bg",
        "break",
        "builtin",
        "cd",
        "command",
        "continue",
        "declare",
        "eval",
        "exec",
        "exit",
        "export",
        "fg",
        "getopts",
        "hash",
        "jobs",
        "let",
        "local",
        "read",
        "readonly",
        "return",
        "set",
        "shift",
        "source",
        "times",
        "trap",
        "type",
        "typeset",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "wait",
    ]
)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_OPERATORS = set(";&|()`\n")


def simple_command(command: str) -> bool:
    """Is `command` one simple command that `exec` can prefix?  Conservative:
    False for anything else, and for whatever this scanner cannot be sure of.

    False when, outside quotes, it holds a list or pipeline operator (`;`,
    `&`, `&&`, `|`, `||`, a line break), a subshell or group (`(`, `)`, `{`),
    a command substitution (`$(`, backquotes, even inside double quotes), a
    line continuation, an unterminated quote, or when its first word is a
    reserved word, a builtin `exec` cannot run (`cd`, `export`, `.`...),
    `exec` itself, a variable assignment (`FOO=1 cmd`) or a redirection.
    Redirections after the first word are fine (`cmd >log 2>&1`), and so is
    a trailing `# comment`.
    """
    first: list[str] = []  # the first word, quotes removed
    raw: list[str] = []  # the first word as written
    state = "before"  # before the first word, in it, or after it ("rest")
    quote = ""
    prev = ""  # the character before (`\\` for an escaped one), for `#` and `>&`
    i, n = 0, len(command)
    while i < n:
        ch = command[i]
        if state == "first":
            raw.append(ch)
        if quote == "'":
            if ch == "'":
                quote = ""
            elif state == "first":
                first.append(ch)
        elif ch == "`" or command.startswith("$(", i):
            return False
        elif quote == '"':
            if ch == "\\" and i + 1 < n:
                i += 1
                if state == "first":
                    raw.append(command[i])
                    first.append(command[i])
            elif ch == '"':
                quote = ""
            elif state == "first":
                first.append(ch)
        elif ch in " \t":
            if state == "first":
                state = "rest"
        elif ch == "#" and prev in ("", " ", "\t"):
            if "\n" in command[i:]:
                return False  # the comment ends at the line break: another command
            break  # a comment to the end: nothing after it runs
        elif ch in _OPERATORS and not (ch in "&|" and prev in ("<", ">")):
            return False
        else:
            if state == "before":
                state = "first"
                raw.append(ch)
            if state == "first" and ch in "<>":
                return False  # a redirection before the command name
            if ch == "\\":
                if i + 1 >= n or command[i + 1] == "\n":
                    return False  # a line continuation
                i += 1
                if state == "first":
                    raw.append(command[i])
                    first.append(command[i])
            elif ch in "'\"":
                quote = ch
            elif state == "first":
                first.append(ch)
        prev = ch
        i += 1
    if quote or state == "before":
        return False
    if _ASSIGNMENT.match("".join(raw)):
        return False
    return "".join(first) not in SHELL_KEYWORDS | SHELL_BUILTINS


def exec_command(command: str) -> str:
    """`exec <command>` for a simple command, else the command as written."""
    return f"exec {command}" if simple_command(command) else command
