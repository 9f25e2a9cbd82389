"""The FastAPI application of `lmtailor serve`: routes, limits, authentication, metrics and the models' lifetime.

Why FastAPI + uvicorn: request validation from pydantic models (the same library as every stage's config), an
OpenAPI page for free, and uvicorn's supervisor for several worker processes with graceful shutdown; the serving
projects of this field (infinity, vLLM's API server, TEI's Python clients) use the same pair. Metrics come from
prometheus-client (`lmtailor.serve.metrics`).

Each worker loads its models before it accepts a connection (uvicorn runs the lifespan first), so a port that
answers has its models ready and /health says which. Inference runs on one thread per worker, fed by each model's
dynamic batcher; everything else (parsing, tokenising for /v1/tokenize) stays off that thread.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lmtailor import __version__
from lmtailor.errors import ConfigError
from lmtailor.serve import api
from lmtailor.serve.batcher import Batcher, Overloaded
from lmtailor.serve.config import ServeOptions
from lmtailor.serve.engine import ServedModel, default_threads, load_model
from lmtailor.serve.metrics import Metrics

log = logging.getLogger(__name__)

CONFIG_ENV = "LMTAILOR_SERVE_CONFIG"  # how `lmtailor serve --workers N` hands its settings to each worker process
ROUTE_KINDS = {"/v1/classify": ("cls",), "/v1/entities": ("ner",), "/v1/embeddings": ("embed",),
               "/v1/tokenize": ("cls", "ner", "embed")}  # fmt: skip
KIND_ROUTE = {"cls": "/v1/classify", "ner": "/v1/entities", "embed": "/v1/embeddings"}
RETRY_AFTER_S = "1"


class State:
    """What a worker holds: its models, their batchers, the inference thread and the metrics."""

    def __init__(self, options: ServeOptions, specs: dict[str, Path]) -> None:
        self.options, self.specs = options, specs
        self.models: dict[str, ServedModel] = {}
        self.batchers: dict[str, Batcher] = {}
        self.metrics = Metrics()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="lmtailor-infer")
        self.api_key = read_api_key(options.api_key_file) if options.api_key_file else None
        self.started = time.time()

    def load(self) -> None:
        import torch

        threads = self.options.threads or default_threads(self.options.workers)
        torch.set_num_threads(threads)
        for name, folder in self.specs.items():
            self.models[name] = load_model(name, folder, self.options.provider, threads)

    def start_batchers(self) -> None:
        o = self.options
        for name, model in self.models.items():
            infer = partial(model.infer, batch_size=min(o.forward_batch, o.max_batch))
            batcher = Batcher(infer, self.executor, o.max_batch, o.max_wait_ms / 1000, o.max_queue,
                              self.metrics.observer(name))  # fmt: skip
            batcher.start()
            self.batchers[name] = batcher


def read_api_key(path: Path) -> bytes:
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"api key file {path} cannot be read ({exc}); pass a UTF-8 file holding the token.") from None
    if len(key) < 16:
        raise ConfigError(f"api key file {path} holds {len(key)} characters; use a token of at least 16.")
    return key.encode("utf-8")


def create_app(options: ServeOptions, specs: dict[str, Path]) -> FastAPI:
    """The application serving `specs` ({name: folder}); models load when the server starts."""
    state = State(options, specs)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.get_running_loop().run_in_executor(state.executor, state.load)
        state.start_batchers()
        log.info("serving %s", ", ".join(f"{n} ({m.kind})" for n, m in state.models.items()))
        yield
        for batcher in state.batchers.values():
            await batcher.stop()
        state.executor.shutdown(wait=True)

    app = FastAPI(title="lmtailor", version=__version__, lifespan=lifespan,
                  description="Small domain models: classification, entities, embeddings, tokens.")  # fmt: skip
    app.state.lmtailor = state
    _error_handlers(app)
    app.include_router(_v1(state), prefix="/v1", dependencies=[Depends(_auth(state))])

    @app.get("/health", summary="Ready: the models are loaded and answering.")
    async def health() -> dict:
        return {"status": "ready", "models": {n: m.kind for n, m in state.models.items()},
                "uptime_s": round(time.time() - state.started, 1), "version": __version__}  # fmt: skip

    @app.get("/metrics", summary="Prometheus metrics.", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = state.metrics.exposition()
        return Response(body, media_type=content_type)

    return Guard(app, state)


def _auth(state: State):
    async def check(request: Request) -> None:
        if state.api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        # compare_digest: the time taken does not tell an attacker how much of the token was right
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode("utf-8"), state.api_key):
            raise api.ApiError(401, "missing or wrong bearer token: send 'Authorization: Bearer <token>'.",
                               code="unauthorized", headers={"WWW-Authenticate": "Bearer"})  # fmt: skip

    return check


def _v1(state: State) -> APIRouter:
    router = APIRouter()
    o = state.options

    async def answered(req: api.Request, route: str) -> tuple[ServedModel, list[dict]]:
        """The steps every inference route shares: check the texts, pick the model, queue them for its batcher."""
        texts = _texts(state, req)
        model = _pick(state, req.model, route)
        return model, await _answer(state, model, texts)

    @router.post("/classify", response_model=api.ListResponse[api.Classification],
                 summary="Labels with scores for each text.")  # fmt: skip
    async def classify(req: api.ClassifyRequest) -> Response:
        model, results = await answered(req, "/v1/classify")
        top_k = min(req.top_k or o.top_k, len(model.labels))
        data = [{"index": i, "label": r["label"], "score": r["score"], "scores": r["top"][:top_k]}
                for i, r in enumerate(results)]  # fmt: skip
        return _reply(model, data)

    @router.post("/entities", response_model=api.ListResponse[api.Entities], summary="Entities with character offsets.")
    async def entities(req: api.Request) -> Response:
        model, results = await answered(req, "/v1/entities")
        return _reply(model, [{"index": i, "entities": r["entities"]} for i, r in enumerate(results)])

    @router.post("/embeddings", response_model=api.EmbeddingsResponse, summary="OpenAI-compatible embeddings.")
    async def embeddings(req: api.EmbeddingsRequest) -> Response:
        model, results = await answered(req, "/v1/embeddings")
        tokens = sum(r["tokens"] for r in results)
        data = [{"object": "embedding", "index": i, "embedding": r["embedding"]} for i, r in enumerate(results)]
        return _reply(model, data, usage={"prompt_tokens": tokens, "total_tokens": tokens})

    @router.post("/tokenize", response_model=api.ListResponse[api.Tokens],
                 summary="The tokens a model reads, with offsets.")  # fmt: skip
    async def tokenize(req: api.Request) -> Response:
        texts = _texts(state, req)
        model = _pick(state, req.model, "/v1/tokenize")
        results = await asyncio.to_thread(lambda: [model.tokenize(t) for t in texts])  # no batching: no model runs
        return _reply(model, [{"index": i, **r} for i, r in enumerate(results)])

    @router.get("/models", summary="Each served model's card: kind, labels, size, metrics.")
    async def models() -> dict:
        return {"object": "list", "data": [m.card for m in state.models.values()]}

    return router


def _reply(model: ServedModel, data: list[dict], **extra) -> JSONResponse:
    """The answer as built, without FastAPI checking it against the route's response model again: the shapes are
    declared for the OpenAPI page, and the per-request validation cost a third of a small model's served rate."""
    return JSONResponse({"object": "list", "model": model.name, "data": data, **extra})


def _pick(state: State, name: str | None, route: str) -> ServedModel:
    """The model a request names (or the only one that answers `route`); never a path: names are looked up in the
    server's own table."""
    kinds = ROUTE_KINDS[route]
    if name is None:
        fitting = [m for m in state.models.values() if m.kind in kinds]
        if len(fitting) == 1:
            return fitting[0]
        names = ", ".join(m.name for m in fitting) or "none"
        raise api.ApiError(400, f"name the model in 'model': models that answer {route}: {names}.", param="model")
    model = state.models.get(name)
    if model is None:
        raise api.ApiError(404, f"unknown model {name[:100]!r}; this server has {', '.join(state.models)}.",
                           param="model", code="model_not_found")  # fmt: skip
    if model.kind not in kinds:
        raise api.ApiError(400, f"model {name!r} is a {model.kind} model; send it to {KIND_ROUTE[model.kind]}.",
                           param="model")  # fmt: skip
    return model


def _texts(state: State, req: api.Request) -> list[str]:
    """The request's texts, checked against the limits; the error names the field and the limit."""
    texts, o = req.texts(), state.options
    if not texts:
        raise api.ApiError(422, "'input' is an empty list; send at least one text.", param="input")
    if len(texts) > o.max_texts:
        raise api.ApiError(413, f"'input' holds {len(texts)} texts; the limit is {o.max_texts} per request "
                           "(--max-texts).", param="input", code="too_many_texts")  # fmt: skip
    for i, text in enumerate(texts):
        if len(text) > o.max_chars:
            raise api.ApiError(413, f"input[{i}] has {len(text)} characters; the limit is {o.max_chars} "
                               "(--max-chars).", param=f"input[{i}]", code="text_too_long")  # fmt: skip
    return texts


async def _answer(state: State, model: ServedModel, texts: list[str]) -> list[dict]:
    try:
        return await asyncio.wait_for(state.batchers[model.name].submit(texts), state.options.timeout_s)
    except Overloaded:
        raise api.ApiError(
            503,
            f"model {model.name!r} has {state.options.max_queue} texts queued (--max-queue); retry shortly.",
            code="overloaded",
            headers={"Retry-After": RETRY_AFTER_S},
        ) from None
    except TimeoutError:
        raise api.ApiError(504, f"no answer within {state.options.timeout_s:g} s (--timeout-s); the request was "
                           "dropped.", code="timeout", headers={"Retry-After": RETRY_AFTER_S}) from None  # fmt: skip


def _error_handlers(app: FastAPI) -> None:
    def reply(err: api.ApiError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @app.exception_handler(api.ApiError)
    async def on_api_error(request: Request, exc: api.ApiError) -> JSONResponse:
        return reply(exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if errors and errors[0].get("type") == "json_invalid":
            return reply(api.ApiError(400, f"the body is not valid JSON: {errors[0].get('msg', '')}",
                                      code="invalid_json"))  # fmt: skip
        # The deepest error is the most precise ("input[2]: Input should be a valid string" over "input: ...").
        fields = {}
        for err in sorted(errors, key=lambda e: -len(e.get("loc", ()))):
            fields.setdefault(_field(err.get("loc", ())), err.get("msg", "invalid"))
        message = "; ".join(f"{field}: {msg}" for field, msg in list(fields.items())[:5])
        return reply(api.ApiError(422, message, param=next(iter(fields), None), code="invalid_field"))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 400:  # FastAPI's answer to a body it cannot decode (non-UTF-8 bytes)
            message = "the body cannot be read as JSON (is it UTF-8?): " + message
        return reply(api.ApiError(exc.status_code, message, headers=getattr(exc, "headers", None)))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return reply(api.ApiError(500, f"internal error ({type(exc).__name__}); the server goes on serving."))


def _field(loc: tuple) -> str:
    """`input[2]` for pydantic's ("body", "input", "list[str]", 2): the field as the client wrote it, without the
    union member pydantic tried."""
    parts = [p for p in loc if p != "body" and p not in UNION_TAGS]
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or "body"


UNION_TAGS = {"str", "list[str]"}  # how pydantic names the members of `input: str | list[str]` in an error's loc


class Guard:
    """Pure ASGI middleware in front of the app: refuses a body over `max_body_bytes` with a 413 before the app
    reads it (by its Content-Length, or while it streams in without one), and times every request for /metrics."""

    def __init__(self, app: FastAPI, state: State) -> None:
        self.app, self.state = app, state
        self.limit = state.options.max_body_bytes
        self.routes = {"/health", "/metrics", "/v1/models", *ROUTE_KINDS}

    def __getattr__(self, name: str):  # `create_app(...).state`, `.routes` etc. still reach the FastAPI app
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_tracked(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            body = await self._read_body(scope, receive)
            if body is None:
                await self._too_large(send_tracked)
                return

            async def replay():
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send_tracked)
        finally:
            route = scope["path"] if scope["path"] in self.routes else "other"
            self.state.metrics.requests.labels(route, str(status["code"])).inc()
            self.state.metrics.latency.labels(route).observe(time.perf_counter() - t0)

    async def _read_body(self, scope, receive) -> bytes | None:
        """The whole body, or None when it is over the limit (so at most `limit` bytes are ever held)."""
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    async def _too_large(self, send) -> None:
        err = api.ApiError(413, f"the request body is over {self.limit} bytes (--max-body-bytes).",
                           code="body_too_large")  # fmt: skip
        payload = json.dumps(err.body()).encode("utf-8")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})  # fmt: skip
        await send({"type": "http.response.body", "body": payload})


def app_from_env() -> Guard:
    """The app of one worker process of `lmtailor serve --workers N` (uvicorn imports it by name in each worker)."""
    settings = json.loads(os.environ[CONFIG_ENV])
    options = ServeOptions(**settings["options"])
    return create_app(options, {name: Path(p) for name, p in settings["models"].items()})
