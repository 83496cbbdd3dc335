#!/usr/bin/env python3
"""Locked instructions executed per unit of work, from a callgrind profile.

A locked read-modify-write (a `lock`-prefixed instruction, or `xchg` with
memory) costs about 7 ns on these machines even when no other core touches
the line, some 20 times a plain one, and callgrind counts it as one
instruction; this counts how many ran, per message (issue 17).

The profile must be made with
  --dump-instr=yes --compress-pos=no --compress-strings=no
(bench/callgrind_server.sh does, with LOCKED=1). Each object's locked
instructions are found with objdump -d; callgrind's addresses are offsets
in their object, as objdump prints them.

usage: locked_instructions.py PROFILE UNITS [TOP]
"""
import collections
import re
import subprocess
import sys


def locked_in(obj, cache={}):
    """{offset: (function, instruction)} of obj's locked instructions."""
    if obj not in cache:
        found = {}
        out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", obj],
                             capture_output=True, text=True).stdout
        fn = "?"
        for line in out.splitlines():
            m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
            if m:
                fn = m.group(2)
                continue
            m = re.match(r"^\s*([0-9a-f]+):\s+(.*)$", line)
            if not m:
                continue
            ins = m.group(2).split("#")[0].strip()
            if ins.startswith("lock ") or (ins.startswith("xchg") and "(" in ins):
                found[int(m.group(1), 16)] = (fn, ins)
        cache[obj] = found
    return cache[obj]


def main():
    path, units = sys.argv[1], float(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    counts = collections.Counter()
    obj = None
    after_calls = False  # the cost line after calls= is the call's, not this instruction's
    with open(path) as f:
        for line in f:
            if line.startswith("ob="):
                obj = line[3:].strip()
            elif line.startswith("calls="):
                after_calls = True
            elif line.startswith("0x"):
                if after_calls:
                    after_calls = False
                    continue
                fields = line.split()
                hit = locked_in(obj).get(int(fields[0], 16))
                if hit:
                    counts[(obj.rsplit("/", 1)[-1],) + hit] += int(fields[-1])
    total = sum(counts.values())
    print(f"{total / units:.2f} locked instructions per unit ({total} in all)")
    for (obj, fn, ins), n in counts.most_common(top):
        print(f"{n / units:8.3f}  {fn[:100]}  [{ins[:32]}]  ({obj})")


if __name__ == "__main__":
    main()
