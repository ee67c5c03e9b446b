"""How ``livespace serve`` serves the page (caching, types, a page not built), and what
``livespace demo`` prints; the browser tests (test_page.py) cover what the page does."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from page_harness import demo

from livespace.api import page
from livespace.app import create_app
from livespace.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine() -> str:
    return "sqlite"


def test_the_page_is_revalidated_and_its_assets_are_immutable(server: Any) -> None:
    with httpx.Client(base_url=server.http, timeout=30) as http:
        index = http.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        assert index.headers["cache-control"] == "no-cache"
        assert "script-src 'self'" in index.headers["content-security-policy"]
        assert index.headers["referrer-policy"] == "no-referrer"
        again = http.get("/", headers={"If-None-Match": index.headers["etag"]})
        assert again.status_code == 304 and again.content == b""

        assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index.text)
        assert {Path(a).suffix for a in assets} == {".js", ".css"}, assets
        for path in assets:
            assert re.fullmatch(r"/assets/main-[A-Z0-9]{8}\.(js|css)", path), path
            asset = http.get(path)
            assert asset.status_code == 200
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
            kind = "text/javascript" if path.endswith(".js") else "text/css"
            assert asset.headers["content-type"] == f"{kind}; charset=utf-8"
            assert http.head(path).status_code == 200

        for bad in ("/assets/nope-12345678.js", "/assets/..%2Fpage.py", "/assets/x.exe"):
            missing = http.get(bad)
            assert missing.status_code == 404, bad
            assert missing.json()["error"]["code"] == "not_found"


async def test_a_server_without_the_built_page_says_how_to_build_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page, "STATIC", tmp_path / "static")
    app = create_app(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/db",
                              jwt_secret="x" * 40))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://page") as http:
        answer = await http.get("/")
    assert answer.status_code == 503
    assert answer.headers["cache-control"] == "no-store"
    assert "make install" in answer.text and "not built" in answer.text


def test_demo_prints_two_links_that_sign_in(server: Any) -> None:
    workspace = demo(server)
    assert sorted(workspace.links) == ["Leo Brandt", "Maya Okafor"]
    for name, link in workspace.links.items():
        assert link.startswith(f"{server.http}/#workspace={workspace.workspace}&token=")
        assert "?" not in link  # nothing for the server to see: all in the fragment
        claims = jwt.decode(workspace.token(name), server.secret, algorithms=["HS256"])
        assert claims["name"] == name and claims["exp"] > claims["iat"]
    with httpx.Client(base_url=server.http, timeout=30,
                      headers={"Authorization": f"Bearer {workspace.token('Maya Okafor')}"}
                      ) as http:
        base = f"/api/workspaces/{workspace.workspace}"
        contacts = http.get(f"{base}/contacts").json()["contacts"]
        assert len(contacts) == 12
        assert all(c["email"] and c["phone"] and c["company"] for c in contacts)
        events = http.get(f"{base}/events", params={"since": 0}).json()["events"]
        assert sum(e["type"] == "note_added" for e in events) >= 8
        mine = http.get("/api/workspaces").json()["workspaces"]
        assert [w["role"] for w in mine if w["id"] == workspace.workspace] == ["owner"]
