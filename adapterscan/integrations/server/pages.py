"""The dashboard's routes: the login form (sets a signed session cookie), logout, the pages.

The dashboard only reads; its one form logs in. CSRF: the session and the form's cookies are
SameSite=Strict and HttpOnly, a login post must come from this origin (Origin, Sec-Fetch-Site) and
carry the token of the cookie set with the form (double submit).
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from adapterscan.integrations.server.access import ReadMode
from adapterscan.integrations.server.base_queue import JobQueue
from adapterscan.integrations.server.body import BodyTooLarge, read_body
from adapterscan.integrations.server.dashboard import (
    CSP,
    admission_page,
    index_page,
    login_page,
    message_page,
)
from adapterscan.integrations.server.guard import Access, Guard
from adapterscan.integrations.server.session import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    csrf_ok,
    new_csrf,
    safe_next,
    same_origin,
)

# Referrer-Policy same-origin, not no-referrer: under no-referrer browsers send "Origin: null"
# with the login post, and the origin check needs the real one.
_HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store"}
_MAX_FORM = 4096
_CSRF_S = 600


def add_pages(app: FastAPI, queue: JobQueue, guard: Guard) -> None:
    config, metrics = guard.config, guard.metrics

    def html(route: str, status: int, text: str) -> HTMLResponse:
        metrics.request(route, status)
        return HTMLResponse(text, status_code=status, headers=_HEADERS)

    def redirect(route: str, to: str) -> RedirectResponse:
        metrics.request(route, 303)
        return RedirectResponse(to, status_code=303, headers=_HEADERS)

    def too_many(route: str, access: Access, text: str) -> HTMLResponse:
        resp = html(route, 429, text)
        resp.headers["Retry-After"] = str(access.retry_after)
        return resp

    def to_login(request: Request, route: str, access: Access) -> Response:
        if access.status == 429:
            return too_many(route, access, message_page(
                "too many attempts", "Too many failed credentials from this address; wait."))
        resp = redirect(route, f"/login?next={quote(request.url.path)}")
        if access.reason == "bad_credential":
            resp.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return resp

    def logout_shown(request: Request, access: Access) -> bool:
        return access.authenticated and SESSION_COOKIE in request.cookies

    def login_form(request: Request, status: int, next_path: str,
                   error: str | None) -> HTMLResponse:
        csrf = new_csrf()
        resp = html("login", status, login_page(csrf, next_path, error))
        resp.set_cookie(CSRF_COOKIE, csrf, max_age=_CSRF_S, path="/login", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
        return resp

    @app.get("/", response_model=None)
    def dashboard(request: Request) -> Response:
        access = guard.read(request, "dashboard")
        if not access.allowed:
            return to_login(request, "dashboard", access)
        everything = access.authenticated or config.mode is ReadMode.ALL
        rows = queue.recent(200, public_only=not everything)
        counts = (queue.verdict_counts() if everything
                  else dict(Counter(v.decision for _, v in rows if v)))
        return html("dashboard", 200, index_page(rows, counts, logout_shown(request, access)))

    @app.get("/admissions/{job_id}", response_model=None)
    def dashboard_job(request: Request, job_id: str) -> Response:
        access = guard.read(request, "dashboard_job")
        if not access.allowed:
            return to_login(request, "dashboard_job", access)
        found = queue.get(job_id)
        shown = guard.shown([found], access) if found else []
        if not shown:
            if not access.authenticated:
                guard.hidden("dashboard_job")
            return html("dashboard_job", 404, message_page("not found", "No such admission."))
        return html("dashboard_job", 200,
                    admission_page(*shown[0], logout=logout_shown(request, access)))

    @app.get("/login", response_model=None)
    def login_get(request: Request, next: str = "/") -> Response:
        return login_form(request, 200, safe_next(next), None)

    @app.post("/login", response_model=None)
    async def login_post(request: Request) -> Response:
        try:
            form = parse_qs((await read_body(request, _MAX_FORM)).decode("utf-8", "replace"),
                            max_num_fields=8)
        except (BodyTooLarge, ValueError):
            return html("login", 400, message_page("bad request", "Malformed login form."))

        def field(name: str) -> str | None:
            values = form.get(name)
            return values[0] if values else None

        next_path = safe_next(field("next"))
        headers = request.headers
        if not (same_origin(headers.get("origin"), headers.get("sec-fetch-site"),
                            headers.get("host"))
                and csrf_ok(field("csrf"), request.cookies.get(CSRF_COOKIE))):
            metrics.denied("login", "csrf")
            return login_form(request, 403, next_path,
                              "The form expired or was sent from another site; try again.")
        token = field("token")
        access = await run_in_threadpool(guard.secret, request, "login", token,
                                         config.read_tokens)  # a database read
        if access.status == 429:
            resp = login_form(request, 429, next_path,
                              "Too many failed attempts from this address; wait a minute.")
            resp.headers["Retry-After"] = str(access.retry_after)
            return resp
        if not access.allowed or token is None:
            return login_form(request, 401, next_path, "Wrong token.")
        done = redirect("login", next_path)
        done.set_cookie(SESSION_COOKIE, guard.sessions.issue(token),
                        max_age=int(config.session_s), path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
        done.delete_cookie(CSRF_COOKIE, path="/login", httponly=True, samesite="strict")
        return done

    @app.post("/logout", response_model=None)
    def logout(request: Request) -> Response:
        headers = request.headers
        if not same_origin(headers.get("origin"), headers.get("sec-fetch-site"),
                           headers.get("host")):
            return html("logout", 403, message_page("forbidden", "Log out from the dashboard."))
        resp = redirect("logout", "/login")
        resp.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return resp
