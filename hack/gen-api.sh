#!/usr/bin/env bash
# Regenerates the deepcopy functions of api/ and the CRDs in charts/netguard/crds
# from the kubebuilder markers (`make generate`). Run after changing a type in
# api/; the tests in api/v1alpha1 fail when the CRD and the Go types disagree.
#
# With --verify (`make verify-generated`) it regenerates, reports every
# difference from the files in the tree, puts those files back as they were,
# and fails when there was a difference: the working tree is left untouched.
#
# controller-gen is pinned by the tool directive in hack/tools/go.mod and
# built into bin/tools; CONTROLLER_GEN overrides the binary.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

verify=false
case "${1:-}" in
  --verify) verify=true ;;
  "") ;;
  *) echo "usage: hack/gen-api.sh [--verify]" >&2; exit 2 ;;
esac

if [[ -z "${CONTROLLER_GEN:-}" ]]; then
  CONTROLLER_GEN="${ROOT}/bin/tools/controller-gen"
  go -C hack/tools build -o "${ROOT}/bin/tools/" sigs.k8s.io/controller-tools/cmd/controller-gen
fi

# generated lists the files controller-gen writes, relative to ROOT.
generated() {
  find api -name 'zz_generated.*.go'
  find charts/netguard/crds -name '*.yaml'
}

generate() {
  "${CONTROLLER_GEN}" object paths=./api/...
  "${CONTROLLER_GEN}" crd paths=./api/... output:crd:artifacts:config=charts/netguard/crds
}

if ! ${verify}; then
  generate
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
mkdir -p "${tmp}/tree" "${tmp}/generated"
generated | tar -cf "${tmp}/tree.tar" -T -
tar -xf "${tmp}/tree.tar" -C "${tmp}/tree"
restore() {
  generated | xargs -r rm -f
  tar -xf "${tmp}/tree.tar"
}
trap 'restore; rm -rf "${tmp}"' EXIT
generate
generated | tar -cf - -T - | tar -xf - -C "${tmp}/generated"
if ! diff -ru "${tmp}/tree" "${tmp}/generated"; then
  echo "generated files are out of date (diff above: tree, then generated): run make generate and commit the result" >&2
  exit 1
fi
echo "generated files are up to date"
