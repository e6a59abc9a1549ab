#!/usr/bin/env python3
"""Writes a large valid schedule: ITEMS programme items over 7 days, spread over enough targets
that no two online items share a target at the same time. Usage: gen_schedule.py ITEMS OUT"""
import sys

items, out = int(sys.argv[1]), sys.argv[2]
days = 7
per_day = (items + days - 1) // days
slot_minutes = 30
slots_per_target = 24 * 60 // slot_minutes - 2          # keep clear of midnight
targets = (per_day + slots_per_target - 1) // slots_per_target
lines = [
    "id: bench-week", "title: Benchmark week", "timezone: Europe/Amsterdam", "lead_time: 5m", "targets:",
]
for t in range(targets):
    lines += [f"  t{t}:", f"    url: http://127.0.0.1:9/hook/{t}"]
lines += ["days:"]
n = 0
for d in range(days):
    lines += [f"  - date: 2021-11-{8 + d:02d}", f"    title: Day {d + 1}", "    programme:"]
    for i in range(per_day):
        if n == items:
            break
        target, slot = i % targets, i // targets
        minute = 30 + slot * slot_minutes
        lines += [
            f"      - id: item-{n}",
            f"        title: Item {n} — plenair",
            "        kind: plenary",
            f'        start: "{minute // 60:02d}:{minute % 60:02d}"',
            "        duration: 25m",
            f"        targets: [t{target}]",
        ]
        n += 1
open(out, "w").write("\n".join(lines) + "\n")
print(f"{out}: {n} items, {targets} targets", file=sys.stderr)
