#!/usr/bin/env python3
"""Benchmark: load, validate and plan a generated schedule of 10,000 items with the release
binary (`onair plan --json`, which does all three), RUNS times; prints the median wall time and
the peak resident memory of the process. Usage: bench/schedule_load.py [ITEMS] [RUNS]"""
import os, statistics, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
items = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 11
binary = os.path.join(root, ".build/release/onair")
if not os.path.exists(binary):
    subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib", "--product", "onair"], cwd=root, check=True)
path = os.path.join(tempfile.mkdtemp(), "bench.yaml")
subprocess.run([sys.executable, os.path.join(root, "bench/gen_schedule.py"), str(items), path], check=True)

times, peaks = [], []
for _ in range(runs):
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "plan", "--json", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    times.append(time.perf_counter() - t0)
    peaks.append(usage.ru_maxrss / 1024)  # KiB -> MiB
    if status != 0:
        sys.exit(f"onair plan failed: {p.stderr.read().decode()}")
print(f"schedule of {items} items, {runs} runs: median {statistics.median(times) * 1000:.0f} ms "
      f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}), peak RSS {max(peaks):.1f} MiB")
