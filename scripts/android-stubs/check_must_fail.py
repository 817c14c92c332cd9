#!/usr/bin/env python3
"""Compiles must-fail/*.kt against the stubs and checks that kotlinc reported an error on
every line marked `// must fail` and on no other line.

Usage: check_must_fail.py KOTLINC STUB_JAR OUT_DIR
"""

import glob
import os
import re
import subprocess
import sys


def main():
    kotlinc, stub_jar, out_dir = sys.argv[1:4]
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "must-fail")
    files = sorted(glob.glob(os.path.join(here, "*.kt")))
    marked = set()
    for f in files:
        with open(f, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.rstrip().endswith("// must fail"):
                    marked.add((os.path.basename(f), n))
    run = subprocess.run([kotlinc, "-cp", stub_jar, "-d", out_dir] + files,
                         capture_output=True, text=True)
    errors = set()
    for line in (run.stdout + run.stderr).splitlines():
        m = re.match(r"(.+?\.kt):(\d+):\d+: error:", line)
        if m:
            errors.add((os.path.basename(m.group(1)), int(m.group(2))))
    missed = sorted(marked - errors)
    extra = sorted(errors - marked)
    for f, n in missed:
        print("stubs accepted a wrong call: %s:%d" % (f, n))
    for f, n in extra:
        print("stubs rejected a correct call: %s:%d" % (f, n))
    if missed or extra or run.returncode == 0:
        sys.exit(1)
    print("stubs: %d wrong calls rejected, correct calls accepted" % len(marked))


if __name__ == "__main__":
    main()
