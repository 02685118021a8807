"""API errors: one exception per HTTP status, formatted by each service's API."""

from __future__ import annotations


class ApiError(Exception):
    """An error the client caused or must be told about.

    ``kind`` is the service's own name for the error where the API has one
    (Neutron's ``type``, e.g. ``PortNotFound``); ``detail`` goes where the
    API carries one.
    """

    status = 500
    title = "Internal Server Error"

    def __init__(self, message: str | None = None, *, kind: str | None = None,
                 detail: str = "", headers: dict[str, str] | None = None):
        self.message = message or self.default_message()
        self.kind = kind
        self.detail = detail
        self.headers = headers or {}
        super().__init__(self.message)

    def default_message(self) -> str:
        return self.title


class BadRequest(ApiError):
    status = 400
    title = "Bad Request"


class Unauthorized(ApiError):
    status = 401
    title = "Unauthorized"

    def default_message(self) -> str:
        return "The request you have made requires authentication."


class Forbidden(ApiError):
    status = 403
    title = "Forbidden"

    def default_message(self) -> str:
        return "You are not authorized to perform the requested action."


class NotFound(ApiError):
    status = 404
    title = "Not Found"

    def default_message(self) -> str:
        return "The resource could not be found."


class MethodNotAllowed(ApiError):
    status = 405
    title = "Method Not Allowed"


class NotAcceptable(ApiError):
    status = 406
    title = "Not Acceptable"


class Conflict(ApiError):
    status = 409
    title = "Conflict"


class Gone(ApiError):
    status = 410
    title = "Gone"


class LengthRequired(ApiError):
    status = 411
    title = "Length Required"


class PreconditionFailed(ApiError):
    status = 412
    title = "Precondition Failed"


class RequestEntityTooLarge(ApiError):
    status = 413
    title = "Request Entity Too Large"


class UnsupportedMediaType(ApiError):
    status = 415
    title = "Unsupported Media Type"


class RangeNotSatisfiable(ApiError):
    status = 416
    title = "Requested Range Not Satisfiable"


class UnprocessableEntity(ApiError):
    status = 422
    title = "Unprocessable Entity"


class TooManyRequests(ApiError):
    status = 429
    title = "Too Many Requests"


class InternalError(ApiError):
    status = 500
    title = "Internal Server Error"

    def default_message(self) -> str:
        return "An unexpected error prevented the server from fulfilling your request."


class NotImplementedYet(ApiError):
    status = 501
    title = "Not Implemented"


class ServiceUnavailable(ApiError):
    status = 503
    title = "Service Unavailable"


BY_STATUS: dict[int, type[ApiError]] = {
    cls.status: cls
    for cls in [BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable,
                Conflict, Gone, LengthRequired, PreconditionFailed, RequestEntityTooLarge,
                UnsupportedMediaType, RangeNotSatisfiable, UnprocessableEntity,
                TooManyRequests, InternalError, NotImplementedYet, ServiceUnavailable]
}


def for_status(status: int, message: str | None = None, **kw) -> ApiError:
    cls = BY_STATUS.get(status, ApiError)
    err = cls(message, **kw)
    if cls is ApiError:
        err.status = status
    return err
