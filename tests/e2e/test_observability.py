"""Observability against a real Prometheus scraping the running platform.

Every metric name that the Grafana dashboards (deploy/grafana/dashboards/*.json) and the alert
rules (deploy/prometheus/alerts.yml) use must be exported by a running service. Names are read
from the PromQL itself; ``kafka_*`` (only the Kafka exporter in compose exports those) and
``up`` (checked on its own: every target up) are left out. Prometheus is Debian's package,
started here with the job names and labels of deploy/prometheus/prometheus.yml, scraping every
API and worker on loopback every second, with the alert rules loaded.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kafka import KafkaProducer

from ops.broker import free_port
from shared.kafka.topics import SERVICES, partner_inbound_topic
from shared.settings import PlatformSettings
from tests.support.platform import RunningPlatform, running_platform, wait_for
from tests.support.services import approve_erasure

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DEPLOYED_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROMETHEUS = Path("/usr/bin/prometheus")
COMPONENTS = ("api", "worker")
SCRAPE_SECONDS = 1

# ------------------------------------------------------------------------------------------
# Metric names from PromQL
# ------------------------------------------------------------------------------------------

# Aggregation operators, binary and set operators, modifiers and literals: never metric names.
# (Functions are recognised by the parenthesis that follows them.)
PROMQL_WORDS = frozenset({
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    "and", "or", "unless", "atan2", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "start", "end", "inf", "nan",
})
HISTOGRAM_SUFFIX = re.compile(r"_(?:bucket|sum|count)$")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_COMMENT = re.compile(r"#[^\n]*")
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:])(\s*\()?")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<expr>.*),\s*[A-Za-z_]\w*\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<expr>.*)\)\s*$", re.S)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (Grafana variables allowed)."""
    text = _STRING.sub(" ", expr)
    text = _COMMENT.sub(" ", text)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return {match.group(1) for match in _IDENTIFIER.finditer(text)
            if match.group(2) is None and match.group(1).lower() not in PROMQL_WORDS}


def family(name: str) -> str:
    """A histogram's family name from one of its series names; other names unchanged."""
    return HISTOGRAM_SUFFIX.sub("", name)


def variable_expression(query: str) -> str | None:
    """The PromQL inside a Grafana Prometheus variable query, if it has any."""
    for pattern in (_LABEL_VALUES, _QUERY_RESULT):
        match = pattern.match(query)
        if match:
            return match.group("expr")
    return None


def _walk_exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _walk_exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_exprs(item)


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, expression) for every query of every dashboard, variables included."""
    found: list[tuple[str, str]] = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        found += [(path.name, expr) for expr in _walk_exprs(board.get("panels", []))]
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query or "")
            expr = variable_expression(text)
            if expr:
                found.append((f"{path.name} variable {variable['name']}", expr))
    return found


def alert_expressions() -> list[tuple[str, str]]:
    """(where, expression) for every rule of alerts.yml."""
    rules = yaml.safe_load(ALERTS.read_text())
    return [(f"alerts.yml {rule.get('alert') or rule.get('record')}", str(rule["expr"]))
            for group in rules["groups"] for rule in group["rules"]]


def names_the_services_must_export() -> set[str]:
    """Metric families used by dashboards and alerts, less up and the Kafka exporter's."""
    names = {name for _, expr in dashboard_expressions() + alert_expressions()
             for name in metric_names(expr)}
    return {family(name) for name in names if name != "up" and not name.startswith("kafka_")}


def test_metric_names_are_read_from_promql() -> None:
    expr = ('histogram_quantile(0.95, sum by (service, le) (rate('
            'peerlink_http_request_duration_seconds_bucket{service=~"$service", '
            'route!~"/healthz|/metrics"}[$__rate_interval]))) > bool 1e-3 '
            'and on (service) label_replace(max(kafka_consumergroup_lag offset 5m), '
            '"service", "$1", "consumergroup", "peerlink-(.+)") '
            'or time() - max without (instance) (peerlink_outbox_pending_events) * 0 '
            'unless up{job="peerlink-api"} == 0')
    assert metric_names(expr) == {"peerlink_http_request_duration_seconds_bucket",
                                  "kafka_consumergroup_lag", "peerlink_outbox_pending_events",
                                  "up"}
    assert family("peerlink_withdrawal_completion_seconds_count") == (
        "peerlink_withdrawal_completion_seconds")
    assert variable_expression('label_values(up{job="peerlink-api"}, service)') == (
        'up{job="peerlink-api"}')
    assert variable_expression("label_values(service)") is None


def test_dashboards_and_alerts_use_the_service_metrics() -> None:
    wanted = names_the_services_must_export()
    assert {"peerlink_http_requests_total", "peerlink_http_request_duration_seconds",
            "peerlink_withdrawals_overdue", "peerlink_deadletters_total",
            "peerlink_reporting_last_release_timestamp_seconds"} <= wanted
    assert all(name.startswith("peerlink_") for name in wanted), sorted(wanted)


def test_every_dashboard_queries_the_provisioned_data_source() -> None:
    provisioned = {source["uid"] for path in DATASOURCES.glob("*.yml")
                   for source in yaml.safe_load(path.read_text())["datasources"]
                   if source["type"] == "prometheus"}
    boards = [json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))]
    assert len(boards) >= 4
    assert len({board["uid"] for board in boards}) == len(boards)

    def data_sources(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            source = node.get("datasource")
            if isinstance(source, dict):
                yield source
            for value in node.values():
                yield from data_sources(value)
        elif isinstance(node, list):
            for item in node:
                yield from data_sources(item)

    for board in boards:
        used = [s for s in data_sources(board) if s.get("type") == "prometheus"]
        assert used, board["title"]
        assert {s.get("uid") for s in used} <= provisioned, board["title"]
        for panel in board["panels"]:
            assert panel.get("title"), f"{board['title']}: a panel has no title"


# ------------------------------------------------------------------------------------------
# The alert rules against synthetic series (promtool test rules)
# ------------------------------------------------------------------------------------------

WORKER = 'job="peerlink-worker", component="worker"'
API = 'job="peerlink-api", component="api"'
# (series, values in promtool's expanding notation, one value a minute from 0m)
SYNTHETIC_SERIES = [
    (f'peerlink_withdrawals_overdue{{{WORKER}, service="consent", instance="c:8202"}}',
     "0 0 1x10"),
    # mentoring stalls on a consent event from 1m; screening flows
    (f'peerlink_consent_events_stalled{{{WORKER}, service="mentoring", instance="m:8203"}}',
     "0 1x10"),
    (f'peerlink_consent_events_stalled{{{WORKER}, service="screening", instance="s:8201"}}',
     "0x11"),
    # mentoring stops applying consent events at 5m while they keep arriving
    (f'peerlink_consumer_last_applied_timestamp_seconds{{{WORKER}, service="mentoring", '
     'instance="m:8203", topic="consent.events"}', "0+60x5 300x30"),
    ('kafka_consumergroup_lag{consumergroup="peerlink-mentoring", topic="consent.events", '
     'partition="0"}', "0x5 3x30"),
    ('kafka_consumergroup_current_offset{consumergroup="peerlink-mentoring", '
     'topic="consent.events", partition="0"}', "0+1x5 5x30"),
    # screening: nothing new on a quiet topic (no lag) is not a stopped consumer
    (f'peerlink_consumer_last_applied_timestamp_seconds{{{WORKER}, service="screening", '
     'instance="s:8201", topic="consent.events"}', "0+60x5 300x30"),
    ('kafka_consumergroup_lag{consumergroup="peerlink-screening", topic="consent.events", '
     'partition="0"}', "0x35"),
    ('kafka_consumergroup_current_offset{consumergroup="peerlink-screening", '
     'topic="consent.events", partition="0"}', "0+1x5 5x30"),
    # reporting: always some lag on a busy topic, but it keeps applying and committing
    (f'peerlink_consumer_last_applied_timestamp_seconds{{{WORKER}, service="reporting", '
     'instance="r:8204", topic="screening.events"}', "0+60x35"),
    ('kafka_consumergroup_lag{consumergroup="peerlink-reporting", topic="screening.events", '
     'partition="0"}', "2x35"),
    ('kafka_consumergroup_current_offset{consumergroup="peerlink-reporting", '
     'topic="screening.events", partition="0"}', "0+10x35"),
    # consent's tracker never applied or committed anything, and acknowledgements wait
    ('kafka_consumergroup_lag{consumergroup="peerlink-consent", topic="cascade.acks", '
     'partition="1"}', "4x35"),
    ('kafka_consumergroup_current_offset{consumergroup="peerlink-consent", '
     'topic="cascade.acks", partition="1"}', "-1x35"),
    (f'peerlink_outbox_oldest_pending_age_seconds{{{WORKER}, service="screening", '
     'instance="s:8201"}', "0+60x20"),
    (f'peerlink_outbox_oldest_pending_age_seconds{{{WORKER}, service="mentoring", '
     'instance="m:8203"}', "0x20"),
    (f'peerlink_deadletters_total{{{WORKER}, service="screening", instance="s:8201", '
     'reason="validation"}', "0 0 1x10"),
    (f'peerlink_deadletters_total{{{WORKER}, service="screening", instance="s:8201", '
     'reason="unexpected"}', "0x12"),
    (f'up{{{API}, service="screening", instance="s:8101"}}', "1 1 0x5"),
    (f'up{{{API}, service="consent", instance="c:8102"}}', "1x7"),
    # an erasure request passes its deadline at 2m (two worker replicas count the same table);
    # a subject access request is overdue for 5 minutes only, then answered
    (f'peerlink_erasure_requests_overdue{{{WORKER}, service="consent", instance="c:8202"}}',
     "0 0 1x30"),
    (f'peerlink_erasure_requests_overdue{{{WORKER}, service="consent", instance="c2:8202"}}',
     "0 0 1x30"),
    (f'peerlink_subject_access_requests_overdue{{{WORKER}, service="consent", '
     'instance="c:8202"}', "0 1x5 0x20"),
    ('up{job="kafka", component="kafka-exporter", instance="kafka-exporter:9308"}', "0x7"),
    (f'peerlink_reporting_last_release_timestamp_seconds{{{WORKER}, service="reporting", '
     'instance="r:8204"}', "0+60x5 300x30"),
    # half of consent's API requests fail; scrapes of /metrics do not count
    (f'peerlink_http_requests_total{{{API}, service="consent", instance="c:8102", '
     'method="POST", route="/v1/subjects", status="500"}', "0+10x30"),
    (f'peerlink_http_requests_total{{{API}, service="consent", instance="c:8102", '
     'method="POST", route="/v1/subjects", status="201"}', "0+10x30"),
    (f'peerlink_http_requests_total{{{API}, service="screening", instance="s:8101", '
     'method="GET", route="/metrics", status="500"}', "0+100x30"),
]
# (when, alert, the label sets expected firing then: [] means none)
EXPECTED_ALERTS: list[tuple[str, str, list[dict[str, str]]]] = [
    ("1m", "PeerlinkWithdrawalOverdue", []),
    ("5m", "PeerlinkWithdrawalOverdue", [{"severity": "critical", "service": "consent"}]),
    ("4m", "PeerlinkConsentEventsStalled", []),
    ("8m", "PeerlinkConsentEventsStalled", [{"severity": "critical", "service": "mentoring"}]),
    ("1m", "PeerlinkConsumerStopped", []),
    ("10m", "PeerlinkConsumerStopped", [
        {"severity": "critical", "service": "consent", "topic": "cascade.acks"}]),
    ("20m", "PeerlinkConsumerStopped", [
        {"severity": "critical", "service": "consent", "topic": "cascade.acks"},
        {"severity": "critical", "service": "mentoring", "topic": "consent.events"}]),
    ("10m", "PeerlinkOutboxBacklogOld", [{"severity": "warning", "service": "screening"}]),
    ("4m", "PeerlinkDeadLetterRate", [
        {"severity": "warning", "service": "screening", "reason": "validation"}]),
    ("10m", "PeerlinkDeadLetterRate", []),
    ("3m", "PeerlinkServiceDown", []),
    ("5m", "PeerlinkServiceDown", [
        {"severity": "critical", "job": "peerlink-api", "component": "api",
         "service": "screening", "instance": "s:8101"}]),
    ("6m", "PeerlinkKafkaExporterDown", [
        {"severity": "warning", "job": "kafka", "component": "kafka-exporter",
         "instance": "kafka-exporter:9308"}]),
    ("9m", "PeerlinkReportingReleasesStopped", []),
    ("20m", "PeerlinkReportingReleasesStopped", [
        {"severity": "warning", "service": "reporting"}]),
    ("20m", "PeerlinkApiErrors", [{"severity": "warning", "service": "consent"}]),
    ("11m", "PeerlinkErasureRequestOverdue", []),
    ("13m", "PeerlinkErasureRequestOverdue", [{"severity": "critical", "service": "consent"}]),
    ("20m", "PeerlinkSubjectAccessRequestOverdue", []),
]


def test_the_alert_rules_fire_when_they_should_and_not_otherwise(tmp_path: Path) -> None:
    promtool = PROMETHEUS.with_name("promtool")
    if not promtool.exists():
        pytest.skip("Debian's prometheus package is not installed")
    # promtool compares annotations too; their wording is not under test here
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    (tmp_path / "tests.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in SYNTHETIC_SERIES],
            "alert_rule_test": [
                {"eval_time": when, "alertname": alert,
                 "exp_alerts": [{"exp_labels": labels} for labels in firing]}
                for when, alert, firing in EXPECTED_ALERTS],
        }],
    }, sort_keys=False))
    result = subprocess.run([str(promtool), "test", "rules", "tests.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------
# A real Prometheus over the running platform
# ------------------------------------------------------------------------------------------


class Prometheus:
    """A Prometheus server's HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('error', body)}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=promql)["result"]
        return result

    def metric_names(self) -> set[str]:
        return set(self.get("/api/v1/label/__name__/values"))


def scrape_configs(settings: PlatformSettings) -> list[dict[str, Any]]:
    """The deployed Peerlink scrape jobs, with the same job names and labels, on loopback."""
    deployed = yaml.safe_load(DEPLOYED_CONFIG.read_text())
    ports = {"api": settings.api_port, "worker": settings.worker_port}
    jobs, covered = [], set()
    for job in deployed["scrape_configs"]:
        if not job["job_name"].startswith("peerlink-"):
            continue  # the Kafka exporter and Prometheus itself do not run here
        groups = []
        for group in job["static_configs"]:
            labels = dict(group["labels"])
            assert len(group["targets"]) == 1, group
            covered.add((labels["service"], labels["component"]))
            port = ports[labels["component"]](labels["service"])
            groups.append({"targets": [f"127.0.0.1:{port}"], "labels": labels})
        jobs.append({"job_name": job["job_name"],
                     "metrics_path": job.get("metrics_path", "/metrics"),
                     "scrape_interval": f"{SCRAPE_SECONDS}s",
                     "scrape_timeout": f"{SCRAPE_SECONDS}s",
                     "static_configs": groups})
    assert covered == {(s, c) for s in SERVICES for c in COMPONENTS}, (
        "deploy/prometheus/prometheus.yml must scrape every service's API and worker")
    return jobs


@pytest.fixture(scope="module")
def prometheus_binary() -> Path:
    if not PROMETHEUS.exists():
        pytest.skip("Debian's prometheus package is not installed")
    return PROMETHEUS


@pytest.fixture(scope="module")
def platform(prometheus_binary: Path, request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    with running_platform(request, tmp_path_factory.mktemp("observability"), "sqlite"
                          ) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(prometheus_binary: Path, platform: RunningPlatform,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    home = tmp_path_factory.mktemp("prometheus")
    config = home / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s",
                   "scrape_timeout": f"{SCRAPE_SECONDS}s",
                   "evaluation_interval": f"{SCRAPE_SECONDS}s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": scrape_configs(platform.settings),
    }, sort_keys=False))
    address = f"127.0.0.1:{free_port()}"
    log_path = home / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(prometheus_binary), f"--config.file={config}",
             f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address={address}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Prometheus(f"http://{address}")

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=30)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def traffic(platform: RunningPlatform, prometheus: Prometheus) -> None:
    """A screening, a withdrawal with erasure the DPO approves, and a malformed partner record,
    all scraped."""
    clinician = platform.headers("trust", "clinician")
    screened = httpx.post(platform.url("screening", "/v1/screenings"),
                          json=platform.screening(f"obs-{uuid.uuid4().hex[:6]}"),
                          headers=clinician, timeout=10)
    assert screened.status_code == 201, screened.text
    subject_id = screened.json()["subject_id"]

    withdrawn = httpx.post(platform.url("consent", f"/v1/subjects/{subject_id}/withdrawals"),
                           json={"purposes": ["all"], "erasure": True, "method": "verbal"},
                           headers=clinician, timeout=10)
    assert withdrawn.status_code == 202, withdrawn.text
    status_url = platform.url("consent", f"/v1/withdrawals/{withdrawn.json()['withdrawal_id']}")
    wait_for(lambda: httpx.get(status_url, headers=clinician, timeout=10).json()["status"]
             == "complete", timeout=60)
    request_id = withdrawn.json()["erasure_request_id"]
    with httpx.Client(timeout=10) as client:
        approve_erasure(client, platform.settings, request_id, "trust",
                        base_url=platform.url("consent", ""))
    request_url = platform.url("consent", f"/v1/erasure-requests/{request_id}")
    dpo = platform.headers("trust", "dpo")
    wait_for(lambda: httpx.get(request_url, headers=dpo, timeout=10).json()["status"]
             == "complete", timeout=60)

    producer = KafkaProducer(bootstrap_servers=platform.settings.kafka_bootstrap, acks="all")
    producer.send(partner_inbound_topic("trust"), key=uuid.uuid4().hex.encode(),
                  value=b"{this is not a CloudEvent")
    producer.flush()
    producer.close()

    dead_lettered = ('peerlink_deadletters_total{service="screening", component="worker", '
                     'reason="validation"} >= 1')
    wait_for(lambda: prometheus.query(dead_lettered), timeout=60)
    time.sleep(3 * SCRAPE_SECONDS)  # one more scrape of every process after the traffic


@pytest.mark.kafka
def test_every_process_is_scraped_and_up(prometheus: Prometheus) -> None:
    expected = {(s, c) for s in SERVICES for c in COMPONENTS}

    def targets() -> dict[tuple[str, str], str]:
        return {(r["metric"]["service"], r["metric"]["component"]): r["value"][1]
                for r in prometheus.query("up")}

    wait_for(lambda: (t := targets()).keys() == expected and set(t.values()) == {"1"},
             timeout=30)
    up = targets()
    down = sorted(f"{s}-{c}" for (s, c), value in up.items() if value != "1")
    assert up.keys() == expected
    assert not down, f"targets not up: {', '.join(down)}"


@pytest.mark.kafka
def test_the_alert_rules_load_and_evaluate(prometheus: Prometheus) -> None:
    wanted = {group["name"] for group in yaml.safe_load(ALERTS.read_text())["groups"]}

    def groups() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = prometheus.get("/api/v1/rules")["groups"]
        return found

    def evaluated() -> bool:
        rules = [rule for group in groups() for rule in group["rules"]]
        return bool(rules) and all(rule["health"] != "unknown" for rule in rules)

    wait_for(evaluated, timeout=30)
    loaded = groups()
    assert {group["name"] for group in loaded} == wanted
    alerts = {rule["name"] for group in loaded for rule in group["rules"]}
    assert {"PeerlinkWithdrawalOverdue", "PeerlinkConsumerStopped",
            "PeerlinkConsentEventsStalled", "PeerlinkOutboxBacklogOld",
            "PeerlinkDeadLetterRate", "PeerlinkServiceDown",
            "PeerlinkReportingReleasesStopped", "PeerlinkErasureRequestOverdue",
            "PeerlinkSubjectAccessRequestOverdue"} <= alerts
    broken = {rule["name"]: rule.get("lastError") for group in loaded
              for rule in group["rules"] if rule["health"] != "ok"}
    assert not broken, broken


@pytest.mark.kafka
def test_every_dashboard_query_is_valid_promql(prometheus: Prometheus) -> None:
    grafana = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}

    def substitute(expr: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: grafana.get(m.group(1), ".+"), expr)

    invalid = {}
    for where, expr in dashboard_expressions():
        try:
            prometheus.query(substitute(expr))
        except AssertionError as exc:
            invalid[f"{where}: {expr}"] = str(exc)
    assert not invalid, json.dumps(invalid, indent=2)


@pytest.mark.kafka
def test_every_metric_used_by_dashboards_and_alerts_is_exported(
        prometheus: Prometheus, traffic: None) -> None:
    wanted = names_the_services_must_export()

    def missing() -> set[str]:
        return wanted - {family(name) for name in prometheus.metric_names()}

    with contextlib.suppress(AssertionError):  # the assertion below names what is missing
        wait_for(lambda: not missing(), timeout=20)
    absent = sorted(missing())
    assert not absent, ("used by the dashboards or alerts.yml but exported by no running "
                        f"service: {', '.join(absent)}")
