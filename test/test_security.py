"""Security: checkpoints load without unpickling code and match their manifest; no parameter or
message field reaches a shell, a file path or eval; SROS2 settings never start an unsecured node.
"""

from __future__ import annotations

import ast
import builtins
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from hecsb_ros.core.store import (
    CHECKSUMS_NAME,
    ChecksumError,
    read_checksums,
    sha256_of,
    verify_checkpoint,
    write_checksums,
)

pytestmark = [pytest.mark.ros, pytest.mark.dds]

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hecsb_ros"


# -- checkpoints
# -----------------------------------------------------------------------------------
@pytest.mark.once  # no ROS involved
def test_checkpoint_loads_with_pickle_and_torch_load_disabled(random_classifier, monkeypatch):
    import torch

    from hecsb_ros.core.teachers import load_teacher

    def refuse(*a, **k):
        raise AssertionError("a checkpoint load used pickle")

    for target, name in (
        (pickle, "load"),
        (pickle, "loads"),
        (pickle, "Unpickler"),
        (torch, "load"),
    ):
        monkeypatch.setattr(target, name, refuse)
    clf = load_teacher(random_classifier)
    assert clf.spec.num_classes == 10


class _Payload:
    """Pickles to a call that creates a marker file: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.once  # no ROS involved
def test_pickled_code_in_a_pth_checkpoint_is_refused_and_not_run(tmp_path):
    import torch

    from hecsb_ros.core.teachers import load_teacher

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": _Payload(marker)}, evil)
    with pytest.raises(Exception) as err:
        load_teacher(evil)
    assert "weights_only" in str(err.value) or "Unpickl" in type(err.value).__name__ + str(
        err.value
    )
    assert not marker.exists(), "unpickling ran the payload"


@pytest.mark.once  # no ROS involved
def test_checksums_accept_a_matching_checkpoint_and_refuse_a_changed_one(
    random_classifier, tmp_path
):
    ckpt = tmp_path / "teacher.safetensors"
    ckpt.write_bytes(random_classifier.read_bytes())
    manifest = write_checksums(tmp_path)
    assert manifest.name == CHECKSUMS_NAME and read_checksums(manifest) == {
        ckpt.name: sha256_of(ckpt)
    }
    assert verify_checkpoint(ckpt) == sha256_of(ckpt)
    data = bytearray(ckpt.read_bytes())
    data[-1] ^= 0x01  # one flipped bit in the weights
    ckpt.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="refusing to load"):
        verify_checkpoint(ckpt)


@pytest.mark.once  # no ROS involved
def test_checksum_rules(tmp_path):
    other = tmp_path / "other.safetensors"
    other.write_bytes(b"x")
    assert verify_checkpoint(other) is None  # no manifest, not required
    with pytest.raises(ChecksumError, match="no checksum list"):
        verify_checkpoint(other, required=True)
    (tmp_path / CHECKSUMS_NAME).write_text(f"{'0' * 64}  listed.safetensors\n")
    with pytest.raises(ChecksumError, match="not listed"):
        verify_checkpoint(other, required=True)
    for bad in (
        f"{'0' * 64}  ../outside.safetensors",
        f"{'0' * 64}  /etc/passwd",
        "nothex  x.safetensors",
        f"{'0' * 64}  ..",
        f"{'0' * 64}  a.pth\n{'1' * 64}  a.pth",
    ):
        (tmp_path / CHECKSUMS_NAME).write_text(bad + "\n")
        with pytest.raises(ChecksumError):
            read_checksums(tmp_path / CHECKSUMS_NAME)
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    (elsewhere / CHECKSUMS_NAME).write_text(f"{sha256_of(other)}  other.safetensors\n")
    with pytest.raises(ChecksumError, match="own folder"):
        verify_checkpoint(other, checksums=elsewhere / CHECKSUMS_NAME)


# -- no shell, eval or unsafe deserialization anywhere in the package
# -------------------------------- : Deliberate exceptions: the numpy-only unpickler for the MNIST
# data file (it refuses every : global but numpy arrays) is the only pickle use.
PICKLE_ALLOWED = {"hecsb_ros/core/datasets.py"}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            # Bare names (eval, exec) and module.function; method calls such as model.eval() stay
            # "model.eval" and do not match.
            name = (
                f.id
                if isinstance(f, ast.Name)
                else (
                    f"{f.value.id}.{f.attr}"
                    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                    else "." + getattr(f, "attr", "")
                )
            )
            yield name, node


@pytest.mark.once  # no ROS involved
def test_package_sources_never_eval_shell_out_or_unpickle_freely():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(), rel)
        for name, call in _calls(tree):
            kwargs = {k.arg: k.value for k in call.keywords}
            where = f"{rel}:{call.lineno} {name}"
            if name in (
                "eval",
                "exec",
                "compile",
                "__import__",
                "os.system",
                "os.popen",
                "os.execv",
                "os.execvp",
                "pty.spawn",
                "marshal.loads",
            ):
                problems.append(where)
            if "shell" in kwargs and not (
                isinstance(kwargs["shell"], ast.Constant) and kwargs["shell"].value is False
            ):
                problems.append(where + " shell=")
            if name.startswith("subprocess.") or name in ("Popen", ".Popen"):
                if call.args and isinstance(
                    call.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)
                ):
                    problems.append(where + " with a command string")
            if name == "torch.load" and not (
                isinstance(kwargs.get("weights_only"), ast.Constant)
                and kwargs["weights_only"].value is True
            ):
                problems.append(where + " without weights_only=True")
            if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load"):
                problems.append(where)
            if (
                name
                in ("pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load", "joblib.load")
                and rel not in PICKLE_ALLOWED
            ):
                problems.append(where)
    assert not problems, problems


def test_message_fields_never_reach_files_shells_or_eval(
    ros_context, random_classifier, monkeypatch, tmp_path
):
    """Hostile strings in every string field of a latent: the server opens no file, spawns
    nothing."""
    from rclpy.parameter import Parameter
    from rclpy.serialization import serialize_message

    from hecsb_ros.nodes.server import ServerNode
    from hecsb_ros.reliability.fuzz import HOSTILE_STRINGS, valid_latent

    node = ServerNode(
        parameter_overrides=[
            Parameter("codec", value="png"),
            Parameter("checkpoint", value=str(random_classifier)),
        ]
    )
    seen: list[str] = []
    real_open = builtins.open

    def spy(name):
        def wrapper(*args, **kwargs):
            seen.append(f"{name}: {args[:1]!r}")
            if name == "open":
                return real_open(*args, **kwargs)
            raise AssertionError(f"{name} called while handling a message")

        return wrapper

    good = valid_latent(node)
    msgs = []
    for text in HOSTILE_STRINGS:
        for field in ("codec", "model_id"):
            m = valid_latent(node)
            setattr(m, field, text)
            msgs.append(serialize_message(m))
        m = valid_latent(node)
        m.header.frame_id = text
        msgs.append(serialize_message(m))
    monkeypatch.setattr(builtins, "open", spy("open"))
    for name in ("system", "popen", "execv", "execvp", "spawnv"):
        monkeypatch.setattr(os, name, spy(f"os.{name}"))
    monkeypatch.setattr(subprocess, "Popen", spy("subprocess.Popen"))
    monkeypatch.setattr(builtins, "eval", spy("eval"))
    monkeypatch.setattr(builtins, "exec", spy("exec"))
    try:
        for raw in msgs:
            node._on_latent(raw)
        node._report()
    finally:
        monkeypatch.undo()
        node.destroy_node()
    assert not [s for s in seen if any(h[:20] in s for h in HOSTILE_STRINGS)], seen
    assert not [s for s in seen if not s.startswith("open")], seen
    assert not Path("/tmp/hecsb_fuzz_pwned").exists()
    assert good.codec == "png"


@pytest.mark.parametrize(
    "node_cls, name",
    [
        ("hecsb_ros.nodes.server:ServerNode", "checkpoint"),
        ("hecsb_ros.nodes.edge:EdgeNode", "checkpoint"),
    ],
)
def test_path_parameters_cannot_be_changed_at_run_time(
    ros_context, random_classifier, node_cls, name
):
    """File paths come from the operator's start-up configuration only (read-only parameters)."""
    import importlib

    from rclpy.parameter import Parameter

    module, cls = node_cls.split(":")
    node = getattr(importlib.import_module(module), cls)(
        parameter_overrides=[
            Parameter("codec", value="png"),
            Parameter("checkpoint", value=str(random_classifier)),
        ]
    )
    try:
        result = node.set_parameters([Parameter(name, value="/etc/passwd")])[0]
        assert not result.successful and node.get_parameter(name).value == str(random_classifier)
    finally:
        node.destroy_node()


def test_camera_path_parameter_is_read_only():
    from hecsb_ros.params import CAMERA_SOURCE, EDGE, SERVER

    paths = [p for p in CAMERA_SOURCE + EDGE + SERVER if p.name in ("path", "checkpoint")]
    assert len(paths) == 3 and all(p.read_only for p in paths)


# -- SROS2
# ------------------------------------------------------------------------------------------
def _keystore(root: Path, enclave: str) -> Path:
    """A keystore layout with placeholder files (not valid certificates)."""
    folder = root / "enclaves" / enclave.strip("/")
    folder.mkdir(parents=True)
    for f in (
        "identity_ca.cert.pem",
        "cert.pem",
        "key.pem",
        "permissions_ca.cert.pem",
        "governance.p7s",
        "permissions.p7s",
    ):
        (folder / f).write_text("placeholder\n")
    return root


@pytest.mark.parametrize("enclave", ["/hecsb_ros/hecsb_server", "/not/enrolled"])
def test_enforce_never_starts_a_node_without_valid_security(tmp_path, enclave, random_classifier):
    """ROS_SECURITY_STRATEGY=Enforce: a node whose enclave is missing, or whose middleware cannot
    apply security (the PyPI Fast DDS is built without it), must fail to start, never run open."""
    keystore = _keystore(tmp_path / "keystore", "/hecsb_ros/hecsb_server")
    env = dict(
        os.environ,
        ROS_SECURITY_KEYSTORE=str(keystore),
        ROS_SECURITY_ENABLE="true",
        ROS_SECURITY_STRATEGY="Enforce",
        ROS_DOMAIN_ID="216",
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
    )
    cmd = [
        sys.executable,
        "-m",
        "hecsb_ros.nodes.server",
        "--ros-args",
        "--enclave",
        enclave,
        "-p",
        "codec:=png",
        "-p",
        f"checkpoint:={random_classifier}",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert "serving codec" not in out
    if enclave == "/not/enrolled":
        assert "does not exist" in out
    else:
        # Here: "This Fast DDS version doesn't have the security libraries"; with a Fast DDS built
        # with -DSECURITY=ON the placeholder certificates are refused instead.
        assert "security" in out.lower() or "certificate" in out.lower(), out[-2000:]


@pytest.mark.once  # no ROS involved
def test_manifest_command_writes_and_checks(random_classifier, tmp_path, capsys):
    from hecsb_ros.cli.manifest import main

    (tmp_path / "a.safetensors").write_bytes(random_classifier.read_bytes())
    assert main([str(tmp_path)]) == 0 and main([str(tmp_path), "--check"]) == 0
    (tmp_path / "a.safetensors").write_bytes(random_classifier.read_bytes() + b"x")
    assert main([str(tmp_path), "--check"]) == 1
    assert "refusing to load" in capsys.readouterr().err


@pytest.mark.once  # no ROS involved
def test_loading_a_tampered_shipped_checkpoint_is_refused(tmp_path):
    """The loaders check the SHA256SUMS beside a checkpoint before reading it."""
    import shutil

    from hecsb_ros.core.store import ChecksumError, write_checksums
    from hecsb_ros.core.teachers import default_teacher_path, load_teacher

    shipped = default_teacher_path()
    assert (shipped.parent / "SHA256SUMS").read_text().count(shipped.name) == 1
    copy = tmp_path / shipped.name
    shutil.copy(shipped, copy)
    write_checksums(tmp_path, [copy.name])
    assert load_teacher(copy).model_id  # intact: loads
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    copy.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="refusing to load"):
        load_teacher(copy)
