# Sourced by bench/gateway.sh and bench/gateway_cost.sh: the helpers both use, and the nginx both
# compare the gateway with (Debian's, private prefix, upstream keep-alive, the gateway's
# forwarded headers), so the two benchmarks measure the same nginx.

# port_from_log FILE: the port of the "listening on 127.0.0.1:PORT" line a process writes.
port_from_log() {
  local port=""
  for _ in $(seq 1 400); do
    port=$(grep -oE 'listening on 127\.0\.0\.1:[0-9]+' "$1" | grep -oE '[0-9]+$' || true)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { cat "$1" >&2; echo "$(basename "$0"): no listener in $1" >&2; exit 1; }
  echo "$port"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# write_nginx_conf DIR BACKEND_PORT LISTEN_PORT WORKERS [MASTER]: DIR/nginx.conf, with its logs
# and temp files under DIR. MASTER "off" runs the single worker in the process started (so a
# profiler such as callgrind sees it); default "on".
write_nginx_conf() {
  local dir=$1 backend_port=$2 listen_port=$3 workers=$4 master=${5:-on} user_line=""
  mkdir -p "$dir/logs" "$dir/tmp"
  [ "$(id -u)" = 0 ] && user_line="user root;"
  cat >"$dir/nginx.conf" <<CONF
$user_line
master_process $master;
worker_processes $workers;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_requests 1000000;
  upstream backend {
    server 127.0.0.1:$backend_port;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$listen_port;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
CONF
}
