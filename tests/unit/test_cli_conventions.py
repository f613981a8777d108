"""The Go CLI's cobra/pflag conventions, mostly through a real child process: a CI script that swaps
`flux mirror` for `fluxmirror` must notice nothing (docs/cli.md#command-line-conventions)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import images
from harness.cli import Completed, program, run_cli
from registry import OCIRegistry

from fluxmirror import __version__
from fluxmirror.cli import main
from fluxmirror.cli.pflag import parse_go_bool, parse_go_int

HEAD = "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\n"
UNREACHABLE = HEAD + "artifacts:\n  - source: 127.0.0.1:1/aa/bb\n    destination: 127.0.0.1:1/bb\n"
HOSTS_ONLY = HEAD + "hosts:\n  - host: registry.example\n    credential:\n      value: t0ken\n"
SYNC_BOOLS = ("dry_run", "overwrite", "verbose", "no_progress", "insecure", "no_envsubst")
TRUE_SPELLINGS = ("1", "t", "T", "TRUE", "true", "True")
FALSE_SPELLINGS = ("0", "f", "F", "FALSE", "false", "False")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLUX_MIRROR_CONFIG", raising=False)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "mirror.yaml"
    path.write_text(UNREACHABLE, encoding="utf-8")
    return path


@pytest.fixture
def captured_sync(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `sync` hands to the engine, without running it: the options and the output flags."""
    seen: dict[str, Any] = {}

    def capture(config: Any, options: Any, **flags: Any) -> int:
        seen.update(config=config, options=options, **flags)
        return 0

    monkeypatch.setattr("fluxmirror.cli.sync_output.run_and_print", capture)
    return seen


def one_line(result: Completed, message: str) -> None:
    assert (result.code, result.out, result.err) == (1, "", f"✗ {message}\n")


# ---- boolean flags take an optional value ---------------------------------------------------------


def _sync_bools(seen: dict[str, Any]) -> dict[str, bool]:
    options = seen["options"]
    return {
        "dry_run": options.dry_run,
        "overwrite": options.overwrite,
        "verbose": seen["verbose"],
        "no_progress": not seen["spinner"],
        "insecure": options.insecure,
    }


@pytest.mark.parametrize("flag", [name for name in SYNC_BOOLS if name != "no_envsubst"])
@pytest.mark.parametrize(
    ("suffix", "expected"),
    [("", True), *((f"={s}", True) for s in TRUE_SPELLINGS), *((f"={s}", False) for s in FALSE_SPELLINGS)],
)
def test_sync_boolean_flags_take_go_bool_values(
    captured_sync: dict[str, Any], config_file: Path, flag: str, suffix: str, expected: bool
) -> None:
    option = "--" + flag.replace("_", "-")
    assert main(["sync", str(config_file), f"{option}{suffix}"]) == 0
    values = _sync_bools(captured_sync)
    assert values.pop(flag) is expected
    assert not any(values.values())


def test_the_last_boolean_value_wins(captured_sync: dict[str, Any], config_file: Path) -> None:
    assert main(["sync", str(config_file), "--dry-run", "--dry-run=false", "--insecure=false", "--insecure"]) == 0
    assert (captured_sync["options"].dry_run, captured_sync["options"].insecure) == (False, True)


def test_a_boolean_flag_never_takes_the_next_argument(captured_sync: dict[str, Any], config_file: Path) -> None:
    """pflag's NoOptDefVal: `--dry-run config.yaml` is a flag and the positional config."""
    assert main(["sync", "--dry-run", str(config_file), "--verbose", "-o", "json"]) == 0
    assert (captured_sync["options"].dry_run, captured_sync["verbose"], captured_sync["output"]) == (True, True, "json")
    assert [entry.source for entry in captured_sync["config"].artifacts] == ["127.0.0.1:1/aa/bb"]


@pytest.mark.parametrize("value", ["true", "false"])
def test_no_envsubst_takes_a_value_before_and_after_the_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.delenv("UNSET_FOR_TEST", raising=False)
    path = tmp_path / "hosts.yaml"
    path.write_text(HOSTS_ONLY.replace("t0ken", "${UNSET_FOR_TEST}"), encoding="utf-8")
    argv = ["login", "-f", str(path), "--docker-config", str(tmp_path / "docker")]
    for placed in ([f"--no-envsubst={value}", *argv], [*argv, f"--no-envsubst={value}"]):
        code = main(placed)
        err = capsys.readouterr().err
        if value == "true":
            assert (code, err) == (0, "")
        else:
            assert (code, err) == (
                1,
                '✗ substitute environment variables: variable not set (strict mode): "UNSET_FOR_TEST"\n',
            )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["sync", "CONFIG", "--dry-run=x"],
            'invalid argument "x" for "--dry-run" flag: strconv.ParseBool: parsing "x": invalid syntax',
        ),
        (
            ["sync", "CONFIG", "--no-progress=yes"],
            'invalid argument "yes" for "--no-progress" flag: strconv.ParseBool: parsing "yes": invalid syntax',
        ),
        (
            ["sync", "CONFIG", "--overwrite="],
            'invalid argument "" for "--overwrite" flag: strconv.ParseBool: parsing "": invalid syntax',
        ),
        (
            ["--no-envsubst=on", "sync", "CONFIG"],
            'invalid argument "on" for "--no-envsubst" flag: strconv.ParseBool: parsing "on": invalid syntax',
        ),
        (
            ["sync", "--help=2"],
            'invalid argument "2" for "-h, --help" flag: strconv.ParseBool: parsing "2": invalid syntax',
        ),
        (["sync", "CONFIG", "--no-dry-run"], "unknown flag: --no-dry-run"),
        (["sync", "CONFIG", "--no-no-progress"], "unknown flag: --no-no-progress"),
    ],
    ids=["dry-run", "no-progress", "empty", "persistent", "help", "no-twin", "no-no-twin"],
)
def test_bad_boolean_values_and_no_twins(config_file: Path, argv: list[str], message: str) -> None:
    one_line(run_cli(*(str(config_file) if arg == "CONFIG" else arg for arg in argv)), message)


def test_boolean_values_through_the_console_script(tmp_path: Path) -> None:
    """Against a real (in-memory, plain HTTP) registry: `--dry-run=true` writes nothing and
    `--dry-run=false` copies; the others are accepted with either value."""
    with OCIRegistry(tmp_path / "registry") as server:
        image = images.make_image([64], seed=13)
        images.push(server.registry, "src/app", "1.0.0", image)
        server.reset()
        config = tmp_path / "mirror.yaml"
        config.write_text(
            HEAD + "artifacts:\n  - source: ${REGISTRY}/src/app\n    destination: ${REGISTRY}/dst/app\n",
            encoding="utf-8",
        )
        env = {"REGISTRY": server.host}
        flags = ["--overwrite=false", "--verbose=false", "--no-progress=true", "--no-envsubst=false", "-o=json"]
        planned = run_cli("sync", str(config), "--insecure=true", "--dry-run=true", *flags, env=env)
        assert (planned.code, planned.err) == (0, "")
        assert [row["status"] for row in json.loads(planned.out)["report"]["results"][0]["tags"]] == ["would-copy"]
        assert not [request for request in server.requests if request.method in ("PUT", "POST", "PATCH")]
        copied = run_cli("sync", str(config), "--insecure=1", "--dry-run=false", *flags, env=env)
        assert (copied.code, copied.err) == (0, "")
        rows = json.loads(copied.out)["report"]["results"][0]["tags"]
        assert [(row["status"], row["digest"]) for row in rows] == [("copied", image.digest)]
        again = run_cli("sync", str(config), "--insecure=false", "--overwrite=F", "--dry-run=0", "-o", "json", env=env)
        assert (again.code, again.err) == (0, "")
        assert [row["reason"] for row in json.loads(again.out)["report"]["results"][0]["tags"]] == ["up-to-date"]


HELP_COMMANDS = ["sync", "login", "secret", "keygen", "version", "completion", "help"]
ALLOWED_NO_FLAGS = {"--no-envsubst", "--no-progress", "--no-descriptions"}


@pytest.mark.parametrize("command", ["", *HELP_COMMANDS])
def test_help_shows_no_negated_twins(command: str) -> None:
    result = run_cli(*([command] if command else []), "--help", env={"COLUMNS": "200"})
    assert (result.code, result.err) == (0, "")
    assert set(re.findall(r"--no-[a-z-]+", result.out)) <= ALLOWED_NO_FLAGS
    assert "--no-no-" not in result.out


# ---- --version, help, completion, a bare invocation ---------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-v", "--version=true"])
def test_version_flag(tmp_path: Path, flag: str) -> None:
    executable = program(tmp_path, "flux-mirror")
    assert run_cli(flag, executable=executable) == Completed(0, f"flux-mirror version {__version__}\n", "")
    assert run_cli("version", executable=executable) == Completed(0, f"{__version__}\n", "")


def test_version_flag_belongs_to_the_root() -> None:
    one_line(run_cli("sync", "--version"), "unknown flag: --version")
    one_line(run_cli("sync", "-v"), "unknown shorthand flag: 'v' in -v")


def test_a_bare_invocation_prints_the_help_and_exits_0(tmp_path: Path) -> None:
    executable = program(tmp_path, "flux-mirror")
    bare = run_cli(executable=executable)
    assert (bare.code, bare.err) == (0, "")
    assert "Usage: flux-mirror [OPTIONS] COMMAND [ARGS]..." in bare.out
    for command in HELP_COMMANDS:
        assert command in bare.out
    assert run_cli("--help", executable=executable) == bare
    assert run_cli("help", executable=executable) == bare
    assert run_cli("--timeout", "1m", executable=executable) == bare


def test_help_command(tmp_path: Path) -> None:
    executable = program(tmp_path, "flux-mirror")
    for command in ("sync", "secret", "login"):
        described = run_cli("help", command, executable=executable)
        assert (described.code, described.err) == (0, "")
        assert f"Usage: flux-mirror {command} [OPTIONS]" in described.out
        assert described == run_cli(command, "--help", executable=executable)
    unknown = run_cli("help", "frobnicate", executable=executable)
    assert (unknown.code, unknown.err) == (0, "Unknown help topic [`frobnicate`]\n")
    assert unknown.out == run_cli(executable=executable).out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell"])
def test_completion_scripts(tmp_path: Path, shell: str) -> None:
    result = run_cli("completion", shell, executable=program(tmp_path, "flux-mirror"))
    assert (result.code, result.err) == (0, "")
    assert result.out.strip() and "flux-mirror" in result.out and "_FLUX_MIRROR_COMPLETE" in result.out


def test_completion_errors_and_help() -> None:
    one_line(run_cli("completion", "tcsh"), 'unknown command "tcsh" for "fluxmirror completion"')
    one_line(run_cli("completion", "bash", "zsh"), "accepts at most 1 arg(s), received 2")
    bare = run_cli("completion")
    assert (bare.code, bare.err) == (0, "")
    assert "Usage: fluxmirror completion" in bare.out


def test_the_completion_script_protocol_is_answered(tmp_path: Path) -> None:
    """The bash script runs the program with COMP_WORDS/COMP_CWORD and `_<PROG>_COMPLETE` set."""
    executable = program(tmp_path, "flux-mirror")

    def complete(words: str, index: int) -> list[str]:
        env = {"_FLUX_MIRROR_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(index)}
        result = run_cli(executable=executable, env=env)
        assert (result.code, result.err) == (0, "")
        return result.out.split()

    assert complete("flux-mirror sy", 1) == ["sync"]
    assert complete("flux-mirror --no-envsubst se", 2) == ["secret"]
    assert complete("flux-mirror sync --dr", 2) == ["--drift-exit-code", "--dry-run"]
    assert complete("flux-mirror secret x --as", 3) == ["--as", "--as-group", "--as-uid"]


# ---- -o=json and friends; persistent flags anywhere --------------------------------------------------


@pytest.mark.parametrize("form", [["-o", "json"], ["-o=json"], ["-ojson"], ["--output=json"], ["--output", "json"]])
def test_output_flag_forms(form: list[str], captured_sync: dict[str, Any], config_file: Path) -> None:
    assert run_cli("version", *form) == Completed(0, json.dumps({"version": __version__}, indent=2) + "\n", "")
    assert main(["sync", str(config_file), *form]) == 0
    assert captured_sync["output"] == "json"


def test_sync_output_equals_form_through_the_console_script(config_file: Path) -> None:
    result = run_cli("sync", str(config_file), "-o=yaml")
    assert (result.code, result.err) == (1, "")
    assert yaml.safe_load(result.out)["report"]["summary"]["failed"] == 1


def test_keygen_output_dir_forms(tmp_path: Path) -> None:
    assert run_cli("keygen", f"-o={tmp_path / 'a'}").code == 0
    assert run_cli("keygen", f"-o{tmp_path / 'b'}").code == 0
    assert run_cli("keygen", f"--output-dir={tmp_path / 'c'}").code == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a", "b", "c"]
    assert (tmp_path / "a" / "privkey.json").is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["--timeout", "1m", "--no-envsubst", "keygen", "-o", "DIR"],
        ["keygen", "--timeout=1m", "-o", "DIR", "--no-envsubst"],
        ["--no-envsubst=true", "keygen", "--timeout", "30s", "-o=DIR"],
    ],
    ids=["before", "after", "mixed"],
)
def test_persistent_flags_reach_keygen(tmp_path: Path, argv: list[str]) -> None:
    directory = tmp_path / "keys"
    result = run_cli(*(arg.replace("DIR", str(directory)) for arg in argv))
    assert (result.code, result.err) == (0, "")
    assert (directory / "pubkey.json").is_file()


@pytest.mark.parametrize("command", ["version", "completion bash", "help sync"])
@pytest.mark.parametrize("placement", ["before", "after"])
def test_persistent_flags_are_accepted_by_every_command(command: str, placement: str) -> None:
    words = command.split()
    flags = ["--timeout", "2m", "--no-envsubst"]
    result = run_cli(*(flags + words if placement == "before" else words + flags))
    assert (result.code, result.err) == (0, "")
    assert result.out


def test_persistent_flag_values_are_checked_for_every_command() -> None:
    message = 'invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"'
    one_line(run_cli("--timeout", "soon", "keygen"), message)
    one_line(run_cli("version", "--timeout=soon"), message)


def test_the_last_timeout_wins_wherever_it_is_given(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    assert main(["--timeout", "0s", "sync", str(config_file), "--timeout", "soon"]) == 1
    assert capsys.readouterr().err == '✗ invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"\n'
    assert main(["--timeout", "soon", "sync", str(config_file), "--timeout", "0s"]) == 1
    assert capsys.readouterr().err == '✗ invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"\n'
    assert main(["--timeout", "1h", "sync", str(config_file), "--timeout", "0s"]) == 1
    assert capsys.readouterr().err == "✗ --timeout must be greater than 0\n"


# ---- pflag's and cobra's messages --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["frobnicate"], 'unknown command "frobnicate" for "fluxmirror"'),
        (["--no-envsubst", "frobnicate", "sync"], 'unknown command "frobnicate" for "fluxmirror"'),
        (["sync", "--frobnicate"], "unknown flag: --frobnicate"),
        (["sync", "-x"], "unknown shorthand flag: 'x' in -x"),
        (["sync", "---x"], "bad flag syntax: ---x"),
        (["sync", "--timeout"], "flag needs an argument: --timeout"),
        (["sync", "-o"], "flag needs an argument: 'o' in -o"),
        (["sync", "a", "b"], "accepts at most 1 arg(s), received 2"),
        (["keygen", "extra"], 'unknown command "extra" for "fluxmirror keygen"'),
        (["login", "extra"], 'unknown command "extra" for "fluxmirror login"'),
        (["secret"], "accepts 1 arg(s), received 0"),
        (
            ["sync", "--concurrency", "many"],
            'invalid argument "many" for "--concurrency" flag: strconv.ParseInt: parsing "many": invalid syntax',
        ),
        (
            ["sync", "--retries=99999999999999999999"],
            'invalid argument "99999999999999999999" for "--retries" flag: strconv.ParseInt: parsing "99999999999999999999": value out of range',
        ),
    ],
)
def test_pflag_and_cobra_messages(argv: list[str], message: str) -> None:
    one_line(run_cli(*argv), message)


def test_flag_values_that_look_like_flags_are_values(captured_sync: dict[str, Any], config_file: Path) -> None:
    """A flag taking a value takes the next argument whatever it is; `--` ends the flags."""
    assert (
        main(["sync", "--concurrency", "0x10", "--retries", "0o7", str(config_file), "--drift-exit-code", "1_0"]) == 0
    )
    options = captured_sync["options"]
    assert (options.concurrency, options.retries, captured_sync["drift_exit_code"]) == (16, 7, 10)
    assert main(["sync", "--", str(config_file)]) == 0


def test_go_value_parsers() -> None:
    assert [parse_go_bool(text) for text in TRUE_SPELLINGS + FALSE_SPELLINGS] == [True] * 6 + [False] * 6
    for text in ("yes", "", "tRUE", " true"):
        with pytest.raises(ValueError, match=f'^strconv.ParseBool: parsing "{re.escape(text)}": invalid syntax$'):
            parse_go_bool(text)
    cases = {"0": 0, "-0": 0, "+5": 5, "017": 15, "0x1F": 31, "0B101": 5, "0o17": 15, "1_000": 1000, "0_7": 7}
    assert {text: parse_go_int(text) for text in cases} == cases
    assert parse_go_int("9223372036854775807") == (1 << 63) - 1
    assert parse_go_int("-9223372036854775808") == -(1 << 63)
    for text in ("", "-", "08", "0x", "1__0", "_1", "1_", "1.5", "٣", "0x1G"):
        with pytest.raises(ValueError, match=r"invalid syntax$"):
            parse_go_int(text)
    for text in ("9223372036854775808", "-9223372036854775809", "18446744073709551616", "99999999999999999999x"):
        with pytest.raises(ValueError, match=r"value out of range$"):
            parse_go_int(text)


# ---- the program name and <executable>.config -------------------------------------------------------


@pytest.mark.parametrize("name", ["flux-mirror", "fluxmirror"])
def test_usage_lines_use_the_invoked_name(tmp_path: Path, name: str) -> None:
    executable = program(tmp_path, name)
    assert f"Usage: {name} sync [OPTIONS]" in run_cli("sync", "--help", executable=executable).out
    one_line(run_cli("nope", executable=executable), f'unknown command "nope" for "{name}"')


def test_a_symlink_is_named_by_its_own_name_but_finds_the_config_next_to_its_target(tmp_path: Path) -> None:
    """Usage lines take the symlink's name (argv[0]); `<executable>.config` follows the symlink to the
    real file, as Go's os.Executable() does."""
    real = tmp_path / "opt"
    real.mkdir()
    target = program(real, "flux-mirror")
    (real / "flux-mirror.config").write_text(HOSTS_ONLY, encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    link = bin_dir / "mirror-tool"
    link.symlink_to(target)
    (bin_dir / "mirror-tool.config").write_text("not: [a config", encoding="utf-8")  # must not be read
    assert "Usage: mirror-tool login [OPTIONS]" in run_cli("login", "--help", executable=link).out
    docker = tmp_path / "docker"
    stored = f"✔ stored registry token for registry.example in {docker / 'config.json'}\n"
    assert run_cli("login", "--docker-config", str(docker), executable=link) == Completed(0, stored, "")
    # Found on PATH by its bare name, as a shell runs it.
    path = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    by_name = run_cli("login", "--docker-config", str(docker), executable="mirror-tool", env={"PATH": path})
    assert by_name == Completed(0, stored, "")
    missing = run_cli("secret", "x", executable=program(tmp_path, "lonely"))
    one_line(missing, f"open config: open {tmp_path / 'lonely'}.config: no such file or directory")
