#!/usr/bin/env bash
# Builds a real local control plane (etcd, kube-apiserver, kube-controller-manager,
# kubectl) from Go modules into bin/k8s, once. Later runs reuse what is there.
# There is no Docker on our machines and no binary downloads outside the Go module
# proxy, so everything is compiled from source.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${ROOT}/bin/k8s"
WORK="${ROOT}/bin/.k8s-build"
STAMP="${OUT}/.versions"
WANT="kubernetes=${K8S_VERSION} etcd=${ETCD_VERSION}"

if [[ -f "${STAMP}" && "$(cat "${STAMP}")" == "${WANT}" ]] \
  && [[ -x "${OUT}/etcd" && -x "${OUT}/kube-apiserver" && -x "${OUT}/kube-controller-manager" && -x "${OUT}/kubectl" ]]; then
  exit 0
fi

mkdir -p "${OUT}" "${WORK}/k8s" "${WORK}/etcd"
log() { printf 'envtest-assets: %s\n' "$*" >&2; }

# etcd: a one-line module is enough.
if [[ ! -x "${OUT}/etcd" ]]; then
  log "building etcd ${ETCD_VERSION} (about a minute)"
  (
    cd "${WORK}/etcd"
    cat > go.mod <<MOD
module netguard.local/etcd-build

go 1.26

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
MOD
    printf 'package tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
    GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "${OUT}/etcd" go.etcd.io/etcd/server/v3
  )
fi

# Kubernetes: the main module lists its staging repos at v0.0.0, so each needs a
# replace to the published v0.X.Y tag before the module graph resolves.
need_k8s=0
for b in kube-apiserver kube-controller-manager kubectl; do
  [[ -x "${OUT}/${b}" ]] || need_k8s=1
done
if (( need_k8s )); then
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  staging="v0.${K8S_VERSION#v1.}"
  log "building kube-apiserver, kube-controller-manager and kubectl ${K8S_VERSION} (a few minutes on 2 cores)"
  (
    cd "${WORK}/k8s"
    GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" > mod.json
    kgomod="$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' mod.json | head -1)"
    {
      printf 'module netguard.local/k8s-build\n\ngo 1.26\n\nrequire k8s.io/kubernetes %s\n\n' "${K8S_VERSION}"
      grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging' "${kgomod}" | awk -v v="${staging}" '{print "replace " $1 " => " $1 " " v}'
    } > go.mod
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubectl/pkg/cmd"
)
GO
    GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
    ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/client-go/pkg/version.gitVersion=${K8S_VERSION} -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=${minor}"
    for b in kube-apiserver kube-controller-manager kubectl; do
      [[ -x "${OUT}/${b}" ]] && continue
      log "  go build ${b}"
      GOFLAGS=-mod=mod go build -trimpath -ldflags "${ldflags}" -o "${OUT}/${b}" "k8s.io/kubernetes/cmd/${b}"
    done
  )
fi

printf '%s' "${WANT}" > "${STAMP}"
log "ready in ${OUT}"
