#!/usr/bin/env python3
"""Checks the JNI boundary both ways: Kotlin `external fun`s against the library's exports.

- names: every native method of the compiled Kotlin classes has its `Java_<class>_<name>`
  symbol among the `Java_*` symbols the library exports (`nm -D`), and every exported
  `Java_*` symbol belongs to a native method;
- signatures: each export's Rust parameter and return types (core/jni/src/exports.rs) match
  the JVM descriptor of its native method (static methods take a JClass second).

Usage: check_jni.py LIBRARY CLASSES_DIR EXPORTS_RS
"""

import os
import re
import subprocess
import sys

RUST_TO_JVM = {
    "jlong": "J", "jint": "I", "jboolean": "Z", "jbyte": "B", "jshort": "S", "jchar": "C",
    "jfloat": "F", "jdouble": "D", "JString": "Ljava/lang/String;", "JByteArray": "[B",
    "JObject": "Ljava/lang/Object;", "JIntArray": "[I", "JLongArray": "[J",
}


def split_params(text):
    """Splits a Rust parameter list at its top-level commas (generics hold commas too)."""
    params, depth, current = [], 0, ""
    for c in text:
        depth += {"<": 1, ">": -1}.get(c, 0)
        if c == "," and depth == 0:
            params.append(current.strip())
            current = ""
        else:
            current += c
    params.append(current.strip())
    return [p for p in params if p]


def jvm_type(rust):
    """JVM descriptor of a Rust JNI type: `JObjectArray<'l, E>` is an array of E."""
    t = re.sub(r"'\w+\s*,?\s*", "", rust).replace(" ", "")
    if t.startswith("JObjectArray<") and t.endswith(">"):
        inner = t[len("JObjectArray<"):-1]
        return "[" + jvm_type(inner) if inner else "[Ljava/lang/Object;"
    base = re.sub(r"<.*", "", t)
    return RUST_TO_JVM.get(base, "?" + base)


def natives(classes):
    """(symbol, descriptor, static) of every native method in the compiled classes."""
    names = []
    for dirpath, _dirs, files in os.walk(classes):
        for f in files:
            if f.endswith(".class") and "$" not in f:
                rel = os.path.relpath(os.path.join(dirpath, f), classes)[: -len(".class")]
                names.append(rel.replace(os.sep, "."))
    out = subprocess.run(["javap", "-p", "-s", "-cp", classes] + sorted(names),
                         capture_output=True, text=True, check=True).stdout
    found, cls, pending = [], None, None
    for line in out.splitlines():
        m = re.match(r"(?:public |final |abstract )*(?:class|interface) (\S+)", line)
        if m:
            cls = m.group(1)
            continue
        m = re.search(r"\bnative\b.* (\w+)\(", line)
        if m:
            pending = (m.group(1), " static " in " " + line + " ")
            continue
        m = re.match(r"\s+descriptor: (\S+)", line)
        if m and pending:
            name, static = pending
            symbol = "Java_" + cls.replace("_", "_1").replace(".", "_") + "_" + name.replace("_", "_1")
            found.append((symbol, m.group(1), static))
            pending = None
    return found


def exports(path):
    """symbol -> JVM descriptor built from the Rust signature."""
    src = open(path, encoding="utf-8").read()
    result = {}
    pattern = re.compile(
        r'extern "system" fn (Java_\w+)(?:<[^>]*>)?\((.*?)\)\s*(?:->\s*([\w<>\' ]+?))?\s*\{', re.S)
    for m in pattern.finditer(src):
        params = split_params(m.group(2))
        full = [p.split(":", 1)[1].strip() for p in params]
        types = [re.sub(r"<.*", "", t) for t in full]
        if types[:1] != ["EnvUnowned"]:
            sys.exit("%s: first parameter must be EnvUnowned" % m.group(1))
        receiver = types[1]
        args = "".join(jvm_type(t) for t in full[2:])
        ret = m.group(3)
        ret = "V" if ret is None else RUST_TO_JVM.get(re.sub(r"<.*", "", ret.strip()), "?" + ret)
        result[m.group(1)] = ("(%s)%s" % (args, ret), receiver)
    return result


def main():
    lib, classes, exports_rs = sys.argv[1:4]
    nm = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True,
                        check=True).stdout
    exported = {line.split()[-1] for line in nm.splitlines() if line.split()[-1].startswith("Java_")}
    declared = natives(classes)
    rust = exports(exports_rs)
    errors = []
    for symbol, descriptor, static in declared:
        if symbol not in exported:
            errors.append("external fun without exported symbol: " + symbol)
        if symbol not in rust:
            errors.append("no export in %s for %s" % (os.path.basename(exports_rs), symbol))
            continue
        want, receiver = rust[symbol]
        if want != descriptor:
            errors.append("%s: Kotlin %s, Rust %s" % (symbol, descriptor, want))
        if receiver != ("JClass" if static else "JObject"):
            errors.append("%s: static=%s but Rust takes %s" % (symbol, static, receiver))
    names = {d[0] for d in declared}
    for symbol in sorted(exported - names):
        errors.append("exported symbol without external fun: " + symbol)
    for e in errors:
        print("jni: " + e)
    if errors:
        sys.exit(1)
    print("jni: %d external funs, all exported with matching signatures; no extra exports"
          % len(declared))


if __name__ == "__main__":
    main()
