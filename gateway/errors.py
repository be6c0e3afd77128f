"""One neutral error hierarchy; each door renders it in its own format.

Parse renders ``{code, error}``, FHIR an OperationOutcome, OAuth an error JSON and
HL7 an ACK with ERR. Raise sites stay short: ``raise NotFound()``.
"""

from __future__ import annotations

from enum import IntEnum


class ParseCode(IntEnum):
    """Parse Server error codes (parse-sdk ``ParseError``), as Parse Server 9 answers them."""

    OTHER_CAUSE = -1
    INTERNAL_SERVER_ERROR = 1
    CONNECTION_FAILED = 100
    OBJECT_NOT_FOUND = 101
    INVALID_QUERY = 102
    INVALID_CLASS_NAME = 103
    MISSING_OBJECT_ID = 104
    INVALID_KEY_NAME = 105
    INVALID_POINTER = 106
    INVALID_JSON = 107
    COMMAND_UNAVAILABLE = 108
    NOT_INITIALIZED = 109
    INCORRECT_TYPE = 111
    INVALID_CHANNEL_NAME = 112
    PUSH_MISCONFIGURED = 115
    OBJECT_TOO_LARGE = 116
    OPERATION_FORBIDDEN = 119
    CACHE_MISS = 120
    INVALID_NESTED_KEY = 121
    INVALID_FILE_NAME = 122
    INVALID_ACL = 123
    TIMEOUT = 124
    INVALID_EMAIL_ADDRESS = 125
    DUPLICATE_VALUE = 137
    INVALID_ROLE_NAME = 139
    EXCEEDED_QUOTA = 140
    SCRIPT_FAILED = 141
    VALIDATION_ERROR = 142
    FILE_DELETE_ERROR = 153
    REQUEST_LIMIT_EXCEEDED = 155
    INVALID_EVENT_NAME = 160
    INVALID_VALUE = 162
    USERNAME_MISSING = 200
    PASSWORD_MISSING = 201
    USERNAME_TAKEN = 202
    EMAIL_TAKEN = 203
    EMAIL_MISSING = 204
    EMAIL_NOT_FOUND = 205
    SESSION_MISSING = 206
    MUST_CREATE_USER_THROUGH_SIGNUP = 207
    ACCOUNT_ALREADY_LINKED = 208
    INVALID_SESSION_TOKEN = 209


class GatewayError(Exception):
    """Base of every error a door renders. ``parse_code`` picks the Parse rendering."""

    status_code: int = 400
    parse_code: ParseCode = ParseCode.OTHER_CAUSE
    fhir_code: str = "processing"
    """OperationOutcome ``issue.code`` (FHIR value set issue-type)."""

    def __init__(
        self,
        message: str | None = None,
        *,
        parse_code: ParseCode | None = None,
        expression: str | None = None,
    ) -> None:
        self.message = message or self.default_message()
        if parse_code is not None:
            self.parse_code = parse_code
        self.expression = expression
        super().__init__(self.message)

    def default_message(self) -> str:
        return "Request failed."


class NotFound(GatewayError):
    """Missing or hidden: the two are indistinguishable by design ("denied looks like absent")."""

    status_code = 404
    parse_code = ParseCode.OBJECT_NOT_FOUND
    fhir_code = "not-found"

    def default_message(self) -> str:
        return "Object not found."


class Forbidden(GatewayError):
    status_code = 403
    parse_code = ParseCode.OPERATION_FORBIDDEN
    fhir_code = "forbidden"

    def default_message(self) -> str:
        return "Permission denied"


class Unauthorized(GatewayError):
    """The request carries no usable credentials (missing app id, bad token)."""

    status_code = 401
    parse_code = ParseCode.INVALID_SESSION_TOKEN
    fhir_code = "login"

    def default_message(self) -> str:
        return "unauthorized"


class Invalid(GatewayError):
    status_code = 400
    parse_code = ParseCode.INVALID_JSON
    fhir_code = "invalid"

    def default_message(self) -> str:
        return "Invalid request."


class Conflict(GatewayError):
    status_code = 409
    parse_code = ParseCode.DUPLICATE_VALUE
    fhir_code = "conflict"

    def default_message(self) -> str:
        return "A duplicate value for a field with unique values was provided"


class PreconditionFailed(GatewayError):
    status_code = 412
    parse_code = ParseCode.OPERATION_FORBIDDEN
    fhir_code = "conflict"


class TooLarge(GatewayError):
    status_code = 413
    parse_code = ParseCode.OBJECT_TOO_LARGE
    fhir_code = "too-costly"

    def default_message(self) -> str:
        return "Request body is too large."


class ScriptFailed(GatewayError):
    """A Cloud function's own check failed (Parse 141)."""

    parse_code = ParseCode.SCRIPT_FAILED
    fhir_code = "processing"


class Unavailable(GatewayError):
    status_code = 503
    parse_code = ParseCode.INTERNAL_SERVER_ERROR
    fhir_code = "transient"

    def default_message(self) -> str:
        return "Service temporarily unavailable."
