#!/usr/bin/env python3
"""What a schema cannot check in the rendered manifests and the Spinnaker pipelines.

    python3 k8s/check.py NEARLINE_BINARY RENDERED_DIR

RENDERED_DIR holds `<overlay>.yaml` for every overlay (`kubectl kustomize
k8s/overlays/<overlay>`); scripts/test.sh renders them, validates them with
kubernetes-validate --strict, then runs this. Checks, per overlay:

- every Service selects the pods of some workload; a ReplicaSet's Service (named in
  `traffic.spinnaker.io/load-balancers`) exists and its selector shares no label key with
  the ReplicaSet's selector (Spinnaker's red/black adds and removes the Service's labels on
  pods; the ReplicaSet must keep owning them either way); Spinnaker moniker annotations;
- the configuration every container mounts is accepted by `nearline config --config FILE
  print` (so every key is a real configuration key), and the probes (`/readyz`, `/livez`)
  and ports are the ones that configuration gives the service, bound on 0.0.0.0;
- terminationGracePeriodSeconds exceeds preStop sleep + the service's grace_period;
- requests and limits, non-root, read-only root filesystem; a PodDisruptionBudget per
  server group; no committed Secret outside dev; HPAs for ingest, insights, billboard
  only (prod);

and for k8s/spinnaker/*.json: every manifest a stage deploys is the prod render's
resource of that kind and name, every Service and server group a stage names exists, the
stage graph is well-formed, and the files are what generate.py writes today.
"""

import copy
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml

SERVICES = ["ingest", "attribution", "insights", "billboard"]
HPA_SERVICES = {"ingest", "insights", "billboard"}
SEQUENCE = "moniker.spinnaker.io/sequence"
ROOT = Path(__file__).resolve().parent.parent

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def duration_seconds(text):
    """Durations as `nearline config print` writes them (humantime): `20s`, `1m 30s`, `2h`."""
    units = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "days": 86400, "d": 86400}
    total = 0.0
    for part in text.split():
        number = "".join(c for c in part if c.isdigit() or c == ".")
        unit = part[len(number):]
        if unit not in units:
            raise ValueError(f"duration {text!r}: unit {unit!r}")
        total += float(number) * units[unit]
    return total


def effective_config(binary, toml_text, where):
    """The configuration `nearline` makes of this file, or None (with a problem) if it refuses it."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(toml_text)
    result = subprocess.run([binary, "--config", f.name, "config", "print"], capture_output=True, text=True)
    Path(f.name).unlink()
    if result.returncode != 0:
        problem(where, f"nearline refuses the configuration:\n{result.stderr.strip()}")
        return None
    return tomllib.loads(result.stdout)


def pods_of(doc):
    """(labels, pod spec) of a workload's template, or None."""
    if doc["kind"] in ("ReplicaSet", "Deployment", "StatefulSet", "DaemonSet"):
        template = doc["spec"]["template"]
        return template["metadata"].get("labels", {}), template["spec"]
    if doc["kind"] == "Job":
        template = doc["spec"]["template"]
        return template["metadata"].get("labels", {}), template["spec"]
    return None


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_overlay(name, docs, binary):
    index = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    workloads = [d for d in docs if pods_of(d) is not None]

    for service in (d for d in docs if d["kind"] == "Service"):
        where = f"{name}: Service {service['metadata']['name']}"
        selector = service["spec"].get("selector", {})
        if not any(selects(selector, pods_of(w)[0]) for w in workloads):
            problem(where, f"selector {selector} matches the pods of no workload")

    if name != "dev" and any(d["kind"] == "Secret" for d in docs):
        problem(name, "a Secret is committed; reference nearline-secrets, do not define it")

    configs = {}
    for cm_name, cm in config_maps.items():
        if "nearline.toml" in cm.get("data", {}):
            configs[cm_name] = effective_config(binary, cm["data"]["nearline.toml"], f"{name}: ConfigMap {cm_name}")

    for service in SERVICES:
        rs_name = f"nearline-{service}"
        rs = index.get(("ReplicaSet", rs_name))
        where = f"{name}: ReplicaSet {rs_name}"
        if rs is None:
            problem(name, f"no ReplicaSet {rs_name}")
            continue
        annotations = rs["metadata"].get("annotations", {})
        for key, want in [
            ("moniker.spinnaker.io/application", "nearline"),
            ("moniker.spinnaker.io/cluster", f"replicaSet {rs_name}"),
        ]:
            if annotations.get(key) != want:
                problem(where, f"annotation {key} is {annotations.get(key)!r}, want {want!r}")
        if not str(annotations.get(SEQUENCE, "")).isdigit():
            problem(where, f"annotation {SEQUENCE} must be a number")
        selector = rs["spec"]["selector"].get("matchLabels", {})
        labels, pod = pods_of(rs)
        if rs["spec"]["selector"].get("matchExpressions") or not selects(selector, labels):
            problem(where, "selector must be matchLabels that its own pod template carries")
        balancers = json.loads(annotations.get("traffic.spinnaker.io/load-balancers", "[]"))
        if balancers != [f"service {rs_name}"]:
            problem(where, f"traffic.spinnaker.io/load-balancers is {balancers}, want ['service {rs_name}']")
        svc = index.get(("Service", rs_name))
        if svc is None:
            problem(where, f"its Service {rs_name} does not exist")
        else:
            svc_selector = svc["spec"].get("selector", {})
            shared = set(svc_selector) & set(selector)
            if shared:
                problem(where, f"shares label keys {sorted(shared)} with Service {rs_name}'s selector")
            if not selects(svc_selector, labels):
                problem(where, f"pods do not carry Service {rs_name}'s selector {svc_selector}")
        pdbs = [
            d
            for d in docs
            if d["kind"] == "PodDisruptionBudget" and selects(d["spec"]["selector"].get("matchLabels", {}), labels)
        ]
        if not pdbs:
            problem(where, "no PodDisruptionBudget covers its pods")

        check_pod(where, service, pod, configs, svc)

        hpa = index.get(("HorizontalPodAutoscaler", rs_name))
        if name == "prod" and (service in HPA_SERVICES) != (hpa is not None):
            problem(where, "ingest, insights and billboard have an HPA in prod; attribution scales by partitions")
        if hpa is not None and hpa["spec"]["scaleTargetRef"] != {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name}:
            problem(f"{name}: HPA {rs_name}", "must target its ReplicaSet")

    check_mirrors(name, docs, configs)

    job = index.get(("Job", "nearline-migrate"))
    if job is None:
        problem(name, "no Job nearline-migrate")
    else:
        pod = pods_of(job)[1]
        container = pod["containers"][0]
        if container.get("args", [])[-1:] != ["migrate"]:
            problem(f"{name}: Job nearline-migrate", "does not run `nearline migrate`")
        check_container_basics(f"{name}: Job nearline-migrate", pod, container)
        config_of(f"{name}: Job nearline-migrate", pod, container, configs)
    return index


MIRRORED_TOPICS = {"nearline.impressions.v1", "nearline.plays.v1"}
LOCAL_ONLY_TOPICS = {"nearline.outcomes.v1", "nearline.late.v1"}


def check_mirrors(name, docs, configs):
    """KafkaMirrorMaker2 resources agree with the `kafka.mirrored_regions` nearline reads.

    kubernetes-validate has no schema for Strimzi's resources, so this checks what the
    pairing needs: MirrorMaker writes into this region's cluster (its connectCluster, the
    region's `ingest.default_region`), mirrors exactly the impressions and plays topics,
    names the copies `<source>.<topic>` (DefaultReplicationPolicy, separator "."), and its
    source regions are the configuration's `kafka.mirrored_regions`.
    """
    mirrored = {tuple(c.get("kafka", {}).get("mirrored_regions", [])) for c in configs.values() if c}
    mirror_makers = [d for d in docs if d["kind"] == "KafkaMirrorMaker2"]
    sources = set()
    for mm in mirror_makers:
        where = f"{name}: KafkaMirrorMaker2 {mm['metadata']['name']}"
        spec = mm["spec"]
        aliases = {c["alias"] for c in spec.get("clusters", [])}
        target = spec.get("connectCluster")
        if target not in aliases:
            problem(where, f"connectCluster {target!r} is not one of its clusters {sorted(aliases)}")
        regions = {c.get("ingest", {}).get("default_region") for c in configs.values() if c}
        if regions != {target}:
            problem(where, f"writes into {target!r}, but nearline here is region {sorted(map(str, regions))}")
        for mirror in spec.get("mirrors", []):
            source = mirror.get("sourceCluster")
            sources.add(source)
            if source not in aliases or source == target:
                problem(where, f"sourceCluster {source!r} must be another of its clusters")
            if mirror.get("targetCluster") != target:
                problem(where, f"targetCluster {mirror.get('targetCluster')!r} is not connectCluster {target!r}")
            pattern = re.compile(mirror.get("topicsPattern", ".*"))
            matched = {t for t in MIRRORED_TOPICS | LOCAL_ONLY_TOPICS if pattern.fullmatch(t)}
            if matched != MIRRORED_TOPICS:
                problem(where, f"topicsPattern mirrors {sorted(matched)}, want exactly {sorted(MIRRORED_TOPICS)}")
            config = mirror.get("sourceConnector", {}).get("config", {})
            policy = config.get("replication.policy.class", "org.apache.kafka.connect.mirror.DefaultReplicationPolicy")
            if not policy.endswith(".DefaultReplicationPolicy") or config.get("replication.policy.separator", ".") != ".":
                problem(where, "copies must be named <source>.<topic> (DefaultReplicationPolicy, separator '.')")
    for regions in mirrored:
        if set(regions) != sources:
            problem(name, f"kafka.mirrored_regions is {sorted(regions)}, but MirrorMaker 2 brings {sorted(sources)}")


def check_container_basics(where, pod, container):
    resources = container.get("resources", {})
    for kind in ("requests", "limits"):
        for what in ("cpu", "memory"):
            if what not in resources.get(kind, {}):
                problem(where, f"no {kind}.{what}")
    pod_security = pod.get("securityContext", {})
    security = container.get("securityContext", {})
    if not (pod_security.get("runAsNonRoot") or security.get("runAsNonRoot")):
        problem(where, "must run as non-root")
    if not security.get("readOnlyRootFilesystem"):
        problem(where, "root filesystem must be read-only")
    if security.get("allowPrivilegeEscalation", True):
        problem(where, "allowPrivilegeEscalation must be false")
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref and not ref["name"].startswith("nearline-secrets"):
            problem(where, f"{env['name']} comes from Secret {ref['name']}, not nearline-secrets")
    if "value" in next((e for e in container.get("env", []) if e["name"] == "NEARLINE__DATABASE__URL"), {"value": 0}):
        problem(where, "NEARLINE__DATABASE__URL must come from the Secret")


def config_of(where, pod, container, configs):
    """The effective configuration the container reads with --config, or None."""
    args = container.get("args", [])
    if "--config" not in args:
        problem(where, "does not pass --config")
        return None
    path = Path(args[args.index("--config") + 1])
    mount = next((m for m in container.get("volumeMounts", []) if Path(m["mountPath"]) == path.parent), None)
    volume = mount and next((v for v in pod.get("volumes", []) if v["name"] == mount["name"]), None)
    cm_name = volume and volume.get("configMap", {}).get("name")
    if not cm_name or cm_name not in configs:
        problem(where, f"{path} is not a mounted ConfigMap holding nearline.toml")
        return None
    return configs[cm_name]


def check_pod(where, service, pod, configs, svc):
    containers = pod["containers"]
    if len(containers) != 1:
        problem(where, "one container expected")
        return
    container = containers[0]
    check_container_basics(where, pod, container)
    if container.get("args", [])[-2:] != ["serve", service]:
        problem(where, f"does not run `nearline serve {service}`")
    config = config_of(where, pod, container, configs)
    if config is None:
        return
    section = config[service]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if section["host"] != "0.0.0.0":
        problem(where, f"{service}.host is {section['host']}; pods must bind 0.0.0.0")
    for port_name, key in [("http", "http_port"), ("grpc", "grpc_port")]:
        if ports.get(port_name) != section[key]:
            problem(where, f"container port {port_name} is {ports.get(port_name)}, {service}.{key} is {section[key]}")
    for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/livez")]:
        http = container.get(probe, {}).get("httpGet")
        if not http:
            problem(where, f"no HTTP {probe}")
            continue
        port = http["port"]
        number = ports.get(port) if isinstance(port, str) else port
        if http.get("path") != path or number != section["http_port"]:
            problem(where, f"{probe} is {http.get('path')} on {port}, want {path} on {service}.http_port {section['http_port']}")
    if svc is not None:
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if (ports.get(target) if isinstance(target, str) else target) not in ports.values():
                problem(where, f"Service port {port['name']} targets {target}, which the container does not expose")
    grace = duration_seconds(section["grace_period"])
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if len(pre_stop) != 2 or pre_stop[0] != "sleep":
        problem(where, "preStop must be `sleep N` so endpoints drain before SIGTERM")
        sleep = 0
    else:
        sleep = float(pre_stop[1])
    budget = pod.get("terminationGracePeriodSeconds", 30)
    if not budget > sleep + grace:
        problem(where, f"terminationGracePeriodSeconds {budget} must exceed preStop {sleep:g}s + {service}.grace_period {grace:g}s")


def check_pipelines(prod_index, prod_text):
    directory = ROOT / "k8s" / "spinnaker"
    with tempfile.TemporaryDirectory() as fresh:
        subprocess.run(
            [sys.executable, str(directory / "generate.py"), fresh], input=prod_text, text=True, check=True
        )
        for generated in sorted(Path(fresh).glob("*.json")):
            committed = directory / generated.name
            if not committed.exists() or committed.read_text() != generated.read_text():
                problem(f"k8s/spinnaker/{generated.name}", "out of date: run bash scripts/check-k8s.sh --write-pipelines")
    clusters = {
        d["metadata"]["annotations"].get("moniker.spinnaker.io/cluster")
        for (kind, _), d in prod_index.items()
        if kind == "ReplicaSet"
    }
    pipelines = sorted(directory.glob("*.json"))
    for service in SERVICES:
        for kind in ("deploy", "rollback"):
            if directory / f"{kind}-{service}.json" not in pipelines:
                problem("k8s/spinnaker", f"no {kind}-{service}.json")
    for path in pipelines:
        pipeline = json.loads(path.read_text())
        refs = {s["refId"] for s in pipeline["stages"]}
        artifacts = {a["id"] for a in pipeline.get("expectedArtifacts", [])}
        for stage in pipeline["stages"]:
            where = f"{path.name}: stage {stage['refId']} ({stage['name']})"
            for dep in stage["requisiteStageRefIds"]:
                if dep not in refs:
                    problem(where, f"depends on missing stage {dep}")
            manifests = stage.get("manifests", []) + ([stage["manifest"]] if "manifest" in stage else [])
            for manifest in manifests:
                key = (manifest["kind"], manifest["metadata"]["name"])
                rendered = copy.deepcopy(prod_index.get(key))
                if rendered and key[0] == "ReplicaSet":
                    # Spinnaker assigns the sequence of the server groups it deploys.
                    if SEQUENCE in manifest["metadata"].get("annotations", {}):
                        problem(where, f"ReplicaSet {key[1]} must leave {SEQUENCE} to Spinnaker")
                    rendered["metadata"]["annotations"].pop(SEQUENCE, None)
                if rendered != manifest:
                    problem(where, f"deploys {key[0]} {key[1]}, which is not the prod render's")
            traffic = stage.get("trafficManagement", {})
            if traffic.get("enabled"):
                options = traffic["options"]
                if options.get("strategy") != "redblack":
                    problem(where, "traffic management must be red/black")
                replica_sets = [m for m in manifests if m["kind"] == "ReplicaSet"]
                if len(replica_sets) != 1:
                    problem(where, "red/black manages exactly one ReplicaSet per stage")
                for named in options["services"]:
                    kind, _, svc = named.partition(" ")
                    if kind != "service" or ("Service", svc) not in prod_index:
                        problem(where, f"names Service {named!r}, which the prod render does not have")
                    for rs in replica_sets:
                        balancers = json.loads(rs["metadata"]["annotations"]["traffic.spinnaker.io/load-balancers"])
                        if named not in balancers:
                            problem(where, f"ReplicaSet {rs['metadata']['name']} is not attached to {named}")
            if stage.get("mode") == "dynamic" and stage.get("cluster") not in clusters:
                problem(where, f"targets cluster {stage.get('cluster')!r}, which no ReplicaSet's moniker names")
            for artifact in stage.get("requiredArtifactIds", []):
                if artifact not in artifacts:
                    problem(where, f"requires artifact {artifact}, which the pipeline does not expect")


def main():
    binary, rendered = sys.argv[1], Path(sys.argv[2])
    indexes = {}
    texts = {}
    for path in sorted(rendered.glob("*.yaml")):
        texts[path.stem] = path.read_text()
        docs = [d for d in yaml.safe_load_all(texts[path.stem]) if d]
        indexes[path.stem] = check_overlay(path.stem, docs, binary)
    for needed in ("dev", "prod"):
        if needed not in indexes:
            problem(str(rendered), f"no {needed}.yaml")
    if "prod" in indexes:
        check_pipelines(indexes["prod"], texts["prod"])
    if problems:
        print(f"k8s check: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        sys.exit(1)
    print(f"k8s check: overlays {', '.join(sorted(indexes))} and {len(list((ROOT / 'k8s' / 'spinnaker').glob('*.json')))} pipelines are consistent")


if __name__ == "__main__":
    main()
