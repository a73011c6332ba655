#!/usr/bin/env python3
"""Writes the Spinnaker pipelines (one deploy and one rollback pipeline per service) from
the rendered prod overlay, so the manifests a pipeline deploys are exactly what
`kubectl kustomize k8s/overlays/prod` renders.

    bash scripts/check-k8s.sh --write-pipelines
    # or: kubectl kustomize k8s/overlays/prod | python3 k8s/spinnaker/generate.py k8s/spinnaker

scripts/test.sh runs it into a temporary directory and fails when the committed JSON
differs (run the line above and commit the result). Needs PyYAML (the check script's
virtualenv has it).
"""

import copy
import json
import sys
from pathlib import Path

import yaml

APPLICATION = "nearline"
NAMESPACE = "nearline"
# The Spinnaker account (Kubernetes cluster) the pipelines deploy to; change it here.
ACCOUNT = "nearline-prod"
# Spinnaker numbers server groups itself (…-v001, -v002); the base's sequence annotation
# is for plain `kubectl apply` and is left out of what the pipelines deploy.
SEQUENCE = "moniker.spinnaker.io/sequence"
SERVICES = ["ingest", "attribution", "insights", "billboard"]


def parameters():
    return [
        {
            "name": "rollbackWindowSeconds",
            "label": "How long the previous server group is kept, out of traffic, for rollback",
            "default": "3600",
            "required": True,
        },
    ]


def image_artifact():
    # Bound by the trigger (a new image tag); Spinnaker substitutes it for every
    # `image: nearline:...` in the deployed manifests.
    return {
        "id": "nearline-image",
        "displayName": "nearline image",
        "matchArtifact": {"type": "docker/image", "name": "nearline"},
        "useDefaultArtifact": False,
        "usePriorArtifact": False,
    }


def target(service, criteria):
    """A dynamic target: the server group of `service` chosen by `criteria`."""
    return {
        "account": ACCOUNT,
        "cloudProvider": "kubernetes",
        "app": APPLICATION,
        "location": NAMESPACE,
        "mode": "dynamic",
        "kind": "replicaSet",
        "cluster": f"replicaSet nearline-{service}",
        "criteria": criteria,
    }


def stage(ref, depends_on, stage_type, name, **fields):
    return {
        "refId": str(ref),
        "requisiteStageRefIds": [str(d) for d in depends_on],
        "type": stage_type,
        "name": name,
        **fields,
    }


def by_kind_and_name(docs):
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def server_group(doc):
    """A ReplicaSet as the pipeline deploys it: without the sequence Spinnaker assigns."""
    doc = copy.deepcopy(doc)
    doc["metadata"]["annotations"].pop(SEQUENCE, None)
    return doc


def deploy_pipeline(service, docs):
    index = by_kind_and_name(docs)
    name = f"nearline-{service}"
    config_maps = [d for d in docs if d["kind"] == "ConfigMap"]
    hpa = [index[k] for k in [("HorizontalPodAutoscaler", name)] if k in index]
    stages = [
        stage(
            1, [], "runJobManifest", "Migrate (database and topics)",
            account=ACCOUNT, cloudProvider="kubernetes", application=APPLICATION,
            source="text", manifest=index[("Job", "nearline-migrate")], consumeArtifactSource="none",
            skipExpressionEvaluation=True,
        ),
        stage(
            2, [1], "deployManifest", "Service and disruption budget",
            account=ACCOUNT, cloudProvider="kubernetes", moniker={"app": APPLICATION},
            namespaceOverride=NAMESPACE, source="text", skipExpressionEvaluation=True,
            manifests=[index[("Service", name)], index[("PodDisruptionBudget", name)]],
        ),
        # Red/black: Spinnaker deploys the next server group (…-vNNN) next to the current
        # one, waits until it is stable (every pod ready: /readyz), attaches it to the
        # Service, and only then takes the previous one out of the Service.
        stage(
            3, [2], "deployManifest", "Deploy server group (red/black), wait until healthy",
            account=ACCOUNT, cloudProvider="kubernetes", moniker={"app": APPLICATION},
            namespaceOverride=NAMESPACE, source="text", skipExpressionEvaluation=True,
            requiredArtifactIds=["nearline-image"],
            manifests=config_maps + [server_group(index[("ReplicaSet", name)])] + hpa,
            trafficManagement={
                "enabled": True,
                "options": {
                    "enableTraffic": True,
                    "namespace": NAMESPACE,
                    "services": [f"service {name}"],
                    "strategy": "redblack",
                },
            },
        ),
        # Already out of the Service after the red/black step; explicit so that a
        # pipeline resumed after a failure leaves exactly one server group in traffic.
        stage(4, [3], "disableManifest", "Disable previous server group", **target(service, "second_newest")),
        stage(
            5, [4], "wait", "Keep previous server group for rollback",
            waitTime="${parameters.rollbackWindowSeconds}",
        ),
        # Scaling to zero sends SIGTERM: the old pods finish in-flight requests, flush,
        # commit and leave their consumer groups within terminationGracePeriodSeconds.
        stage(
            6, [5], "scaleManifest", "Scale down previous server group",
            replicas="0", **target(service, "second_newest"),
        ),
    ]
    return {
        "application": APPLICATION,
        "name": f"deploy-{service}",
        "description": f"Red/black rollout of nearline {service} (docs/operations.md). Generated by "
        "k8s/spinnaker/generate.py from the prod overlay; do not edit by hand.",
        "keepWaitingPipelines": False,
        "limitConcurrent": True,
        "parameterConfig": parameters(),
        "expectedArtifacts": [image_artifact()],
        "triggers": [],
        "stages": stages,
    }


def rollback_pipeline(service, docs):
    index = by_kind_and_name(docs)
    replicas = index[("ReplicaSet", f"nearline-{service}")]["spec"]["replicas"]
    stages = [
        # Within the rollback window the previous server group still runs and this is a
        # no-op; after it, it brings the pods back.
        stage(
            1, [], "scaleManifest", "Scale up previous server group",
            replicas=str(replicas), **target(service, "second_newest"),
        ),
        stage(2, [1], "enableManifest", "Enable previous server group", **target(service, "second_newest")),
        stage(3, [2], "disableManifest", "Disable newest server group", **target(service, "newest")),
        stage(
            4, [3], "wait", "Keep newest server group for inspection",
            waitTime="${parameters.rollbackWindowSeconds}",
        ),
        stage(5, [4], "scaleManifest", "Scale down newest server group", replicas="0", **target(service, "newest")),
    ]
    return {
        "application": APPLICATION,
        "name": f"rollback-{service}",
        "description": f"Back to the previous server group of nearline {service}, red/black (enable it, "
        "then disable the newest). After this, deploy the good version again with "
        f"deploy-{service} so the newest server group is the good one. Generated by "
        "k8s/spinnaker/generate.py; do not edit by hand.",
        "keepWaitingPipelines": False,
        "limitConcurrent": True,
        "parameterConfig": parameters(),
        "triggers": [],
        "stages": stages,
    }


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    for service in SERVICES:
        for kind, build in [("deploy", deploy_pipeline), ("rollback", rollback_pipeline)]:
            path = out / f"{kind}-{service}.json"
            path.write_text(json.dumps(build(service, docs), indent=2, sort_keys=False) + "\n")


if __name__ == "__main__":
    main()
