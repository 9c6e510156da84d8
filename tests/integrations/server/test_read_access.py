"""Read access to the admission service, against real server processes.

One service (default read mode, signing key, read/API/metrics tokens) serves the module: a public
repo and a private one (private on the Hub too) are delivered by webhook and scanned once. Tests
that send wrong credentials do so from their own loopback address, so the per-address failure
limit of one test never spills into another.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from adapterscan.errors import AdapterRejected
from adapterscan.fetch.hub_options import HubOptions
from adapterscan.integrations.preload import guarded_load
from adapterscan.integrations.server.session import Sessions
from adapterscan.integrations.service_client import ServiceAttestation
from adapterscan.provenance.dsse import pae
from adapterscan.provenance.keys import generate_private_key, write_private_key
from tests.browser import Browser, chromium_or_skip
from tests.hubserver import HubServer
from tests.integrations.server.service import (
    API_TOKEN,
    METRICS_TOKEN,
    READ,
    READ_TOKEN,
    SECRET,
    Service,
    adapter_files,
    delivery,
    from_address,
    wait_done,
)

HUB_TOKEN = "hf_private_repo_token"
WRONG = {"Authorization": "Bearer wrong-token-0123456789abcdef"}
HOOK = {"X-Webhook-Secret": SECRET}
UNKNOWN_ID = "0" * 32


@dataclass
class World:
    svc: Service
    hub: HubServer
    key: ec.EllipticCurvePrivateKey
    tmp: Path
    ids: dict[str, str]  # repo -> job id
    shas: dict[str, str]  # repo -> commit

    @property
    def url(self) -> str:
        return self.svc.url


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("service")
    key = generate_private_key()
    write_private_key(tmp / "server.pem", key)
    with HubServer() as hub:
        shas = {"acme/open": hub.add_repo("acme/open", adapter_files(0)),
                "acme/secret": hub.add_repo(
                    "acme/secret", {**adapter_files(1), "zephyr-codename.txt": b"plans"},
                    private_token=HUB_TOKEN)}
        svc = Service(tmp, hub, sign_key=tmp / "server.pem",
                      env={"HF_TOKEN": HUB_TOKEN, "ADAPTERSCAN_METRICS_TOKEN": METRICS_TOKEN})
        svc.start()
        try:
            ids = {}
            for repo, sha in shas.items():
                r = httpx.post(f"{svc.url}/hooks/huggingface", headers=HOOK,
                               json=delivery(repo, sha, private=repo == "acme/secret"))
                assert r.status_code == 202, r.text
                ids[repo] = r.json()["jobs"][0]["id"]
            wait_done(svc.url, set(ids.values()), timeout=120)
            yield World(svc, hub, key, tmp, ids, shas)
        finally:
            svc.stop()


def _json_reads(w: World) -> list[str]:
    s = w.shas["acme/secret"]
    return [f"/v1/admissions/{w.ids['acme/open']}", f"/v1/admissions/{w.ids['acme/secret']}",
            f"/v1/repos/acme/secret/revisions/{s}", f"/v1/repos/acme/secret/revisions/{s}/"
            "attestation", f"/v1/repos/acme/open/revisions/{w.shas['acme/open']}/attestation"]


def _pages(w: World) -> list[str]:
    return ["/", f"/admissions/{w.ids['acme/secret']}"]


def test_each_read_endpoint_without_wrong_and_right_credential(world: World) -> None:
    for i, path in enumerate(_json_reads(world)):
        url = world.url + path
        none = httpx.get(url)
        assert none.status_code == 401, path
        assert none.headers["www-authenticate"].startswith("Bearer")
        with from_address(f"127.0.1.{i + 1}") as guesser:
            wrong = guesser.get(url, headers=WRONG)
        assert (wrong.status_code, wrong.json()) == (401, {"error": "bad credential"}), path
        right = httpx.get(url, headers=READ)
        assert right.status_code == 200 and right.headers["cache-control"] == "no-store", path
        api = httpx.get(url, headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert api.status_code == 200, path  # the API token reads too
    for i, path in enumerate(_pages(world)):
        url = world.url + path
        none = httpx.get(url)
        assert none.status_code == 303 and none.headers["location"].startswith("/login?next=")
        with from_address(f"127.0.2.{i + 1}") as guesser:
            assert guesser.get(url, headers=WRONG).status_code == 303
        right = httpx.get(url, headers=READ)
        assert right.status_code == 200 and "acme/secret" in right.text
        assert "frame-ancestors 'none'" in right.headers["content-security-policy"]
    metrics = world.url + "/metrics"
    assert httpx.get(metrics).status_code == 401
    with from_address("127.0.3.1") as guesser:
        assert guesser.get(metrics, headers=WRONG).status_code == 401
        # The metrics token reads /metrics and nothing else.
        scoped = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        assert guesser.get(world.url + _json_reads(world)[0], headers=scoped).status_code == 401
    for token in (METRICS_TOKEN, READ_TOKEN):
        assert httpx.get(metrics, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    health = httpx.get(world.url + "/healthz")
    assert health.status_code == 200 and health.json()["ok"] is True


def test_unknown_and_forbidden_look_the_same(world: World) -> None:
    s = world.shas["acme/secret"]
    pairs = [(f"/v1/admissions/{world.ids['acme/secret']}", f"/v1/admissions/{UNKNOWN_ID}"),
             (f"/v1/repos/acme/secret/revisions/{s}", f"/v1/repos/acme/nothing/revisions/{s}"),
             (f"/v1/repos/acme/secret/revisions/{s}/attestation",
              f"/v1/repos/acme/secret/revisions/{'1' * 40}/attestation")]
    for known, unknown in pairs:
        a, b = httpx.get(world.url + known), httpx.get(world.url + unknown)
        assert (a.status_code, a.content) == (b.status_code, b.content) and a.status_code == 401
        found = httpx.get(world.url + unknown, headers=READ)
        assert (found.status_code, found.json()) == (404, {"error": "not found"})
    a = httpx.get(f"{world.url}/admissions/{world.ids['acme/secret']}")
    b = httpx.get(f"{world.url}/admissions/{UNKNOWN_ID}")
    assert a.status_code == b.status_code == 303 and a.content == b.content


def test_private_report_never_in_an_unauthenticated_body(world: World) -> None:
    job = world.ids["acme/secret"]
    full = httpx.get(f"{world.url}/v1/admissions/{job}", headers=READ).json()
    assert full["private"] is True and full["report"] and full["attestation"]
    # Not the job id: the login form echoes the path the caller asked for, id included.
    needles = {"acme/secret", world.shas["acme/secret"], "zephyr-codename",
               full["attestation"]["dsseEnvelope"]["payload"][:40],
               *(f["sha256"] for f in full["report"]["subject"]["files"]),
               *(f["message"] for f in full["report"]["findings"])}
    bodies: list[str] = []
    paths = [*_json_reads(world), *_pages(world), "/metrics", "/healthz", "/login",
             f"/login?next=/admissions/{job}"]
    for i, path in enumerate(paths):
        with from_address(f"127.0.4.{i + 1}") as c:  # never rate-limited: the real answers
            for headers in ({}, WRONG, {"Cookie": "adapterscan_session=v1.9999999999.x.y"}):
                r = c.get(world.url + path, headers=headers, follow_redirects=True)
                assert r.status_code in (200, 401), (path, r.status_code)
                bodies.append(r.text)
    leaked = {n for n in needles for body in bodies if n in body}
    assert not leaked, leaked


def test_failed_credentials_are_rate_limited_per_address(world: World) -> None:
    url = f"{world.url}/v1/admissions/{world.ids['acme/open']}"
    with from_address("127.0.5.1") as guesser, from_address("127.0.5.2") as bystander:
        answers = [guesser.get(url, headers=WRONG).status_code for _ in range(10)]
        assert answers == [401] * 10
        limited = guesser.get(url, headers=READ)  # the right token too: no oracle
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        csrf = _login_form(guesser, world.url)
        login = guesser.post(f"{world.url}/login", headers={"Origin": world.url},
                             data={"token": READ_TOKEN, "csrf": csrf})
        assert login.status_code == 429 and "adapterscan_session" not in login.cookies
        hook = guesser.post(f"{world.url}/hooks/huggingface", headers=HOOK,
                            json=delivery("acme/open", world.shas["acme/open"], private=False))
        assert hook.status_code == 429
        assert bystander.get(url, headers=READ).status_code == 200
        assert guesser.get(url).status_code == 401  # no credential: not limited, just refused
    metrics = httpx.get(f"{world.url}/metrics", headers=READ).text
    assert 'adapterscan_denied_requests_total{route="admission",reason="rate_limited"}' in metrics
    count = re.search(r'denied_requests_total\{route="admission",reason="bad_credential"\} (\d+)',
                      metrics)
    assert count is not None and int(count.group(1)) >= 10


def _login_form(c: httpx.Client, url: str) -> str:
    page = c.get(url + "/login")
    assert page.status_code == 200
    match = re.search(r"name='csrf' value='([^']+)'", page.text)
    assert match is not None
    return match.group(1)


def test_login_csrf_session_cookie_and_logout(world: World) -> None:
    url = world.url
    secret_job = f"{url}/v1/admissions/{world.ids['acme/secret']}"
    with from_address("127.0.6.1") as c:
        for evil in ("https://evil.example/", "//evil.example", "/admissions/../x"):
            page = c.get(f"{url}/login", params={"next": evil}).text
            assert "name='next' value='/'" in page  # no open redirect after the login
        form = {"token": READ_TOKEN, "csrf": _login_form(c, url),
                "next": f"/admissions/{world.ids['acme/secret']}"}
        with from_address("127.0.6.2") as stranger:  # no CSRF cookie: a cross-site post
            assert stranger.post(f"{url}/login", data=form).status_code == 403
        for bad in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "null"}, {}):
            csrf = _login_form(c, url)  # a matching CSRF pair: only the header is wrong
            field = {"csrf": csrf} if bad else {"csrf": "x" * 43}  # {}: a wrong form field
            assert c.post(f"{url}/login", data={**form, **field}, headers=bad
                          ).status_code == 403, bad
        csrf = _login_form(c, url)
        ok = c.post(f"{url}/login", data={**form, "csrf": csrf}, headers={"Origin": url})
        assert ok.status_code == 303 and ok.headers["location"] == form["next"]
        cookie = next(h for h in ok.headers.get_list("set-cookie")
                      if h.startswith("adapterscan_session="))
        attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= attrs
        assert READ_TOKEN not in cookie
        session = c.cookies["adapterscan_session"]
        assert c.get(secret_job).json()["repo"] == "acme/secret"  # the cookie reads
        assert c.post(f"{url}/logout", headers={"Origin": "http://evil.example"}
                      ).status_code == 403
        out = c.post(f"{url}/logout", headers={"Origin": url})
        assert out.status_code == 303 and "adapterscan_session" not in c.cookies
        assert c.get(secret_job).status_code == 401
    forged = session[:-1] + ("0" if session[-1] != "0" else "1")
    expired = Sessions([READ_TOKEN], lifetime_s=-60).issue(READ_TOKEN)
    other = Sessions(["another-token-0123456789"], 3600).issue("another-token-0123456789")
    with from_address("127.0.6.3") as c:
        for value, error in ((forged, "bad credential"), (other, "bad credential"),
                             (expired, "a read credential is required")):
            r = c.get(secret_job, headers={"Cookie": f"adapterscan_session={value}"})
            assert r.status_code == 401 and r.json()["error"].startswith(error), value
        # The session of before the logout still reads until it expires: it is not revoked.
        assert c.get(secret_job, headers={"Cookie": f"adapterscan_session={session}"}
                     ).status_code == 200


def test_dashboard_login_in_headless_chromium(world: World) -> None:
    chromium = chromium_or_skip()
    job = world.ids["acme/secret"]
    with Browser(chromium, world.tmp / "chrome") as b:
        b.open(f"{world.url}/admissions/{job}")
        assert b.js("location.pathname") == "/login"
        type_token = ("document.querySelector('input[name=token]').value = {!r};"
                      "document.querySelector('#login button').click()")
        b.navigate_by(type_token.format("not-the-token-0123456789"))
        assert b.js("document.getElementById('login-error').textContent") == "Wrong token."
        b.navigate_by(type_token.format(READ_TOKEN))
        assert b.js("location.pathname") == f"/admissions/{job}"
        assert b.js("document.querySelector('h1').textContent").startswith("acme/secret")
        assert b.js("document.querySelectorAll('[data-decision]').length") >= 1
        assert "adapterscan_session" not in b.js("document.cookie")  # HttpOnly
        session = next(c for c in b.cookies() if c["name"] == "adapterscan_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        b.open(f"{world.url}/")
        rows = b.js("document.getElementById('admissions').textContent")
        assert "acme/open" in rows and "acme/secret" in rows and job[:12] in rows
        b.navigate_by("document.querySelector('#logout button').click()")
        assert b.js("location.pathname") == "/login"
        b.open(f"{world.url}/")
        assert b.js("location.pathname") == "/login"


def test_writes_need_their_credentials(world: World) -> None:
    url, sha = world.url, world.shas["acme/open"]
    hook = f"{url}/hooks/huggingface"
    body = delivery("acme/open", sha, private=False)
    with from_address("127.0.7.1") as c:
        assert c.post(hook, json=body, headers={"X-Webhook-Secret": "wrong"}).status_code == 401
        assert c.post(hook, json=body).status_code == 401
        assert c.post(hook, content=b"{not json", headers={
            **HOOK, "Content-Type": "application/json"}).status_code == 422
        assert c.post(hook, json={"event": {}}, headers=HOOK).status_code == 422
        # Nested past the JSON decoder's recursion limit: a 422 too, never a 500 (issue 25).
        assert c.post(hook, content=b"[" * 60000, headers={
            **HOOK, "Content-Type": "application/json"}).status_code == 422
        assert c.post(hook, json={**body, "repo": {**body["repo"], "private": "no"}},
                      headers=HOOK).status_code == 422
        assert c.post(hook, json={"pad": "x" * 70000, **body}, headers=HOOK).status_code == 413
        api = f"{url}/v1/admissions"
        assert c.post(api, json={"repo": "acme/open", "revision": sha}).status_code == 401
        assert c.post(api, json={"repo": "acme/open", "revision": sha},
                      headers=READ).status_code == 401  # the read token cannot write
        r = c.post(api, json={"repo": "acme/open", "revision": sha},
                   headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert r.status_code == 202 and r.json()["jobs"][0]["duplicate"] is True
    metrics = httpx.get(f"{url}/metrics", headers=READ).text
    assert 'adapterscan_http_requests_total{route="hook",status="401"} 2' in metrics
    assert 'adapterscan_jobs{status="done"} 2' in metrics


def _check_attestation(bundle: dict[str, Any], key: ec.EllipticCurvePrivateKey, sha: str) -> None:
    """The stored verdict is signed by the server's key over a statement of this revision."""
    env = bundle["dsseEnvelope"]
    payload = base64.b64decode(env["payload"])
    key.public_key().verify(base64.b64decode(env["signatures"][0]["sig"]),
                            pae(env["payloadType"], payload), ec.ECDSA(hashes.SHA256()))
    assert sha in payload.decode()


def test_attestation_endpoint_and_loader(world: World, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for repo in ("acme/open", "acme/secret"):
        sha = world.shas[repo]
        r = httpx.get(f"{world.url}/v1/repos/{repo}/revisions/{sha}/attestation", headers=READ)
        bundle = r.json()
        assert "report" not in bundle and set(bundle) >= {"dsseEnvelope", "mediaType"}
        _check_attestation(bundle, world.key, sha)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("ADAPTERSCAN_READ_TOKEN", raising=False)
    opts = HubOptions(endpoint=world.hub.url, cache_dir=tmp_path / "cache", timeout_s=10)
    loaded: list[set[str]] = []

    def loader(model: Any, path: str, **kw: Any) -> str:
        loaded.append({p.name for p in Path(path).iterdir()})
        return "loaded"

    def load(source: str, service: ServiceAttestation, **kw: Any) -> Any:
        return guarded_load(loader, object(), source, attestation=service,
                            trusted_keys=[world.key.public_key()], policy=None, identity=None,
                            issuer=None, trusted_root=None, scan_options=None, peft_kwargs=kw,
                            hub_options=opts)

    service = ServiceAttestation(world.url, READ_TOKEN)
    assert load("hf://acme/open", service) == "loaded"
    assert load("hf://acme/secret", service, token=HUB_TOKEN) == "loaded"
    assert "zephyr-codename.txt" in loaded[-1]
    with pytest.raises(AdapterRejected, match="HTTP 401"):
        load("hf://acme/secret", ServiceAttestation(world.url), token=HUB_TOKEN)
    monkeypatch.setenv("ADAPTERSCAN_READ_TOKEN", READ_TOKEN)  # the token from the environment
    assert load("hf://acme/open", ServiceAttestation(world.url)) == "loaded"
    other_key = generate_private_key()
    with pytest.raises(AdapterRejected, match="attestation not acceptable"):
        guarded_load(loader, object(), "hf://acme/open", attestation=service,
                     trusted_keys=[other_key.public_key()], policy=None, identity=None, issuer=None,
                     trusted_root=None, scan_options=None, peft_kwargs={}, hub_options=opts)
    new = world.hub.add_commit("acme/open", adapter_files(7))  # never admitted
    with pytest.raises(AdapterRejected, match="HTTP 404"):
        load(f"hf://acme/open@{new}", service)
    assert READ_TOKEN not in repr(ServiceAttestation(world.url, READ_TOKEN))


def test_public_reads_modes(world: World, tmp_path: Path) -> None:
    # The module's queue holds a private job: public reads of public repos refuse to start...
    refused = Service(tmp_path, world.hub, db=world.svc.db,
                      args=("--public-reads", "public")).refused()
    assert refused.returncode == 2 and "private" in refused.stderr
    # ...unless everything is made public, private repos included.
    everyone = Service(tmp_path, world.hub, db=world.svc.db, args=("--public-reads=all",))
    everyone.start()
    try:
        r = httpx.get(f"{everyone.url}/v1/admissions/{world.ids['acme/secret']}")
        assert r.status_code == 200 and r.json()["repo"] == "acme/secret"
        assert httpx.get(f"{everyone.url}/metrics").status_code == 200
    finally:
        everyone.stop()
    # A fresh queue with public reads: public repos open, private ones never queued.
    public = Service(tmp_path, world.hub, db=tmp_path / "public.db",
                     args=("--public-reads", "public"))
    public.start()
    try:
        _public_mode(public, world)
    finally:
        public.stop()
    # It turned private meanwhile: the next start refuses again.
    assert public.refused().returncode == 2


def _public_mode(svc: Service, world: World) -> None:
    hook = f"{svc.url}/hooks/huggingface"
    sha = world.shas["acme/open"]
    r = httpx.post(hook, headers=HOOK, json=delivery("acme/open", sha, private=False))
    assert r.status_code == 202
    job = r.json()["jobs"][0]["id"]
    wait_done(svc.url, {job}, timeout=120, headers={})  # read without any credential
    assert "acme/open" in httpx.get(f"{svc.url}/").text  # the dashboard needs no login
    secret = delivery("acme/secret", world.shas["acme/secret"], private=True)
    assert httpx.post(hook, headers=HOOK, json=secret).status_code == 403
    unknown = delivery("acme/secret", world.shas["acme/secret"])  # private not stated
    assert httpx.post(hook, headers=HOOK, json=unknown).status_code == 403
    assert httpx.get(f"{svc.url}/v1/repos/acme/secret/revisions/"
                     f"{world.shas['acme/secret']}").status_code == 404
    # The open repo is made private: its earlier job is hidden at once.
    assert httpx.post(hook, headers=HOOK,
                      json=delivery("acme/open", sha, private=True)).status_code == 403
    hidden = httpx.get(f"{svc.url}/v1/admissions/{job}")
    unknown_job = httpx.get(f"{svc.url}/v1/admissions/{UNKNOWN_ID}")
    assert (hidden.status_code, hidden.content) == (unknown_job.status_code,
                                                     unknown_job.content)
    assert hidden.status_code == 404
    assert httpx.get(f"{svc.url}/admissions/{job}").status_code == 404
    assert "acme/open" not in httpx.get(f"{svc.url}/").text
    seen = httpx.get(f"{svc.url}/v1/admissions/{job}", headers=READ).json()
    assert seen["private"] is True
    metrics = httpx.get(f"{svc.url}/metrics").text
    assert ('adapterscan_denied_requests_total{route="admission",'
            'reason="not_found_or_hidden"} 2') in metrics
