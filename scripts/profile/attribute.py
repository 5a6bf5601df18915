"""Attributes perf samples in Osprey's pod programs to source lines.

Reads `perf script -F ip,sym,symoff` lines on stdin (samples named bpf_prog_<tag>_<name>+0x<offset>)
and, for each program, the "offset<TAB>file:line" table jit-lines printed into DIR/<name>.lines.
Prints each program's samples and its most sampled source lines, with their text when a
source directory given has the file.
Usage: perf script ... | python3 attribute.py DIR [lines per program] [source directory...]
"""

import bisect
import collections
import pathlib
import re
import sys

directory = pathlib.Path(sys.argv[1])
shown = int(sys.argv[2]) if len(sys.argv) > 2 else 15
sources = [pathlib.Path(path) for path in sys.argv[3:]]


def text(location):
    """The source text at "file:line", or "" when no source directory has the file."""
    name, _, number = location.rpartition(":")
    for source in sources:
        path = source / name
        if path.is_file() and number.isdigit():
            lines = path.read_text().splitlines()
            if 0 < int(number) <= len(lines):
                return lines[int(number) - 1].strip()
    return ""

tables = {}
for path in sorted(directory.glob("*.lines")):
    rows = sorted((int(offset), line) for offset, line in (row.split("\t") for row in path.read_text().splitlines()))
    tables[path.stem] = ([offset for offset, _ in rows], [line for _, line in rows])

samples = collections.defaultdict(collections.Counter)
for record in sys.stdin:
    match = re.search(r"bpf_prog_[0-9a-f]+_(\w+)\+0x([0-9a-f]+)", record)
    if not match or match.group(1) not in tables:
        continue
    offsets, lines = tables[match.group(1)]
    index = bisect.bisect_right(offsets, int(match.group(2), 16)) - 1
    samples[match.group(1)][lines[index] if index >= 0 else "?"] += 1

for program, counts in sorted(samples.items()):
    total = sum(counts.values())
    print(f"\n{program}: {total} samples")
    for line, count in counts.most_common(shown):
        print(f"  {100 * count / total:5.1f} %  {line:16} {text(line)[:90]}")
