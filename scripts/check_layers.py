#!/usr/bin/python3
"""No include cycle between the folders of src/ (one library each, see
src/CMakeLists.txt): if folder A includes a header of folder B, nothing in B
may include A's, directly or through other folders. Prints each cycle with
an include that makes it.

Usage: scripts/check_layers.py [SRC_DIR]   (exit 0: no cycle, 1: cycles, 2: bad usage)
"""

import re
import sys
from collections import defaultdict
from pathlib import Path


def unit_of(src, parts):
    """The folder a file under src/ belongs to: its top folder, or, in a
    top folder that holds only folders (src/classes), its folder there."""
    top = src / parts[0]
    if len(parts) > 2 and not any(p.is_file() for p in top.glob("*.[ch]*")):
        return f"{parts[0]}/{parts[1]}"
    return parts[0]


def include_graph(src):
    """folder -> folder -> the first include (file: header) that links them."""
    graph = defaultdict(dict)
    for path in sorted(list(src.rglob("*.cc")) + list(src.rglob("*.h"))):
        rel = path.relative_to(src)
        here = unit_of(src, rel.parts)
        graph.setdefault(here, {})
        for m in re.finditer(r'^\s*#\s*include\s+"([^"]+)"', path.read_text(), re.M):
            parts = m.group(1).split("/")
            if len(parts) < 2 or not (src / parts[0]).is_dir():
                continue
            there = unit_of(src, parts)
            if there != here:
                graph[here].setdefault(there, f"src/{rel.as_posix()}: {m.group(1)}")
    return graph


def cycles(graph):
    """The strongly connected components with more than one folder (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(graph) | {w for edges in graph.values() for w in edges}):
        if v not in index:
            visit(v)
    return found


def main():
    src = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "src")
    if not (src / "core").is_dir():
        print(f"{src}: not the project's src/ directory (no core/ in it)", file=sys.stderr)
        return 2
    graph = include_graph(src)
    found = cycles(graph)
    for component in found:
        print("include cycle between src/ folders: " + ", ".join(component))
        for a in component:
            for b in component:
                if b in graph.get(a, {}):
                    print(f"  {a} -> {b}: {graph[a][b]}")
    if found:
        return 1
    print(f"layers: no include cycle among {len(graph)} folders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
