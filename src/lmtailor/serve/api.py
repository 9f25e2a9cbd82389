"""The HTTP API's request and response shapes, and its errors.

Routes and shapes follow what users of embedding/classification servers already have: `/v1/embeddings` is
OpenAI's (as infinity and text-embeddings-inference also serve it), `/v1/classify` takes infinity's `{"model",
"input"}`, and every error is OpenAI's `{"error": {"message", "type", "param", "code"}}`, with the HTTP status
saying whose fault it was. FastAPI turns these pydantic models into the OpenAPI page at /docs.
"""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictStr

T = TypeVar("T")


class Request(BaseModel):
    """Texts for one model. `input` is one text or a list of texts; `model` may be left out when the server holds
    only one model that answers the route."""

    model_config = ConfigDict(extra="forbid")

    model: StrictStr | None = Field(None, description="Name of a served model (GET /v1/models lists them).")
    input: StrictStr | list[StrictStr] = Field(description="A text, or a list of texts.")

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class ClassifyRequest(Request):
    top_k: int | None = Field(None, ge=1, description="Labels with scores to return per text (default: the server's).")


class EmbeddingsRequest(Request):
    encoding_format: Literal["float"] = Field("float", description="Only float (OpenAI's default) is served.")
    user: StrictStr | None = Field(None, description="Accepted for OpenAI compatibility; unused.")


class LabelScore(BaseModel):
    label: str
    score: float


class Classification(BaseModel):
    index: int
    label: str
    score: float
    scores: list[LabelScore]


class Entity(BaseModel):
    start: int = Field(description="Character offset of the first character, in the text as sent.")
    end: int = Field(description="Character offset after the last character.")
    type: str
    text: str
    score: float = Field(description="Mean probability of the entity's tags over its units.")


class Entities(BaseModel):
    index: int
    entities: list[Entity]


class Token(BaseModel):
    id: int
    token: str
    start: int
    end: int
    special: bool


class Tokens(BaseModel):
    index: int
    count: int
    tokens: list[Token]


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float]


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class ListResponse(BaseModel, Generic[T]):
    """Every /v1 answer: OpenAI's list shape, one item per text in the request's order."""

    object: Literal["list"] = "list"
    model: str
    data: list[T]


class EmbeddingsResponse(ListResponse[Embedding]):
    usage: Usage


class ApiError(Exception):
    """An answer other than 200: status, message, and the request field (`param`) or limit it is about."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.headers = status, message, param, code, headers

    def body(self) -> dict:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        if self.status in (503, 504):
            kind = "overloaded_error" if self.status == 503 else "timeout_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}
