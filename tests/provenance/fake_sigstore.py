"""A throw-away Sigstore PKI for offline keyless tests: our own CA (Fulcio-like), CT log and
transparency log keys in a pinned trusted root, a leaf certificate with a real embedded SCT, and
a Rekor v1 `dsse` entry with a real signed entry timestamp and a one-leaf inclusion proof.

Every signature is real and sigstore-python's Verifier checks each of them (nothing is mocked);
only the public services are replaced. Formats: RFC 6962 s3.2 (SCT over the precertificate TBS),
Rekor v1 SET (canonical JSON of body/integratedTime/logID/logIndex), C2SP signed-note checkpoints.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat import asn1
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from adapterscan.provenance.dsse import INTOTO_PAYLOAD_TYPE, pae

ISSUER = "https://token.issuer.test"
IDENTITY = "ci@adapterscan.test"
_OIDC_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass
class FakeSigstore:
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    ct_key: ec.EllipticCurvePrivateKey
    log_key: ec.EllipticCurvePrivateKey
    now: dt.datetime

    @classmethod
    def create(cls) -> FakeSigstore:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "adapterscan test CA")])
        ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
              .public_key(ca_key.public_key()).serial_number(1)
              .not_valid_before(now - dt.timedelta(days=1))
              .not_valid_after(now + dt.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                           False, False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
        return cls(ca_key, ca, ec.generate_private_key(ec.SECP256R1()),
                   ec.generate_private_key(ec.SECP256R1()), now)

    def trusted_root(self) -> dict[str, Any]:
        def log(key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, Any]:
            return {"baseUrl": url, "hashAlgorithm": "SHA2_256",
                    "logId": {"keyId": _b64(hashlib.sha256(_spki(key)).digest())},
                    "publicKey": {"rawBytes": _b64(_spki(key)),
                                  "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                  "validFor": {"start": "2020-01-01T00:00:00Z"}}}
        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(self.log_key, "https://rekor.test")],
            "ctlogs": [log(self.ct_key, "https://ct.test")],
            "certificateAuthorities": [{
                "subject": {"commonName": "adapterscan test CA", "organization": "test"},
                "uri": "https://fulcio.test",
                "certChain": {"certificates": [
                    {"rawBytes": _b64(self.ca.public_bytes(serialization.Encoding.DER))}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"}}],
        }

    def _leaf(self, key: ec.EllipticCurvePrivateKey, identity: str,
              issuer: str) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(self.ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(self.now - dt.timedelta(minutes=5))
            .not_valid_after(self.now + dt.timedelta(minutes=10))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                         False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(identity)]), True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.ca_key.public_key()), False)
            .add_extension(x509.UnrecognizedExtension(_OIDC_ISSUER_OID, issuer.encode()), False)
        )
        # RFC 6962 s3.2: the SCT signs the precertificate TBS (the certificate without SCTs).
        tbs = builder.sign(self.ca_key, hashes.SHA256()).tbs_certificate_bytes
        ts = int(self.now.timestamp() * 1000)
        signed = (struct.pack("!BBQH", 0, 0, ts, 1)
                  + hashlib.sha256(_spki(self.ca_key)).digest()
                  + len(tbs).to_bytes(3, "big") + tbs + b"\x00\x00")
        sig = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        sct = (b"\x00" + hashlib.sha256(_spki(self.ct_key)).digest() + struct.pack("!QH", ts, 0)
               + struct.pack("!BBH", 4, 3, len(sig)) + sig)
        sct_list = struct.pack("!HH", len(sct) + 2, len(sct)) + sct
        ext = x509.UnrecognizedExtension(ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS,
                                         asn1.encode_der(sct_list))
        return builder.add_extension(ext, False).sign(self.ca_key, hashes.SHA256())

    def sign_dsse(self, payload: bytes, *, identity: str = IDENTITY,
                  issuer: str = ISSUER) -> bytes:
        """A keyless-style Sigstore bundle (v0.3) over `payload` as an in-toto DSSE envelope."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._leaf(key, identity, issuer)
        sig = key.sign(pae(INTOTO_PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
        envelope = {"payload": _b64(payload), "payloadType": INTOTO_PAYLOAD_TYPE,
                    "signatures": [{"sig": _b64(sig)}]}
        pem = cert.public_bytes(serialization.Encoding.PEM)
        body: dict[str, Any] = {"kind": "dsse", "apiVersion": "0.0.1", "spec": {
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(
                json.dumps(envelope).encode()).hexdigest()},
            "signatures": [{"signature": _b64(sig), "verifier": _b64(pem)}]}}
        body_bytes = rfc8785.dumps(body)
        log_id = hashlib.sha256(_spki(self.log_key)).digest()
        leaf = hashlib.sha256(b"\x00" + body_bytes).digest()
        note = f"rekor.test\n1\n{_b64(leaf)}\n"
        note_sig = self.log_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = note + f"\n\u2014 rekor.test {_b64(log_id[:4] + note_sig)}\n"
        t = int(self.now.timestamp())
        set_payload = rfc8785.dumps({"body": _b64(body_bytes), "integratedTime": t,
                                     "logID": log_id.hex(), "logIndex": 0})
        entry = {
            "logIndex": "0", "logId": {"keyId": _b64(log_id)},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"}, "integratedTime": str(t),
            "canonicalizedBody": _b64(body_bytes),
            "inclusionPromise": {"signedEntryTimestamp": _b64(
                self.log_key.sign(set_payload, ec.ECDSA(hashes.SHA256())))},
            "inclusionProof": {"logIndex": "0", "rootHash": _b64(leaf), "treeSize": "1",
                               "hashes": [], "checkpoint": {"envelope": checkpoint}},
        }
        bundle = {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [entry]},
            "dsseEnvelope": envelope,
        }
        return json.dumps(bundle).encode()
