"""The chart rendered with several sets of values, validated against the Kubernetes 1.36 schemas
(kubernetes-validate --strict) and checked object by object: hardened pods, probes, resources,
selectors that select, PDB/HPA/ServiceMonitor/NetworkPolicy pointing at the right things, and
secrets only ever in Secrets."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from services.common.config import Env, topic_settings
from services.common.healthcheck import parse_target
from services.common.kafka_clients import DAY_MS, FOREVER
from tests.charts.helm import CHART_DIR, NAMESPACE, ROOT, Manifest, matches, validate
from tests.charts.service_code import required_settings

ALL_SERVICES = ("registration", "ordering", "points", "training", "media", "notification", "rollup", "gateway")
GRPC_SERVICES = tuple(s for s in ALL_SERVICES if s != "gateway")

# What each service reads from Secrets (README "Configuration" and the services' own settings).
SECRET_ENV = {
    "registration": {"JWT_PUBLIC_KEY", "JWT_PRIVATE_KEY", "PII_ENCRYPTION_KEYS", "PII_BLIND_INDEX_KEYS", "MONGODB_URI"},
    "ordering": {"JWT_PUBLIC_KEY", "CHECKIN_CODE_KEY", "PII_ENCRYPTION_KEYS", "PII_BLIND_INDEX_KEYS", "MONGODB_URI"},
    "points": {"JWT_PUBLIC_KEY", "PII_ENCRYPTION_KEYS", "PII_BLIND_INDEX_KEYS", "MONGODB_URI"},
    "training": {"JWT_PUBLIC_KEY", "CHECKIN_CODE_KEY", "MONGODB_URI"},
    "media": {"JWT_PUBLIC_KEY", "MONGODB_URI"},
    "notification": {"JWT_PUBLIC_KEY", "MONGODB_URI"},
    "rollup": {"JWT_PUBLIC_KEY", "MONGODB_URI"},
    "gateway": set(),
}

SENTINELS = {
    "jwtPrivateKey": "-----BEGIN PRIVATE KEY-----\nSENTINEL-PRIVATE\n-----END PRIVATE KEY-----\n",
    "jwtPublicKey": "-----BEGIN PUBLIC KEY-----\nSENTINEL-PUBLIC\n-----END PUBLIC KEY-----\n",
    "piiEncryptionKeys": "v1:U0VOVElORUwtUElJLUVOQ1JZUFRJT04tS0VZLTMyYg==",
    "piiBlindIndexKeys": "v1:U0VOVElORUwtUElJLUJMSU5ELUlOREVYLUtFWS0zMg==",
    "checkinCodeKey": "U0VOVElORUwtQ0hFQ0tJTi1DT0RFLUtFWS0zMmJ5dGU=",
}
MONGODB_URI_SENTINEL = "mongodb://wenming:SENTINEL-PASSWORD@m0,m1,m2/?replicaSet=rs0&authSource=admin"

# the roll-up runs in a city's release, with its regions (docs/rollup.md)
ROLLUP_REGIONS = '{"regions": [{"region_id": "wuwei", "name": "武威市", "districts": [{"district_id": "liangzhou", "name": "凉州区", "kafka_prefix": "liangzhou."}]}]}'
EVERY_SERVICE = {**{name: {"enabled": True} for name in ALL_SERVICES},
                 "rollup": {"enabled": True, "config": {"ROLLUP_REGIONS": ROLLUP_REGIONS}}}

VARIANTS = {
    "defaults": {},
    # every service and every toggle on; the chart renders the Secret; keys as env variables
    "all-toggles": {
        "services": {**EVERY_SERVICE, "gateway": {"enabled": True, "ingress": {
            "enabled": True, "className": "nginx", "hosts": [{"host": "wenming.example.gov.cn", "paths": ["/"]}],
            "tls": [{"hosts": ["wenming.example.gov.cn"], "secretName": "wenming-gateway-tls"}]}}},
        "serviceDefaults": {
            "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
            "pdb": {"create": True, "minAvailable": 1},
            "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
            "networkPolicy": {"enabled": True, "allowExternalEgress": False,
                              "grpcFrom": [{"namespaceSelector": {"matchLabels": {
                                  "kubernetes.io/metadata.name": "provincial-platform"}}}]},
        },
        "metrics": {"prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}},
        "secrets": {"existingSecret": "", "mountAsFiles": False, "values": SENTINELS},
        "mongodb": {"uri": MONGODB_URI_SENTINEL},
        "bootstrap": {"enabled": True, "districts": [
            {"id": "liangzhou", "centerName": "凉州区新时代文明实践中心", "adminUsername": "center-admin",
             "adminPasswordSecret": {"name": "wenming-bootstrap-liangzhou", "key": "password"}}]},
    },
    # every service but points
    "one-disabled": {"services": {**EVERY_SERVICE, "points": {"enabled": False}}},
    # keys and the MongoDB URI from Secrets the district manages, under its own names
    "existing-secrets": {
        "services": EVERY_SERVICE,
        "secrets": {"existingSecret": "liangzhou-keys"},
        "mongodb": {"existingSecret": "liangzhou-mongodb", "existingSecretKey": "uri"},
    },
}
# the example values files shipped with the chart, rendered as a district would install them
VALUES_FILES = {
    "dev": CHART_DIR / "values-dev.yaml",
    "district-example": CHART_DIR / "values-district-example.yaml",
}
DISTRICT_EXAMPLE = VALUES_FILES["district-example"]


@pytest.fixture(scope="module", params=[*VARIANTS, *VALUES_FILES])
def rendered(request, chart) -> tuple[str, Manifest, dict]:
    name = request.param
    if name in VALUES_FILES:
        values = yaml.safe_load(VALUES_FILES[name].read_text(encoding="utf-8"))
        manifest = chart.template(values_files=[VALUES_FILES[name]])
    else:
        values = VARIANTS[name]
        manifest = chart.template(values)
    return name, manifest, values


def enabled_services(values: dict) -> set[str]:
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))["services"]
    overrides = values.get("services", {})
    return {n for n in ALL_SERVICES if overrides.get(n, {}).get("enabled", defaults[n]["enabled"])}


def pdbs_created(values: dict) -> bool:
    return values.get("serviceDefaults", {}).get("pdb", {}).get("create", True)


def deployments(manifest: Manifest) -> dict[str, dict]:
    return {manifest.component(d): d for d in manifest.of_kind("Deployment")}


def pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def config_of(manifest: Manifest, deployment: dict) -> dict:
    (source,) = container(deployment)["envFrom"]
    return manifest.get("ConfigMap", source["configMapRef"]["name"])["data"]


def secret_settings(manifest: Manifest, deployment: dict) -> dict[str, tuple[str, str]]:
    """Variable -> (Secret name, key) for every setting the container gets from a Secret,
    whether as an environment variable or as a mounted file named by <NAME>_FILE."""
    pod = deployment["spec"]["template"]["spec"]
    c = container(deployment)
    files = {}
    for volume in pod.get("volumes", []):
        for source in volume.get("projected", {}).get("sources", []):
            for item in source["secret"]["items"]:
                mount = next(m for m in c["volumeMounts"] if m["name"] == volume["name"])
                files[f"{mount['mountPath']}/{item['path']}"] = (source["secret"]["name"], item["key"])
    settings = {}
    for env in c.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            settings[env["name"]] = (ref["name"], ref["key"])
        elif env["name"].endswith("_FILE"):
            assert env["value"] in files, f"{env['name']} points at {env['value']}, which is not mounted"
            settings[env["name"].removesuffix("_FILE")] = files[env["value"]]
    return settings


def test_validates_against_kubernetes_schemas(rendered):
    _, manifest, _ = rendered
    validate(manifest.text)


def test_one_set_of_objects_per_enabled_service(rendered):
    _, manifest, values = rendered
    enabled = enabled_services(values)
    assert set(deployments(manifest)) == enabled
    for kind in ("Service", "ConfigMap", "ServiceAccount", *(["PodDisruptionBudget"] if pdbs_created(values) else [])):
        components = {manifest.component(o) for o in manifest.of_kind(kind) if "app.kubernetes.io/component" in o["metadata"]["labels"]}
        assert components >= enabled, f"{kind} missing for {enabled - components}"
    for name in set(ALL_SERVICES) - enabled:
        assert not [o for o in manifest.objects if o["metadata"]["name"].endswith(f"-{name}")], f"{name} is disabled"
        for config_map in manifest.of_kind("ConfigMap"):
            assert f"{name.upper()}_GRPC_TARGET" not in config_map.get("data", {}), f"{name} is disabled"


def test_every_pod_is_hardened(rendered):
    _, manifest, _ = rendered
    pods = [d["spec"]["template"] for d in manifest.of_kind("Deployment")]
    pods += [j["spec"]["template"] for j in manifest.of_kind("Job")]
    pods += manifest.of_kind("Pod")  # the helm test hook
    assert pods
    for pod in pods:
        spec = pod["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["enableServiceLinks"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in spec["containers"]:
            security = c["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["runAsNonRoot"] is True
            assert security["capabilities"]["drop"] == ["ALL"]
            assert security.get("privileged", False) is False
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and "memory" in c["resources"]["limits"]
            tmp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
            volume = next(v for v in spec["volumes"] if v["name"] == tmp["name"])
            assert "emptyDir" in volume, "/tmp must be writable on a read-only root filesystem"


def test_containers_run_their_service_with_probes(rendered):
    _, manifest, _ = rendered
    for name, deployment in deployments(manifest).items():
        c = container(deployment)
        assert c["command"] == ["python", "-m", f"services.{name}"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == ({"http": 8080} if name == "gateway" else {"grpc": 50051, "http": 8080})
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        readiness = c["readinessProbe"]
        if name == "gateway":
            assert readiness["httpGet"] == {"path": "/readyz", "port": "http"}
        else:
            assert readiness["grpc"] == {"port": 50051}
        config = config_of(manifest, deployment)
        assert config["HTTP_PORT"] == "8080"
        if name != "gateway":
            assert config["GRPC_PORT"] == "50051"


def test_graceful_shutdown_fits_in_the_grace_period(rendered):
    _, manifest, _ = rendered
    for deployment in manifest.of_kind("Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        pre_stop = container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = float(config_of(manifest, deployment)["SHUTDOWN_GRACE_SECONDS"])
        assert pod["terminationGracePeriodSeconds"] > pre_stop + grace
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_selectors_select_their_pods(rendered):
    _, manifest, _ = rendered
    for name, deployment in deployments(manifest).items():
        labels = pod_labels(deployment)
        assert matches(deployment["spec"]["selector"], labels)
        assert labels["app.kubernetes.io/component"] == name
        service = manifest.get("Service", deployment["metadata"]["name"])
        assert matches({"matchLabels": service["spec"]["selector"]}, labels)
        others = [d for n, d in deployments(manifest).items() if n != name]
        assert not any(matches({"matchLabels": service["spec"]["selector"]}, pod_labels(d)) for d in others)
        ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
        expected = {"http": (8080, "http")} if name == "gateway" else {"grpc": (50051, "grpc"), "http": (8080, "http")}
        assert ports == expected
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        assert manifest.get("ServiceAccount", account)["automountServiceAccountToken"] is False


def test_pdb_and_hpa_reference_the_deployment(rendered):
    _, manifest, values = rendered
    all_deployments = deployments(manifest)
    for pdb in manifest.of_kind("PodDisruptionBudget"):
        selected = [n for n, d in all_deployments.items() if matches(pdb["spec"]["selector"], pod_labels(d))]
        assert selected == [manifest.component(pdb)]
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert len(manifest.of_kind("PodDisruptionBudget")) == (len(all_deployments) if pdbs_created(values) else 0)
    hpas = manifest.of_kind("HorizontalPodAutoscaler")
    autoscaled = values.get("serviceDefaults", {}).get("autoscaling", {}).get("enabled", False)
    protected = {manifest.component(pdb) for pdb in manifest.of_kind("PodDisruptionBudget")}
    for name, deployment in all_deployments.items():
        if autoscaled or deployment["spec"]["replicas"] > 1:
            assert name in protected, f"{name} runs more than one replica without a PodDisruptionBudget"
    assert len(hpas) == (len(all_deployments) if autoscaled else 0)
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["apiVersion"] == "apps/v1"
        deployment = manifest.get("Deployment", target["name"])
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    if not autoscaled:
        assert all(d["spec"]["replicas"] >= 1 for d in all_deployments.values())


def test_network_policies_let_the_gateway_and_prometheus_in(rendered):
    _, manifest, _ = rendered
    all_deployments = deployments(manifest)
    policies = manifest.of_kind("NetworkPolicy")
    assert {manifest.component(p) for p in policies} == set(all_deployments)
    gateway_labels = pod_labels(all_deployments["gateway"]) if "gateway" in all_deployments else None
    for policy in policies:
        name = manifest.component(policy)
        assert matches(policy["spec"]["podSelector"], pod_labels(all_deployments[name]))
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        rules = policy["spec"]["ingress"]

        def admits(port: str, allowed, rules=rules) -> bool:
            return any(port in [p["port"] for p in rule.get("ports", [])]
                       and ("from" not in rule or any(allowed(peer) for peer in rule["from"]))
                       for rule in rules)

        prometheus_in_monitoring = lambda peer: peer.get("namespaceSelector", {}).get("matchLabels", {}).get(  # noqa: E731
            "kubernetes.io/metadata.name") == "monitoring" and matches(peer.get("podSelector", {}),
                                                                        {"app.kubernetes.io/name": "prometheus"})
        assert admits("http", prometheus_in_monitoring), f"{name}: Prometheus cannot scrape /metrics"
        if name != "gateway" and gateway_labels is not None:
            # a peer without namespaceSelector means this namespace
            from_gateway = lambda peer: "namespaceSelector" not in peer and matches(peer["podSelector"], gateway_labels)  # noqa: E731
            assert admits("grpc", from_gateway), f"the gateway cannot call {name} over gRPC"
        egress = policy["spec"]["egress"]
        assert any(53 in [p["port"] for p in rule.get("ports", [])] for rule in egress), f"{name}: no DNS"


@pytest.mark.parametrize("variant", ["all-toggles", "district-example"])
def test_strict_egress_reaches_only_dns_peers_kafka_and_mongodb(chart, variant):
    manifest = (chart.template(values_files=[DISTRICT_EXAMPLE]) if variant == "district-example"
                else chart.template(VARIANTS[variant]))
    policies = manifest.of_kind("NetworkPolicy")
    assert policies
    for policy in policies:
        assert {} not in policy["spec"]["egress"], "allowExternalEgress is off: no allow-all rule"
        ports = sorted(p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"])
        expected = sorted([53, 53, 50051] + ([] if manifest.component(policy) == "gateway" else [9092, 27017]))
        assert ports == expected, manifest.component(policy)


def test_service_monitors_scrape_metrics_on_the_http_port(rendered):
    _, manifest, values = rendered
    monitors = manifest.of_kind("ServiceMonitor")
    enabled = values.get("serviceDefaults", {}).get("metrics", {}).get("serviceMonitor", {}).get("enabled", False)
    assert len(monitors) == (len(manifest.of_kind("Deployment")) if enabled else 0)
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        spec = monitor["spec"]
        assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        selected = [s for s in manifest.of_kind("Service") if matches(spec["selector"], s["metadata"]["labels"])]
        assert [s["metadata"]["name"] for s in selected] == [monitor["metadata"]["name"]]
        (endpoint,) = spec["endpoints"]
        assert endpoint["port"] == "http" and endpoint["path"] == "/metrics" and endpoint["scheme"] == "http"
        assert {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
                "targetLabel": "wenming_service"} in endpoint["relabelings"]
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_each_service_gets_exactly_its_secrets(rendered):
    variant, manifest, values = rendered
    keys_secret = values.get("secrets", {}).get("existingSecret", "wenming-secrets") or "wenming-secrets"
    mongo_secret = values.get("mongodb", {}).get("existingSecret") or keys_secret
    mongo_key = values.get("mongodb", {}).get("existingSecretKey", "mongodb-uri") if values.get("mongodb", {}).get(
        "existingSecret") else "mongodb-uri"
    for name, deployment in deployments(manifest).items():
        settings = secret_settings(manifest, deployment)
        assert set(settings) == SECRET_ENV[name], f"{variant}/{name}"
        for variable, (secret, key) in settings.items():
            if variable == "MONGODB_URI":
                assert (secret, key) == (mongo_secret, mongo_key)
            else:
                assert (secret, key) == (keys_secret, variable.lower().replace("_", "-"))


def test_settings_a_built_service_requires_are_all_given(rendered):
    _, manifest, _ = rendered
    for name, deployment in deployments(manifest).items():
        given = set(config_of(manifest, deployment)) | set(secret_settings(manifest, deployment))
        given |= {e["name"] for e in container(deployment).get("env", [])}
        missing = required_settings(name) - given
        assert not missing, f"{name} stops at start without {sorted(missing)}"


def test_config_maps_hold_no_secret(rendered):
    _, manifest, values = rendered
    secret_names = set().union(*SECRET_ENV.values())
    for config_map in manifest.of_kind("ConfigMap"):
        if config_map["metadata"]["name"].endswith("-dashboard"):
            continue
        data = config_map["data"]
        assert not secret_names & set(data), config_map["metadata"]["name"]
        for key, value in data.items():
            assert "PRIVATE KEY" not in value and "@" not in value, f"{key} looks like a secret"
    secret_values = [*SENTINELS.values(), MONGODB_URI_SENTINEL]
    outside_secrets = "\n".join(yaml.safe_dump(o, allow_unicode=True) for o in manifest.objects if o["kind"] != "Secret")
    for value in secret_values:
        for line in value.splitlines():
            if "SENTINEL" in line or len(line) > 20:
                assert line not in outside_secrets


def test_config_connects_to_kafka_mongodb_and_the_peers(rendered):
    _, manifest, values = rendered
    prefix = values.get("mongodb", {}).get("databasePrefix", "wenming_")
    replication_factor = values.get("kafka", {}).get("replicationFactor", 3)
    services = deployments(manifest)
    expected_targets = {f"{n.upper()}_GRPC_TARGET": f"{services[n]['metadata']['name']}.{NAMESPACE}.svc.cluster.local:50051"
                        for n in services if n != "gateway"}
    for name, deployment in services.items():
        config = config_of(manifest, deployment)
        targets = {k: v for k, v in config.items() if k.endswith("_GRPC_TARGET")}
        assert targets == expected_targets
        for target in targets.values():
            assert manifest.get("Service", target.split(".")[0])
        if name == "gateway":
            assert "KAFKA_BOOTSTRAP_SERVERS" not in config and "MONGODB_DATABASE" not in config
        else:
            assert config["KAFKA_BOOTSTRAP_SERVERS"] == "wenming-kafka-bootstrap.kafka.svc:9092"
            assert config["MONGODB_DATABASE"] == f"{prefix}{name}"
            env = Env(config)
            topics = topic_settings(env)  # what the service makes of them
            assert env.problems == []
            assert topics.replication_factor == replication_factor
            assert topics.events_retention_ms == FOREVER and topics.dlq_retention_ms == 30 * DAY_MS


def test_rendered_secret_carries_the_values_and_survives_uninstall(rendered):
    variant, manifest, values = rendered
    secrets = manifest.of_kind("Secret")
    if values.get("secrets", {}).get("existingSecret", "wenming-secrets"):
        assert secrets == [], "an existing Secret is named: the chart must not render one"
        return
    (secret,) = secrets
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {
        "jwt-private-key": SENTINELS["jwtPrivateKey"], "jwt-public-key": SENTINELS["jwtPublicKey"],
        "pii-encryption-keys": SENTINELS["piiEncryptionKeys"], "pii-blind-index-keys": SENTINELS["piiBlindIndexKeys"],
        "checkin-code-key": SENTINELS["checkinCodeKey"], "mongodb-uri": MONGODB_URI_SENTINEL,
    }, variant
    for deployment in manifest.of_kind("Deployment"):
        assert "checksum/secrets" in deployment["spec"]["template"]["metadata"]["annotations"]


def test_toggles_render_ingress_rules_dashboard_and_bootstrap(rendered):
    variant, manifest, values = rendered
    toggled = variant in ("all-toggles", "district-example")
    ingresses = {manifest.component(i): i for i in manifest.of_kind("Ingress")}
    expected = {"all-toggles": {"gateway"}, "district-example": {"gateway", "media"}}.get(variant, set())
    assert set(ingresses) == expected
    for name, ingress in ingresses.items():
        (rule,) = ingress["spec"]["rules"]
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"] == {"name": f"wenming-{name}", "port": {"name": "http"}}
        assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]
    if variant == "district-example":
        media_paths = [p["path"] for p in ingresses["media"]["spec"]["rules"][0]["http"]["paths"]]
        assert media_paths == ["/v1/assets"]
    rules = manifest.of_kind("PrometheusRule")
    dashboards = [c for c in manifest.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]
    assert len(rules) == len(dashboards) == (1 if toggled else 0)
    for rule in rules:
        assert rule["spec"] == yaml.safe_load((ROOT / "charts/wenming/files/wenming-alerts.yaml").read_text(encoding="utf-8"))
    for dashboard in dashboards:
        assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(dashboard["data"]["wenming-dashboard.json"]) == json.loads(
            (ROOT / "charts/wenming/files/wenming-dashboard.json").read_text(encoding="utf-8"))
    jobs = manifest.of_kind("Job")
    assert len(jobs) == (1 if toggled else 0)
    for job in jobs:
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
        c = job["spec"]["template"]["spec"]["containers"][0]
        assert c["command"] == ["python", "-m", "services.registration.bootstrap"]
        assert "--district=liangzhou" in c["args"] and "--admin-password=$(BOOTSTRAP_ADMIN_PASSWORD)" in c["args"]
        password = next(e for e in c["env"] if e["name"] == "BOOTSTRAP_ADMIN_PASSWORD")
        assert password["valueFrom"]["secretKeyRef"]["name"] == "wenming-bootstrap-liangzhou"
        assert set(secret_settings(manifest, {"spec": job["spec"]})) == SECRET_ENV["registration"] | {"BOOTSTRAP_ADMIN_PASSWORD"}


def test_helm_test_pod_checks_every_enabled_service(rendered):
    """`helm test`: one hook Pod in the services' image runs the health checker against every
    enabled service (gRPC health, or /readyz for the gateway) and the NetworkPolicies let it in."""
    variant, manifest, _ = rendered
    (pod,) = manifest.of_kind("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    (c,) = spec["containers"]
    assert c["command"] == ["python", "-m", "services.common.healthcheck"]
    assert {container(d)["image"] for d in manifest.of_kind("Deployment")} == {c["image"]}
    options = [a for a in c["args"] if a.startswith("--")]
    assert options == ["--timeout=5"], "every call has a deadline"
    targets = [parse_target(a) for a in c["args"] if not a.startswith("--")]
    expected = set()
    for deployment in deployments(manifest).values():
        host = f"{deployment['metadata']['name']}.{NAMESPACE}.svc.cluster.local"
        has_grpc = any(p["name"] == "grpc" for p in container(deployment)["ports"])
        expected.add(("grpc", f"{host}:50051") if has_grpc else ("http", f"http://{host}:8080/readyz"))
    assert {(t.kind, t.address) for t in targets} == expected, variant
    assert len(targets) == len(expected)

    # not a component: no Service, PDB or other selector picks the test pod up
    labels = pod["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget", "Deployment"):
        for obj in manifest.of_kind(kind):
            selector = obj["spec"]["selector"]
            assert not matches(selector if "matchLabels" in selector else {"matchLabels": selector}, labels), \
                f"{kind} {obj['metadata']['name']} selects the test pod"
    # every service's NetworkPolicy admits it on the port it checks
    for policy in manifest.of_kind("NetworkPolicy"):
        name = manifest.component(policy)
        port = "grpc" if any(p["name"] == "grpc" for p in container(deployments(manifest)[name])["ports"]) else "http"
        assert any(port in [p["port"] for p in rule.get("ports", [])]
                   and ("from" not in rule or any("namespaceSelector" not in peer and matches(peer.get("podSelector", {}), labels)
                                                  for peer in rule["from"]))
                   for rule in policy["spec"]["ingress"]), f"{name}'s NetworkPolicy keeps the test pod out"


def test_helm_test_pod_can_be_left_out(chart):
    assert chart.template({"helmTest": {"enabled": False}}).of_kind("Pod") == []
    one_service = {name: {"enabled": name == "points"} for name in ALL_SERVICES}
    (pod,) = chart.template({"services": one_service, "helmTest": {"timeoutSeconds": 2.5}}).of_kind("Pod")
    assert pod["spec"]["containers"][0]["args"] == [
        "--timeout=2.5", f"grpc:wenming-points.{NAMESPACE}.svc.cluster.local:50051"]


TRANSPORT_SECURITY = {
    "services": EVERY_SERVICE,
    "tls": {"grpc": {"enabled": True, "secretName": "wenming-grpc-tls", "clientAuth": True}},
    "kafka": {"securityProtocol": "SASL_SSL", "tls": {"caSecret": "wenming-cluster-ca-cert"},
              "sasl": {"username": "wenming", "passwordSecret": "wenming-kafka-user"}},
    "mongodb": {"existingSecret": "liangzhou-mongodb", "tls": {"enabled": True, "caSecret": "wenming-mongodb-ca"}},
}


def test_transport_security_mounts_the_certificates_and_points_the_settings_at_them(chart):
    manifest = chart.template(TRANSPORT_SECURITY)
    validate(manifest.text)
    for name, deployment in deployments(manifest).items():
        c, config = container(deployment), config_of(manifest, deployment)
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        # every pod serves or calls gRPC over TLS with the release's certificate; the kubelet's
        # gRPC probe speaks no TLS, so readiness is /readyz
        assert volumes["grpc-tls"]["secret"]["secretName"] == "wenming-grpc-tls"
        for setting, file in (("GRPC_TLS_CERT_FILE", "tls.crt"), ("GRPC_TLS_KEY_FILE", "tls.key"),
                              ("GRPC_TLS_CA_FILE", "ca.crt")):
            assert config[setting] == f"{mounts['grpc-tls']}/{file}"
        assert config["GRPC_TLS_CLIENT_AUTH"] == "true"
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        if name == "gateway":  # no Kafka, no MongoDB
            assert "kafka-ca" not in volumes and "KAFKA_SECURITY_PROTOCOL" not in config
            continue
        assert (config["KAFKA_SECURITY_PROTOCOL"], config["KAFKA_SASL_MECHANISM"], config["KAFKA_SASL_USERNAME"]) == \
            ("SASL_SSL", "SCRAM-SHA-512", "wenming")
        assert config["KAFKA_SSL_CA_FILE"] == f"{mounts['kafka-ca']}/ca.crt"
        assert volumes["kafka-ca"]["secret"] == {"secretName": "wenming-cluster-ca-cert", "defaultMode": 0o440,
                                                 "items": [{"key": "ca.crt", "path": "ca.crt"}]}
        assert secret_settings(manifest, deployment)["KAFKA_SASL_PASSWORD"] == ("wenming-kafka-user", "password")
        assert (config["MONGODB_TLS"], config["MONGODB_TLS_CA_FILE"]) == ("true", f"{mounts['mongodb-ca']}/ca.crt")
    # helm test asks over TLS too
    (pod,) = [p for p in manifest.of_kind("Pod")]
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["GRPC_TLS_CA_FILE"].endswith("/ca.crt") and "grpc-tls" in {v["name"] for v in pod["spec"]["volumes"]}
    # a SASL protocol without a user is refused
    sasl = {**TRANSPORT_SECURITY, "kafka": {"securityProtocol": "SASL_SSL"}}
    assert "kafka.sasl.username is required" in chart.template_error(sasl)
