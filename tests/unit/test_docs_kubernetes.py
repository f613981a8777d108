"""docs/kubernetes.md: every YAML block parses, its configs load, and its command lines parse with the
real command-line parser, so the page cannot show a flag, a value or a variable that does not exist."""

from __future__ import annotations

import inspect
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer._click.core import Context

from fluxmirror.cli.app import app
from fluxmirror.cli.pflag import PflagGroup
from fluxmirror.cli.sync import RunFlags
from fluxmirror.config import load_config

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "kubernetes.md").read_text(encoding="utf-8")
YAML_BLOCKS = re.findall(r"^```yaml\n(.*?)^```$", PAGE, flags=re.MULTILINE | re.DOTALL)
SHELL_BLOCKS = re.findall(r"^```bash\n(.*?)^```$", PAGE, flags=re.MULTILINE | re.DOTALL)
DOCUMENTS = [document for block in YAML_BLOCKS for document in yaml.safe_load_all(block) if document]
WORKLOADS = [document for document in DOCUMENTS if document["kind"] in ("CronJob", "Job")]
SOURCE = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "fluxmirror").rglob("*.py"))
READ_BY_PYTHON = {"TMPDIR"}  # tempfile's directory: every temporary file fluxmirror writes goes there


def job_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]
    return spec["jobTemplate"]["spec"] if workload["kind"] == "CronJob" else spec


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job_spec(workload)["template"]["spec"]
    return spec


def parse(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """The command and its parameters, as the CLI parses them (an unknown flag, a missing value or a
    stray argument raises the CLI's own UsageError)."""
    group = typer.main.get_command(app)
    assert isinstance(group, PflagGroup)
    root = Context(group, info_name="fluxmirror", resilient_parsing=True)
    command = group.commands[argv[0]]
    return argv[0], command.make_context(argv[0], argv[1:], parent=root).params


def environment(container: dict[str, Any]) -> dict[str, str]:
    return {variable["name"]: variable["value"] for variable in container.get("env", [])}


def mounts(workload: dict[str, Any], container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each mount path of the container, with the volume mounted there."""
    volumes = {volume["name"]: volume for volume in pod_spec(workload)["volumes"]}
    return {mount["mountPath"]: volumes[mount["name"]] for mount in container["volumeMounts"]}


def test_the_page_has_its_manifests() -> None:
    kinds = sorted(document["kind"] for document in DOCUMENTS)
    assert kinds == ["Config", "ConfigMap", "CronJob", "Job"]


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda workload: workload["kind"])
def test_command_lines_parse_with_only_existing_flags(
    workload: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for container in pod_spec(workload)["containers"]:
        name, params = parse([*container.get("command", []), *container["args"]])
        assert name == "sync"
        # The values are checked too, as `sync` checks them, in the pod's environment (index 0).
        for variable, value in {**environment(container), "JOB_COMPLETION_INDEX": "0"}.items():
            monkeypatch.setenv(variable, value)
        accepted = inspect.signature(RunFlags).parameters
        RunFlags(**{key: value for key, value in params.items() if key in accepted})


def test_shell_command_lines_parse_with_only_existing_flags() -> None:
    lines = [line for block in SHELL_BLOCKS for line in block.splitlines() if "fluxmirror " in line]
    assert lines
    for line in lines:
        words = shlex.split(line, comments=True)
        argv = words[words.index("fluxmirror") + 1 :]
        name, params = parse(argv)
        assert (name, params["name"], params["namespace"]) == ("secret", "fluxmirror-registry", "mirror")


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda workload: workload["kind"])
def test_pods_are_locked_down(workload: dict[str, Any]) -> None:
    pod = pod_spec(workload)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["restartPolicy"] == "Never"
    assert job_spec(workload)["activeDeadlineSeconds"] > 0
    for container in pod["containers"]:
        assert container["securityContext"] == {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda workload: workload["kind"])
def test_what_the_pod_reads_and_writes_is_mounted(workload: dict[str, Any]) -> None:
    configmaps = {document["metadata"]["name"]: document for document in DOCUMENTS if document["kind"] == "ConfigMap"}
    for container in pod_spec(workload)["containers"]:
        env, mounted = environment(container), mounts(workload, container)
        assert all(f'"{name}"' in SOURCE or name in READ_BY_PYTHON for name in env), env  # each is read
        assert "emptyDir" in mounted[env["TMPDIR"]]
        secret = mounted[env["DOCKER_CONFIG"]]["secret"]
        assert secret["items"] == [{"key": ".dockerconfigjson", "path": "config.json"}]
        _, params = parse(container["args"])
        directory, _, file = params["config"].rpartition("/")
        assert file in configmaps[mounted[directory]["configMap"]["name"]]["data"]


def test_the_cronjob_never_overlaps_itself() -> None:
    [cronjob] = [workload for workload in WORKLOADS if workload["kind"] == "CronJob"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


def test_the_indexed_job_shards_by_its_completions() -> None:
    [job] = [workload for workload in WORKLOADS if workload["kind"] == "Job"]
    assert job["spec"]["completionMode"] == "Indexed"
    [container] = pod_spec(job)["containers"]
    _, params = parse(container["args"])
    assert params["shard"] == "auto"
    assert environment(container)["JOB_COMPLETIONS"] == str(job["spec"]["completions"])


def test_the_configs_shown_load(tmp_path: Path) -> None:
    [configmap] = [document for document in DOCUMENTS if document["kind"] == "ConfigMap"]
    for name, text in configmap["data"].items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert load_config(str(tmp_path / name), require_entries=True, env={}).config.artifacts
    [hosts] = [document for document in DOCUMENTS if document["kind"] == "Config"]
    (tmp_path / "secret-hosts.yaml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
    loaded = load_config(str(tmp_path / "secret-hosts.yaml"), require_entries=False, env={"REGISTRY_PASSWORD": "p"})
    assert [host.host for host in loaded.config.hosts] == ["registry.example.internal"]
