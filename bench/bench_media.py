"""A 12-megapixel JPEG uploaded through the client API until the attachment is ready, beside Pillow
doing only the same decode, scale and encode: CPU time and peak RSS growth of each.

    python bench/bench_media.py [--rounds 3] [--megapixels 12]

Each measurement runs in a fresh child process (so its peak RSS is its own): the upload goes
through the real app (POST /api/v1/media, which answers once processed: streamed to disk, sniffed,
checked, decoded, oriented, stripped, scaled to 8.3 MP, previewed, blurhashed, stored, and the row
written), in process over ASGI so that the client costs nothing. The ceiling is Pillow alone:
decode, orient, scale to the same size, encode at the same quality. The best of the rounds is
reported (noise on a shared machine only ever adds time). Goals (issue 18): CPU at most 1.3x the
ceiling, peak RSS growth at most 150 MB.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image, ImageFilter, ImageOps

from bench.verdicts import Verdicts

CPU_GOAL = 1.3
RSS_GOAL_MB = 150


def photo_like_jpeg(megapixels: float) -> bytes:
    """A JPEG of about `megapixels` that compresses like a photograph (smooth areas and detail)."""
    width = int((megapixels * 1_000_000 * 4 / 3) ** 0.5)
    height = int(width * 3 / 4)
    generator = random.Random(18)
    small = Image.frombytes(
        "RGB", (width // 16, height // 16), generator.randbytes((width // 16) * (height // 16) * 3)
    )
    image = small.resize((width, height), Image.Resampling.BICUBIC).filter(ImageFilter.DETAIL)
    output = io.BytesIO()
    image.save(output, "JPEG", quality=92)
    return output.getvalue()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ceiling(data: bytes, result: Any) -> None:
    from app.services.image_processing import JPEG_QUALITY, ORIGINAL_PIXEL_LIMIT

    before = _peak_rss_mb()
    started = time.process_time()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        oriented = ImageOps.exif_transpose(image).convert("RGB")
    width, height = oriented.size
    factor = min(1.0, (ORIGINAL_PIXEL_LIMIT / (width * height)) ** 0.5)
    scaled = oriented.resize((int(width * factor), int(height * factor)), Image.Resampling.LANCZOS)
    output = io.BytesIO()
    scaled.save(output, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    result.send((time.process_time() - started, _peak_rss_mb() - before))


def _through_the_api(data: bytes, result: Any) -> None:
    import httpx

    from app.config import Settings
    from app.main import create_app
    from app.migrations import upgrade_database
    from app.runtime import run_event_loop
    from app.services.accounts import AccountService
    from app.services.oauth import OAuthService

    async def run() -> tuple[float, float]:
        with tempfile.TemporaryDirectory() as directory:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                data_dir=Path(directory),
                local_domain="bench.test",
                https=False,
                secret_key="bench-secret-key-of-at-least-32-bytes!",
                embedded_worker=False,
            )
            await upgrade_database(settings)
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                context = app.state.context
                made = await AccountService(context).create_local_account("bench", password=None)
                token = await OAuthService(context).issue_personal_token(
                    made.user, scopes="write", app_name="bench", acting_as=made.account
                )
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
                    headers = {"Authorization": f"Bearer {token}"}
                    # One small upload first: imports and first-use costs are not the upload's.
                    warm = io.BytesIO()
                    Image.new("RGB", (64, 64)).save(warm, "JPEG")
                    await client.post(
                        "/api/v1/media",
                        files={"file": ("w.jpg", warm.getvalue(), "image/jpeg")},
                        headers=headers,
                    )
                    before = _peak_rss_mb()
                    started = time.process_time()
                    answer = await client.post(
                        "/api/v1/media", files={"file": ("photo.jpg", data, "image/jpeg")}, headers=headers
                    )
                    spent = time.process_time() - started
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["url"], answer.text
                    return spent, _peak_rss_mb() - before

    result.send(run_event_loop(run(), "auto"))


def _measure(target: Any, data: bytes) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(data, sending))
    process.start()
    found = receiving.recv()
    process.join()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--megapixels", type=float, default=12.0)
    args = parser.parse_args()
    data = photo_like_jpeg(args.megapixels)
    with Image.open(io.BytesIO(data)) as image:
        size = image.size
    print(
        f"a {size[0]}x{size[1]} JPEG of {len(data) / 1_048_576:.1f} MB; load average {os.getloadavg()[0]:.1f}"
    )
    ceiling = min(_measure(_ceiling, data) for _ in range(args.rounds))
    upload = min(_measure(_through_the_api, data) for _ in range(args.rounds))
    ratio = upload[0] / ceiling[0]
    print(
        f"Pillow alone (decode, orient, scale, encode): {ceiling[0] * 1000:7.0f} ms CPU, peak RSS +{ceiling[1]:.0f} MB"
    )
    print(
        f"upload through the API until ready:          {upload[0] * 1000:7.0f} ms CPU, peak RSS +{upload[1]:.0f} MB"
    )
    verdicts = Verdicts()
    verdicts.check("12 MP upload: CPU vs Pillow alone", ratio, "<=", CPU_GOAL, "{:.2f}x")
    verdicts.check("12 MP upload: peak RSS growth, MB", upload[1], "<=", RSS_GOAL_MB, "{:.0f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return verdicts.summary()


if __name__ == "__main__":
    raise SystemExit(main())
