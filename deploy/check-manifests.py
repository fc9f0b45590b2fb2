#!/usr/bin/env python3
"""Asserts what the rendered Helm chart must hold, from the values it was rendered with.

    check-manifests.py RENDERED.yaml VALUES.yaml [KEY=VALUE ...]

VALUES.yaml is the chart's values.yaml; KEY=VALUE are the same `--set` overrides the
render used (dotted keys, YAML values), so every expectation comes from the values and
none is written twice. Checks, per enabled role: the Deployment (`--roles`, probes on
/readyz and /healthz, the preStop sleep, terminationGracePeriodSeconds covering the preStop
sleep and Ingot's drain, non-root), its HorizontalPodAutoscaler (min/max replicas, CPU and
custom-metric targets) and PodDisruptionBudget; the Services (CoAP over UDP); the
ConfigMap's ingot.toml (the drain time Ingot is told). Exits non-zero naming every failure.
"""

import sys
import tomllib

import yaml

ROLES = [("ingest", "ingest"), ("storeWriter", "store-writer"), ("query", "query")]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def set_value(values, dotted, raw):
    keys = dotted.split(".")
    node = values
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = yaml.safe_load(raw)


def main():
    rendered, values_path, *overrides = sys.argv[1:]
    with open(values_path) as f:
        values = yaml.safe_load(f)
    for override in overrides:
        key, _, raw = override.partition("=")
        set_value(values, key, raw)
    with open(rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    full = "ingot"  # release `ingot`, chart `ingot`

    grace = values["config"]["shutdownGraceSeconds"]
    pre_stop = values["preStopSleepSeconds"]
    termination = values["terminationGracePeriodSeconds"]
    check(termination >= pre_stop + grace + 5,
          f"terminationGracePeriodSeconds {termination} < preStop {pre_stop} + grace {grace} + 5")

    config_maps = by_kind.get("ConfigMap", {})
    check(f"{full}-config" in config_maps, "the ConfigMap is missing")
    if f"{full}-config" in config_maps:
        toml = tomllib.loads(config_maps[f"{full}-config"]["data"]["ingot.toml"])
        check(toml.get("shutdown_grace") == f"{grace}s",
              f"ingot.toml shutdown_grace {toml.get('shutdown_grace')!r} != {grace}s")
        check(toml["log"]["partitions"] == values["log"]["partitions"], "log.partitions")
        check(toml["nats"]["replicas"] == values["log"]["replicas"], "nats.replicas")
        check("log_url" not in toml and "store_url" not in toml,
              "credentials must not be in the ConfigMap")
    secret_name = values["existingSecret"] or f"{full}-backends"
    check((f"{full}-backends" in by_kind.get("Secret", {})) == (not values["existingSecret"]),
          "the chart creates the Secret exactly when existingSecret is empty")

    for key, role in ROLES:
        v = values[key]
        name = f"{full}-{role}"
        deployments = by_kind.get("Deployment", {})
        if not v["enabled"]:
            check(name not in deployments, f"{role} is disabled but has a Deployment")
            continue
        check(name in deployments, f"no Deployment {name}")
        if name not in deployments:
            continue
        dep = deployments[name]
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        args = c["args"]
        check(args[-2:] == ["--roles", role], f"{name} args {args}")
        check(pod["terminationGracePeriodSeconds"] == termination, f"{name} terminationGracePeriodSeconds")
        check(c["lifecycle"]["preStop"]["sleep"]["seconds"] == pre_stop, f"{name} preStop sleep")
        check(c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, f"{name} readinessProbe")
        check(c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, f"{name} livenessProbe")
        check(c["startupProbe"]["httpGet"]["path"] == "/healthz", f"{name} startupProbe")
        check(pod["securityContext"].get("runAsNonRoot") is True, f"{name} runAsNonRoot")
        check(c["securityContext"].get("readOnlyRootFilesystem") is True, f"{name} readOnlyRootFilesystem")
        ports = {p["name"]: p["protocol"] for p in c["ports"]}
        check(ports.get("http") == "TCP", f"{name} http port")
        if role == "ingest":
            check(ports.get("coap") == "UDP" and ports.get("mqtt") == "TCP", f"{name} device ports {ports}")
        else:
            check("coap" not in ports and "mqtt" not in ports, f"{name} has device ports {ports}")
        env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
        check(env.get("INGOT_STORE", {}).get("name") == secret_name, f"{name} INGOT_STORE from {secret_name}")
        if role == "query":
            check("INGOT_LOG" not in env, f"{name} gets the log's credentials it does not need")
        else:
            check(env.get("INGOT_LOG", {}).get("name") == secret_name, f"{name} INGOT_LOG from {secret_name}")

        a = v["autoscaling"]
        hpas = by_kind.get("HorizontalPodAutoscaler", {})
        if a["enabled"]:
            check("replicas" not in dep["spec"], f"{name} sets replicas while autoscaled")
            check(name in hpas, f"no HorizontalPodAutoscaler {name}")
            if name in hpas:
                hpa = hpas[name]["spec"]
                check(hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                      f"{name} HPA target")
                check(hpa["minReplicas"] == a["minReplicas"], f"{name} minReplicas")
                check(hpa["maxReplicas"] == a["maxReplicas"], f"{name} maxReplicas")
                metrics = hpa["metrics"]
                cpu = [m for m in metrics if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
                check(len(cpu) == 1 and cpu[0]["resource"]["target"]["averageUtilization"]
                      == a["targetCPUUtilizationPercentage"], f"{name} CPU target")
                m = a["customMetric"]
                custom = [x for x in metrics if x["type"] in ("Pods", "External")]
                if m["enabled"]:
                    check(len(custom) == 1, f"{name} custom metric missing")
                    if custom:
                        body = custom[0][custom[0]["type"].lower()]
                        check(custom[0]["type"] == m["type"], f"{name} custom metric type")
                        check(body["metric"]["name"] == m["name"], f"{name} custom metric name")
                        check(body["target"] == {"type": "AverageValue",
                                                 "averageValue": str(m["targetAverageValue"])},
                              f"{name} custom metric target {body['target']}")
                else:
                    check(not custom, f"{name} has a custom metric that is disabled")
        else:
            check(name not in hpas, f"{name} has an HPA while autoscaling is disabled")
            check(dep["spec"].get("replicas") == v["replicas"], f"{name} replicas")

        pdbs = by_kind.get("PodDisruptionBudget", {})
        if v["pdb"]["enabled"]:
            check(name in pdbs and pdbs[name]["spec"]["maxUnavailable"] == v["pdb"]["maxUnavailable"],
                  f"{name} PodDisruptionBudget")
            if name in pdbs:
                check(pdbs[name]["spec"]["selector"]["matchLabels"]
                      == dep["spec"]["selector"]["matchLabels"], f"{name} PDB selects its pods")

    services = by_kind.get("Service", {})
    if values["ingest"]["enabled"]:
        svc = services.get(f"{full}-ingest")
        check(svc is not None, "no ingest Service")
        if svc:
            ports = {p["name"]: (p["protocol"], p["port"]) for p in svc["spec"]["ports"]}
            s = values["ingest"]["service"]
            check(ports.get("coap") == ("UDP", s["coapPort"]), f"ingest Service CoAP {ports}")
            check(ports.get("mqtt") == ("TCP", s["mqttPort"]), f"ingest Service MQTT {ports}")
            check(ports.get("http") == ("TCP", s["httpPort"]), f"ingest Service HTTP {ports}")
    if values["query"]["enabled"]:
        check(f"{full}-query" in services, "no query Service")

    if failures:
        print(f"{rendered}: {len(failures)} problem(s):")
        for f in failures:
            print(f"  - {f}")
        sys.exit(1)
    print(f"{rendered}: {len(docs)} manifests hold what the values say")


if __name__ == "__main__":
    main()
