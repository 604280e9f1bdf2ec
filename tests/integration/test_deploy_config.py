"""The deployment files: every check of deploy/check.py passes, and the facts we rely on hold.

The first test runs ``deploy/check.py`` (docker-compose, kubectl kustomize, kubernetes-validate,
promtool) and is skipped, naming the tool, where one is missing. The others read the files
themselves and need nothing but PyYAML.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.kafka.topics import (
    AUDIT_HEADS,
    CASCADE_ACKS,
    SERVICES,
    deadletter_topic,
    events_topic,
    partner_inbound_topic,
    registry,
)
from shared.settings import API_PORTS, WORKER_PORTS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SECURE = ROOT / "deploy" / "compose.secure.yml"
K8S = ROOT / "deploy" / "k8s"
ACLS = ROOT / "deploy" / "kafka" / "acls.conf"
ORGS = ("trust", "partner-a", "partner-b")  # the development configuration's organisations
DVA_PARTNERS = ("partner-a", "partner-b")
PROCESSES = [(s, role) for s in SERVICES for role in ("api", "worker")]

# What each service's worker consumes (shared/stream.py, services/*/entrypoints/worker.py),
# and audit.heads, which the consent API reads to verify the audit trail.
CONSUMES = {
    "consent": {events_topic("consent"), CASCADE_ACKS, AUDIT_HEADS},
    "screening": {events_topic("consent"), partner_inbound_topic("trust")},
    "mentoring": {events_topic("consent"), *(partner_inbound_topic(o) for o in DVA_PARTNERS)},
    "reporting": {events_topic("consent"), events_topic("screening"), events_topic("mentoring")},
}


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def compose_services(path: Path = COMPOSE) -> dict[str, dict[str, Any]]:
    services = load(path)["services"]
    assert isinstance(services, dict)
    return services


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path, document


def k8s_objects(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for path, d in k8s_documents()
            if path.parent.name == "base" and d.get("kind") == kind}


# -------------------------------------------------------------------------------------------
# (a) every check of deploy/check.py
# -------------------------------------------------------------------------------------------

def missing_tools() -> list[str]:
    missing = [t for t in ("kubectl", "promtool") if shutil.which(t) is None]
    if shutil.which("docker-compose") is None:
        docker = shutil.which("docker")
        plugin = docker is not None and subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False).returncode == 0
        if not plugin:
            missing.append("docker-compose")
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        missing.append("kubernetes-validate")
    return missing


def test_deploy_check_passes() -> None:
    missing = missing_tools()
    if missing:
        pytest.skip(f"deploy/check.py needs {', '.join(missing)} (not installed)")
    completed = subprocess.run([sys.executable, str(ROOT / "deploy" / "check.py")], cwd=ROOT,
                               capture_output=True, text=True, timeout=600, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "all 6 checks passed" in completed.stdout


# -------------------------------------------------------------------------------------------
# (b) facts
# -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [COMPOSE, SECURE], ids=["base", "secure"])
def test_compose_publishes_ports_on_localhost_only(path: Path) -> None:
    for name, service in compose_services(path).items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", (name, port)
            else:
                assert str(port).startswith("127.0.0.1:"), (name, port)


DEV_ONLY_PASSWORD = re.compile(r"[a-z]+-dev-only-password")
URL_CREDENTIALS = re.compile(r"://[^/\s:@]+:([^@\s]+)@")
SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b[\w.-]*(password|passwd|secret|token|api[_-]?key)[\"']?\s*[:=]\s*[\"']?"
    r"([^\s\"'$#{}]+)")
BLOB = re.compile(r"[A-Za-z0-9+/=_-]{32,}")


def looks_secret(value: str) -> bool:
    """A literal that could be a password or key, not a path, file name, flag or reference."""
    if len(value) < 8 or value.lower() in {"true", "false", "required"}:
        return False
    return not value.startswith(("/", "./")) and not value.endswith((".password", ".p12", ".crt"))


def key_like(word: str) -> bool:
    """Hex of 32+ characters, or 32+ characters mixing upper case, lower case and digits."""
    if re.fullmatch(r"[0-9a-f]{32,}", word):
        return True
    return all(re.search(c, word) for c in ("[a-z]", "[A-Z]", "[0-9]")) and "/" not in word[:1]


def deployment_text_files() -> list[Path]:
    files = [COMPOSE, SECURE, *sorted(K8S.rglob("*.yaml")),
             *sorted(p for p in (ROOT / "deploy" / "kafka").iterdir() if p.is_file())]
    return [f for f in files if f.suffix != ".md"]


@pytest.mark.parametrize("path", deployment_text_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_secret_values_in_deployment_files(path: Path) -> None:
    text = path.read_text()
    assert "PRIVATE KEY" not in text
    for line in text.splitlines():
        if line.lstrip().startswith(("#", "//")):
            continue
        dev_only = path == COMPOSE and DEV_ONLY_PASSWORD.search(line) is not None
        for match in SECRET_ASSIGNMENT.finditer(line):
            assert dev_only or not looks_secret(match.group(2)), (
                f"{path.name}: looks like a secret value: {line.strip()}")
        for match in URL_CREDENTIALS.finditer(line):
            assert path == COMPOSE and DEV_ONLY_PASSWORD.fullmatch(match.group(1)), (
                f"{path.name}: credentials in a URL: {line.strip()}")
        for word in BLOB.findall(line):
            assert not key_like(word), f"{path.name}: key-like string: {line.strip()}"
    if DEV_ONLY_PASSWORD.search(text):
        assert path == COMPOSE, f"{path.name}: development passwords belong in compose only"
        assert "DEVELOPMENT-ONLY" in text


def test_development_passwords_only_with_their_warning() -> None:
    for path in (COMPOSE, ROOT / "deploy" / "postgres" / "init.sql"):
        text = path.read_text()
        assert DEV_ONLY_PASSWORD.search(text), path
        assert "DEVELOPMENT-ONLY" in text, f"{path.name} lost its DEVELOPMENT-ONLY warning"


def test_kubernetes_commits_no_secret_objects() -> None:
    for path, document in k8s_documents():
        assert document.get("kind") != "Secret", path
        assert "secretGenerator" not in document, path
    config = load(K8S / "base" / "kustomization.yaml")["configMapGenerator"][0]["literals"]
    assert any(c.startswith("PEERLINK_JWT_JWKS_URL=https://") for c in config)
    assert not any("SECRET" in c for c in config)
    referenced = {v["secret"]["secretName"] for d in k8s_objects("Deployment").values()
                  for v in d["spec"]["template"]["spec"]["volumes"] if "secret" in v}
    assert referenced == {"peerlink-secrets"}


def test_compose_gives_each_process_exactly_its_secrets() -> None:
    services = compose_services()
    for service, role in PROCESSES:
        spec = services[f"{service}-{role}"]
        secrets = {s if isinstance(s, str) else s["source"] for s in spec.get("secrets", [])}
        calls_consent = service in ("screening", "mentoring")
        expected = {f"{service}_client_secret"} if calls_consent else set()
        expected |= {"master_key", "consent_audit_key", "safeguarding_pseudonym_key",
                     "consent_records_key"} \
            if service == "consent" else set()
        expected |= {f"{service}_records_key"} if service in ("screening", "mentoring") \
            else set()
        expected |= {f"{service}_deadletter_key"} if role == "worker" else set()
        expected |= {"research_pseudonym_key"} if (service, role) == ("reporting", "api") \
            else set()
        assert secrets == expected, (service, role)
        env = spec["environment"]
        assert not [k for k in env if "JWT_SECRET" in k]
        assert env["PEERLINK_JWT_JWKS_URL"].endswith("/.well-known/jwks.json}")
        assert ("PEERLINK_MASTER_KEY_FILE" in env) == (service == "consent")
        assert ("PEERLINK_CONSENT_AUDIT_KEY_FILE" in env) == (service == "consent")
        assert ("PEERLINK_SAFEGUARDING_PSEUDONYM_KEY_FILE" in env) == (service == "consent")
        assert ("PEERLINK_MENTORING_RECORDS_KEY_FILE" in env) == (service == "mentoring")
        assert ("PEERLINK_SCREENING_RECORDS_KEY_FILE" in env) == (service == "screening")
        assert ("PEERLINK_RESEARCH_PSEUDONYM_KEY_FILE" in env) == (
            (service, role) == ("reporting", "api"))
        assert [k for k in env if k.endswith("_DEADLETTER_KEY_FILE")] == (
            [f"PEERLINK_{service.upper()}_DEADLETTER_KEY_FILE"] if role == "worker" else [])
        assert ("PEERLINK_CONSENT_URL" in env) == calls_consent
        assert ("PEERLINK_TOKEN_URL" in env) == calls_consent
        assert [k for k in env if k.endswith("_CLIENT_SECRET_FILE")] == (
            [f"PEERLINK_{service.upper()}_CLIENT_SECRET_FILE"] if calls_consent else [])
    reporting_worker = services["reporting-worker"]
    assert "volumes" not in reporting_worker
    assert "PEERLINK_REPORTING_DATA_DIR" not in reporting_worker["environment"]


def test_the_compose_development_issuer_is_opt_in_and_development_only() -> None:
    issuer = compose_services()["issuer"]
    assert issuer["profiles"] == ["dev-issuer"]
    assert issuer["command"] == ["issuer"]
    assert issuer["environment"]["PEERLINK_ENV"] == "development"
    assert set(issuer["secrets"]) == {"screening_client_secret", "mentoring_client_secret"}
    assert "8100/healthz" in " ".join(issuer["healthcheck"]["test"])
    assert not any("issuer" in (spec.get("depends_on") or {})
                   for spec in compose_services().values())


def test_every_process_has_a_healthz_check_in_compose() -> None:
    services = compose_services()
    for service, role in PROCESSES:
        spec = services[f"{service}-{role}"]
        assert spec["command"] == [role, service]
        port = (API_PORTS if role == "api" else WORKER_PORTS)[service]
        check = " ".join(spec["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/healthz" in check, (service, role)


def test_every_process_has_healthz_and_readyz_probes_in_kubernetes() -> None:
    deployments = k8s_objects("Deployment")
    assert set(deployments) == {f"{s}-{r}" for s, r in PROCESSES}
    for service, role in PROCESSES:
        pod = deployments[f"{service}-{role}"]["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert container["args"] == [role, service]
        port = (API_PORTS if role == "api" else WORKER_PORTS)[service]
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                            ("startupProbe", "/healthz")):
            get = container[probe]["httpGet"]
            assert get["path"] == path, (service, role, probe)
            assert named[get["port"]] == port, (service, role, probe)
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)


def test_kubernetes_pods_run_locked_down() -> None:
    pods = [d["spec"]["template"]["spec"] for d in k8s_objects("Deployment").values()]
    pods += [d["spec"]["template"]["spec"] for d in k8s_objects("Job").values()]
    assert len(pods) == 10
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"requests", "limits"} <= set(container["resources"])


def test_kubernetes_mounts_only_the_keys_each_process_needs() -> None:
    for name, deployment in k8s_objects("Deployment").items():
        service, role = name.rsplit("-", 1)
        volumes = [v for v in deployment["spec"]["template"]["spec"]["volumes"]
                   if "secret" in v]
        assert len(volumes) == 1, name
        keys = {item["key"] for v in volumes for item in v["secret"]["items"]}
        assert all(v["secret"]["items"] for v in volumes), "no items would mount every key"
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert not [e for e in container.get("env", []) if "JWT" in e["name"]], name
        expected = {f"{service}-client-secret"} if service in ("screening", "mentoring") \
            else set()
        expected |= {"master-key", "consent-audit-key", "safeguarding-pseudonym-key",
                     "consent-records-key"} \
            if service == "consent" else set()
        expected |= {f"{service}-records-key"} if service in ("screening", "mentoring") \
            else set()
        expected |= {f"{service}-deadletter-key"} if role == "worker" else set()
        expected |= {"research-pseudonym-key"} if (service, role) == ("reporting", "api") \
            else set()
        assert keys == expected, name


def test_kafka_creates_no_topic_by_itself() -> None:
    assert compose_services()["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    secure = compose_services(SECURE)["kafka"]["environment"]
    assert secure.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false") == "false"


def test_secure_overlay_denies_by_default_over_tls_and_scram() -> None:
    env = compose_services(SECURE)["kafka"]["environment"]
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols.values()) <= {"SASL_SSL", "SSL"}, "no plaintext listener"
    assert "User:CN=peerlink-kafka-admin" in env["KAFKA_SUPER_USERS"].split(";")


# --- the ACL table ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Acl:
    principal: str
    resource: str
    pattern: str
    name: str
    operations: frozenset[str]


def acls() -> list[Acl]:
    rows = []
    for line in ACLS.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        principal, resource, pattern, name, operations = line.split()
        rows.append(Acl(principal, resource, pattern, name, frozenset(operations.split(","))))
    return rows


def test_each_partner_may_write_only_its_own_inbound_topic() -> None:
    rows = acls()
    inbound = {s.name for s in registry(ORGS) if s.name.startswith("partner.")}
    assert inbound == {partner_inbound_topic(o) for o in ORGS}
    for org in ORGS:
        own = [a for a in rows if a.principal == f"org-{org}"]
        assert own == [Acl(f"org-{org}", "topic", "literal", partner_inbound_topic(org),
                           frozenset({"Write", "Describe"}))], org
        writers = {a.principal for a in rows if a.name == partner_inbound_topic(org)
                   and a.operations & {"Write", "All"}}
        assert writers == {f"org-{org}"}, org


def test_each_service_writes_what_it_owns_and_reads_what_it_consumes() -> None:
    rows = acls()
    owned = {s: {spec.name for spec in registry(ORGS) if spec.owner == s} for s in SERVICES}
    for service in SERVICES:
        mine = [a for a in rows if a.principal == f"svc-{service}"]
        assert not any("All" in a.operations for a in mine)
        internal = f"peerlink-{service}-"  # faust's own topics (leader topic)
        writes = {a.name for a in mine if a.resource == "topic" and "Write" in a.operations
                  and a.name != internal}
        assert writes <= owned[service] | {CASCADE_ACKS}, service
        assert {CASCADE_ACKS, deadletter_topic(service)} <= writes, service
        if service != "reporting":
            assert events_topic(service) in writes
        reads = {a.name for a in mine if a.resource == "topic" and "Read" in a.operations
                 and a.name != internal}
        assert reads == CONSUMES[service], service
        groups = {a.name for a in mine if a.resource == "group"}
        assert groups == {f"peerlink-{service}"}
        assert all(a.pattern == "literal" for a in mine if a.name != internal)


def test_every_acl_principal_has_a_scram_secret() -> None:
    services = compose_services(SECURE)
    targets = {s["target"] for s in services["kafka-security"]["secrets"]}
    secrets = load(SECURE)["secrets"]
    for principal in {a.principal for a in acls()}:
        assert f"/run/secrets/kafka-scram/{principal}" in targets, principal
        files = {s["file"] for s in secrets.values()}
        assert f"./deploy/secrets/kafka/scram/{principal}.password" in files, principal


# --- scaling ---------------------------------------------------------------------------------

def partitions() -> int:
    kustomization = load(K8S / "base" / "kustomization.yaml")
    (generator,) = kustomization["configMapGenerator"]
    literals = dict(item.split("=", 1) for item in generator["literals"])
    return int(literals["PEERLINK_TOPIC_PARTITIONS"])


def test_reporting_worker_autoscaler_is_bounded_by_the_partition_count() -> None:
    hpa = k8s_objects("HorizontalPodAutoscaler")["reporting-worker"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "reporting-worker"
    limits = {"base": hpa["spec"]["maxReplicas"]}
    for overlay in sorted((K8S / "overlays").iterdir()):
        for patch in load(overlay / "kustomization.yaml").get("patches", []):
            if patch["target"].get("kind") != "HorizontalPodAutoscaler":
                continue
            for op in yaml.safe_load(patch["patch"]):
                if op["path"] == "/spec/maxReplicas":
                    limits[overlay.name] = op["value"]
    assert set(limits) == {"base", "staging", "production"}
    for where, max_replicas in limits.items():
        assert 1 <= max_replicas <= partitions() <= 6, where
    # The HPA owns the replica count: the Deployment does not fight it.
    assert "replicas" not in k8s_objects("Deployment")["reporting-worker"]["spec"]


def test_the_image_carries_no_secrets() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = re.findall(r"^COPY\s+(?!--from)(.+?)\s+\S+$", dockerfile, re.MULTILINE)
    assert copied == ["requirements.lock", "pyproject.toml", "shared", "services", "ops"]
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored, ".dockerignore is an allow-list: everything else stays out"
    assert "deploy/secrets" in ignored


def test_sensitive_topic_retention_is_configured_and_alterable_by_the_topics_job() -> None:
    literals = dict(item.split("=", 1) for item in load(
        K8S / "base" / "kustomization.yaml")["configMapGenerator"][0]["literals"])
    assert literals["PEERLINK_SENSITIVE_TOPIC_RETENTION_DAYS"] == "7"
    topics_env = compose_services()["topics"]["environment"]
    assert topics_env["PEERLINK_SENSITIVE_TOPIC_RETENTION_DAYS"] == (
        "${PEERLINK_SENSITIVE_TOPIC_RETENTION_DAYS:-7}")
    sensitive = {s.name for s in registry(ORGS) if s.sensitive}
    alterable = {a.name for a in acls() if a.principal == "ops-topics"
                 and {"DescribeConfigs", "AlterConfigs"} <= a.operations}
    assert alterable == sensitive
