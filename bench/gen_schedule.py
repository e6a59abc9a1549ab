#!/usr/bin/env python3
"""Writes a large valid schedule: ITEMS programme items over 7 days, spread over enough targets
that no two online items share a target at the same time.
Usage: gen_schedule.py ITEMS OUT [FIRST-DAY]   (FIRST-DAY YYYY-MM-DD, default 2021-11-08)"""
import datetime, sys

items, out = int(sys.argv[1]), sys.argv[2]
first = datetime.date.fromisoformat(sys.argv[3] if len(sys.argv) > 3 else "2021-11-08")
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
    lines += [f"  - date: {first + datetime.timedelta(days=d)}", f"    title: Day {d + 1}", "    programme:"]
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
