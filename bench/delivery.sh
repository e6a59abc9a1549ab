#!/usr/bin/env bash
# Delivery benchmark: 1,000 signed calls to nginx on loopback (answers 204), OnAir's engine vs
# curl --parallel --parallel-max 64 with the same requests, in the same run. See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps nginx-light curl libcurl4-openssl-dev
swift build -c release --static-swift-stdlib --product onair-bench >/dev/null
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir;
  keepalive_requests 100000;
  server { listen 127.0.0.1:$port; location / { client_max_body_size 1m; return 204; } }
}
CONF
nginx -c "$dir/nginx.conf" -p "$dir"
trap 'kill $(cat "$dir/nginx.pid") 2>/dev/null; rm -rf "$dir"' EXIT
sleep 0.3
.build/release/onair-bench delivery "http://127.0.0.1:$port/hook" "${1:-1000}" "${2:-6}"
