#!/bin/sh
# The compose nginx's entrypoint: one `server` line per recommender replica, kept current.
#
# nginx's `hash ... consistent` spreads keys over the upstream's server lines; one line whose name
# resolves to N addresses (`server recommender:8000 resolve`) is one hash target, and nginx
# round-robins inside it, so a user's requests would alternate between replicas. So this script
# resolves the service name through Docker's DNS itself (getent: every replica's address), writes
# one line per address into $UPSTREAM_FILE (deploy/nginx.conf includes it through
# BOTIFY_UPSTREAM), starts nginx through the image's own entrypoint (its template step renders
# nginx.conf) and, every $UPSTREAM_INTERVAL seconds, rewrites the file and reloads nginx
# (SIGHUP: graceful) when the set changed, e.g. after `docker compose up --scale recommender=N`.
#
#   nginx-upstream.sh nginx -g 'daemon off;'   entrypoint (compose: entrypoint + the image's CMD)
#   nginx-upstream.sh --print                  print the lines once (tests)
set -eu

service=${UPSTREAM_SERVICE:-recommender}
port=${UPSTREAM_PORT:-8000}
file=${UPSTREAM_FILE:-/etc/nginx/botify-upstream.conf}
interval=${UPSTREAM_INTERVAL:-2}
options=${UPSTREAM_OPTIONS:-max_fails=1 fail_timeout=2s}

say() { echo "nginx-upstream: $*" >&2; }

servers() {  # sorted, so an unchanged set gives the same text
  getent ahostsv4 "$service" | awk '{ print $1 }' | sort -u |
    while read -r address; do echo "server $address:$port $options;"; done
}

if [ "${1:-}" = --print ]; then
  servers
  exit 0
fi

current=""
waited=0
while [ -z "$current" ]; do  # nginx refuses an empty upstream: wait for the first replica
  current=$(servers || true)
  if [ -z "$current" ]; then
    [ $((waited % 30)) -eq 0 ] && say "no address for '$service' yet; waiting"
    waited=$((waited + 1))
    sleep 1
  fi
done
printf '%s\n' "$current" >"$file"
say "$(echo "$current" | wc -l) replica(s) of '$service': $(echo "$current" | awk '{ printf "%s ", $2 }')"

# the image's entrypoint renders the templates, then execs nginx: $! is nginx's master
if [ -x /docker-entrypoint.sh ]; then /docker-entrypoint.sh "$@" & else "$@" & fi
nginx=$!
trap 'kill -QUIT "$nginx" 2>/dev/null' QUIT TERM INT  # graceful stop, as `docker stop` asks

while kill -0 "$nginx" 2>/dev/null; do
  sleep "$interval" &
  wait $! || true
  kill -0 "$nginx" 2>/dev/null || break
  found=$(servers || true)
  if [ -n "$found" ] && [ "$found" != "$current" ]; then
    printf '%s\n' "$found" >"$file.new" && mv "$file.new" "$file"
    current=$found
    say "replicas changed: $(echo "$found" | awk '{ printf "%s ", $2 }')- reloading nginx"
    kill -HUP "$nginx"
  fi
done
wait "$nginx"
