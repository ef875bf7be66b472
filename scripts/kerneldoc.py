#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Check the kernel-doc comments of the C headers and render the API reference.

    python3 scripts/kerneldoc.py [--header H ...] [--out FILE] [--check]

The headers are include/svakit.h and include/svakit_debug.h (the contract;
svakit_deprecated.h's aliases and svakit_kernel_names.h's macros carry no
kernel-doc). Every function prototype and static inline function of a header must have
a kernel-doc comment (/** ... */ right before it) in the Linux format:

    /**
     * svakit_foo() - summary.
     * @m: ...
     *
     * Longer description.
     *
     * Context: ...
     * Return: ...
     */

with every parameter documented, no parameter documented that the prototype
lacks, a Context: section, and a Return: section unless the function returns
void. Any problem is printed as "header:line: name: what" and the exit status
is 1: warnings are errors. Structs, enums and typedefs with a kernel-doc
comment are rendered too.

Without --out the reference goes to .build-ci/api/svakit.h.md (ignored by
git). docs/api/svakit.h.md is the committed copy: regenerate it with
--out docs/api/svakit.h.md; --check fails when it differs from what the
header renders, so it cannot go stale (scripts/test.sh runs --check).

Python 3 standard library only.
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADERS = [os.path.join(ROOT, "include", h) for h in ("svakit.h", "svakit_debug.h")]
COMMITTED = os.path.join(ROOT, "docs", "api", "svakit.h.md")
DEFAULT_OUT = os.path.join(ROOT, ".build-ci", "api", "svakit.h.md")

SECTION = re.compile(r"^(Context|Return|Returns):\s*(.*)$")
PARAM = re.compile(r"^@(\w+|\.\.\.):\s*(.*)$")
PROTO = re.compile(r"^(?:static inline\s+)?[A-Za-z_][\w\s\*]*?\b(svakit_\w+)\s*\(")


class Doc:
    """One kernel-doc comment: its title line, @params, body and sections."""

    def __init__(self, line, text):
        self.line = line
        self.kind = None  # "function", "struct", "enum", "typedef"
        self.name = None
        self.summary = ""
        self.params = []  # (name, text)
        self.body = []
        self.sections = {}  # "Context"/"Return" -> text
        self.parse(text)

    def parse(self, text):
        raw = [l for l in text.split("\n") if l.strip() not in ("/**", "*/")]
        lines = [re.sub(r"^\s*\* ?", "", l).rstrip() for l in raw]
        title = lines[0] if lines else ""
        m = re.match(r"^(struct|enum|typedef)\s+(\w+)\s+-\s+(.*)$", title)
        if m:
            self.kind, self.name, self.summary = m.group(1), m.group(2), m.group(3)
        else:
            m = re.match(r"^(\w+)\(\)\s+-\s+(.*)$", title)
            if m:
                self.kind, self.name, self.summary = "function", m.group(1), m.group(2)
        current = None  # ("param", index) or ("section", key) or ("body",)
        for l in lines[1:]:
            pm = PARAM.match(l)
            sm = SECTION.match(l)
            if pm and current != ("body",) and not self.sections:
                self.params.append([pm.group(1), pm.group(2)])
                current = ("param", len(self.params) - 1)
            elif sm:
                key = "Return" if sm.group(1) == "Returns" else sm.group(1)
                self.sections[key] = sm.group(2)
                current = ("section", key)
            elif l == "":
                if current and current[0] == "section":
                    self.sections[current[1]] += "\n"
                else:
                    current = ("body",)
                    self.body.append("")
            elif current and current[0] == "param":
                self.params[current[1]][1] += " " + l.strip()
            elif current and current[0] == "section":
                sep = "" if self.sections[current[1]].endswith("\n") or not self.sections[current[1]] else "\n"
                self.sections[current[1]] += sep + l
            else:
                current = ("body",)
                self.body.append(l)
        for k in self.sections:
            self.sections[k] = self.sections[k].strip()


def split_params(arglist):
    """Parameter names of a C parameter list."""
    arglist = arglist.strip()
    if arglist in ("", "void"):
        return []
    names = []
    for a in arglist.split(","):
        a = a.strip()
        if a == "...":
            names.append("...")
            continue
        m = re.search(r"\(\s*\*\s*(\w+)\s*\)", a)  # a function pointer
        if m:
            names.append(m.group(1))
            continue
        m = re.search(r"(\w+)\s*(\[[^\]]*\])?$", a)
        names.append(m.group(1) if m else a)
    return names


def banner_title(lines, i):
    """The title of a section banner starting at line i (a rule, a title, a rule), or None."""
    rule = re.compile(r"^/\* -{20,} \*/$")
    if i + 2 < len(lines) and rule.match(lines[i]) and rule.match(lines[i + 2]):
        m = re.match(r"^/\*\s*(.*?)\s*\*/$", lines[i + 1])
        if m:
            return m.group(1)
    return None


def parse_header(path):
    """The header's items: (doc or None, kind, name, declaration, line, ...).

    A section banner is an item of kind "section" (its title as the name)."""
    src = open(path, encoding="utf-8").read()
    lines = src.split("\n")
    items = []
    pending = None  # the last kernel-doc comment, until a declaration uses it
    i = 0
    while i < len(lines):
        l = lines[i]
        if l.startswith("/**"):
            start = i
            while "*/" not in lines[i]:
                i += 1
            pending = Doc(start + 1, "\n".join(lines[start:i + 1]))
            i += 1
            continue
        title = banner_title(lines, i)
        if title is not None:
            items.append((None, "section", title, None, i + 1, None, None))
            i += 3
            continue
        if l.startswith("/*"):  # an ordinary comment: does not detach a pending doc
            while "*/" not in lines[i]:
                i += 1
            i += 1
            continue
        decl_start = i
        if PROTO.match(l) and not l.startswith("#"):
            decl = l
            while ")" not in decl.split("(", 1)[1] or not re.search(r"\)\s*(;|\{|$)", decl):
                i += 1
                decl += "\n" + lines[i]
            name = PROTO.match(l).group(1)
            args = decl.split("(", 1)[1].rsplit(")", 1)[0]
            proto = re.sub(r"\s+", " ", decl.split("{")[0]).strip().rstrip(";").strip() + ";"
            if proto.startswith("static inline"):
                proto = proto[:-1] + " { ... }"
            items.append((pending, "function", name, proto, decl_start + 1, split_params(args),
                          not re.match(r"^(static inline\s+)?void\s", l)))
            pending = None
            if "{" in decl:  # skip an inline body
                depth = decl.count("{") - decl.count("}")
                while depth > 0:
                    i += 1
                    depth += lines[i].count("{") - lines[i].count("}")
            i += 1
            continue
        m = re.match(r"^(typedef\s+)?(struct|enum)\s+(\w+)\s*\{", l)
        t = re.match(r"^typedef\s+[^(]*\(\*\s*(\w+)\)\s*\(", l)
        if m or t:
            body = [l]
            if m:
                while not re.match(r"^\}.*;", lines[i]):
                    i += 1
                    body.append(lines[i])
            else:
                while not lines[i].rstrip().endswith(";"):
                    i += 1
                    body.append(lines[i])
            if m:
                kind = "typedef" if m.group(1) else m.group(2)
                name = re.match(r"^\}\s*(\w*)", body[-1]).group(1) if m.group(1) else m.group(3)
                if kind == "typedef" and pending and pending.kind == "struct":
                    kind = "struct"
            else:
                kind, name = "typedef", t.group(1)
            items.append((pending, kind, name, "\n".join(body), decl_start + 1, None, None))
            pending = None
            i += 1
            continue
        if l.strip() and not l.startswith("#") and pending is not None and l.strip() not in ("}", "{"):
            pending = None
        i += 1
    return items


def check(path, items):
    """Problems as 'path:line: name: what'."""
    rel = os.path.relpath(path, ROOT)
    problems = []
    for doc, kind, name, decl, line, params, returns in items:
        where = "%s:%d: %s" % (rel, line, name)
        if kind == "section":
            continue
        if doc is None:
            if kind == "function":
                problems.append("%s: no kernel-doc comment" % where)
            continue
        if doc.name != name:
            problems.append("%s: the kernel-doc comment above (line %d) is titled %r"
                            % (where, doc.line, doc.name or "(no 'name() - summary' line)"))
            continue
        if not doc.summary.strip():
            problems.append("%s: no summary after ' - '" % where)
        if kind != "function":
            continue
        documented = [p for p, _ in doc.params]
        for p in params:
            if p not in documented:
                problems.append("%s: parameter @%s is not documented" % (where, p))
        for p, text in doc.params:
            if p not in params:
                problems.append("%s: @%s is documented but not in the prototype" % (where, p))
            elif not text.strip():
                problems.append("%s: @%s has no description" % (where, p))
        if not doc.sections.get("Context"):
            problems.append("%s: no Context: section" % where)
        if returns and not doc.sections.get("Return"):
            problems.append("%s: no Return: section" % where)
    return problems


def md_text(lines):
    """Kernel-doc prose as Markdown paragraphs."""
    out, para = [], []
    for l in lines:
        if l.strip():
            para.append(l.strip())
        elif para:
            out.append(" ".join(para))
            para = []
    if para:
        out.append(" ".join(para))
    return "\n\n".join(out)


def members_and_body(doc, heading):
    """The @-lines as a list (under heading, if any), then the prose."""
    out = []
    if doc.params:
        if heading:
            out += [heading, ""]
        out += ["- `%s`: %s" % (p, re.sub(r"\s+", " ", text).strip()) for p, text in doc.params]
        out.append("")
    body = md_text(doc.body)
    if body:
        out += [body, ""]
    return out


def anchor(text):
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def render(parts):
    """parts: [(header file name, items)] in the order they are rendered."""
    names = ", ".join("`include/%s`" % h for h, _ in parts)
    out = ["# `svakit.h` API reference", "",
           "Generated from the kernel-doc comments of %s by " % names +
           "`scripts/kerneldoc.py`; do not edit (docs/BUILDING.md, \"API reference\"). "
           "The naming rule, the error table and the context rules are in `svakit.h`'s opening comment; "
           "docs/API.md lists the names 0.6.0 changed (the old ones are deprecated aliases in "
           "`svakit_deprecated.h` until 0.7.0).", ""]
    items = [it for _, its in parts for it in its]
    funcs = [it for it in items if it[1] == "function"]
    types = [it for it in items if it[1] not in ("function", "section") and it[0] is not None]
    out.append("## Functions")
    out.append("")
    out.append("By header and section, in the headers' order (layer order, bottom up).")
    for header, its in parts:
        out += ["", "### %s" % header, ""]
        for _, kind, name, _, _, _, _ in its:
            if kind == "section":
                if out[-1] != "":
                    out.append("")
                out += ["**%s**" % name, ""]
            elif kind == "function":
                out.append("- [`%s()`](#%s)" % (name, name))
    out.append("")
    out.append("## Types")
    out.append("")
    for _, kind, name, _, _, _, _ in types:
        out.append("- [`%s %s`](#%s-%s)" % (kind, name, kind, name))
    out.append("")
    out.append("---")
    for doc, kind, name, decl, _, params, returns in funcs:
        out += ["", "### %s" % name, "", doc.summary[:1].upper() + doc.summary[1:], "",
                "```c", decl, "```", ""]
        out += members_and_body(doc, "**Parameters**")
        out += ["**Context:** " + re.sub(r"\s+", " ", doc.sections.get("Context", "")), ""]
        if "Return" in doc.sections:
            ret = doc.sections["Return"].split("\n")
            out.append("**Return:** " + ret[0])
            out.append("")
            for r in ret[1:]:
                r = r.strip()
                if not r:
                    continue
                m = re.match(r"^(-E[A-Z]+|SVAKIT_\w+):\s*(.*)$", r)
                if m:
                    out.append("- `%s`: %s" % (m.group(1), m.group(2)))
                elif out[-1].startswith("- "):
                    out[-1] += " " + r
                else:
                    out.append(r)
            out.append("")
    out += ["---", "", "## Type definitions"]
    for doc, kind, name, decl, _, _, _ in types:
        out += ["", '<a id="%s-%s"></a>' % (kind, name), "", "### %s %s" % (kind, name), "",
                doc.summary[:1].upper() + doc.summary[1:], "", "```c", decl, "```", ""]
        out += members_and_body(doc, None)
    return "\n".join(out).rstrip("\n") + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--header", action="append",
                    help="a header to check and render (repeatable); default: svakit.h and svakit_debug.h")
    ap.add_argument("--out", default=DEFAULT_OUT, help="where to write the reference")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; fail if %s is not what the header renders"
                    % os.path.relpath(COMMITTED, ROOT))
    a = ap.parse_args()
    headers = a.header or HEADERS
    parts = [(os.path.basename(h), parse_header(h)) for h in headers]
    problems = [p for h, (_, items) in zip(headers, parts) for p in check(h, items)]
    for p in problems:
        print("kerneldoc: " + p, file=sys.stderr)
    if problems:
        print("kerneldoc: %d problem(s); warnings are errors" % len(problems), file=sys.stderr)
        return 1
    text = render(parts)
    nfunc = sum(1 for _, items in parts for it in items if it[1] == "function")
    if a.check:
        try:
            committed = open(COMMITTED, encoding="utf-8").read()
        except FileNotFoundError:
            committed = None
        if committed != text:
            print("kerneldoc: %s is stale: run python3 scripts/kerneldoc.py --out %s"
                  % (os.path.relpath(COMMITTED, ROOT), os.path.relpath(COMMITTED, ROOT)), file=sys.stderr)
            return 1
        print("kerneldoc: %d functions documented; %s is current" % (nfunc, os.path.relpath(COMMITTED, ROOT)))
        return 0
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(text)
    print("kerneldoc: %d functions documented; wrote %s" % (nfunc, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
