#!/usr/bin/env bash
# Builds the NetworkPolicy dataplane that e2e/dataplane and `make run` drive:
# kube-network-policies (the Kubernetes SIG Network reference implementation),
# compiled from its Go module into bin/dataplane once, and Debian's iptables,
# whose NFQUEUE target stands in for the nftables queue expression on kernels
# without it. Later runs return at once. See docs/dataplane.md.
#
# kube-network-policies pins its own client-go, so it is built as its own
# binary with `go install` and never enters netguard's go.mod.
set -euo pipefail

KNP_VERSION="${KNP_VERSION:-v0.8.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${ROOT}/bin/dataplane"
STAMP="${OUT}/.versions"
WANT="kube-network-policies=${KNP_VERSION}"
log() { printf 'dataplane-assets: %s\n' "$*" >&2; }

# iptables is needed only where the kernel lacks the nftables queue expression,
# but it is cheap, and which kernel a CI machine has is not known in advance.
if ! command -v iptables >/dev/null 2>&1 || ! command -v nft >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian's iptables and nftables"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables nftables >/dev/null
  else
    log "iptables or nft is missing and cannot be installed here (needs root and apt-get); the dataplane tests will say so"
  fi
fi

if [[ -f "${STAMP}" && "$(cat "${STAMP}")" == "${WANT}" && -x "${OUT}/kube-network-policies" ]]; then
  exit 0
fi

mkdir -p "${OUT}"
log "building kube-network-policies ${KNP_VERSION} (about 4 minutes on 2 cores)"
tmp="$(mktemp -d "${OUT}/.build.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
# The module's main package is its cmd directory, so go install names it "cmd".
GOBIN="${tmp}" GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" \
  "sigs.k8s.io/kube-network-policies/cmd@${KNP_VERSION}"
mv -f "${tmp}/cmd" "${OUT}/kube-network-policies"
printf '%s' "${WANT}" > "${STAMP}"
log "ready in ${OUT}"
