#!/usr/bin/env python3
"""Daemon benchmarks (issue 4), each against the release binary:

  lateness  -- 210 signed jobs over ~75 s to the loopback receiver; lateness = arrival at the
               receiver minus the job's scheduled instant; p50, p99, max.
  burst     -- 1,000 items (1,000 targets) starting in the same second, to nginx; time from the
               instant until the last call arrived (nginx $msec).
  idle      -- CPU time (utime+stime) the daemon uses over 60 s with its next job hours away.
  startup   -- process start to the "ready" log line, with a journal of 100,000 attempts.
  cold      -- lateness over https when the server closes idle connections: --warm-up 1 vs 0.
  memory    -- peak RSS (VmHWM) of a daemon holding a 10,000-item week that lies ahead, 5 starts.
  storm     -- the same 10,000 items long past: every stop due at once to a dead platform.
  status    -- `onair status` wall time, run repeatedly while the daemon delivers the burst above.
  slowdisk  -- lateness as above with every fsync/fdatasync of the daemon made 30 ms slow (LD_PRELOAD).
  syncs     -- every fsync/fdatasync of the daemon (strace -f) while it delivers 20 jobs, and their cost.
  floor     -- the receiver's own lateness: a plain Python client posting at 210 instants (no daemon).

usage: bench/daemon.py [lateness|cold|burst|idle|startup|memory|storm|status|syncs|slowdisk|floor ...]   (default: all)
"""
import json, os, signal, sqlite3, statistics, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.environ.get("ONAIR_BENCH_BINARY") or os.path.join(root, ".build/release/onair")    # an A/B: another build
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def clock(t):
    s = int(t) % 86400
    return "%02d:%02d:%02d+00:00" % (s // 3600, (s % 3600) // 60, s % 60)


def day(t):
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def start_daemon(config, state, wait_ready=True, extra=(), env_extra=None):
    env = dict(os.environ, BENCH_SECRET=secret, **(env_extra or {}))
    log = open(os.path.join(state + ".log"), "w")
    p = subprocess.Popen([binary, "daemon", "--config", config, "--state", state, "--socket", state + ".sock", *extra],
                         env=env, stdout=log, stderr=subprocess.STDOUT)
    t0 = time.perf_counter()
    if wait_ready:
        while True:
            with open(state + ".log") as f:
                if " ready" in f.read():
                    break
            if p.poll() is not None:
                sys.exit(open(state + ".log").read())
            time.sleep(0.002)
    return p, time.perf_counter() - t0


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)


def receiver(tmp, name="receiver", options=()):
    log = os.path.join(tmp, name + ".jsonl")
    p = subprocess.Popen([sys.executable, os.path.join(root, "Tests/Receiver/receiver.py"), log, *options], stdout=subprocess.PIPE)
    port = int(p.stdout.readline().split()[0])
    return p, port, log


def percentiles(late):
    late = sorted(late)
    p99 = late[min(len(late) - 1, int(round(0.99 * len(late))) - 1)]
    return f"p50 {statistics.median(late):.2f} ms, p99 {p99:.2f} ms, max {late[-1]:.2f} ms, min {late[0]:.2f} ms"


def cold(tmp):
    """Lateness when every call finds its connection gone: an https receiver that closes
    connections idle for 1.5 s, one call every 2 s; --warm-up 1 against --warm-up 0."""
    for warm in ("1", "0"):
        tls = os.path.join(tmp, f"tls-{warm}")
        os.makedirs(tls, exist_ok=True)
        rp, port, log = receiver(tmp, f"cold-{warm}", ("--tls", tls, "--idle-timeout", "1.5"))
        now = int(time.time()) + 5
        count = 60
        lines = ["id: bench-cold", "title: Cold", "timezone: UTC", "targets:",
                 "  site:", f"    url: https://127.0.0.1:{port}/ok/site", "    secret: env:BENCH_SECRET",
                 f"    ca_file: {tls}/ca.pem", "days:"]
        by_day = {}
        for i in range(count // 2):
            start = now + 4 * i
            by_day.setdefault(day(start), []).append(
                f"      - {{ id: item-{i}, title: Item {i}, start: \"{clock(start)}\", duration: 2s }}")
        for d in sorted(by_day):
            lines += [f"  - date: {d}", "    programme:"] + by_day[d]
        config = os.path.join(tmp, f"cold-{warm}.yaml")
        open(config, "w").write("\n".join(lines) + "\n")
        p, _ = start_daemon(config, os.path.join(tmp, f"state-cold-{warm}"), extra=("--warm-up", warm))
        deadline = time.time() + 4 * count
        calls = lambda: [json.loads(l) for l in open(log)] if os.path.exists(log) else []
        while time.time() < deadline and sum(1 for r in calls() if r["method"] == "POST") < count:
            time.sleep(0.2)
        stop(p)
        rp.kill()
        late, reused = [], 0
        requests = calls()
        for i, r in enumerate(requests):
            if r["method"] != "POST":
                continue
            scheduled = time.mktime(time.strptime(json.loads(r["body"])["timestamp"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
            late.append((r["arrival"] - scheduled) * 1000)
            reused += any(q["method"] == "HEAD" and q["peer"] == r["peer"] for q in requests[:i])
        print(f"cold (https, server closes idle connections after 1.5 s), --warm-up {warm}: {len(late)} calls, "
              f"{percentiles(late)}; {reused} went out on a warmed connection")


def nginx(tmp):
    tmp = tempfile.mkdtemp(dir=tmp)    # a fresh access log for every run
    port_probe = __import__("socket").socket()
    port_probe.bind(("127.0.0.1", 0))
    port = port_probe.getsockname()[1]
    port_probe.close()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{ log_format t '$msec $request_method $request_uri'; access_log {tmp}/access.log t; client_body_temp_path {tmp};
  keepalive_requests 100000;
  server {{ listen 127.0.0.1:{port} backlog=4096; location / {{ return 204; }} }} }}
""")
    subprocess.run(["nginx", "-c", conf, "-p", tmp], check=True)
    return port, os.path.join(tmp, "access.log"), os.path.join(tmp, "nginx.pid")


def lateness(tmp, env_extra=None, label="lateness", spaced=False):
    """`spaced`: every job at an instant of its own (an item every 3 s: prepare, start, stop a second
    apart), so that no two calls share an instant and the receiver never queues one behind another."""
    rp, port, log = receiver(tmp, name=label)
    now = int(time.time()) + 4
    targets = 4
    lines = ["id: bench-lateness", "title: Lateness", "timezone: UTC", "lead_time: 1s", "targets:"]
    for k in range(targets):
        lines += [f"  t{k}:", f"    url: http://127.0.0.1:{port}/ok/t{k}", "    secret: env:BENCH_SECRET"]
    items = []
    for i in range(70):
        k, n = i % targets, i // targets
        start = now + 3 * i + 1 if spaced else now + k + 4 * n + 1
        duration = "1s" if spaced else "2s"
        items.append((start, f"      - {{ id: item-{i}, title: Item {i}, start: \"{clock(start)}\", duration: {duration}, targets: [t{k}] }}"))
    by_day = {}
    for start, line in items:
        by_day.setdefault(day(start), []).append(line)
    lines.append("days:")
    for d in sorted(by_day):
        lines += [f"  - date: {d}", "    programme:"] + by_day[d]
    config = os.path.join(tmp, "lateness.yaml")
    open(config, "w").write("\n".join(lines) + "\n")
    p, _ = start_daemon(config, os.path.join(tmp, "state-" + label), env_extra=env_extra)
    expected = 210
    deadline = time.time() + 300
    while time.time() < deadline:
        if os.path.exists(log) and sum(1 for l in open(log) if json.loads(l)["method"] != "HEAD") >= expected:
            break
        time.sleep(0.2)
    time.sleep(0.5)
    stop(p)
    rp.kill()
    late = []
    by_instant = {}
    for line in open(log):
        r = json.loads(line)
        if r["method"] == "HEAD":
            continue    # the connection warm-up before an instant, not a call
        body = json.loads(r["body"])
        scheduled = time.mktime(time.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        late.append((r["arrival"] - scheduled) * 1000)
        by_instant.setdefault(scheduled, []).append(late[-1])
    print(f"{label}: {len(late)} jobs, {percentiles(late)} (never early: {min(late) >= 0})")
    # Several calls share most instants here (a start, the next item's prepare, a stop): the receiver
    # takes them one after another, so the first arrival of each instant is the cleanest measure.
    first = [min(v) for v in by_instant.values()]
    print(f"{label}, first call of each of {len(first)} instants: {percentiles(first)}")


def floor(tmp):
    """The receiver's floor on this machine, measured the way `spaced` measures OnAir: one plain
    Python client (no journal, no signing) that waits for each of 210 instants (0.35 s apart here;
    `spaced` has one a second) awake for its last 2 ms, and posts over one kept-alive connection.
    What it sees is the receiver's and the machine's own lateness. FLOOR_SLEEP=1: it sleeps to each
    instant instead, as a timer does, to see what waking an idle CPU costs."""
    import http.client
    rp, port, log = receiver(tmp, name="floor")
    conn = http.client.HTTPConnection("127.0.0.1", port)
    start = int(time.time()) + 2
    for i in range(210):
        instant = start + 0.35 * i
        if os.environ.get("FLOOR_SLEEP"):    # sleep to the instant, as a timer does, instead of spinning its last 2 ms
            time.sleep(max(0, instant - time.time()))
        else:
            while time.time() < instant - 0.002:
                time.sleep(0.001)
            while time.time() < instant:
                pass
        conn.request("POST", "/ok/floor", body=json.dumps({"i": i, "instant": instant}), headers={"content-type": "application/json"})
        conn.getresponse().read()
    time.sleep(0.3)
    rp.kill()
    late = [(r["arrival"] - json.loads(r["body"])["instant"]) * 1000 for r in map(json.loads, open(log))]
    print(f"floor: a plain Python client, 210 instants, one kept-alive connection: {percentiles(late)}")


def spacedplain(tmp):
    """`spaced` on the normal disk only (half the time, for an A/B of two builds)."""
    lateness(tmp, label="lateness-spaced", spaced=True)


def spaced(tmp):
    """Lateness with no two calls at one instant, on a normal disk and with every sync 30 ms slow."""
    lateness(tmp, label="lateness-spaced", spaced=True)
    shim = os.path.join(tmp, "slowsync.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", shim, os.path.join(root, "bench/slowsync.c"), "-ldl"], check=True)
    lateness(tmp, env_extra={"LD_PRELOAD": shim, "SLOWSYNC_MS": "30"}, label="lateness-spaced-slowdisk-30ms", spaced=True)


def slowdisk(tmp):
    """Lateness with every fsync/fdatasync of the daemon made 30 ms slow (bench/slowsync.c)."""
    shim = os.path.join(tmp, "slowsync.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", shim, os.path.join(root, "bench/slowsync.c"), "-ldl"], check=True)
    lateness(tmp, env_extra={"LD_PRELOAD": shim, "SLOWSYNC_MS": "30"}, label="lateness-slowdisk-30ms")
    print("burst with every sync 30 ms slow:")
    burst(tmp, env_extra={"LD_PRELOAD": shim, "SLOWSYNC_MS": "30"})


def burst(tmp, probe_status=False, env_extra=None):
    port, access, pidfile = nginx(tmp)
    start = int(time.time()) + 6
    lines = ["id: bench-burst", "title: Burst", "timezone: UTC", "targets:"]
    for k in range(1000):
        lines += [f"  t{k}:", "    requests:",
                  f"      start: {{ method: POST, url: \"http://127.0.0.1:{port}/{{{{item.id}}}}/{{{{action}}}}\", body: \"{{{{item.title}}}}\" }}"]
    lines += ["days:", f"  - date: {day(start)}", "    programme:"]
    for k in range(1000):
        lines.append(f"      - {{ id: item-{k}, title: Item {k}, start: \"{clock(start)}\", duration: 10m, targets: [t{k}] }}")
    config = os.path.join(tmp, "burst.yaml")
    open(config, "w").write("\n".join(lines) + "\n")
    # A fresh journal each run: job ids name no time, so a second burst of the same items would
    # find them delivered (by design) and send nothing.
    state = os.path.join(tempfile.mkdtemp(dir=tmp), "state-burst")
    p, _ = start_daemon(config, state, env_extra=env_extra)
    if probe_status:
        # `onair status` (the whole CLI process) over and over from just before the instant
        # until the burst is over.
        while time.time() < start - 0.3:
            time.sleep(0.01)
        cli, api = [], []
        while time.time() < start + 1.5:
            t0 = time.perf_counter()
            r = subprocess.run([binary, "status", "--json", "--socket", state + ".sock", "--state", state], capture_output=True)
            cli.append((time.perf_counter() - t0) * 1000)
            if r.returncode != 0:
                sys.exit("status failed: " + r.stderr.decode())
            r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", "--unix-socket", state + ".sock",
                                "http://localhost/v1/status"], capture_output=True)
            api.append(float(r.stdout) * 1000)
        cli.sort()
        api.sort()
        print(f"status during a 1,000-call burst: control API (curl time_total) {len(api)} calls, p50 {statistics.median(api):.1f} ms, "
              f"max {api[-1]:.1f} ms; whole `onair status` process {len(cli)} calls, p50 {statistics.median(cli):.1f} ms, max {cli[-1]:.1f} ms")
    deadline = time.time() + 30
    while time.time() < deadline:
        if os.path.exists(access) and sum(1 for l in open(access) if l.split()[1] != "HEAD") >= 1000:
            break
        time.sleep(0.1)
    stop(p)
    os.kill(int(open(pidfile).read()), signal.SIGTERM)
    # HEAD / is the connection warm-up two seconds ahead, not a call.
    arrivals = sorted(float(l.split()[0]) for l in open(access) if l.split()[1] != "HEAD")
    onair_last = arrivals[-1] - start
    print(f"burst: {len(arrivals)} of 1000 start calls arrived; first {1000 * (arrivals[0] - start):.1f} ms, "
          f"last {1000 * onair_last:.1f} ms after the instant")
    # The baseline in the same run: curl --parallel with the same 1,000 POSTs to the same kind of
    # nginx (a fresh one, so its log holds only curl's), from curl's start to the last arrival.
    port, access, pidfile = nginx(tmp)
    kfile = os.path.join(tmp, "burst.curl")
    with open(kfile, "w") as f:
        # `next` between transfers (not after the last: that would be an empty one).
        f.write("next\n".join(f'url = "http://127.0.0.1:{port}/item-{k}/start"\nrequest = "POST"\ndata = "Item {k}"\n'
                               'output = "/dev/null"\n' for k in range(1000)))
    t0 = time.time()
    subprocess.run(["curl", "-sS", "--parallel", "--parallel-max", "64", "-K", kfile], check=True)
    time.sleep(0.3)
    os.kill(int(open(pidfile).read()), signal.SIGTERM)
    curl_arrivals = sorted(float(l.split()[0]) for l in open(access))
    curl_last = curl_arrivals[-1] - t0
    print(f"burst baseline: curl --parallel --parallel-max 64, {len(curl_arrivals)} calls, last {1000 * curl_last:.1f} ms "
          f"after curl started; OnAir's rate / curl's = {curl_last / onair_last:.2f}")


def syncs(tmp):
    """Every fsync/fdatasync of the daemon (all threads) while it delivers 30 jobs, with its time."""
    rp, port, log = receiver(tmp)
    now = int(time.time()) + 4
    lines = ["id: bench-syncs", "title: Syncs", "timezone: UTC", "targets:",
             f"  t0: {{ url: \"http://127.0.0.1:{port}/ok/t0\", secret: env:BENCH_SECRET }}", "days:",
             f"  - date: {day(now)}", "    programme:"]
    for i in range(10):
        lines.append(f"      - {{ id: item-{i}, title: Item {i}, start: \"{clock(now + 2 + i)}\", duration: 1s, targets: [t0] }}")
    config = os.path.join(tmp, "syncs.yaml")
    open(config, "w").write("\n".join(lines) + "\n")
    state = os.path.join(tmp, "state-syncs")
    trace = os.path.join(tmp, "syncs.strace")
    env = dict(os.environ, BENCH_SECRET=secret)
    p = subprocess.Popen(["strace", "-f", "-qq", "-T", "-e", "trace=fsync,fdatasync", "-o", trace,
                          binary, "daemon", "--config", config, "--state", state, "--socket", state + ".sock", "--warm-up", "0"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        if os.path.exists(log) and sum(1 for l in open(log) if json.loads(l)["method"] != "HEAD") >= 20:
            break
        time.sleep(0.2)
    time.sleep(1.5)
    # SIGTERM to the daemon itself (strace's child): strace keeps tracing through the shutdown.
    child = int(open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()[0])
    os.kill(child, signal.SIGTERM)
    p.wait(timeout=30)
    rp.kill()
    calls = sum(1 for l in open(log) if json.loads(l)["method"] != "HEAD")
    durations = [float(l.rsplit("<", 1)[1].rstrip(">\n")) * 1000 for l in open(trace) if "sync(" in l and "<" in l]
    durations.sort()
    print(f"syncs: {len(durations)} fsync/fdatasync calls for {calls} calls delivered (20 jobs, start-up and shutdown "
          f"included); per sync p50 {statistics.median(durations):.2f} ms, max {durations[-1]:.2f} ms")


def status(tmp):
    burst(tmp, probe_status=True)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle(tmp):
    later = int(time.time()) + 6 * 3600
    config = os.path.join(tmp, "idle.yaml")
    open(config, "w").write(f"""id: bench-idle
title: Idle
timezone: UTC
targets:
  site: {{ url: "http://127.0.0.1:9/hook" }}
days:
  - date: {day(later)}
    programme:
      - {{ id: later, title: Later, start: "{clock(later)}", duration: 1m }}
""")
    p, _ = start_daemon(config, os.path.join(tmp, "state-idle"))
    time.sleep(2)
    before = cpu_seconds(p.pid)
    time.sleep(60)
    used = cpu_seconds(p.pid) - before
    stop(p)
    print(f"idle: {used * 1000:.0f} ms CPU over 60 s (clock tick {1000 / os.sysconf('SC_CLK_TCK'):.0f} ms)")


def startup(tmp):
    config = os.path.join(tmp, "startup.yaml")
    subprocess.run([sys.executable, os.path.join(root, "bench/gen_schedule.py"), "100", config], check=True, capture_output=True)
    state = os.path.join(tmp, "state-startup")
    p, _ = start_daemon(config, state)
    stop(p)
    db = sqlite3.connect(os.path.join(state, "journal.sqlite"))
    rows = [(f"bench-week/item-{i % 100}/start/t0", f"item-{i % 100}", "t0", f"msg_{i:032x}", 0, i // 100 + 1,
             1636362000.0 + i, 503, None, 0.001, "retry", "HTTP 503") for i in range(100_000)]
    db.executemany("INSERT INTO attempt (job, item, target, webhook_id, send, attempt, started_at, status, error, total_time, outcome, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.commit()
    count = db.execute("SELECT COUNT(*) FROM attempt").fetchone()[0]
    db.close()
    times = []
    for _ in range(5):
        p, elapsed = start_daemon(config, state)
        times.append(elapsed)
        stop(p)
    print(f"startup: journal with {count} attempts, start to ready median {1000 * statistics.median(times):.0f} ms "
          f"(min {1000 * min(times):.0f}, max {1000 * max(times):.0f})")


def memory_of(pid):
    """VmHWM (the peak), and RssAnon and RssFile now, in MiB. RssFile is the pages of the 128 MB
    static binary the kernel mapped (fault-around maps 64 KiB around each touched page): 33-38 MiB,
    and it moves by a few MiB between two builds of the same code. RssAnon is the daemon's data."""
    fields = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status").read().splitlines() if ":" in l)
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmHWM", "RssAnon", "RssFile"))


def peak_memory(config, state, detail=None):
    p, _ = start_daemon(config, state)
    time.sleep(1)
    hwm, anon, file = memory_of(p.pid)
    stop(p)
    if detail is not None:
        detail.append((anon, file))
    return hwm


def memory(tmp):
    """A 10,000-item week that lies ahead (next Monday on), as a daemon holds it all week."""
    config = os.path.join(tmp, "memory.yaml")
    monday = time.time() + (7 - time.gmtime().tm_wday) * 86400
    subprocess.run([sys.executable, os.path.join(root, "bench/gen_schedule.py"), "10000", config, day(monday)],
                   check=True, capture_output=True)
    detail = []
    runs = [peak_memory(config, os.path.join(tmp, f"state-memory-{i}"), detail) for i in range(5)]
    print(f"memory: 10,000-item week ahead (30,000 jobs), peak RSS (VmHWM) over 5 starts: "
          f"max {max(runs):.1f} MiB, min {min(runs):.1f} MiB ({', '.join(f'{r:.1f}' for r in runs)}); "
          f"RssAnon {max(a for a, _ in detail):.1f} MiB, RssFile {max(f for _, f in detail):.1f} MiB at most")


def storm(tmp):
    """Not the target's case, measured to know it: the same 10,000 items in a week long past, so
    at start every stop is due at once (SPEC 4) to a platform that refuses connections."""
    config = os.path.join(tmp, "storm.yaml")
    subprocess.run([sys.executable, os.path.join(root, "bench/gen_schedule.py"), "10000", config, "2021-11-08"],
                   check=True, capture_output=True)
    state = os.path.join(tmp, "state-storm")
    p, _ = start_daemon(config, state)
    time.sleep(30)    # the peak comes once every stop waits for its retry (~20 s), not at the first wave
    hwm, anon, file = memory_of(p.pid)
    stop(p)
    db = sqlite3.connect(os.path.join(state, "journal.sqlite"))
    fired = db.execute("SELECT COUNT(*) FROM job WHERE state = 'inflight'").fetchone()[0]
    attempts = db.execute("SELECT COUNT(*) FROM attempt").fetchone()[0]
    db.close()
    print(f"storm: 10,000 stops due at once to a dead platform: after 30 s {fired} in flight (retrying), "
          f"{attempts} attempts journaled, peak RSS {hwm:.1f} MiB (after 30 s: RssAnon {anon:.1f} MiB, RssFile {file:.1f} MiB)")


if not os.path.exists(binary):
    subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib", "--product", "onair"], cwd=root, check=True)
which = sys.argv[1:] or ["lateness", "cold", "burst", "idle", "startup", "memory", "storm", "status", "syncs"]
with tempfile.TemporaryDirectory() as tmp:
    for name in which:
        globals()[name](tmp)
