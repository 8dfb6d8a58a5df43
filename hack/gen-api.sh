#!/usr/bin/env bash
# Regenerates the deepcopy functions of api/ and the CRDs in charts/netguard/crds
# from the kubebuilder markers. Run after changing a type in api/; the tests in
# api/v1alpha1 fail when the CRD and the Go types disagree.
set -euo pipefail

CONTROLLER_GEN_VERSION="${CONTROLLER_GEN_VERSION:-v0.23.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

controller_gen() {
  go run "sigs.k8s.io/controller-tools/cmd/controller-gen@${CONTROLLER_GEN_VERSION}" "$@"
}

controller_gen object paths=./api/...
controller_gen crd paths=./api/... output:crd:artifacts:config=charts/netguard/crds
