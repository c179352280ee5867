#!/usr/bin/env bash
# Installs, idempotently, exactly the Debian packages Bulwark needs to build,
# test, run its demo and its benchmarks. Safe to run again: it only calls apt
# when a package is missing.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config clang-format clang-tidy
  # libFuzzer (clang's runtime) for the fuzz targets
  clang libclang-rt-14-dev
  # libraries
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libssl-dev libcpp-httplib-dev libgtest-dev libgmock-dev libbenchmark-dev
  # rtnetlink for virtual IPs
  libmnl-dev
  # the replicated store and its client (etcdctl is for operators, not our code)
  etcd-server etcd-client
  # multi-process tests and benchmarks
  python3 python3-pytest procps
  # bench/proxy: the competitor, the load generator and a fast backend
  haproxy wrk nginx
  # OCF resource agents (ocf:heartbeat:Dummy and the rest) and fence agents
  resource-agents fence-agents
  # the network-namespace testbed: namespaces and links, partitions, and
  # bench/vip's competitor
  iproute2 nftables keepalived
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
  # Debian's etcd-server package starts its own etcd.service on install; that
  # is not the etcd Bulwark runs, so keep invoke-rc.d from starting services.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null
    $SUDO chmod +x $policy
    created_policy=1
  fi
  trap '[[ $created_policy == 1 ]] && $SUDO rm -f $policy' EXIT
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# Where systemd runs, make sure Debian's own etcd.service is not running: its
# member would be a stranger to every Bulwark cluster.
if [[ -d /run/systemd/system ]] && systemctl is-enabled --quiet etcd.service 2>/dev/null; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO systemctl disable --now etcd.service || true
fi
exit 0
