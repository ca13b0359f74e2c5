"""Pictures in, clean pictures out: what an upload or a remote file is, checked before it is decoded,
then oriented, stripped of every piece of metadata, scaled to Mastodon's limits, previewed and
blurhashed.

Everything here blocks (Pillow decodes on the CPU): callers run it in a thread
(`asyncio.to_thread`) or in the worker, never on the event loop. Nothing is trusted from the
outside: the format is read from the bytes themselves (a file name or a declared type may lie),
the pixel count from the header before any pixel is decoded (a 50 kB PNG can unpack into
gigabytes), and the output is always a fresh encoding, so no EXIF (GPS position, camera serial),
XMP, comment or colour profile of the original survives.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from app.services.errors import Invalid

try:  # HEIC (iPhone photos) where the pillow-heif plug-in is installed; without it they are refused
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_READABLE = True
except ImportError:  # pragma: no cover - the plug-in is a declared dependency
    HEIF_READABLE = False

# Mastodon 4.5's limits (app/models/media_attachment.rb): what is accepted, and what is kept.
IMAGE_SIZE_LIMIT = 16 * 1024 * 1024
# The most pixels an uploaded picture may have (7680x4320); checked from the header, before decoding.
IMAGE_MATRIX_LIMIT = 33_177_600
# Kept pictures are scaled down to at most this many pixels (3840x2160), as Mastodon does.
ORIGINAL_PIXEL_LIMIT = 8_294_400
# The preview ("small") has about 640x360's pixels, as Mastodon's.
PREVIEW_PIXELS = 230_400
AVATAR_SIZE = (400, 400)
HEADER_SIZE = (1500, 500)
# Custom emoji: shown at text height, kept sharp on dense screens; files over Mastodon's limit for
# remote emoji (256 kB) are not fetched whole.
EMOJI_SIZE = (128, 128)
EMOJI_SIZE_LIMIT = 256 * 1024
JPEG_QUALITY = 85
# Frames x pixels of an animated picture, so that a GIF of 10,000 small frames is no bomb either.
ANIMATION_PIXEL_LIMIT = 400_000_000

IMAGE_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "HEIF": "image/heic",
    "AVIF": "image/avif",
}

# Markup a browser might run, or an archive a plug-in might open, inside what claims to be a picture.
_MARKUP_RE = re.compile(rb"<(?:script|html|svg|body|iframe|\?php|!doctype|\?xml)", re.IGNORECASE)
_ZIP_END = b"PK\x05\x06"


class MediaInvalid(Invalid):
    """A file that cannot become an attachment; the message names the problem for the uploader."""


@dataclass(frozen=True)
class ProcessedImage:
    """A picture re-encoded: the kept file, its preview, and what Mastodon's `meta` says of both."""

    data: bytes
    extension: str
    content_type: str
    preview: bytes
    preview_extension: str
    width: int
    height: int
    preview_width: int
    preview_height: int
    blurhash: str | None
    source_type: str
    animated: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


def sniff_image_format(head: bytes) -> str | None:
    """Pillow's name of the picture format the first bytes announce, or None (SVG, HTML, anything else)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"):
            return "HEIF" if HEIF_READABLE else None
    return None


def check_not_polyglot(data: bytes) -> None:
    """A picture that is also a web page, a script or an archive is refused whole: it may be served
    to someone whose browser or tool reads the other half."""
    if _MARKUP_RE.search(data):
        raise MediaInvalid(
            "the file hides markup (HTML, SVG or script) inside the picture; upload a plain picture"
        )
    if _ZIP_END in data[-65_557:]:
        raise MediaInvalid("the file has an archive appended to the picture; upload a plain picture")


def open_checked(data: bytes, *, limit: int = IMAGE_MATRIX_LIMIT) -> Image.Image:
    """Open `data` lazily as the format its bytes announce, and refuse it before decoding when its
    pixel count is over `limit` (a decompression bomb, or just too big)."""
    if not data:
        raise MediaInvalid("the file is empty")
    kind = sniff_image_format(data[:32])
    if kind is None:
        if data.lstrip()[:1] == b"<":
            raise MediaInvalid(
                "SVG and other markup are not accepted; upload a JPEG, PNG, GIF or WebP picture"
            )
        raise MediaInvalid(
            "the file is not a picture in a supported format (JPEG, PNG, GIF, WebP, HEIC, AVIF)"
        )
    check_not_polyglot(data)
    try:
        image = Image.open(io.BytesIO(data), formats=[kind])
    except Image.DecompressionBombError:
        raise MediaInvalid(
            f"the picture is too large: it would unpack to more than {limit / 1_000_000:.1f} megapixels"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise MediaInvalid("the file is damaged: it says it is a picture but cannot be read") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise MediaInvalid("the picture has no pixels")
    if width * height > limit:
        raise MediaInvalid(
            f"the picture is too large: {width}x{height} pixels; the limit is {limit / 1_000_000:.1f} megapixels"
        )
    frames = getattr(image, "n_frames", 1)
    if frames * width * height > ANIMATION_PIXEL_LIMIT:
        raise MediaInvalid("the animation has too many frames for its size")
    return image


def is_animated(data: bytes) -> bool:
    """Whether a GIF has more than one frame (it then becomes a silent video, Mastodon's `gifv`)."""
    image = open_checked(data)
    with image:
        return image.format == "GIF" and getattr(image, "n_frames", 1) > 1


def _decode(image: Image.Image) -> Image.Image:
    """Decode the first frame, oriented as the camera said, in plain sRGB RGB(A)."""
    try:
        image.seek(0)
        image.load()
        oriented = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError):
        raise MediaInvalid("the picture is damaged (truncated or corrupt) and cannot be decoded") from None
    profile = oriented.info.get("icc_profile")
    has_alpha = oriented.mode in ("RGBA", "LA", "PA") or (
        oriented.mode == "P" and "transparency" in oriented.info
    )
    converted = oriented.convert("RGBA" if has_alpha else "RGB")
    if profile:
        # The profile goes (it can carry identifiers); its colours are kept by converting to sRGB.
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            converted = (
                ImageCms.profileToProfile(
                    converted, source, ImageCms.createProfile("sRGB"), outputMode=converted.mode
                )
                or converted
            )
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    converted.info.clear()
    return converted


def _scale_to_pixels(image: Image.Image, pixels: int) -> Image.Image:
    width, height = image.size
    if width * height <= pixels:
        return image
    factor = (pixels / (width * height)) ** 0.5
    size = (max(1, int(width * factor)), max(1, int(height * factor)))
    # draft() lets JPEG decode at a fraction of the size; reduce= halves cheaply before the filter.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode(image: Image.Image, kind: str) -> tuple[bytes, str, str]:
    """A fresh file without any metadata: PNG for pictures with transparency or from PNG/GIF
    (graphics, screenshots), WebP from WebP, JPEG for photographs."""
    output = io.BytesIO()
    if image.mode == "RGBA" or kind in ("PNG", "GIF"):
        image.save(output, "PNG", optimize=False, compress_level=6)
        return output.getvalue(), "png", "image/png"
    if kind == "WEBP":
        image.save(output, "WEBP", quality=JPEG_QUALITY, method=4)
        return output.getvalue(), "webp", "image/webp"
    image.save(output, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return output.getvalue(), "jpg", "image/jpeg"


def blurhash_of(image: Image.Image) -> str | None:
    """The blurhash Mastodon's apps draw while the picture loads (4x3 components, as Mastodon)."""
    import blurhash

    small = image.convert("RGB")
    small.thumbnail((64, 64))
    try:
        return str(blurhash.encode(small, x_components=4, y_components=3))
    except Exception:  # a blurhash is decoration: never a reason to refuse a picture
        return None


def image_meta(width: int, height: int, small_width: int, small_height: int) -> dict[str, Any]:
    def one(w: int, h: int) -> dict[str, Any]:
        return {"width": w, "height": h, "size": f"{w}x{h}", "aspect": round(w / h, 6)}

    return {"original": one(width, height), "small": one(small_width, small_height)}


def process_image(data: bytes, *, pixel_limit: int = ORIGINAL_PIXEL_LIMIT) -> ProcessedImage:
    """Check, decode, orient, strip, scale, preview and blurhash one picture. Blocking."""
    image = open_checked(data)
    with image:
        kind = image.format or ""
        if kind == "JPEG":
            # Decode a JPEG at the smallest power-of-two reduction still larger than the target.
            width, height = image.size
            if width * height > pixel_limit * 4:
                factor = (pixel_limit / (width * height)) ** 0.5
                image.draft("RGB", (int(width * factor) + 1, int(height * factor) + 1))
        animated = getattr(image, "n_frames", 1) > 1
        decoded = _decode(image)
    kept = _scale_to_pixels(decoded, pixel_limit)
    data_out, extension, content_type = _encode(kept, kind)
    preview = _scale_to_pixels(kept, PREVIEW_PIXELS)
    preview_data, preview_extension, _ = _encode(preview, "JPEG" if preview.mode == "RGB" else "PNG")
    meta = image_meta(kept.width, kept.height, preview.width, preview.height)
    return ProcessedImage(
        data=data_out,
        extension=extension,
        content_type=content_type,
        preview=preview_data,
        preview_extension=preview_extension,
        width=kept.width,
        height=kept.height,
        preview_width=preview.width,
        preview_height=preview.height,
        blurhash=blurhash_of(preview),
        source_type=IMAGE_TYPES.get(kind, "application/octet-stream"),
        animated=animated,
        meta=meta,
    )


def process_image_file(path: Path, **options: Any) -> ProcessedImage:
    return process_image(path.read_bytes(), **options)


def fit_picture(data: bytes, size: tuple[int, int]) -> tuple[bytes, str]:
    """An avatar (400x400) or header (1500x500): checked like any upload, cropped to fill `size`,
    re-encoded without metadata. Returns the bytes and their extension. Blocking."""
    image = open_checked(data)
    with image:
        decoded = _decode(image)
    fitted = ImageOps.fit(decoded, size, Image.Resampling.LANCZOS)
    encoded, extension, _ = _encode(fitted, "PNG" if fitted.mode == "RGBA" else "JPEG")
    return encoded, extension


def emoji_picture(data: bytes) -> bytes:
    """A custom emoji as a PNG within EMOJI_SIZE, checked like any upload and without metadata; an
    animated one becomes its first frame (Mastodon's `static_url` is such a still). Blocking."""
    image = open_checked(data)
    with image:
        decoded = _decode(image)
    decoded.thumbnail(EMOJI_SIZE, Image.Resampling.LANCZOS)
    output = io.BytesIO()
    decoded.save(output, "PNG", compress_level=6)
    return output.getvalue()


def poster_from_frame(data: bytes) -> ProcessedImage:
    """A video's poster frame (a PNG or JPEG ffmpeg wrote) through the same pipeline."""
    return process_image(data)


__all__ = [
    "AVATAR_SIZE",
    "EMOJI_SIZE",
    "EMOJI_SIZE_LIMIT",
    "HEADER_SIZE",
    "IMAGE_MATRIX_LIMIT",
    "IMAGE_SIZE_LIMIT",
    "IMAGE_TYPES",
    "ORIGINAL_PIXEL_LIMIT",
    "MediaInvalid",
    "ProcessedImage",
    "blurhash_of",
    "emoji_picture",
    "fit_picture",
    "is_animated",
    "open_checked",
    "process_image",
    "sniff_image_format",
]
