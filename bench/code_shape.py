#!/usr/bin/env python3
"""code_shape: the code-shape figures of issue 13, for the working tree or any git revision.

Prints the lines of cmd/ephd/daemon.cc, the longest function of each module (pkg/<module>,
its sub-libraries such as pkg/providers/docker, and cmd/<binary>) with its file, name and
length, and the longest functions overall.

A HEURISTIC, not a C++ parser: comments, string and character literals (raw strings and digit
separators included) and preprocessor lines are blanked (scripts/cxx_scan.py), then braces are
matched. A `{` outside any function body opens a function when the text before it, back to the
previous `;`, `{` or `}`, ends in a parameter list (after trailing qualifiers such as const,
noexcept, override, `-> type`, and a constructor's member-initialiser list) whose name is not a
keyword; lambdas (`](...)`) and initialisers (`= {`) are not functions. Braces inside a
function belong to it, so lambdas and local classes count towards their enclosing function. A
function's length runs from the line of its name to its closing brace, both included. Tests,
fuzz targets and test doubles are left out unless --tests.

Checked against Universal Ctags (`--ctags`, working tree only): at bf9acd8 both find the same
1185 top-level functions with the same first and last lines; the 230 more that ctags lists are
lambdas and methods of local classes, which this tool counts as part of their function.

Usage: bench/code_shape.py [--rev REV] [--root DIR] [--top N] [--tests] [--list FILE] [--ctags]
  --rev REV   read the files of that commit (git cat-file), not the working tree
  --list F    print every function found in one file
  --ctags     compare with `ctags --fields=+ne` and print every disagreement
"""

import argparse
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))
import cxx_scan  # noqa: E402

DAEMON = "cmd/ephd/daemon.cc"
TEST_RE = re.compile(r"(_test\.(cc|h)$|_test_util\.h$|fuzz|(^|/)fake_[^/]*$|(^|/)test_world\.)")
NOT_NAMES = {
    "if", "for", "while", "switch", "catch", "return", "sizeof", "decltype", "alignof",
    "alignas", "static_assert", "noexcept", "throw", "new", "delete", "co_await", "co_return",
    "co_yield", "requires", "__attribute__", "defined",
}
CLASS_HEAD = re.compile(r"^(?:template\s*<.*>\s*)?(?:class|struct|union)\s+"
                        r"(?:\[\[[^\]]*\]\]\s*)?(?:alignas\s*\([^)]*\)\s*)?([\w:]+)", re.S)
TRAILING_WORDS = ("const", "override", "final", "mutable", "volatile", "noexcept", "&&", "&")
SCOPE_WORDS = re.compile(
    r"^(?:(?:template\s*<.*>\s*)?(?:class|struct|union|enum|namespace)\b|extern\s*\"[^\"]*\"\s*$)",
    re.S)


def matching_open(text, close_index, open_ch, close_ch):
    """Index of the bracket matching text[close_index], scanning backwards; -1 if none."""
    depth = 0
    for i in range(close_index, -1, -1):
        c = text[i]
        if c == close_ch:
            depth += 1
        elif c == open_ch:
            depth -= 1
            if depth == 0:
                return i
    return -1


def strip_init_list(head):
    """Cuts a constructor's member-initialiser list: `Foo(int a) : a_(a), b_{a}` -> `Foo(int a)`.
    The list starts at a `:` (not `::`) that follows a `)` at bracket depth 0."""
    depth = 0
    i = 0
    while i < len(head):
        c = head[i]
        if c in "([{<":
            depth += 1 if c != "<" else 0
        elif c in ")]}":
            depth -= 1
        elif c == ":" and depth == 0:
            if head[i + 1 : i + 2] == ":" or head[i - 1 : i] == ":":
                i += 2 if head[i + 1 : i + 2] == ":" else 1
                continue
            before = head[:i].rstrip()
            # `) :` or `) noexcept :` / `) const :` (no const on constructors, but cheap).
            b = before
            for word in TRAILING_WORDS:
                if b.endswith(word):
                    b = b[: -len(word)].rstrip()
            if b.endswith(")"):
                return before
        i += 1
    return head


def function_name(head):
    """The function a definition head declares, or None if the head is not one."""
    lead = len(head) - len(head.lstrip())
    head = head.strip()
    if not head or SCOPE_WORDS.match(head):
        return None
    head = strip_init_list(head)
    # Trailing return type: `auto f(x) -> T` (a lambda's `]() -> T` fails below anyway).
    arrow = head.rfind("->")
    if arrow > 0 and ")" in head[:arrow]:
        close = head.rfind(")", 0, arrow)
        if head[close + 1 : arrow].strip() in ("",) or all(
                w in TRAILING_WORDS for w in head[close + 1 : arrow].split()):
            head = head[:arrow].rstrip()
    changed = True
    while changed:
        changed = False
        head = head.rstrip()
        for word in TRAILING_WORDS:
            if head.endswith(word) and (len(head) == len(word) or not (
                    head[-len(word) - 1].isalnum() or head[-len(word) - 1] == "_")):
                head = head[: -len(word)]
                changed = True
        if head.endswith(")"):
            start = matching_open(head, len(head) - 1, "(", ")")
            word = re.search(r"(\w+)\s*$", head[:start]) if start > 0 else None
            if word and word.group(1) in ("noexcept", "throw", "__attribute__", "requires"):
                head = head[: word.start()]
                changed = True
    if not head.endswith(")"):
        return None
    open_paren = matching_open(head, len(head) - 1, "(", ")")
    if open_paren <= 0:
        return None
    before = head[:open_paren].rstrip()
    if before.endswith("]"):  # a lambda
        return None
    m = re.search(r"((?:[A-Za-z_]\w*\s*(?:<[^<>()]*>)?\s*::\s*)*~?[A-Za-z_]\w*)$", before)
    op = re.search(r"((?:\w+::)*operator\s*(?:\(\)|\[\]|[^\w\s(]+|\s+\w[\w:<>]*))$", before)
    if op:
        name, prefix = op.group(1), before[: op.start(1)]
    elif m:
        name, prefix = re.sub(r"\s+", "", m.group(1)), before[: m.start(1)]
    else:
        return None
    last = name.split("::")[-1].lstrip("~")
    if last in NOT_NAMES:
        return None
    # An `=` before the name makes it an initialiser: `auto x = f(y) {` is not a definition.
    if re.search(r"(?<![=!<>+\-*/%&|^])=(?!=)", prefix):
        return None
    return name, lead + open_paren


def functions(text):
    """[(name, first_line, last_line)] of the function definitions in a C++ file."""
    code = cxx_scan.code_only(text, blank_preprocessor=True)
    found = []
    # The open braces: "scope" (namespace, enum), "class NAME", "init" (an initialiser), "inner"
    # (a block inside code), or ("function", name, first line).
    stack = []
    head_start = 0
    i = 0
    n = len(code)
    while i < n:
        c = code[i]
        if c == "{":
            if any(isinstance(k, tuple) or k == "init" for k in stack):
                stack.append("inner")
            else:
                head = code[head_start:i]
                # Braces that are part of the head: in an open parenthesis (a default argument
                # `= {}`, a lambda in an initialiser), or a brace initialiser in a constructor's
                # initialiser list (`b_{x}`). Skipped, the head goes on.
                if head.count("(") > head.count(")") or (
                        re.search(r"\)\s*:[^:]", head) and re.search(r"[\w>]\s*$", head) and
                        not SCOPE_WORDS.match(head.strip())):
                    close = i
                    depth = 0
                    while close < n:
                        if code[close] == "{":
                            depth += 1
                        elif code[close] == "}":
                            depth -= 1
                            if depth == 0:
                                break
                        close += 1
                    i = close + 1
                    continue
                named = function_name(head)
                if named:
                    name, paren = named
                    name_at = head_start + len(head[:paren].rstrip()) - 1
                    classes = [k[6:] for k in stack if isinstance(k, str) and k.startswith("class ")]
                    if classes and "::" not in name:
                        name = "::".join(classes + [name])
                    stack.append(("function", name, code.count("\n", 0, name_at) + 1))
                elif re.search(r"=\s*$", head) or re.search(r"\breturn\b", head):
                    stack.append("init")
                else:
                    m = CLASS_HEAD.match(head.strip())
                    stack.append("class " + m.group(1) if m else "scope")
            head_start = i + 1
        elif c == "}":
            if stack:
                kind = stack.pop()
                if isinstance(kind, tuple):
                    found.append((kind[1], kind[2], code.count("\n", 0, i) + 1))
            head_start = i + 1
        elif c == ";":
            if not any(isinstance(k, tuple) or k == "init" for k in stack):
                head_start = i + 1
        i += 1
    return found


def read_tree(root, rev):
    """{path: text} of the C++ files under pkg/ and cmd/."""
    files = {}
    if rev:
        listing = subprocess.run(["git", "-C", root, "ls-tree", "-r", "--name-only", rev, "--",
                                  "pkg", "cmd"], capture_output=True, text=True, check=True)
        paths = [p for p in listing.stdout.split("\n") if p.endswith((".cc", ".h"))]
        batch = subprocess.run(["git", "-C", root, "cat-file", "--batch"],
                               input="".join(f"{rev}:{p}\n" for p in paths).encode(),
                               capture_output=True, check=True).stdout
        pos = 0
        for p in paths:
            header_end = batch.index(b"\n", pos)
            size = int(batch[pos:header_end].split()[2])
            files[p] = batch[header_end + 1 : header_end + 1 + size].decode("utf-8", "replace")
            pos = header_end + 1 + size + 1
        return files
    for top in ("pkg", "cmd"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in names:
                if name.endswith((".cc", ".h")):
                    full = os.path.join(dirpath, name)
                    with open(full, encoding="utf-8", errors="replace") as fh:
                        files[os.path.relpath(full, root).replace(os.sep, "/")] = fh.read()
    return files


def module_of(path, module_dirs):
    """The deepest directory holding a CMakeLists.txt (a library of its own), else pkg/<x>."""
    parts = path.split("/")
    for k in range(len(parts) - 1, 1, -1):
        d = "/".join(parts[:k])
        if d in module_dirs:
            return d
    return "/".join(parts[:2])


def compare_with_ctags(root, tests):
    """Prints where ctags and this heuristic disagree on a top-level function; 1 if anywhere."""
    files = {p: t for p, t in read_tree(root, None).items() if tests or not TEST_RE.search(p)}
    listing = subprocess.run(["ctags", "--fields=+ne", "--kinds-C++=f", "-o", "-"] +
                             sorted(files), cwd=root, capture_output=True, text=True, check=True)
    theirs = {}
    for line in listing.stdout.splitlines():
        parts = line.split("\t")
        fields = dict(p.split(":", 1) for p in parts[3:] if ":" in p)
        if "end" in fields:
            theirs.setdefault(parts[1], {})[int(fields["line"])] = (parts[0], int(fields["end"]))
    agree = nested = problems = 0
    for path, text in sorted(files.items()):
        mine = {first: (name, last) for name, first, last in functions(text)}
        for first, (name, last) in sorted(theirs.get(path, {}).items()):
            if first in mine and mine[first][1] == last:
                agree += 1
            elif first not in mine and any(a < first <= b for a, (_, b) in mine.items()):
                nested += 1  # a lambda or a local class's method: part of its function here
            else:
                problems += 1
                print(f"{path}:{first}: ctags: {name} ends at {last}; here: {mine.get(first)}")
        for first, (name, last) in sorted(mine.items()):
            if first not in theirs.get(path, {}):
                problems += 1
                print(f"{path}:{first}: here: {name} ends at {last}; ctags has none")
    print(f"{agree} functions agree, {nested} nested ones counted in their function, "
          f"{problems} disagreement(s)")
    return 1 if problems else 0


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.path.dirname(HERE))
    parser.add_argument("--rev", default=None)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--tests", action="store_true")
    parser.add_argument("--list", metavar="FILE", help="print every function found in FILE")
    parser.add_argument("--ctags", action="store_true", help="compare with Universal Ctags")
    args = parser.parse_args(argv)
    if args.ctags:
        return compare_with_ctags(args.root, args.tests)
    if args.list:
        with open(args.list, encoding="utf-8", errors="replace") as fh:
            for name, first, last in functions(fh.read()):
                print(f"{first:>5}-{last:<5} {last - first + 1:>4}  {name}")
        return 0

    files = read_tree(args.root, args.rev)
    if args.rev:
        listing = subprocess.run(["git", "-C", args.root, "ls-tree", "-r", "--name-only",
                                  args.rev, "--", "pkg", "cmd"],
                                 capture_output=True, text=True, check=True).stdout.split("\n")
        module_dirs = {os.path.dirname(p) for p in listing if p.endswith("CMakeLists.txt")}
        label = subprocess.run(["git", "-C", args.root, "rev-parse", "--short", args.rev],
                               capture_output=True, text=True, check=True).stdout.strip()
    else:
        module_dirs = set()
        for top in ("pkg", "cmd"):
            for dirpath, _, names in os.walk(os.path.join(args.root, top)):
                if "CMakeLists.txt" in names:
                    module_dirs.add(os.path.relpath(dirpath, args.root).replace(os.sep, "/"))
        label = "working tree"

    print(f"code shape of {label} (heuristic: see the header of bench/code_shape.py)")
    if DAEMON in files:
        print(f"{DAEMON}: {files[DAEMON].count(chr(10))} lines")
    every = []
    for path, text in sorted(files.items()):
        if not args.tests and TEST_RE.search(path):
            continue
        for name, first, last in functions(text):
            every.append((last - first + 1, path, first, name))
    best = {}
    for length, path, first, name in every:
        m = module_of(path, module_dirs)
        if m not in best or length > best[m][0]:
            best[m] = (length, path, first, name)
    print("\nlongest function per module:")
    width = max(len(m) for m in best)
    for m in sorted(best):
        length, path, first, name = best[m]
        print(f"  {m:<{width}}  {length:>4} lines  {name}  ({path}:{first})")
    print(f"\nlongest {args.top} functions:")
    for length, path, first, name in sorted(every, reverse=True)[: args.top]:
        print(f"  {length:>4} lines  {name}  ({path}:{first})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
