#!/usr/bin/env python3
# docs/doxygen_filter.py FILE: Doxygen's INPUT_FILTER for pollux's headers;
# prints FILE with its plain `//` contract comments turned into Doxygen ones.
#
# Why a filter: the headers document their API in plain `//` comments (a
# block at the top of each header, a block directly above a declaration), and
# Doxygen has no setting that makes `//` a documentation comment (only `///`,
# `//!`, `/** */`, `/*! */`). Rewriting every header to `///` would touch
# every line of comment in the tree for a tool's sake, so the headers stay as
# they are and this filter does the translation when Doxygen reads them:
#
# - The comment block at the top of the file becomes the file's documentation
#   (`///`, with `\file` at the end of its first line).
# - A `//` block directly above a declaration (no blank line between, the next
#   line is not a preprocessor line) becomes `///`, but only at namespace,
#   class or file scope: comments inside function bodies and initialisers stay
#   plain, so they are never mistaken for the API's documentation.
# - A block followed by a blank line (a section heading, a note on the code
#   around it) stays plain, as do trailing `// ...` comments after code.
# - In the converted text, what Doxygen reads as markup outside `code` spans
#   (`\ @ < > & # % $ "` and `::name`) is escaped, so `Poll<T>` and `a & b`
#   read as written; backtick spans and Markdown stay as they are.
#
# Line numbers are kept (one line out per line in), so Doxygen's warnings
# point at the real header lines.
import re
import sys

SCOPE_HEAD = re.compile(
    r"^\s*(template\b.*?>\s*)?(\[\[.*?\]\]\s*)*"
    r"(inline\s+)?(namespace|class|struct|union|enum|extern\s+\"C\")\b",
    re.S)
ESCAPE = re.compile(r'([\\@<>&#%$"]|::(?=~?\w))')


def escape_text(text, in_span):
    # Escapes markup characters outside `...` spans (`::x` too: Doxygen reads
    # it as a link to x); in_span: the line starts inside a span that an
    # earlier line opened. Returns (text, in_span at the end of the line).
    parts = text.split("`")
    start = 1 if in_span else 0
    for i in range(start, len(parts), 2):
        parts[i] = ESCAPE.sub(r"\\\1", parts[i])
    return "`".join(parts), in_span != (len(parts) % 2 == 0)


def convert_block(block):
    # `//` lines -> `///` lines. A run of lines indented three or more spaces
    # after `//` that follows an empty `//` line (or starts the block) is a
    # code example: it becomes a Markdown code block (indented past the
    # text's one space by four more), unescaped.
    out = []
    in_code = False
    in_span = False
    prev_blank = True
    for s in block:
        indent = s[:len(s) - len(s.lstrip())]
        text = s.lstrip()[2:]
        blank = not text.strip()
        if blank:
            in_code = in_span = False
        elif text.startswith("   ") and (prev_blank or in_code):
            in_code = True
        else:
            in_code = False
        if in_code:
            out.append(indent + "///  " + text)
        else:
            text, in_span = escape_text(text, in_span)
            out.append(indent + "///" + text)
        prev_blank = blank
    return out


def code_part(line, in_block):
    # Returns (code without comments or literals, in_block after the line).
    out = []
    i, n = 0, len(line)
    while i < n:
        if in_block:
            j = line.find("*/", i)
            if j < 0:
                return "".join(out), True
            i, in_block = j + 2, False
            continue
        c = line[i]
        if line.startswith("//", i):
            break
        if line.startswith("/*", i):
            in_block, i = True, i + 2
            continue
        if c in "\"'":
            # Skip a string or char literal (a digit separator 1'000 is a
            # quote after a digit: not a literal).
            if c == "'" and i > 0 and line[i - 1].isalnum():
                i += 1
                continue
            j = i + 1
            while j < n and line[j] != c:
                j += 2 if line[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out), in_block


def main(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    n = len(lines)
    is_comment = [l.lstrip().startswith("//") for l in lines]

    # Pass 1: the scope each line starts in (True: declarations live there).
    decl_scope = [True] * n
    stack = []         # one bool per open brace: does it open a decl scope
    head = ""          # code since the last ; { } at this level
    in_block = False
    for idx, line in enumerate(lines):
        decl_scope[idx] = all(stack)
        if line.lstrip().startswith("#"):
            continue
        code, in_block = code_part(line, in_block)
        for c in code:
            if c == "{":
                stack.append(all(stack) and bool(SCOPE_HEAD.match(head)))
                head = ""
            elif c == "}":
                if stack:
                    stack.pop()
                head = ""
            elif c == ";":
                head = ""
            else:
                head += c
        head += " "

    out = list(lines)
    # The top-of-file block: the file's documentation.
    i = 0
    while i < n and is_comment[i]:
        i += 1
    top_end = i
    out[:top_end] = convert_block(lines[:top_end])
    if top_end:
        # `\file` with nothing after it on its line: this file; at the end of
        # the first line so every line keeps its number.
        out[0] += " \\file"

    # Blocks directly above a declaration.
    i = top_end
    while i < n:
        if not is_comment[i]:
            i += 1
            continue
        j = i
        while j < n and is_comment[j]:
            j += 1
        nxt = lines[j].strip() if j < n else ""
        if (decl_scope[i] and nxt and not nxt.startswith("#")
                and not nxt.startswith("}")):
            out[i:j] = convert_block(lines[i:j])
        i = j

    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
