#!/usr/bin/env python3
"""Every module a target imports must be one it declares in Package.swift.

SwiftPM lets a target import a module it only reaches through another dependency when the build
happens to compile that module first; a clean clone may build in another order and fail. This
check makes the declared graph the one the code uses. Exit 1 with one line per undeclared import.
"""
import os
import re
import sys

# Modules of the toolchain and the system, not targets or products.
SYSTEM = {
    "Foundation", "FoundationEssentials", "Glibc", "Dispatch", "Synchronization", "Testing", "XCTest",
    "_Concurrency", "os", "Darwin", "PackageDescription", "PackagePlugin",
}


def targets(manifest):
    """(name, kind, path, dependencies) for each target of the manifest."""
    found = []
    for match in re.finditer(r"\.(target|testTarget|executableTarget|systemLibrary|plugin)\(\s*name:\s*\"([\w-]+)\"", manifest):
        kind, name = match.group(1), match.group(2)
        # The target's declaration runs to the next target (or the end of the targets list).
        rest = manifest[match.end():]
        following = re.search(r"\.(target|testTarget|executableTarget|systemLibrary|plugin)\(\s*name:", rest)
        body = rest[: following.start()] if following else rest
        dependencies = set()
        deps = re.search(r"dependencies:\s*\[(.*?)\]\s*(,|\))", body, re.S)
        if deps:
            text = deps.group(1)
            dependencies |= set(re.findall(r"\.product\(\s*name:\s*\"(\w+)\"", text))
            without_products = re.sub(r"\.product\([^)]*\)", "", text)
            dependencies |= set(re.findall(r"\"(\w+)\"", without_products))
        path = re.search(r"path:\s*\"([^\"]+)\"", body)
        default = ("Tests/" if kind == "testTarget" else "Sources/") + name
        found.append((name, kind, path.group(1) if path else default, dependencies))
    return found


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    manifest = open(os.path.join(root, "Package.swift")).read()
    problems = []
    for name, kind, path, dependencies in targets(manifest):
        if kind in ("systemLibrary", "plugin"):
            continue
        for directory, _, files in os.walk(os.path.join(root, path)):
            for file in files:
                if not file.endswith(".swift"):
                    continue
                source = os.path.join(directory, file)
                in_string = False  # inside a multi-line string literal ("""), where `import` is text
                for number, line in enumerate(open(source), 1):
                    if line.count('"""') % 2 == 1:
                        in_string = not in_string
                        continue
                    if in_string:
                        continue
                    imported = re.match(r"^\s*(?:@testable\s+|@_exported\s+|@preconcurrency\s+)*import\s+(?:struct\s+|enum\s+|class\s+|func\s+)?(\w+)", line)
                    if not imported:
                        continue
                    module = imported.group(1)
                    if module in SYSTEM or module == name or module in dependencies:
                        continue
                    problems.append(f"{os.path.relpath(source, root)}:{number}: target {name} imports {module} without declaring it in Package.swift")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
