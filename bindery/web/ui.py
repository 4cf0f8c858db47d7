"""bindery's pages for people: home form, launch page, badges, "Binder not found".

``routes(settings)`` returns the routes; the app (``bindery/web/app.py``) includes them beside the
event stream ``/build/<provider>/<spec>``, which the launch page's script consumes. Pages are plain
HTML (Jinja2) with small vanilla JS modules in ``static/``; the home form also works without JS.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from bindery._version import __version__
from bindery.providers import PROVIDERS
from bindery.settings import Settings
from bindery.launches import launch_records as launches
from bindery.launches.homes import RESUME, resume_urls
from bindery.launches.people import SERVER_NAME
from bindery.web.door import Door
from bindery.web.signin import SignIn
from bindery.web.urlpath import launch_urlpath

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))

# Badges never change within a release; let READMEs' image proxies keep them for a month.
BADGE_CACHE = "public, max-age=2592000, stale-while-revalidate=86400"


@dataclass(frozen=True)
class ProviderForm:
    """How the home form asks for one provider's repository and turns it into a spec.

    spec = <repo, with url_prefix removed, url-escaped if escape_repo>/<ref or default_ref>
    """

    name: str
    label: str
    repo_label: str
    placeholder: str
    url_prefix: str  # a pasted web URL starting with this is reduced to the part after it
    escape_repo: bool  # gl and git put the whole repository into one url-escaped path segment
    default_ref: str = "HEAD"


def providers(settings: Settings) -> list[ProviderForm]:
    """The form entries of the repository providers (from the provider registry). DOI records and
    images have no ref, which the form always adds: their links work, the form does not offer them."""
    return [ProviderForm(p.name, p.label, p.repo_label, p.placeholder, p.web_prefix(settings),
                         p.escape_repo) for p in PROVIDERS.values() if p.repo_parts is not None]


def form_spec(form: ProviderForm, repo: str, ref: str) -> str:
    """The spec a form entry stands for (static/spec.js does the same in the browser)."""
    repo = repo.strip()
    if form.url_prefix and repo.startswith(form.url_prefix):
        repo = repo[len(form.url_prefix):]
    if not form.escape_repo:
        repo = repo.strip("/").removesuffix(".git")
    return f"{quote(repo, safe='') if form.escape_repo else repo}/{ref.strip() or form.default_ref}"


def _base(request: Request) -> str:
    """Absolute path of bindery's root for links inside pages (works under a path prefix)."""
    return request.scope.get("root_path", "").rstrip("/") + "/"


def _public(settings: Settings, request: Request) -> str:
    """bindery's URL as people reach it, for links they copy elsewhere."""
    return (settings.service.public_url or str(request.base_url)).rstrip("/") + "/"


def _raw_spec(request: Request, provider: str, spec: str) -> str:
    # Starlette decodes %2F in path params; gl/git specs need it kept, so read the raw path.
    raw = request.scope.get("raw_path", b"").decode("latin-1")
    marker = f"/v2/{provider}/"
    if marker in raw:
        return raw.split(marker, 1)[1].split("?", 1)[0]
    return quote(spec, safe="/")


def routes(settings: Settings, book: launches.LaunchBook, signin: SignIn | None = None
           ) -> list[BaseRoute]:
    door = Door(settings)
    forms = providers(settings)
    by_name = {f.name: f for f in forms}

    def page(request: Request, name: str, status_code: int = 200, **context: object) -> Response:
        context.update(base=_base(request), version=__version__)
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    async def home(request: Request) -> Response:
        return page(request, "home.html", providers=forms, public_url=_public(settings, request),
                    providers_data=[asdict(f) for f in forms], sign_in=sign_in_config(request))

    async def api_providers(request: Request) -> Response:
        return JSONResponse([asdict(f) for f in forms])

    async def launch_form(request: Request) -> Response:
        """The home form's target when scripts are off: redirect to the launch page."""
        q = request.query_params
        form = by_name.get(q.get("provider", ""))
        if form is None or not q.get("repo", "").strip():
            return RedirectResponse(_base(request), status_code=303)
        url = f"{_base(request)}v2/{form.name}/{form_spec(form, q['repo'], q.get('ref', ''))}"
        path = q.get("path", "").strip()
        if path:
            key = "urlpath" if q.get("pathtype") == "url" else "labpath"
            url += "?" + urlencode({key: path})
        return RedirectResponse(url, status_code=303)

    async def launch_page(request: Request) -> Response:
        provider, spec = request.path_params["provider"], request.path_params["spec"]
        if signin is not None and settings.signin.sign_in == "required" \
                and await signin.person(request) is None:  # sign in first, then back here
            return RedirectResponse(f"{_base(request)}sign-in?{urlencode({'next': _here(request)})}",
                                    302)
        raw = _raw_spec(request, provider, spec)
        build_url = f"{_base(request)}build/{provider}/{raw}"
        token = door.issue_token(request, provider, spec)
        query = {"build_token": token} if token else {}
        resuming = provider == RESUME
        if resuming and request.query_params.get("ref"):  # a newer ref of the same repository
            query["ref"] = request.query_params["ref"]
        if query:
            build_url += "?" + urlencode(query)
        config = {
            "buildUrl": build_url,
            # a resume link's page shows the link itself, its download and its delete button
            **({"resume": {"url": _public(settings, request) + f"v2/{RESUME}/{raw}",
                           **resume_urls(_public(settings, request), raw)}} if resuming else {}),
            "urlpath": launch_urlpath(request.query_params),
            "icons": {s: f"{_base(request)}static/favicon-{s}.svg"
                      for s in ("building", "ready", "failed")},
        }
        form = by_name.get(provider)
        response = page(request, "launch.html", provider=provider,
                        spec="your saved work" if resuming else spec,
                        provider_label="a resume link" if resuming else
                        (form.label if form else provider), config=config,
                        sign_in=sign_in_config(request))
        if token or resuming:
            # the embedded token is short-lived and bound to this page; no cache may keep it
            response.headers["Cache-Control"] = "no-store"
        return response

    def sign_in_config(request: Request) -> dict[str, str]:
        """What the page's servers panel (static/servers.js) needs; empty: no sign-in here."""
        if signin is None:
            return {}
        here = _here(request)
        return {"mode": settings.signin.sign_in, "me": f"{_base(request)}api/me",
                "servers": f"{_base(request)}api/servers/",
                "signIn": f"{_base(request)}sign-in?{urlencode({'next': here})}",
                "signOut": f"{_base(request)}sign-out?hub=1"}

    def badge(name: str) -> Route:
        body = (STATIC / name).read_bytes()

        async def serve(request: Request) -> Response:
            return Response(body, media_type="image/svg+xml",
                            headers={"Cache-Control": BADGE_CACHE})
        return Route(f"/{name}", serve, methods=["GET", "HEAD"])

    async def not_found(request: Request) -> Response:
        if "name" in request.path_params:
            user, path = request.path_params["name"], request.path_params.get("path", "")
            server = path.split("/", 1)[0]
            if SERVER_NAME.fullmatch(server):  # a signed-in person's named server
                user, path = f"{user}/{server}", path[len(server):].lstrip("/")
        else:
            user, path = request.query_params.get("user", ""), request.query_params.get("path", "")
        launch = await book.lookup(user) if user else None
        relaunch = None
        if launch is not None:
            relaunch = _base(request) + launch.launch_path
            # Reopen what the link pointed at, unless it was the server's API (not a page).
            if path.strip("/") and not path.startswith("api/"):
                relaunch += "?" + urlencode({"urlpath": path})
        message = ("This Binder's server no longer exists: servers are stopped after a while "
                   "without use, and what was not saved elsewhere is gone.")
        return not_found_answer(request, 424, message, relaunch, launch)

    def not_found_answer(request: Request, status: int, message: str, relaunch: str | None = None,
                         launch: launches.Launch | None = None) -> Response:
        # JSON only for clients that ask for it; any other client (curl, requests: */*) gets the
        # page. Both say "Binder not found", which is what monitoring and people look for.
        if _wants_json(request):
            return JSONResponse({"status_code": status, "error": "Binder not found",
                                 "message": f"Binder not found: {message}",
                                 "relaunch_url": relaunch}, status_code=status)
        return page(request, "not_found.html", status_code=status, message=message,
                    relaunch=relaunch, launch=launch)

    async def unknown_page(request: Request) -> Response:
        """Any other path (the hub's proxy sends unknown paths here too): a 404 page."""
        return not_found_answer(request, 404, "There is nothing at this address. Binder links start "
                                "with /v2/ (launch) or /user/ (a running server).")

    return [
        Route("/", home),
        Route("/launch", launch_form),
        Route("/api/providers", api_providers),
        Route("/v2/{provider}/{spec:path}", launch_page),
        badge("badge.svg"),
        badge("badge_logo.svg"),
        Route("/binder-not-found", not_found),
        Route("/user/{name}", not_found),
        Route("/user/{name}/{path:path}", not_found),
        Route("/favicon.ico", lambda r: RedirectResponse(f"{_base(r)}static/favicon.svg", 301)),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        Route("/{path:path}", unknown_page, methods=["GET", "HEAD"]),
    ]


def _here(request: Request) -> str:
    """This page's path and query as the browser sent them (git and gl specs keep their %2F)."""
    raw = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    return raw + (f"?{request.url.query}" if request.url.query else "")


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept

