"""Security headers a browser acts on: HSTS only when the instance is served over HTTPS, nosniff and
the permissions policy on every response (JSON too), the page-only headers on HTML."""

from __future__ import annotations

from tests.lab import Lab


async def test_https_instance_tells_browsers_to_stay_on_https(lab: Lab) -> None:
    secure = await lab.instance("secure.test", https=True)
    for path, accept in (("/about", "text/html"), ("/.well-known/nodeinfo", "application/json")):
        answer = await secure.client.get(path, headers={"Accept": accept})
        assert answer.status_code == 200, path
        assert answer.headers["strict-transport-security"] == "max-age=63072000", path
        assert answer.headers["x-content-type-options"] == "nosniff", path


async def test_plain_http_instance_sends_no_hsts_and_html_gets_the_page_headers(lab: Lab) -> None:
    plain = await lab.instance("plain.test")
    page = await plain.client.get("/about", headers={"Accept": "text/html"})
    assert "strict-transport-security" not in page.headers
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "same-origin"
    document = await plain.client.get("/.well-known/nodeinfo")
    assert document.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in document.headers


async def test_no_response_may_use_camera_microphone_or_location(lab: Lab) -> None:
    plain = await lab.instance("plain.test")
    for path, accept in (
        ("/about", "text/html"),
        ("/.well-known/nodeinfo", "application/json"),
        ("/no-such-page", "text/html"),
        ("/static/herold.css", "text/css"),
    ):
        answer = await plain.client.get(path, headers={"Accept": accept})
        policy = {
            feature.strip(): allowed
            for feature, _, allowed in (
                item.partition("=") for item in answer.headers["permissions-policy"].split(",")
            )
        }
        for feature in ("camera", "microphone", "geolocation"):
            assert policy[feature] == "()", (path, feature)
