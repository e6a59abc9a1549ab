"""How far apart the loopback receiver (Tests/Receiver/receiver.py) logs three requests sent at once over
three open connections: its own spread, the floor under calls that share an instant."""
import socket, subprocess, sys, time, json, os, statistics
import tempfile
log=os.path.join(tempfile.mkdtemp(), "spread.jsonl")
if os.path.exists(log): os.remove(log)
p=subprocess.Popen([sys.executable,os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Tests/Receiver/receiver.py"),log],stdout=subprocess.PIPE)
port=int(p.stdout.readline().split()[0])
socks=[socket.create_connection(("127.0.0.1",port)) for _ in range(3)]
for s in socks: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
body=b'{"type":"stream.start","timestamp":"x","data":{"item":"a"}}'*4
req=lambda i: (f"POST /ok/t{i} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nwebhook-id: msg_x\r\nwebhook-timestamp: 1\r\nwebhook-signature: v1,abc\r\nContent-Length: {len(body)}\r\n\r\n").encode()+body
spreads=[];firsts=[]
for n in range(40):
    t0=time.time()
    for i,s in enumerate(socks): s.sendall(req(i))
    for s in socks: s.recv(4096)
    time.sleep(0.2)
time.sleep(0.3)
rows=[json.loads(l) for l in open(log)]
# group in threes
for k in range(0,len(rows),3):
    a=sorted(r["arrival"] for r in rows[k:k+3])
    spreads.append((a[-1]-a[0])*1000)
print("spread of 3 simultaneous calls at the receiver: p50 %.2f ms max %.2f ms"%(statistics.median(spreads),max(spreads)))
p.kill()
