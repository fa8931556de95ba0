#!/usr/bin/env python3
"""Include scan: fails on any upward or sideways #include between layers.

Reads the layer table in docs/ARCHITECTURE.md (between the layers:begin/end
markers): folder | level | may depend on. A file in folder F may include
"F/...", "D/..." for each D it may depend on, and "nibble/..." (the public API).
tools/nibble may include only "nibble/..." and its own headers. Each dependency
must sit at a strictly lower level. Also: <mpi.h> only under src/distributed/mpi/.

Dispatch rule (docs/ARCHITECTURE.md, "Trusted on every target"): Highway dispatch goes
through NB_DYNAMIC_DISPATCH (core/cpu_features.h), which applies the NIBBLE_CPU / --cpu
cap first, so no kernel can escape the cap; a bare HWY_DYNAMIC_DISPATCH anywhere in src/,
bench/ or tests/ is an error. So is hwy::SupportedTargets() or
hwy::SupportedAndGeneratedTargets() outside core/cpu_features.cc: in Highway 1.0.3 they
re-initialise the dispatch choice ignoring DisableTargets, silently lifting the cap
(use CappedHighwayTargets() and tests/util/target_pin.h's HighwayTargetsToTest()).
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def read_table():
    text = (ROOT / "docs/ARCHITECTURE.md").read_text()
    m = re.search(r"<!-- layers:begin -->(.*?)<!-- layers:end -->", text, re.S)
    if not m:
        sys.exit("check_includes: docs/ARCHITECTURE.md has no layers:begin/end table")
    layers = {}
    for line in m.group(1).splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[1].isdigit():
            continue
        deps = [d.strip().strip("`") for d in cells[2].split(",") if d.strip() not in ("", "—", "-")]
        layers[cells[0]] = (int(cells[1]), deps)
    return layers


def main():
    layers = read_table()
    errors = []
    names = {f.split("/")[-1]: f for f in layers}  # "core" -> "src/core"
    for folder, (level, deps) in layers.items():
        for d in deps:
            if d not in names:
                errors.append(f"ARCHITECTURE.md: {folder} depends on unknown layer '{d}'")
            elif layers[names[d]][0] >= level:
                errors.append(f"ARCHITECTURE.md: {folder} (level {level}) depends on {d} "
                              f"(level {layers[names[d]][0]}), which is not lower")
    for folder, (level, deps) in layers.items():
        own = folder.split("/")[-1]
        base = ROOT / folder
        if not base.exists():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix not in (".h", ".cc", ".cpp", ".hpp"):
                continue
            rel = path.relative_to(ROOT)
            for kind, inc in INCLUDE_RE.findall(path.read_text(errors="replace")):
                if kind == "<":
                    if inc == "mpi.h" and not str(rel).startswith("src/distributed/mpi/"):
                        errors.append(f"{rel}: <mpi.h> is allowed only under src/distributed/mpi/")
                    continue
                first = inc.split("/")[0] if "/" in inc else None
                if first is None or first == "nibble":
                    continue  # same-folder header or the public API
                if folder == "tools/nibble":
                    errors.append(f"{rel}: includes \"{inc}\"; the CLI may include only include/nibble headers")
                elif first in names and first != own and first not in deps:
                    lvl = layers[names[first]][0]
                    how = "upward" if lvl > level else "sideways" if lvl == level else "undeclared"
                    errors.append(f"{rel}: {how} include of \"{inc}\" ({own} may depend on: "
                                  f"{', '.join(deps) or 'nothing'})")
    dispatch_re = re.compile(r"\bHWY_DYNAMIC_DISPATCH\s*\(")
    supported_re = re.compile(r"\bhwy::(SupportedTargets|SupportedAndGeneratedTargets)\s*\(")
    for top in ("src", "bench", "tests"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in (".h", ".cc", ".cpp", ".hpp") or path.name == "cpu_features.h":
                continue
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if dispatch_re.search(line):
                    errors.append(f"{path.relative_to(ROOT)}:{n}: bare HWY_DYNAMIC_DISPATCH; use NB_DYNAMIC_DISPATCH "
                                  "(core/cpu_features.h) so the NIBBLE_CPU cap applies")
                if supported_re.search(line) and path.name != "cpu_features.cc" and not line.lstrip().startswith("//"):
                    errors.append(f"{path.relative_to(ROOT)}:{n}: hwy::SupportedTargets() lifts the CPU cap in "
                                  "Highway 1.0.3; use CappedHighwayTargets() (core/cpu_features.h)")
    for e in errors:
        print(f"include scan: {e}")
    if errors:
        sys.exit(1)
    print(f"include scan: OK ({len(layers)} layers)")


if __name__ == "__main__":
    main()
