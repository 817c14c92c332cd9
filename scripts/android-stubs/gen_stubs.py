#!/usr/bin/env python3
"""Generate compile-only Java stubs of the Android platform API from chaquopy-stubs-android.

The host has no Android SDK, so android.jar is not available. PyPI's `chaquopy-stubs-android`
lists every public class, field, constructor and method of an API level as `.pyi` files. This
script parses them (with `ast`) and writes Java sources whose members throw "Stub!" (as
android.jar's do); `javac` turns them into a jar that kotlinc compiles the app against, so a
wrong class, method name or parameter type in the app fails the host check.

What the .pyi files lose, and how it is recovered (good enough to type-check an app, not a
faithful android.jar):
- interface vs class: a type with no constructor, no static method and only interface bases is
  emitted as an interface (single-method interfaces keep their method abstract for SAM lambdas);
- primitive width of return values (`-> int` is int, long, short or byte): long for names
  ending in Millis/Nanos/Realtime, typed getters by name (getLong, readDouble, ...) and the
  overrides below; `-> float` is float unless the name says double;
- wildcards: `Class<X>` parameters become `Class<? extends X>`; JDK generic supertypes are raw.
Members that mention a type outside the generated packages (or missing from the host JDK) are
left out, so using them fails to compile: add the package to --packages.

Usage: gen_stubs.py --stubs SITE_PACKAGES_DIR --out SRC_DIR [--packages a,b,...] [--classpath CP]
"""

import argparse
import ast
import os
import re
import subprocess
import sys
import tempfile

DEFAULT_PACKAGES = [
    "android", "android.app", "android.content", "android.content.pm", "android.content.res",
    "android.database", "android.graphics", "android.graphics.drawable", "android.net",
    "android.net.wifi",
    "android.os", "android.provider", "android.telephony", "android.text", "android.util",
    "android.view", "android.widget",
]

PRIMS = {
    "jint": "int", "jlong": "long", "jboolean": "boolean", "jbyte": "byte", "jshort": "short",
    "jchar": "char", "jfloat": "float", "jdouble": "double", "jvoid": "void",
}
BOXED = {
    "int": "java.lang.Integer", "long": "java.lang.Long", "boolean": "java.lang.Boolean",
    "byte": "java.lang.Byte", "short": "java.lang.Short", "char": "java.lang.Character",
    "float": "java.lang.Float", "double": "java.lang.Double",
}
PY_BUILTINS = {"int": "int", "bool": "boolean", "float": "float", "str": "java.lang.String"}
# Return types the .pyi cannot tell apart (int/long, float/double): known overrides by name.
# Typed getters name their width (getLong, readDouble, optLongExtra, ...).
WIDTH_RETURN = [
    (re.compile(r"(Millis|Nanos|Realtime)$|^(get|read|opt|peek|next)Long|^longValue$"), "long"),
    (re.compile(r"^(get|read|opt|peek|next)Double|^doubleValue$"), "double"),
    (re.compile(r"^(get|read|opt|peek|next)Short|^shortValue$"), "short"),
    (re.compile(r"^(get|read|opt|peek|next)Byte(Extra)?$|^byteValue$"), "byte"),
]
RETURN_OVERRIDES = {"floatValue": "float", "charAt": "char", "getCharExtra": "char", "getChar": "char"}
OBJECT_FINAL_SIGS = {
    ("getClass", ()), ("notify", ()), ("notifyAll", ()), ("wait", ()), ("wait", ("long",)),
    ("wait", ("long", "int")),
}
ENUM_FINAL = {
    "name", "ordinal", "compareTo", "equals", "hashCode", "getDeclaringClass", "clone",
    "finalize", "describeConstable", "values", "valueOf",
}
IFACE_SKIP = {"equals", "hashCode", "toString", "clone", "finalize"}
# JDK supertypes kept as such. Generic JDK interfaces (Map, Comparable, ...) and JDK classes
# with abstract methods or without a no-argument constructor (streams, Number) are dropped from
# `extends`/`implements`: the .pyi loses the wildcards and primitive widths their overrides need.
JDK_IFACES_KEPT = {
    "java.lang.AutoCloseable", "java.io.Closeable", "java.lang.Cloneable", "java.io.Serializable",
    "java.lang.Runnable", "java.io.Flushable", "java.util.EventListener", "java.lang.CharSequence",
}
STUB_PKG = "simrelay.stub"
BODY = '{ throw new RuntimeException("Stub!"); }'


class Unresolved(Exception):
    """A type outside the generated set: the member is left out."""


class Cls:
    def __init__(self, module, name, outer, node):
        self.module = module
        self.name = name
        self.outer = outer
        self.node = node
        self.fqn = (outer.fqn if outer else module) + "." + name
        self.path = (outer.path + "." if outer else "") + name  # name inside the module
        self.inner = []
        self.typevars = {}  # var name -> TypeVar call node (class-body TypeVars: method params)
        self.kind = None  # "class" | "interface" | "enum"
        self.generic = []  # class type parameter var names


def dotted(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return base + "." + node.attr if base else None
    return None


class Model:
    def __init__(self, stubs_dir, packages, probe_cp):
        self.classes = {}  # fqn -> Cls
        self.module_classes = {}  # module -> {path -> Cls}
        self.typevars = {}  # (module, var) -> TypeVar call
        self.selected = set(packages)
        self.modules = set()
        for root, _dirs, files in os.walk(stubs_dir):
            for f in files:
                if f.endswith(".pyi"):
                    full = os.path.join(root, f)
                    rel = os.path.relpath(full, stubs_dir)
                    parts = rel[: -len(".pyi")].split(os.sep)
                    if parts[-1] == "__init__":
                        parts = parts[:-1]
                    if not parts or not parts[0].endswith("-stubs"):
                        continue
                    parts[0] = parts[0][: -len("-stubs")]
                    module = ".".join(parts)
                    if not module.startswith("android"):
                        continue
                    self.modules.add(module)
                    with open(full, encoding="utf-8") as fh:
                        self._load(module, ast.parse(fh.read()))
        self.jdk = {}
        self.probe_cp = probe_cp

    def _load(self, module, tree):
        self.module_classes.setdefault(module, {})
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and self._is_typevar(stmt.value):
                self.typevars[(module, stmt.targets[0].id)] = stmt.value
            elif isinstance(stmt, ast.ClassDef):
                self._load_class(module, stmt, None)

    @staticmethod
    def _is_typevar(value):
        return isinstance(value, ast.Call) and dotted(value.func) == "typing.TypeVar"

    def _load_class(self, module, node, outer):
        c = Cls(module, node.name, outer, node)
        self.classes[c.fqn] = c
        self.module_classes[module][c.path] = c
        if outer:
            outer.inner.append(c)
        for stmt in node.body:
            if isinstance(stmt, ast.ClassDef):
                self._load_class(module, stmt, c)
            elif isinstance(stmt, ast.Assign) and self._is_typevar(stmt.value):
                c.typevars[stmt.targets[0].id] = stmt.value
        return c

    # ---- name resolution -------------------------------------------------------------------

    def resolve_name(self, name, module):
        """Returns ("android", Cls) or ("jdk", fqn) for a dotted name used in `module`."""
        first = name.split(".")[0]
        local = self.module_classes.get(module, {})
        if name in local or first in local:
            c = local.get(name)
            if c is None:
                raise Unresolved(name)
            return ("android", c)
        if first in ("android", "dalvik"):
            parts = name.split(".")
            for i in range(len(parts) - 1, 0, -1):
                mod = ".".join(parts[:i])
                if mod in self.module_classes:
                    c = self.module_classes[mod].get(".".join(parts[i:]))
                    if c is None:
                        raise Unresolved(name)
                    return ("android", c)
            raise Unresolved(name)
        return ("jdk", name)

    def in_set(self, c):
        return c.module in self.selected

    # ---- JDK probe -------------------------------------------------------------------------

    def probe_jdk(self, names):
        """Asks the host JDK which of `names` exist and which are interfaces."""
        names = sorted(set(n for n in names if n not in self.jdk))
        if not names:
            return
        src = r"""
public class Probe {
  public static void main(String[] a) throws Exception {
    java.io.BufferedReader r = new java.io.BufferedReader(new java.io.InputStreamReader(System.in));
    String n;
    while ((n = r.readLine()) != null) {
      Class<?> c = null;
      String b = n;
      while (true) {
        try { c = Class.forName(b, false, Probe.class.getClassLoader()); break; }
        catch (Throwable e) {
          int i = b.lastIndexOf('.');
          if (i < 0) break;
          b = b.substring(0, i) + "$" + b.substring(i + 1);
        }
      }
      String k = c == null ? "missing" : c.isInterface() ? "interface"
          : java.lang.reflect.Modifier.isFinal(c.getModifiers()) ? "final" : "class";
      if (c != null && !java.lang.reflect.Modifier.isPublic(c.getModifiers())) k = "missing";
      System.out.println(n + " " + k);
    }
  }
}
"""
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "Probe.java")
            with open(p, "w") as fh:
                fh.write(src)
            cmd = ["java"]
            if self.probe_cp:
                cmd += ["-cp", self.probe_cp]
            cmd.append(p)
            out = subprocess.run(cmd, input="\n".join(names) + "\n", capture_output=True,
                                 text=True, check=True).stdout
        for line in out.splitlines():
            n, k = line.rsplit(" ", 1)
            self.jdk[n] = k


class Gen:
    def __init__(self, model):
        self.m = model

    # ---- classification --------------------------------------------------------------------

    def bases(self, c):
        out = []
        for b in c.node.bases:
            expr = b.value if isinstance(b, ast.Subscript) else b
            name = dotted(expr)
            if name is None or name.startswith("typing."):
                continue
            try:
                out.append((self.m.resolve_name(name, c.module), b))
            except Unresolved:
                continue
        return out

    def kind(self, c):
        if c.kind:
            return c.kind
        c.kind = "class"  # provisional, breaks cycles
        body = c.node.body
        has_init = any(isinstance(s, ast.FunctionDef) and s.name == "__init__" for s in body)
        has_static = any(isinstance(s, ast.FunctionDef) and is_static(s) and s.name != "__init__"
                         for s in body)
        kind = "interface"
        for (k, v), _node in self.bases(c):
            if k == "jdk":
                if v == "java.lang.Enum":
                    c.kind = "enum"
                    return "enum"
                if v == "java.lang.Object":
                    continue
                if self.m.jdk.get(v) != "interface":
                    kind = "class"
            elif self.kind(v) != "interface":
                kind = "class"
        if has_init or has_static:
            kind = "class"
        c.kind = kind
        return kind

    def class_generics(self, c):
        for b in c.node.bases:
            if isinstance(b, ast.Subscript) and dotted(b.value) == "typing.Generic":
                elts = b.slice.elts if isinstance(b.slice, ast.Tuple) else [b.slice]
                return [dotted(e) for e in elts]
        return []

    # ---- types -----------------------------------------------------------------------------

    def tv_name(self, var):
        return var.rsplit("__", 1)[-1]

    def type_of(self, node, c, pos, method_tvs):
        """Java type text for a .pyi annotation. pos: param | return | field | arg | bound."""
        if isinstance(node, ast.Constant) and node.value is None:
            return "void"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            members = flatten_union(node)
            members = [n for n in members if not (isinstance(n, ast.Constant) and n.value is None)]
            names = [dotted(n) for n in members]
            for n in names:
                if n and n.startswith("java.j") and n[5:] in PRIMS:
                    prim = PRIMS[n[5:]]
                    return BOXED[prim] if pos in ("arg", "bound") else prim
            java = [n for n, nm in zip(members, names) if nm not in PY_BUILTINS]
            if java:
                return self.type_of(java[0], c, pos, method_tvs)
            return self.type_of(members[0], c, pos, method_tvs)
        if isinstance(node, ast.Subscript):
            base = dotted(node.value)
            elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if base == "typing.ClassVar":
                return self.type_of(elts[0], c, pos, method_tvs)
            if base == "java.chaquopy.JavaArray":
                inner = self.type_of(elts[0], c, "field", method_tvs)
                return inner + "[]"
            if base == "typing.Type":
                arg = self.type_of(elts[0], c, "arg", method_tvs)
                if pos == "param" and not self.is_typevar(elts[0], c, method_tvs):
                    return "java.lang.Class<? extends %s>" % arg
                return "java.lang.Class<%s>" % arg
            raw = self.class_ref(base, c)
            args = []
            for e in elts:
                if pos == "bound" and dotted(e) == "java.lang.Object":
                    args.append("?")
                else:
                    args.append(self.type_of(e, c, "arg", method_tvs))
            return "%s<%s>" % (raw, ", ".join(args))
        name = dotted(node)
        if name is None:
            raise Unresolved(ast.dump(node))
        if name in PY_BUILTINS:
            t = PY_BUILTINS[name]
            return BOXED.get(t, t) if pos in ("arg", "bound") else t
        if name.startswith("java.j") and name[5:] in PRIMS:
            prim = PRIMS[name[5:]]
            return BOXED[prim] if pos in ("arg", "bound") else prim
        if name.startswith("java.chaquopy.JavaArrayJ"):
            return PRIMS["j" + name[len("java.chaquopy.JavaArrayJ"):].lower()] + "[]"
        if self.is_typevar(node, c, method_tvs):
            return self.tv_name(name)
        return self.class_ref(name, c)

    def is_typevar(self, node, c, method_tvs):
        name = dotted(node)
        if name is None:
            return False
        return name in method_tvs or name in self.class_tvs(c)

    def class_tvs(self, c):
        return set(self.class_generics(c))

    def class_ref(self, name, c):
        k, v = self.m.resolve_name(name, c.module)
        if k == "android":
            if not self.m.in_set(v):
                raise Unresolved(name)
            return v.fqn
        state = self.m.jdk.get(v)
        if state in (None, "missing"):
            raise Unresolved(name)
        return v

    # ---- emission --------------------------------------------------------------------------

    def superclass_and_ifaces(self, c):
        sup = None
        ifaces = []
        for (k, v), node in self.bases(c):
            if k == "jdk":
                if v in ("java.lang.Object", "java.lang.Enum"):
                    continue
                st = self.m.jdk.get(v)
                if st == "interface" and v in JDK_IFACES_KEPT:
                    ifaces.append(v)
                elif (st == "class" and sup is None and c.kind == "class"
                      and re.search(r"(Exception|Error)$", v)):
                    sup = v
                continue
            target = v
            while target is not None and not self.m.in_set(target):
                target = self.first_class_base(target)
            if target is None:
                continue
            text = target.fqn
            if isinstance(node, ast.Subscript) and target is v:
                try:
                    text = self.type_of(node, c, "field", set())
                except Unresolved:
                    text = target.fqn
            if self.kind(target) == "interface":
                ifaces.append(text)
            elif sup is None and c.kind == "class":
                sup = text
        return sup, ifaces

    def first_class_base(self, c):
        for (k, v), _n in self.bases(c):
            if k == "android" and self.kind(v) != "interface":
                return v
        return None

    def method_sig(self, fn, c, ctor=False):
        """(type params, return, params text, erased key) or raises Unresolved."""
        method_tvs = {}
        for tv_var in collect_names(fn):
            if tv_var in c.typevars:
                method_tvs[tv_var] = c.typevars[tv_var]
            elif (c.module, tv_var) in self.m.typevars and tv_var not in self.class_tvs(c):
                method_tvs[tv_var] = self.m.typevars[(c.module, tv_var)]
        args = fn.args.posonlyargs + fn.args.args
        if args and args[0].arg == "self":
            args = args[1:]
        params = []
        for i, a in enumerate(args):
            if a.annotation is None:
                raise Unresolved("no annotation")
            params.append("%s p%d" % (self.type_of(a.annotation, c, "param", method_tvs), i))
        if fn.args.vararg is not None:
            t = self.type_of(fn.args.vararg.annotation, c, "field", method_tvs)
            params.append("%s... p%d" % (t, len(params)))
        ret = None
        if not ctor:
            ret = self.type_of(fn.returns, c, "return", method_tvs)
            name = method_name(fn.name)
            if ret == "int" or (ret == "float" and name.startswith(("get", "read", "opt"))):
                for pattern, width in WIDTH_RETURN:
                    if pattern.search(name) and (ret == "int" or width == "double"):
                        ret = width
                        break
            if name in RETURN_OVERRIDES and ret in ("int", "float", "java.lang.String"):
                ret = RETURN_OVERRIDES[name]
        tps = []
        for var, call in method_tvs.items():
            bound = ""
            for kw in call.keywords:
                if kw.arg == "bound":
                    try:
                        bound = " extends " + self.type_of(kw.value, c, "bound", method_tvs)
                    except Unresolved:
                        bound = ""
            tps.append(self.tv_name(var) + bound)
        key = tuple(erase(p.rsplit(" ", 1)[0]) for p in params)
        return ("<%s> " % ", ".join(tps) if tps else ""), ret, ", ".join(params), key

    def emit(self, c, indent, out, stats):
        kind = self.kind(c)
        pad = "    " * indent
        gens = [self.tv_name(v) for v in self.class_generics(c)]
        gen_text = ""
        if gens:
            parts = []
            for var in self.class_generics(c):
                call = self.m.typevars.get((c.module, var))
                bound = ""
                if call is not None:
                    for kw in call.keywords:
                        if kw.arg == "bound":
                            try:
                                bound = " extends " + self.type_of(kw.value, c, "bound", set())
                            except Unresolved:
                                pass
                parts.append(self.tv_name(var) + bound)
            gen_text = "<%s>" % ", ".join(parts)
        sup, ifaces = self.superclass_and_ifaces(c)
        mods = "public " + ("static " if c.outer is not None and kind != "interface" else "")
        head = "%s%s%s %s%s" % (pad, mods, kind, c.name, gen_text)
        if kind == "interface":
            if ifaces:
                head += " extends " + ", ".join(ifaces)
        else:
            if sup and kind == "class":
                head += " extends " + sup
            if ifaces:
                head += " implements " + ", ".join(ifaces)
        out.append(head + " {")
        ip = pad + "    "
        fields = []
        methods = []
        ctors = []
        enum_consts = []
        for s in c.node.body:
            if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name):
                ann = s.annotation
                class_var = isinstance(ann, ast.Subscript) and dotted(ann.value) == "typing.ClassVar"
                if kind == "enum" and class_var:
                    inner = ann.slice
                    try:
                        if self.type_of(inner, c, "field", set()) == c.fqn:
                            enum_consts.append(s.target.id)
                            continue
                    except Unresolved:
                        pass
                fields.append((s.target.id, ann, class_var))
            elif isinstance(s, ast.FunctionDef):
                if s.name == "__init__":
                    ctors.append(s)
                else:
                    methods.append(s)
        if kind == "enum":
            out.append(ip + (", ".join(enum_consts) if enum_consts else "") + ";")
        for name, ann, class_var in fields:
            try:
                t = self.type_of(ann, c, "field", set())
            except Unresolved:
                stats["dropped"] += 1
                continue
            if kind == "interface" or class_var:
                out.append("%spublic static final %s %s = (%s) %s.S.o();" %
                           (ip, t, name, boxed_cast(t), STUB_PKG) if t not in BOXED else
                           "%spublic static final %s %s = %s.S.v%s();" % (ip, t, name, STUB_PKG, t))
            else:
                out.append("%spublic %s %s;" % (ip, t, name))
        super_ok = sup is not None and not sup.startswith("java.")
        if kind == "class":
            # Hidden constructor so that stub subclasses can always call super(...).
            call = "super((%s.Ctor) null); " % STUB_PKG if super_ok else ""
            out.append("%sprotected %s(%s.Ctor hidden) { %s}" % (ip, c.name, STUB_PKG, call))
            seen = set()
            for fn in ctors:
                try:
                    _tp, _r, params, key = self.method_sig(fn, c, ctor=True)
                except Unresolved:
                    stats["dropped"] += 1
                    continue
                if key in seen or key == (STUB_PKG + ".Ctor",):
                    continue
                seen.add(key)
                out.append("%spublic %s(%s) { %s}" % (ip, c.name, params, call))
        seen = set()
        declared = set()
        abstract_ok = kind == "interface" and len([m for m in methods if not is_static(m)]) == 1
        for fn in methods:
            name = method_name(fn.name)
            if kind == "enum" and name in ENUM_FINAL:
                continue
            if kind == "interface" and name in IFACE_SKIP:
                continue
            try:
                tps, ret, params, key = self.method_sig(fn, c)
            except Unresolved:
                stats["dropped"] += 1
                continue
            if (name, key) in seen or (name, key) in OBJECT_FINAL_SIGS:
                continue
            seen.add((name, key))
            declared.add((name, len(key)))
            static = is_static(fn)
            if kind == "interface":
                if static:
                    mods = "static "
                elif abstract_ok:
                    out.append("%s%s%s %s(%s);" % (ip, tps, ret, name, params))
                    stats["methods"] += 1
                    continue
                else:
                    mods = "default "
                out.append("%spublic %s%s%s %s(%s) %s" % (ip, mods, tps, ret, name, params, BODY))
            else:
                mods = "static " if static else ""
                out.append("%spublic %s%s%s %s(%s) %s" % (ip, mods, tps, ret, name, params, BODY))
            stats["methods"] += 1
        if kind != "interface":
            self.fill_abstract(c, ifaces, declared, ip, out)
        for inner in c.inner:
            if self.m.in_set(inner):
                self.emit(inner, indent + 1, out, stats)
        out.append(pad + "}")
        stats["classes"] += 1

    def fill_abstract(self, c, ifaces, declared, ip, out):
        """Implements the abstract method of single-method stub interfaces a class inherits."""
        for text in ifaces:
            base = text.split("<")[0]
            target = self.m.classes.get(base)
            if target is None or self.kind(target) != "interface":
                continue
            methods = [s for s in target.node.body
                       if isinstance(s, ast.FunctionDef) and not is_static(s)
                       and s.name != "__init__"]
            if len(methods) != 1 or method_name(methods[0].name) in IFACE_SKIP:
                continue
            if self.inherits_method(c, method_name(methods[0].name)):
                continue
            try:
                tps, ret, params, key = self.method_sig(methods[0], target)
            except Unresolved:
                continue
            name = method_name(methods[0].name)
            if (name, len(key)) in declared:
                continue
            gens = [self.tv_name(v) for v in self.class_generics(target)]
            args = split_args(text[len(base) + 1:-1]) if "<" in text else []
            for g, a in zip(gens, args):
                ret = re.sub(r"\b%s\b" % g, a, ret)
                params = re.sub(r"\b%s\b" % g, a, params)
            if not args:
                for g in gens:
                    ret = re.sub(r"\b%s\b" % g, "java.lang.Object", ret)
                    params = re.sub(r"\b%s\b" % g, "java.lang.Object", params)
            out.append("%spublic %s%s %s(%s) %s" % (ip, tps, ret, name, params, BODY))

    def inherits_method(self, c, name):
        t = self.first_class_base(c)
        while t is not None:
            if any(isinstance(s, ast.FunctionDef) and method_name(s.name) == name
                   for s in t.node.body):
                return True
            t = self.first_class_base(t)
        return False


def boxed_cast(t):
    return re.sub(r"<.*>", "", t) if "<" in t and not t.endswith("]") else t


def split_args(s):
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def erase(t):
    return re.sub(r"<.*>", "", t).replace("...", "[]")


def is_static(fn):
    return any(dotted(d) == "staticmethod" for d in fn.decorator_list)


def method_name(n):
    if n.endswith("_") and n[:-1] in ("and", "await", "from", "not", "or", "print", "with",
                                       "in", "is", "import", "pass", "lambda", "def", "del",
                                       "global", "yield", "async", "raise", "except", "elif",
                                       "as", "assert", "None", "True", "False", "nonlocal"):
        return n[:-1]
    return n


def flatten_union(node):
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return flatten_union(node.left) + flatten_union(node.right)
    return [node]


def collect_names(fn):
    names = set()
    for n in ast.walk(fn):
        if isinstance(n, ast.Name):
            names.add(n.id)
    return names


def jdk_names(model):
    """Every java.*/javax.*/org.* name mentioned in the selected packages."""
    names = set()
    for c in model.classes.values():
        if not model.in_set(c):
            continue
        for n in ast.walk(c.node):
            if isinstance(n, ast.Attribute):
                d = dotted(n)
                if d and d.split(".")[0] in ("java", "javax", "org") and not d.startswith(
                        "java.chaquopy") and not (d.startswith("java.j") and d[5:] in PRIMS):
                    names.add(d)
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stubs", required=True, help="dir holding android-stubs/ (site-packages)")
    ap.add_argument("--out", required=True, help="output dir for .java sources")
    ap.add_argument("--packages", default=",".join(DEFAULT_PACKAGES))
    ap.add_argument("--classpath", default="", help="extra classpath for non-JDK types (org.json)")
    a = ap.parse_args()
    model = Model(a.stubs, [p for p in a.packages.split(",") if p], a.classpath)
    model.probe_jdk(jdk_names(model))
    gen = Gen(model)
    stats = {"classes": 0, "methods": 0, "dropped": 0}
    stub_dir = os.path.join(a.out, *STUB_PKG.split("."))
    os.makedirs(stub_dir, exist_ok=True)
    with open(os.path.join(stub_dir, "S.java"), "w") as fh:
        fh.write("package %s;\n/** Values of stub constants: never constant-folded. */\n"
                 "public final class S {\n" % STUB_PKG)
        for t in ("int", "long", "boolean", "byte", "short", "char", "float", "double"):
            fh.write("    public static %s v%s() %s\n" % (t, t, BODY))
        fh.write("    public static Object o() %s\n}\n" % BODY)
    with open(os.path.join(stub_dir, "Ctor.java"), "w") as fh:
        fh.write("package %s;\n/** Marks the hidden constructor of stub classes. */\n"
                 "public final class Ctor { private Ctor() {} }\n" % STUB_PKG)
    for module in sorted(model.selected):
        classes = model.module_classes.get(module)
        if classes is None:
            sys.exit("no such package in the stubs: " + module)
        d = os.path.join(a.out, *module.split("."))
        os.makedirs(d, exist_ok=True)
        for path, c in sorted(classes.items()):
            if c.outer is not None:
                continue
            out = ["package %s;" % module, ""]
            gen.emit(c, 0, out, stats)
            with open(os.path.join(d, c.name + ".java"), "w", encoding="utf-8") as fh:
                fh.write("\n".join(out) + "\n")
    print("stubs: %(classes)d classes, %(methods)d methods, %(dropped)d members left out" % stats)


if __name__ == "__main__":
    main()
