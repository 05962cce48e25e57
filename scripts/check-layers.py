#!/usr/bin/env python3
"""Checks the layering of flightrec's code (docs/architecture.md).

Layers, bottom to top:

    0 core/                       what every stage shares
    1 collectors/  redact/        peers: neither uses the other
    2 retention/hot/              the store interface and its backends
    3 retention/                  warm and cold tiers, the mover
    4 exporters/                  bundles, uploads
    5 agent/                      sources, pipeline, API, CLI

Two graphs are checked, both read from what the compiler saw, not guessed:

  * includes: every `#include "x/y.h"` in a source file under those folders;
  * calls:    for every object file of the build, the symbols it defines
              and the ones it uses (nm), so "a.c calls b.c" is a fact.

A file may use only its own layer or the layers below (and, for the two
peers of layer 1, not the other peer), and no two files may use each
other in a loop (a strongly connected component of more than one file in
the call graph). Exits 1 listing every violation, 0 when there is none.

usage: scripts/check-layers.py BUILD_DIR
"""
import os
import re
import subprocess
import sys

# FR_LAYERS_ROOT: check another tree (the script's own test builds a small bad one)
ROOT = os.environ.get("FR_LAYERS_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = [  # (prefix, layer, name); the longest matching prefix wins
    ("core/", 0, "core"),
    ("collectors/", 1, "collectors"),
    ("redact/", 1, "redact"),
    ("retention/hot/", 2, "store"),
    ("retention/", 3, "retention"),
    ("exporters/", 4, "exporters"),
    ("agent/", 5, "agent"),
]


def stage_of(path):
    best = None
    for prefix, layer, name in STAGES:
        if path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, layer, name)
    return None if best is None else (best[1], best[2])


def allowed(src, dst):
    """May a file of stage src use a file of stage dst?"""
    (ls, ns), (ld, nd) = src, dst
    if ns == nd:
        return True
    return ld < ls


def sources():
    for prefix, _, _ in STAGES:
        top = os.path.join(ROOT, prefix)
        for dirpath, _, files in os.walk(top):
            for f in files:
                if f.endswith((".c", ".h", ".cc")):
                    yield os.path.relpath(os.path.join(dirpath, f), ROOT)


INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def include_violations():
    bad = []
    for path in sorted(set(sources())):
        src = stage_of(path)
        with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for m in INCLUDE.finditer(text):
            inc = m.group(1)
            dst = stage_of(inc)
            if dst is None or not os.path.exists(os.path.join(ROOT, inc)):
                continue
            if not allowed(src, dst):
                line = text.count("\n", 0, m.start()) + 1
                bad.append(f"{path}:{line}: {src[1]} includes {inc} ({dst[1]}, a layer above or a peer)")
    return bad


def objects(build):
    """Maps each source path to its object file, from CMake's object folders."""
    objs = {}
    for dirpath, _, files in os.walk(build):
        if "CMakeFiles" not in dirpath or "tests" in dirpath.split(os.sep):
            continue
        for f in files:
            if not f.endswith(".o"):
                continue
            full = os.path.join(dirpath, f)
            rel = full.split(".dir" + os.sep, 1)
            if len(rel) != 2:
                continue
            src = rel[1][: -len(".o")]
            # an object left from a source file that was moved or deleted is not code any more
            if stage_of(src) is not None and os.path.exists(os.path.join(ROOT, src)):
                objs.setdefault(src, full)
    return objs


def symbols(obj):
    out = subprocess.run(["nm", "--defined-only", "-g", obj], capture_output=True, text=True,
                         check=True).stdout
    defined = {ln.split()[-1] for ln in out.splitlines() if ln.strip()}
    out = subprocess.run(["nm", "-u", obj], capture_output=True, text=True, check=True).stdout
    used = {ln.split()[-1] for ln in out.splitlines() if ln.strip()}
    return defined, used


def sccs(graph):
    """Tarjan's strongly connected components, iteratively."""
    index, low, onstack, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        onstack.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    onstack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in onstack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    onstack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(sorted(comp))
    return out


def call_violations(build):
    objs = objects(build)
    if not objs:
        return [f"no object files under {build}: build first"]
    owner, uses = {}, {}
    for src, obj in objs.items():
        defined, used = symbols(obj)
        uses[src] = used
        for s in defined:
            owner.setdefault(s, src)
    graph, why = {src: set() for src in objs}, {}
    bad = []
    for src, used in uses.items():
        for sym in used:
            dst = owner.get(sym)
            if dst is None or dst == src:
                continue
            graph[src].add(dst)
            why.setdefault((src, dst), []).append(sym)
    for (src, dst), syms in sorted(why.items()):
        if not allowed(stage_of(src), stage_of(dst)):
            bad.append(f"{src} ({stage_of(src)[1]}) calls {dst} ({stage_of(dst)[1]}): "
                       + ", ".join(sorted(syms)[:5]))
    for comp in sccs(graph):
        if len(comp) > 1:
            ties = [f"{a} -> {b}: {', '.join(sorted(why[(a, b)])[:3])}"
                    for a in comp for b in comp if (a, b) in why]
            bad.append("files calling each other in a loop: " + ", ".join(comp)
                       + "\n    " + "\n    ".join(ties))
    return bad


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    bad = include_violations() + call_violations(sys.argv[1])
    for b in bad:
        print("check-layers: " + b)
    if bad:
        print(f"check-layers: {len(bad)} violation(s); see docs/architecture.md")
        return 1
    print("check-layers: core -> collectors, redact -> store -> retention -> exporters -> agent: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
