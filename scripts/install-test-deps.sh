#!/usr/bin/env bash
# Installs the Debian packages the test suite drives as real peers (npm's `pretest` step).
# As root it installs what is missing; as another user it prints the exact command and fails.
set -euo pipefail

# command → Debian package
declare -A NEEDED=(
  [sipp]=sip-tester
  [rtpengine]=rtpengine-daemon
  [ip]=iproute2
  [openssl]=openssl
  # coturn's Debian service stays off (TURNSERVER_ENABLED unset in /etc/default/coturn): the tests start their own
  [turnserver]=coturn
  # the web console's tests drive headless Chromium over the DevTools protocol
  [chromium]=chromium
  # the conference tests start their own Janus (videoroom) each; the package's own service is stopped at the end
  [janus]=janus
  # janus-pp-rec turns the videoroom's .mjr recordings into media files
  [janus-pp-rec]=janus-tools
  # the shared-state tests start their own redis-server for the outage case (the machine's Redis serves the rest)
  [redis-server]=redis-server
)

missing=()
for cmd in "${!NEEDED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEEDED[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "The tests need these Debian packages: ${missing[*]}" >&2
  echo "Install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "pretest: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# a package that installed without its command is as missing as one that did not install (under CI too)
for cmd in "${!NEEDED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "pretest: ${NEEDED[$cmd]} is installed but $cmd is not on PATH" >&2; exit 1; }
done
# Janus's package enables and starts its service (where policy-rc.d does not forbid it): the tests start their own, each
# with a generated config on free ports, so the stock one is stopped and kept from starting at boot.
if [[ " ${missing[*]} " == *' janus '* ]]; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now janus.service >/dev/null 2>&1 || true
  else
    invoke-rc.d janus stop >/dev/null 2>&1 || true
    update-rc.d janus disable >/dev/null 2>&1 || true
  fi
fi
