#!/usr/bin/env python3
"""Checks the dependency rule on #include lines: a file in src/X may include headers of
src/X and of the folders X may depend on (directly or through them), as CMakeLists.txt
declares with dsv3_layer() and writes to build/layers.txt. Header-only code is covered
here; calls across layers are also checked at link time (the layer_check_* targets).

Usage: check_layers.py LAYERS_TXT SRC_DIR   (exit 1 and one line per violation if any)"""
import os
import re
import sys


def main():
    layers_txt, src = sys.argv[1], sys.argv[2]
    deps = {}
    for line in open(layers_txt):
        if ':' not in line:
            continue
        name, rest = line.split(':', 1)
        deps[name.strip()] = rest.split()
    allowed = {}
    for name in deps:
        seen, todo = {name}, list(deps[name])
        while todo:
            d = todo.pop()
            if d not in seen:
                seen.add(d)
                todo += deps.get(d, [])
        allowed[name] = seen
    include = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')
    bad = []
    for folder in sorted(os.listdir(src)):
        root = os.path.join(src, folder)
        if not os.path.isdir(root):
            continue
        if folder not in deps:
            bad.append(f"src/{folder}: a source folder CMakeLists.txt does not declare with dsv3_layer()")
            continue
        for dirpath, _, files in os.walk(root):
            for f in sorted(files):
                path = os.path.join(dirpath, f)
                for n, line in enumerate(open(path, encoding='utf-8'), 1):
                    m = include.match(line)
                    if m and m.group(1) in deps and m.group(1) not in allowed[folder]:
                        may = ', '.join(sorted(allowed[folder] - {folder})) or 'nothing'
                        bad.append(f"{os.path.relpath(path, os.path.dirname(src))}:{n}: {folder} may not include "
                                   f"{m.group(1)}/ (it depends on: {may})")
    for b in bad:
        print(b)
    if not bad:
        print(f"check_layers: {len(deps)} layers, every #include follows the dependency rule")
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
