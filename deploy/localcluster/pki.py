"""The cluster's certificates and keys, generated with ``cryptography``.

Two CAs: one for Kubernetes (API server, kubelet, clients) and one for etcd only, so that
no certificate a Kubernetes user holds can open etcd. ECDSA P-256 keys, files 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 365


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


class PKI:
    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def pair(self, name: str) -> Pair:
        return Pair(self.dir / f"{name}.crt", self.dir / f"{name}.key")

    # --- authorities -----------------------------------------------------------------------
    def ca(self, name: str, cn: str) -> Pair:
        pair = self.pair(name)
        if pair.cert.exists() and pair.key.exists():
            return pair
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(cn)
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=10 * VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_private(pair.key, _key_bytes(key))
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return pair

    # --- leaf certificates -----------------------------------------------------------------
    def issue(
        self,
        name: str,
        ca: Pair,
        cn: str,
        orgs: tuple[str, ...] = (),
        dns: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
        server: bool = False,
        client: bool = False,
    ) -> Pair:
        pair = self.pair(name)
        if pair.cert.exists() and pair.key.exists():
            return pair
        ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
        ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn, orgs))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )
        alt: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        alt += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if alt:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _write_private(pair.key, _key_bytes(key))
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return pair

    def service_account_keys(self) -> Pair:
        """The key pair that signs and verifies ServiceAccount tokens (cert = public key)."""
        pair = Pair(self.dir / "sa.pub", self.dir / "sa.key")
        if pair.cert.exists() and pair.key.exists():
            return pair
        key = ec.generate_private_key(ec.SECP256R1())
        _write_private(pair.key, _key_bytes(key))
        pair.cert.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return pair


@dataclass(frozen=True)
class ClusterPKI:
    """Every certificate the control plane and the node use, by role."""

    ca: Pair
    etcd_ca: Pair
    etcd_server: Pair
    apiserver: Pair
    apiserver_etcd: Pair
    apiserver_kubelet: Pair
    service_accounts: Pair
    admin: Pair
    controller_manager: Pair
    scheduler: Pair
    kubelet: Pair
    kubelet_server: Pair
    kube_proxy: Pair
    etcd_client: Pair


APISERVER_KUBELET_USER = "kube-apiserver-kubelet-client"


def generate(
    directory: Path, node_name: str, node_ip: str, service_ip: str, hostname: str
) -> ClusterPKI:
    pki = PKI(directory)
    ca = pki.ca("ca", "lego-loco-cluster-ca")
    etcd_ca = pki.ca("etcd-ca", "lego-loco-cluster-etcd-ca")
    local = ("localhost",)
    loopback = ("127.0.0.1",)
    names = (
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        node_name,
        hostname,
    )
    return ClusterPKI(
        ca=ca,
        etcd_ca=etcd_ca,
        etcd_server=pki.issue(
            "etcd-server", etcd_ca, "etcd", dns=local, ips=loopback, server=True, client=True
        ),
        apiserver=pki.issue(
            "apiserver",
            ca,
            "kube-apiserver",
            dns=tuple(dict.fromkeys(names)),
            ips=tuple(dict.fromkeys(("127.0.0.1", node_ip, service_ip))),
            server=True,
        ),
        apiserver_etcd=pki.issue("apiserver-etcd-client", etcd_ca, "kube-apiserver", client=True),
        # Bound to system:kubelet-api-admin at bootstrap: logs, exec and port-forward only.
        apiserver_kubelet=pki.issue(
            "apiserver-kubelet-client", ca, APISERVER_KUBELET_USER, client=True
        ),
        service_accounts=pki.service_account_keys(),
        admin=pki.issue(
            "admin", ca, "lego-loco-cluster-admin", orgs=("system:masters",), client=True
        ),
        controller_manager=pki.issue(
            "controller-manager", ca, "system:kube-controller-manager", client=True
        ),
        scheduler=pki.issue("scheduler", ca, "system:kube-scheduler", client=True),
        kubelet=pki.issue(
            "kubelet", ca, f"system:node:{node_name}", orgs=("system:nodes",), client=True
        ),
        kubelet_server=pki.issue(
            "kubelet-server",
            ca,
            node_name,
            dns=tuple(dict.fromkeys((node_name, hostname, "localhost"))),
            ips=(node_ip, "127.0.0.1"),
            server=True,
        ),
        kube_proxy=pki.issue("kube-proxy", ca, "system:kube-proxy", client=True),
        # For the tests' direct etcd calls (compaction): etcd's own CA, never Kubernetes'.
        etcd_client=pki.issue("etcd-client", etcd_ca, "lego-loco-cluster-etcd-client", client=True),
    )


def user(directory: Path, name: str, groups: tuple[str, ...] = ()) -> Pair:
    """A client certificate for a person (or test) named ``name``; RBAC decides the rest."""
    pki = PKI(directory)
    ca = pki.pair("ca")
    return pki.issue(f"users/{name}", ca, name, orgs=groups, client=True)
