"""Canonical parts <-> Gemini wire parts, shared by requests, responses and streams.

Thought signatures. Gemini attaches an opaque `thoughtSignature` to whichever part it likes: a
thought summary, a text part or (always, on Gemini 3) the first `functionCall` of a turn, and
wants it back on the same part. The canonical model keeps signatures only on `ThinkingPart`,
so a signature found on a non-thought part becomes a *carrier*: an empty `ThinkingPart` with
just the signature, placed right before the part that carried it. Encoding reverses this: a
carrier is put back on the following text or function-call part, or, with nothing to ride
on, sent as an empty text part `{"text": "", "thoughtSignature": ...}` (the shape Gemini
itself uses for a trailing signature in streams). A thought part with text keeps its
signature on itself. So every Gemini-issued signature returns on the part it came with.

Thinking that carries only `redacted` data (Anthropic's encrypted reasoning) has no Gemini
form and is left out of requests: it is context Gemini could not read anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.parts import ImagePart, Part, TextPart, ThinkingPart, ToolCallPart
from turnout.dialects.gemini._wire import (
    ErrorFactory,
    invalid_request,
    message,
    only_keys,
    string,
)

CallIdOut = Callable[[str], str | None]
"""Canonical tool-call id -> the wire `id` to send (None: send no id)."""


# --- images -------------------------------------------------------------------------------------

def image_out(part: ImagePart, param: str) -> dict[str, Any]:
    """`inlineData` for a data URL; `fileData` for an http(s) URL whose image type is known.

    Gemini's `fileData` needs a MIME type and an image URL does not carry one, so it is
    inferred from the file extension; a URL without a recognisable image extension raises
    `UnsupportedFeature` rather than sending a guess."""
    if part.is_data_url:
        try:
            media_type, data = part.data_url_parts()
        except ValueError as exc:
            raise InvalidRequest(str(exc), param=param) from exc
        return {"inlineData": {"mimeType": media_type, "data": data}}
    scheme = urlsplit(part.url).scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsupportedFeature(f"image URL scheme `{scheme}` is not supported", param=param)
    mime = _image_mime_from_url(part.url)
    if mime is None:
        raise UnsupportedFeature(
            "Gemini needs the MIME type of an image URL and it cannot be inferred from this "
            "URL; send the image as a data URL", param=param)
    return {"fileData": {"mimeType": mime, "fileUri": part.url}}


_IMAGE_TYPES = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
    "heic": "image/heic", "heif": "image/heif",
}
"""Image types Gemini documents as supported, by file extension (a fixed table, so the result
never depends on the machine's MIME database)."""


def _image_mime_from_url(url: str) -> str | None:
    path = urlsplit(url).path
    name = path.rsplit("/", 1)[-1]
    if "." not in name:
        return None
    return _IMAGE_TYPES.get(name.rsplit(".", 1)[-1].lower())


def image_in(
    part: dict[str, Any], param: str, err: ErrorFactory = invalid_request
) -> ImagePart:
    """An `inlineData` or `fileData` wire part (only images) as an `ImagePart`."""
    if "inlineData" in part:
        blob = message(part["inlineData"], f"{param}.inlineData", err)
        only_keys(blob, _BLOB_KEYS, f"{param}.inlineData", err)
        mime = string(blob.get("mimeType"), f"{param}.inlineData.mimeType", err)
        data = string(blob.get("data"), f"{param}.inlineData.data", err)
        if not mime.startswith("image/"):
            raise UnsupportedFeature(f"inline data of type `{mime}` is not supported (images "
                                     "only)", param=f"{param}.inlineData.mimeType")
        if not data:
            raise err("inline data must not be empty", f"{param}.inlineData.data")
        return ImagePart(f"data:{mime};base64,{data}", detail=_detail_in(part, param, err))
    file = message(part.get("fileData"), f"{param}.fileData", err)
    only_keys(file, _FILE_KEYS, f"{param}.fileData", err)
    uri = string(file.get("fileUri"), f"{param}.fileData.fileUri", err)
    file_mime = file.get("mimeType")
    if file_mime is not None and not string(
            file_mime, f"{param}.fileData.mimeType", err).startswith("image/"):
        raise UnsupportedFeature(f"file data of type `{file_mime}` is not supported (images only)",
                                 param=f"{param}.fileData.mimeType")
    if urlsplit(uri).scheme.lower() not in ("http", "https"):
        raise UnsupportedFeature("only http(s) file URIs are supported",
                                 param=f"{param}.fileData.fileUri")
    return ImagePart(uri, detail=_detail_in(part, param, err))


# `displayName` only labels the data: ignored.
_BLOB_KEYS = ("mimeType", "data", "displayName")
_FILE_KEYS = ("mimeType", "fileUri", "displayName")


def _detail_in(part: dict[str, Any], param: str, err: ErrorFactory) -> str | None:
    if part.get("mediaResolution") is None:
        return None
    where = f"{param}.mediaResolution"
    resolution = message(part["mediaResolution"], where, err)
    if resolution.get("numTokens") is not None:
        raise UnsupportedFeature("an exact media token count is not supported",
                                 param=f"{where}.numTokens")
    only_keys(resolution, ("level", "numTokens"), where, err)
    level = resolution.get("level")
    return {"MEDIA_RESOLUTION_LOW": "low", "MEDIA_RESOLUTION_HIGH": "high"}.get(str(level))


# --- model (assistant) parts --------------------------------------------------------------------

def function_call_out(
    part: ToolCallPart, call_id: CallIdOut, param: str, err: ErrorFactory = invalid_request
) -> dict[str, Any]:
    """`functionCall` for a tool call; arguments must be a JSON object (Gemini sends objects)."""
    try:
        args = part.arguments_object()
    except ValueError as exc:
        raise err(str(exc), param) from exc
    call: dict[str, Any] = {"name": part.name, "args": args}
    wire_id = call_id(part.id)
    if wire_id is not None:
        call["id"] = wire_id
    return {"functionCall": call}


def model_parts_out(
    parts: Sequence[Part], call_id: CallIdOut, param: str, err: ErrorFactory = invalid_request
) -> list[dict[str, Any]]:
    """Wire parts of a model turn (see the module notes on signature carriers)."""
    out: list[dict[str, Any]] = []
    pending: str | None = None

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            out.append(signature_part(pending))
            pending = None

    for i, part in enumerate(parts):
        wire: dict[str, Any]
        if isinstance(part, ThinkingPart):
            if part.text:
                flush()
                out.append(thought_part(part.text, part.signature))
            elif part.signature:
                flush()
                pending = part.signature
            continue
        if isinstance(part, TextPart):
            if not part.text:
                continue
            wire = {"text": part.text}
        elif isinstance(part, ToolCallPart):
            wire = function_call_out(part, call_id, f"{param}.{i}", err)
        elif isinstance(part, ImagePart):
            flush()
            out.append(image_out(part, f"{param}.{i}"))
            continue
        else:
            raise err("a tool result cannot appear in an assistant turn", f"{param}.{i}")
        if pending is not None:
            wire["thoughtSignature"] = pending
            pending = None
        out.append(wire)
    flush()
    return out


def thought_part(text: str, signature: str | None) -> dict[str, Any]:
    wire: dict[str, Any] = {"text": text, "thought": True}
    if signature:
        wire["thoughtSignature"] = signature
    return wire


def signature_part(signature: str) -> dict[str, Any]:
    """A signature with no part to ride on."""
    return {"text": "", "thoughtSignature": signature}


def args_json(args: dict[str, Any]) -> str:
    return orjson.dumps(args).decode()
