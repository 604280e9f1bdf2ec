"""Check every deployment file without a container engine or a cluster.

    .venv/bin/python deploy/check.py                # every check
    .venv/bin/python deploy/check.py k8s prometheus # some groups: compose, k8s, prometheus

Checks, from the repository root:

- compose: ``docker-compose config -q`` of ``docker-compose.yml``, and of it with the secure
  overlay ``deploy/compose.secure.yml`` (Debian package ``docker-compose``; the Compose v2
  plugin ``docker compose`` is used when the v1 command is absent);
- k8s: ``kubectl kustomize`` of each overlay under ``deploy/k8s/overlays``, and every rendered
  object validated (strictly: unknown fields fail) against the Kubernetes JSON schemas bundled
  with ``kubernetes-validate`` (PyPI; no network needed);
- prometheus: ``promtool check config deploy/prometheus/prometheus.yml`` and
  ``promtool check rules`` for each ``deploy/prometheus/alerts*.yml`` that exists (Debian
  package ``prometheus``).

Exits 0 when every check passed, 1 naming the checks that failed otherwise. A missing tool
is a failure, named with the package that provides it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = "docker-compose.yml"
SECURE_OVERLAY = "deploy/compose.secure.yml"
K8S_OVERLAYS = ROOT / "deploy" / "k8s" / "overlays"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
# The oldest Kubernetes release we support and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
TIMEOUT_SECONDS = 180
GROUPS = ("compose", "k8s", "prometheus")

TOOL_PACKAGES = {
    "docker-compose": "apt-get install docker-compose (Debian package)",
    "kubectl": "install kubectl >= 1.27 with kustomize v5 from the pkgs.k8s.io apt repository "
               "(Debian's kubernetes-client 1.20 is too old)",
    "promtool": "apt-get install prometheus (Debian package)",
    "kubernetes-validate": ".venv/bin/pip install kubernetes-validate (PyPI)",
}


class MissingTool(Exception):
    """A program or package a check needs is not installed."""

    def __init__(self, tool: str) -> None:
        super().__init__(f"missing tool: {tool}; {TOOL_PACKAGES.get(tool, 'install it')}")
        self.tool = tool


@dataclass(frozen=True)
class Result:
    """The outcome of one check."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Check:
    """One named check in a group."""

    group: str
    name: str
    run: Callable[[], str]


def run(argv: Sequence[str]) -> str:
    """Run a program from the repository root; its output, or CheckFailed with it."""
    # The programs are resolved to absolute paths by the callers; arguments are ours.
    completed = subprocess.run(  # noqa: S603
        list(argv), cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
        check=False)
    output = (completed.stdout + completed.stderr).strip()
    if completed.returncode != 0:
        raise CheckFailed(f"exit status {completed.returncode}: {' '.join(argv)}\n{output}")
    return output


class CheckFailed(Exception):
    """A check ran and found a problem."""


def tool(name: str) -> str:
    """The absolute path of a program, or MissingTool."""
    path = shutil.which(name)
    if path is None:
        raise MissingTool(name)
    return path


def compose_command() -> list[str]:
    """``docker-compose`` (v1, Debian), else the ``docker compose`` v2 plugin."""
    v1 = shutil.which("docker-compose")
    if v1 is not None:
        return [v1]
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(  # noqa: S603
            [docker, "compose", "version"], capture_output=True, text=True, check=False,
            timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    raise MissingTool("docker-compose")


def check_compose(*files: str) -> Callable[[], str]:
    """``config -q`` of the given compose files, merged in order."""

    def check() -> str:
        argv = compose_command()
        for file in files:
            argv += ["-f", file]
        return run([*argv, "config", "-q"]) or "valid"

    return check


def kustomize(overlay: Path) -> str:
    """The rendered manifests of one overlay."""
    return run([tool("kubectl"), "kustomize", str(overlay.relative_to(ROOT))])


def validate_manifests(rendered: str) -> list[str]:
    """Problems found by kubernetes-validate (strict) in every object, for every version."""
    try:
        import yaml
        from kubernetes_validate import utils as kv
    except ImportError:
        raise MissingTool("kubernetes-validate") from None

    problems: list[str] = []
    documents: list[dict[str, Any]] = [d for d in yaml.safe_load_all(rendered) if d]
    if not documents:
        return ["the overlay rendered no objects"]
    for document in documents:
        what = f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"
        for version in KUBERNETES_VERSIONS:
            try:
                kv.validate(document, version, strict=True)
            except kv.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                problems.append(f"{what} (Kubernetes {version}): {path}: {exc.message}")
            except kv.SchemaNotFoundError as exc:
                problems.append(f"{what} (Kubernetes {version}): {exc.message}")
            except kv.VersionNotSupportedError:
                problems.append(f"kubernetes-validate does not know Kubernetes {version}")
    return problems


def check_overlay(overlay: Path) -> Callable[[], str]:
    """Render an overlay and validate every object it contains."""

    def check() -> str:
        rendered = kustomize(overlay)
        problems = validate_manifests(rendered)
        if problems:
            raise CheckFailed("\n".join(problems))
        count = sum(1 for d in rendered.split("\n---\n") if d.strip())
        return (f"{count} objects valid against Kubernetes "
                f"{', '.join(KUBERNETES_VERSIONS)} (strict)")

    return check


def check_prometheus_config() -> str:
    """``promtool check config`` (also loads the rule files it names)."""
    return run([tool("promtool"), "check", "config",
                str((PROMETHEUS_DIR / "prometheus.yml").relative_to(ROOT))])


def check_prometheus_rules() -> str:
    """``promtool check rules`` for every alerts*.yml present (none yet is not a failure)."""
    rules = sorted(PROMETHEUS_DIR.glob("alerts*.yml"))
    if not rules:
        return "no deploy/prometheus/alerts*.yml yet: nothing to check"
    return run([tool("promtool"), "check", "rules", *(str(r.relative_to(ROOT)) for r in rules)])


def checks() -> list[Check]:
    """Every check, in the order they run."""
    found = [
        Check("compose", f"compose: {COMPOSE_FILE}", check_compose(COMPOSE_FILE)),
        Check("compose", f"compose: {COMPOSE_FILE} + {SECURE_OVERLAY}",
              check_compose(COMPOSE_FILE, SECURE_OVERLAY)),
    ]
    overlays = sorted(p for p in K8S_OVERLAYS.iterdir() if (p / "kustomization.yaml").is_file())
    found += [Check("k8s", f"k8s: {o.relative_to(ROOT)}", check_overlay(o)) for o in overlays]
    found += [
        Check("prometheus", "prometheus: check config", check_prometheus_config),
        Check("prometheus", "prometheus: check rules", check_prometheus_rules),
    ]
    return found


def tool_versions() -> list[str]:
    """The versions of the tools found, for the record."""
    probes = {  # tool: (command, how many lines of its answer to keep)
        "docker-compose": (["docker-compose", "version", "--short"], 1),
        "kubectl": (["kubectl", "version", "--client"], 2),
        "promtool": (["promtool", "--version"], 1),
    }
    versions: list[str] = []
    for name, (argv, keep) in probes.items():
        path = shutil.which(argv[0])
        if path is None:
            versions.append(f"{name}: not installed")
            continue
        probe = subprocess.run(  # noqa: S603
            [path, *argv[1:]], capture_output=True, text=True, check=False, timeout=30)
        lines = (probe.stdout + probe.stderr).strip().splitlines()
        versions.append(f"{name}: {'; '.join(lines[:keep]) if lines else 'unknown'}")
    try:
        from kubernetes_validate.version import __version__ as kv_version
    except ImportError:
        kv_version = "not installed"
    versions.append(f"kubernetes-validate: {kv_version}")
    return versions


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected checks; 0 when all passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", metavar="GROUP",
                        help=f"check only these groups, of {', '.join(GROUPS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group {', '.join(unknown)} (choose from {', '.join(GROUPS)})")

    for line in tool_versions():
        print(f"tool  {line}")
    results: list[Result] = []
    for item in checks():
        if args.groups and item.group not in args.groups:
            continue
        try:
            detail = item.run()
        except MissingTool as exc:
            results.append(Result(item.name, False, str(exc)))
        except CheckFailed as exc:
            results.append(Result(item.name, False, str(exc)))
        except subprocess.TimeoutExpired as exc:
            results.append(Result(item.name, False, f"timed out after {exc.timeout} s"))
        else:
            results.append(Result(item.name, True, detail))
        result = results[-1]
        print(f"{'ok  ' if result.ok else 'FAIL'}  {result.name}")
        lines = result.detail.splitlines()
        for line in lines if not result.ok else lines[-1:]:
            print(f"      {line.strip() if result.ok else line}")

    failed = [r.name for r in results if not r.ok]
    if failed:
        print(f"deploy/check.py: {len(failed)} of {len(results)} checks failed: "
              f"{'; '.join(failed)}", file=sys.stderr)
        return 1
    print(f"deploy/check.py: all {len(results)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
