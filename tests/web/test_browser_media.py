"""A picture from the composer in Chromium, at phone and desktop widths: chosen in the file field,
previewed, its focal point picked by a click on the preview, described, published, and shown on
the post page from Herold's own /media/ (with its description as alt text)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.api.media_helpers import jpeg_with_gps
from tests.lab import DatabaseFactory
from tests.processes import ServerProcess, free_port, herold_env, run_herold
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PASSWORD, PHONE, log_in, shoot

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect


async def test_a_picture_with_alt_text_and_focal_point_from_the_composer(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = herold_env(
        tmp_path / "data",
        await databases.new_database_url(),
        HOST="127.0.0.1",
        PORT=str(port),
        LOCAL_DOMAIN=f"127.0.0.1:{port}",
    )
    made = run_herold(["accounts", "create", "alice", "--password", PASSWORD], env)
    assert made.returncode == 0, made.stderr
    picture = tmp_path / "harbour.jpg"
    picture.write_bytes(jpeg_with_gps((400, 200), orientation=1))
    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    try:
        server.wait_http(f"{base}/.well-known/nodeinfo")
        async with playwright_api.async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = await (await browser.new_context(viewport=DESKTOP, locale="en-GB")).new_page()
                page.set_default_timeout(15_000)
                await log_in(page, base, "alice")
                for width, size in (("phone", PHONE), ("desktop", DESKTOP)):
                    await page.set_viewport_size(size)
                    await page.goto(f"{base}/compose")
                    await page.get_by_label("Text", exact=True).fill(f"The harbour ({width})")
                    await page.set_input_files("#file_0", str(picture))
                    preview = page.locator("[data-media-slot]").first.locator("[data-focus-picker] img")
                    await expect(preview).to_be_visible()
                    # A click at three quarters of the width, a quarter from the top: x 0.5, y 0.5.
                    box = await preview.bounding_box()
                    assert box is not None
                    await preview.click(position={"x": box["width"] * 0.75, "y": box["height"] * 0.25})
                    await expect(page.locator("#focus_0")).to_have_value(
                        re.compile(r"^0\.(49|5\d),0\.(49|5\d)$")
                    )
                    await page.get_by_label("Description of file 1").fill(f"Boats in the harbour, {width}")
                    if width == "desktop":
                        await shoot(page, "compose-media")
                    await page.get_by_role("button", name="Publish").click()
                    await expect(page.get_by_text("Your post was published.")).to_be_visible()
                    image = page.get_by_role("img", name=f"Boats in the harbour, {width}")
                    await expect(image).to_be_visible()
                    source = await image.get_attribute("src")
                    assert source and source.startswith(f"{base}/media/attachments/")
                    loaded = await image.evaluate("element => element.naturalWidth")
                    assert loaded > 0
                await shoot(page, "post-with-picture")
            finally:
                await browser.close()
    finally:
        server.stop()
    assert "Traceback" not in server.output(), server.output()
