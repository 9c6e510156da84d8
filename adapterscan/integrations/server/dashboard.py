"""HTML pages: recent admissions, one page per admission, the login form. Everything escaped;
the pages only read (the one form logs in or out)."""

from __future__ import annotations

import json
from html import escape

from adapterscan.integrations.server.db import Job, VerdictRow

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.pass{color:#080}.warn{color:#a60}.fail,.error{color:#c00;font-weight:bold}code{font-size:90%}"""
# Sent as a header too: frame-ancestors (no framing of the login form) works only there.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")


def _logout(shown: bool) -> str:
    return ("<form id='logout' method='post' action='/logout'><button type='submit'>log out"
            "</button></form>") if shown else ""


def login_page(csrf: str, next_path: str, error: str | None = None) -> str:
    err = f"<p class='error' id='login-error'>{escape(error)}</p>" if error else ""
    body = ("<h1>adapterscan admissions</h1>"
            f"{err}<form id='login' method='post' action='/login'>"
            "<label>read token <input type='password' name='token' autocomplete='off' "
            "required autofocus></label>"
            f"<input type='hidden' name='csrf' value='{escape(csrf)}'>"
            f"<input type='hidden' name='next' value='{escape(next_path)}'>"
            "<button type='submit'>log in</button></form>")
    return _page("log in: adapterscan admissions", body)


def message_page(title: str, text: str) -> str:
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>")


def _decision(v: VerdictRow | None, job: Job) -> str:
    d = v.decision if v else job.status
    return f"<span class='{escape(d)}' data-decision='{escape(d)}'>{escape(d)}</span>"


def _repo(job: Job) -> str:
    mark = " <small class='private'>private</small>" if job.private is not False else ""
    return f"{escape(job.repo)}{mark}"


def index_page(rows: list[tuple[Job, VerdictRow | None]], counts: dict[str, int],
               logout: bool = False) -> str:
    trs = "".join(
        f"<tr><td><a href='/admissions/{escape(j.id)}'>{escape(j.id[:12])}</a></td>"
        f"<td>{_repo(j)}</td><td><code>{escape(j.revision)}</code></td>"
        f"<td>{escape(j.ref or '')}</td><td>{_decision(v, j)}</td><td>{j.attempts}</td></tr>"
        for j, v in rows)
    summary = ", ".join(f"{escape(k)}: {n}" for k, n in sorted(counts.items()))
    body = (f"{_logout(logout)}<h1>adapterscan admissions</h1><p id='summary'>{summary}</p>"
            "<table id='admissions'><tr><th>job</th><th>repo</th><th>revision</th><th>ref</th>"
            f"<th>verdict</th><th>attempts</th></tr>{trs}</table>")
    return _page("adapterscan admissions", body)


def admission_page(job: Job, verdict: VerdictRow | None, logout: bool = False) -> str:
    findings = ""
    reasons = ""
    if verdict and verdict.report_json:
        report = json.loads(verdict.report_json)
        findings = "".join(
            f"<tr class='finding'><td>{escape(f['rule_id'])}</td><td>{escape(f['rule_name'])}</td>"
            f"<td>{escape(f['severity'])}</td><td>{escape(str(f['location'].get('file')))}</td>"
            f"<td>{escape(f['message'])}</td></tr>" for f in report["findings"])
        reasons = "".join(f"<li>{escape(r)}</li>" for r in report["verdict"]["reasons"])
    err = f"<p class='error'>{escape(verdict.error)}</p>" if verdict and verdict.error else ""
    signed = "signed attestation stored" if verdict and verdict.attestation_json else "unsigned"
    body = (f"{_logout(logout)}<p><a href='/'>all admissions</a></p><h1>{_repo(job)}</h1>"
            f"<p>revision <code>{escape(job.revision)}</code> · ref {escape(job.ref or '-')} · "
            f"verdict {_decision(verdict, job)} · {signed}</p>{err}<ul id='reasons'>{reasons}</ul>"
            "<table id='findings'><tr><th>rule</th><th>name</th><th>severity</th><th>file</th>"
            f"<th>message</th></tr>{findings}</table>")
    return _page(f"{job.repo}@{job.revision[:12]}", body)
