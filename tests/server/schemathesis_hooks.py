"""Schemathesis hooks for tests/server/test_schemathesis.py (loaded by its config file's ``hooks``).

What a deployment knows that the generic schema cannot: which models it serves (``$CLEARLM_ST_MODELS``,
comma-separated), how many tokens its model's context leaves to generate, its embeddings' dimensions, and
which knowledge base exists (``$CLEARLM_ST_KB``). Pinning those lets generated requests
reach the code behind the 404s; every other field is generated from the schema as served."""

from __future__ import annotations

import os

import schemathesis

MODELS = os.environ.get("CLEARLM_ST_MODELS", "").split(",")
KB = os.environ.get("CLEARLM_ST_KB")
CONTEXT = int(
    os.environ.get("CLEARLM_ST_CONTEXT", "8")
)  # tokens to generate at most (the tiny model's context)
DIMENSIONS = int(os.environ.get("CLEARLM_ST_DIMENSIONS", "384"))  # the embedding model's own


@schemathesis.hook
def before_load_schema(context, raw_schema: dict) -> None:
    schemas = raw_schema.get("components", {}).get("schemas", {})
    for name in ("ChatCompletionRequest", "CompletionRequest", "EmbeddingRequest", "ExplainRequest"):
        model = schemas.get(name, {}).get("properties", {}).get("model")
        if model is not None:
            served = MODELS[1:] if name == "EmbeddingRequest" else MODELS[:1]
            model.pop("anyOf", None)
            model.update({"type": "string", "enum": served})
        properties = schemas.get(name, {}).get("properties", {})
        for field in ("max_tokens", "max_completion_tokens"):
            if field in properties:
                properties[field] = {
                    "anyOf": [{"type": "integer", "minimum": 1, "maximum": CONTEXT}, {"type": "null"}]
                }
        if "dimensions" in properties:
            properties["dimensions"] = {"anyOf": [{"enum": [DIMENSIONS]}, {"type": "null"}]}
    # Tool calling has ordering rules a schema cannot state (a tool message answers a call an earlier
    # assistant message made; tool_choice needs tools): random bodies with those fields are mostly 400s.
    # Its fields are left out here and tested in test_tool_calling.py.
    for name in ("ChatCompletionRequest", "ExplainRequest"):
        properties = schemas.get(name, {}).get("properties", {})
        for field in ("tools", "tool_choice", "parallel_tool_calls"):
            properties.pop(field, None)
    message = schemas.get("ChatMessage", {}).get("properties", {})
    for field in ("tool_calls", "tool_call_id"):
        message.pop(field, None)
    # An image part needs the bytes of a real image (a schema cannot say "a PNG"): random ones are 400s.
    # Images in chats are tested in tests/media/test_vision_chat.py.
    for option in message.get("content", {}).get("anyOf", []):
        if isinstance(option.get("items"), dict) and "oneOf" in option["items"]:
            option["items"] = {"$ref": "#/components/schemas/ContentPart"}
    # 501 by design until an image generator is configured (tests/media/test_vision_chat.py checks it)
    raw_schema.get("paths", {}).pop("/v1/images/generations", None)
    # Uploads of audio need real audio (random bytes are 400s by design): tests/media/test_audio_api.py
    for path in ("transcriptions", "translations", "transcriptions/live", "chat"):
        raw_schema.get("paths", {}).pop(f"/v1/audio/{path}", None)
    # What this deployment translates (its installed engines' pairs), in formats that random text fits
    # (random text is not an SRT or VTT file: a 400 naming the line, tested in tests/translate)
    translate = schemas.get("TranslateRequest", {}).get("properties", {})
    if translate:
        translate["source"] = {"type": "string", "enum": ["en"]}
        translate["target"] = {"type": "string", "enum": ["es"]}
        translate["engine"] = {"type": "string", "enum": ["apertium"]}
        translate["format"] = {"type": "string", "enum": ["text", "markdown", "html"]}
    # quiz generation needs a knowledge base with passages to write from, which this run's one-line base
    # has not (a 400 that says so): tests/apps/classroom/test_quiz_api.py generates on a real one
    raw_schema.get("paths", {}).pop("/v1/classroom/quiz/generate", None)
    # a decision's edits go with "approve" only (a rule across fields): tested in tests/apps/classroom
    for field in ("question", "answer"):
        schemas.get("QuizDecision", {}).get("properties", {}).pop(field, None)
    if "role" in message and "enum" in message["role"]:
        message["role"]["enum"] = [r for r in message["role"]["enum"] if r != "tool"]
    policy = schemas.get("PolicyUpdate", {}).get("properties", {})
    if "yaml" in policy:  # PUT /v1/policy: random text is almost never a valid policy (that is a 400)
        policy["yaml"] = {"type": "string", "enum": ["name: schemathesis\n"]}
    for item in raw_schema.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") == "name" and KB:
                    parameter["schema"] = {"type": "string", "enum": [KB]}
