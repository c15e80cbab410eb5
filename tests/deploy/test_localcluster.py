"""The local cluster's parts that need no root and no cluster: versions, PKI, rendered
configuration, the host-state diff, the command line's answers to bad input. (The cluster
itself is tested in tests/cluster.)"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path
from unittest import mock

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from localcluster import cli, config, hoststate, pki, processes, versions
from localcluster.hoststate import HostState
from localcluster.paths import Layout
from localcluster.topology import Topology


def test_every_component_is_pinned_once() -> None:
    names = [c.name for c in versions.COMPONENTS]
    assert len(names) == len(set(names))
    assert all(c.version.startswith("v") for c in versions.COMPONENTS)
    assert versions.KUBERNETES.startswith("v1.34.") and versions.ETCD.startswith("v3.6.")
    kube = [c for c in versions.COMPONENTS if c.kind is versions.Kind.KUBERNETES]
    for c in kube:
        # Without these, kubectl cannot parse the server's version (v0.0.0-master).
        assert f"-X k8s.io/component-base/version.gitVersion={versions.KUBERNETES}" in c.ldflags
    assert set(versions.CLUSTER) <= set(names)


def _load(pair: pki.Pair) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pair.cert.read_bytes())


def test_pki_roles_and_separate_etcd_authority(tmp_path: Path) -> None:
    certs = pki.generate(tmp_path, "node-a", "192.0.2.7", "10.96.0.1", "host-a")
    ca, etcd_ca = _load(certs.ca), _load(certs.etcd_ca)
    assert ca.subject != etcd_ca.subject
    admin = _load(certs.admin)
    assert admin.issuer == ca.subject
    orgs = [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert orgs == ["system:masters"]
    kubelet = _load(certs.kubelet)
    assert kubelet.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "system:node:node-a"
    )
    # Nothing a Kubernetes user holds opens etcd: its clients come from etcd's own CA.
    assert _load(certs.apiserver_etcd).issuer == etcd_ca.subject
    server = _load(certs.apiserver)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)
    assert {str(i) for i in sans.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "192.0.2.7",
        "10.96.0.1",
    }
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    for key in tmp_path.glob("*.key"):
        assert key.stat().st_mode & 0o777 == 0o600, key
    # Generated once: a second call keeps what exists.
    again = pki.generate(tmp_path, "node-a", "192.0.2.7", "10.96.0.1", "host-a")
    assert again.admin.cert.read_bytes() == certs.admin.cert.read_bytes()


def test_configuration_stays_in_the_clusters_own_places(tmp_path: Path) -> None:
    layout = Layout(cache=tmp_path / "cache", state=tmp_path / "state", run=tmp_path / "run")
    toml = tomllib.loads(config.containerd_toml(layout, "localhost/pause:x"))
    assert toml["root"].startswith(str(tmp_path)) and toml["state"].startswith(str(tmp_path))
    cri = toml["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "localhost/pause:x"
    assert cri["restrict_oom_score_adj"] is True and cri["netns_mounts_under_state_dir"]
    assert cri["cni"]["conf_dir"].startswith(str(tmp_path))
    runc = cri["containerd"]["runtimes"]["runc"]["options"]
    assert runc["Root"].startswith(str(tmp_path))
    conflist = config.cni_conflist(layout)
    assert conflist["plugins"][0]["ipam"]["dataDir"].startswith(str(tmp_path))

    certs = pki.generate(tmp_path / "pki", "n", "192.0.2.7", "10.96.0.1", "h")
    kubelet = config.kubelet_config(layout, Topology(node_ip="192.0.2.7", hostname="h"), certs)
    assert kubelet["cgroupDriver"] == "cgroupfs" and kubelet["failCgroupV1"] is False
    assert kubelet["podLogsDirectory"].startswith(str(tmp_path))
    assert kubelet["authentication"]["anonymous"]["enabled"] is False
    assert kubelet["readOnlyPort"] == 0

    kc = config.kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443", certs.ca.cert, certs.admin)
    assert kc.stat().st_mode & 0o777 == 0o600


def _state(**changes: object) -> HostState:
    base = HostState(
        sysctls={"net/ipv4/ip_forward": "0"},
        mounts=["/", "/dev/pts", "/dev/pts"],
        cgroups={"/sys/fs/cgroup/memory": []},
        iptables={"iptables": "*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n", "ip6tables": ""},
        nft_tables=[],
        links=["lo", "eth0"],
        paths={"/var/lib/cni": False},
        devices={"/dev/null": "c 1:3 0666"},
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_host_differences_name_everything_left_behind() -> None:
    before = _state()
    assert hoststate.differences(before, _state()) == []
    after = _state(
        sysctls={"net/ipv4/ip_forward": "1"},
        mounts=["/", "/dev/pts", "/var/lib/kubelet/pods/x", "/tmp/someone-elses"],
        cgroups={"/sys/fs/cgroup/memory": ["kubepods"]},
        iptables={
            "iptables": "*nat\n:POSTROUTING ACCEPT [0:0]\n:KUBE-POSTROUTING - [0:0]\n"
            "-A POSTROUTING -j KUBE-POSTROUTING\nCOMMIT\n",
            "ip6tables": "",
        },
        nft_tables=["ip nat"],
        links=["lo", "eth0", "loco0"],
        paths={"/var/lib/cni": True},
        devices={"/dev/null": "symlink -> python3"},
    )
    found = hoststate.differences(before, after)
    assert found == [
        "sysctl net/ipv4/ip_forward = 1 (was 0)",
        "mount /var/lib/kubelet/pods/x",
        "mount gone: /dev/pts",
        "cgroup /sys/fs/cgroup/memory/kubepods",
        "iptables nat chain KUBE-POSTROUTING",
        "iptables nat rule POSTROUTING -j KUBE-POSTROUTING",
        "nft table ip nat",
        "link loco0",
        "path /var/lib/cni",
        "device /dev/null is symlink -> python3 (was c 1:3 0666)",
    ]


def test_the_host_devices_are_recorded_and_a_replaced_one_is_put_back(tmp_path: Path) -> None:
    assert hoststate.snapshot().devices["/dev/null"] == "c 1:3 0666"
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    node = tmp_path / "null"
    before = _state(devices={str(node): "c 1:3 0666"})
    node.symlink_to("python3")  # what a build handed the host's /dev once left behind
    said: list[str] = []
    hoststate._restore_devices(before, said.append)
    assert hoststate._device(str(node)) == "c 1:3 0666"
    assert said == [f"{node} was replaced (symlink -> python3); putting the device back"]


def test_snapshot_round_trips(tmp_path: Path) -> None:
    state = _state()
    state.save(tmp_path / "s.json")
    assert HostState.load(tmp_path / "s.json") == state
    assert json.loads((tmp_path / "s.json").read_text())["links"] == ["lo", "eth0"]


def test_the_command_line_refuses_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    with mock.patch("os.geteuid", return_value=1000):
        assert cli.main(["up"]) == 1
        assert cli.main(["down"]) == 1
    err = capsys.readouterr().err
    assert err.count("cluster: error: the local cluster needs root") == 2
    assert "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["build", "no-such-component"])
    assert exit_.value.code == 2
    assert "invalid choice: 'no-such-component'" in capsys.readouterr().err


def test_children_are_found_and_a_gone_process_has_none() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert child.pid in processes.children(os.getpid())
        assert processes.children(child.pid) == []
    finally:
        child.kill()
        child.wait()
    assert processes.children(child.pid) == []
