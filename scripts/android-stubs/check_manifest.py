#!/usr/bin/env python3
"""Checks android-app's AndroidManifest.xml against the compiled Kotlin classes.

No aapt2 on the host, so this covers what would otherwise only fail on a device:
- every activity, service and receiver names a compiled class of the right platform type;
- the foreground service declares type remoteMessaging and its permission;
- every `Manifest.permission.X` used in the Kotlin sources is declared;
- receivers with intent filters say whether they are exported (required from API 31);
- `@string/...` references exist in res/values;
- every `DATA_SMS_RECEIVED` filter names scheme `sms` and the port of
  `DataSmsReceivedReceiver.DATA_PORT` (Robolectric ignores `<data>` in manifest filters, so
  nothing else would notice a drift).

Usage: check_manifest.py APP_DIR CLASSES_DIR STUB_JAR
"""

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

A = "{http://schemas.android.com/apk/res/android}"
BASES = {
    "activity": "android.app.Activity",
    "service": "android.app.Service",
    "receiver": "android.content.BroadcastReceiver",
}


def main():
    app, classes, stub_jar = sys.argv[1:4]
    manifest = os.path.join(app, "src", "main", "AndroidManifest.xml")
    root = ET.parse(manifest).getroot()
    namespace = "dev.simrelay.app"
    with open(os.path.join(app, "build.gradle.kts"), encoding="utf-8") as fh:
        m = re.search(r'namespace\s*=\s*"([^"]+)"', fh.read())
        if m:
            namespace = m.group(1)
    errors = []
    app_el = root.find("application")
    components = []
    for kind in BASES:
        for el in app_el.findall(kind):
            name = el.get(A + "name")
            fqn = namespace + name if name.startswith(".") else name
            components.append((kind, fqn, el))
            if el.find("intent-filter") is not None and el.get(A + "exported") is None:
                errors.append("%s %s has an intent filter but no android:exported" % (kind, name))
    out = subprocess.run(
        ["javap", "-cp", classes + os.pathsep + stub_jar] + [c[1] for c in components],
        capture_output=True, text=True,
    )
    heads = {}
    for line in out.stdout.splitlines():
        m = re.match(r"(?:public )?(?:final )?(?:abstract )?class (\S+) extends (\S+)", line)
        if m:
            heads[m.group(1)] = m.group(2)
    for kind, fqn, _el in components:
        if fqn not in heads:
            errors.append("%s %s: no such compiled class" % (kind, fqn))
        elif not extends(heads[fqn], BASES[kind], classes, stub_jar):
            errors.append("%s %s extends %s, not a %s" % (kind, fqn, heads[fqn], BASES[kind]))
    declared = {el.get(A + "name") for el in root.findall("uses-permission")}
    for kind, fqn, el in components:
        if kind == "service" and el.get(A + "foregroundServiceType"):
            types = el.get(A + "foregroundServiceType").split("|")
            for t in types:
                perm = "android.permission.FOREGROUND_SERVICE_" + re.sub(
                    r"([a-z])([A-Z])", r"\1_\2", t).upper()
                if perm not in declared:
                    errors.append("service %s of type %s needs %s" % (fqn, t, perm))
    if not any(k == "service" and "remoteMessaging" in (el.get(A + "foregroundServiceType") or "")
               for k, _f, el in components):
        errors.append("no foreground service of type remoteMessaging")
    used = set()
    for dirpath, _dirs, files in os.walk(os.path.join(app, "src", "main")):
        for f in files:
            if f.endswith(".kt"):
                with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                    used |= set(re.findall(r"Manifest\.permission\.([A-Z_]+)", fh.read()))
    for p in sorted(used):
        if "android.permission." + p not in declared:
            errors.append("Kotlin uses Manifest.permission.%s, the manifest does not declare it" % p)
    strings = set()
    values = os.path.join(app, "src", "main", "res", "values")
    for f in os.listdir(values) if os.path.isdir(values) else []:
        if f.endswith(".xml"):
            strings |= {s.get("name") for s in ET.parse(os.path.join(values, f)).getroot()
                        .findall("string")}
    with open(manifest, encoding="utf-8") as fh:
        for ref in re.findall(r"@string/(\w+)", fh.read()):
            if ref not in strings:
                errors.append("@string/%s is not defined in res/values" % ref)
    errors += data_sms_filters(app, app_el)
    for e in errors:
        print("manifest: " + e)
    if errors:
        sys.exit(1)
    print("manifest: %d components, %d permissions checked" % (len(components), len(declared)))


def data_sms_filters(app, app_el):
    """The data SMS receiver's filters against the port constant in the Kotlin sources."""
    with open(os.path.join(app, "src", "main", "kotlin", "dev", "simrelay", "app", "Receivers.kt"),
              encoding="utf-8") as fh:
        m = re.search(r"const val DATA_PORT = (\d+)", fh.read())
    port = m.group(1) if m else None
    errors, found = [], 0
    for el in app_el.findall("receiver"):
        for f in el.findall("intent-filter"):
            actions = {a.get(A + "name") for a in f.findall("action")}
            if "android.intent.action.DATA_SMS_RECEIVED" not in actions:
                continue
            found += 1
            data = f.findall("data")
            schemes = {d.get(A + "scheme") for d in data if d.get(A + "scheme")}
            ports = {d.get(A + "port") for d in data if d.get(A + "port")}
            if schemes != {"sms"}:
                errors.append("DATA_SMS_RECEIVED filter needs android:scheme=\"sms\"")
            if port is None or ports != {port}:
                errors.append("DATA_SMS_RECEIVED filter port %s, DataSmsReceivedReceiver.DATA_PORT %s"
                              % (sorted(ports), port))
    if port is not None and found == 0:
        errors.append("no DATA_SMS_RECEIVED filter for DataSmsReceivedReceiver.DATA_PORT")
    return errors


def extends(cls, base, classes, stub_jar):
    """Walks the superclass chain with javap until `base` or java.lang.Object."""
    seen = 0
    while cls and cls != "java.lang.Object" and seen < 20:
        if cls == base:
            return True
        out = subprocess.run(["javap", "-cp", classes + os.pathsep + stub_jar, cls],
                             capture_output=True, text=True).stdout
        m = re.search(r"class \S+ extends (\S+)", out)
        cls = m.group(1) if m else None
        seen += 1
    return False


if __name__ == "__main__":
    main()
