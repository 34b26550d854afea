//! AMQP 0-9-1 reply codes (spec section 1.1 "constants", RabbitMQ's `amqp_exception` table) and
//! their names. Codes below 500 are channel exceptions (soft errors), 5xx are connection
//! exceptions (hard errors); `is_hard_error` tells them apart. No mapping policy lives here: the
//! broker's `reply_code.rs` decides which code an error gets.

/// 200: the method completed normally (connection.close / channel.close on a clean shutdown).
pub const REPLY_SUCCESS: u16 = 200;
/// 311: the client sent content larger than the server accepts.
pub const CONTENT_TOO_LARGE: u16 = 311;
/// 312: a mandatory message could not be routed (basic.return).
pub const NO_ROUTE: u16 = 312;
/// 313: an immediate message found no consumer (basic.return; RabbitMQ no longer supports
/// `immediate`).
pub const NO_CONSUMERS: u16 = 313;
/// 320: an operator closed the connection.
pub const CONNECTION_FORCED: u16 = 320;
/// 402: an invalid virtual host name.
pub const INVALID_PATH: u16 = 402;
/// 403: access to the resource is refused.
pub const ACCESS_REFUSED: u16 = 403;
/// 404: the named resource does not exist.
pub const NOT_FOUND: u16 = 404;
/// 405: the resource is locked (e.g. an exclusive queue of another connection).
pub const RESOURCE_LOCKED: u16 = 405;
/// 406: a precondition failed (e.g. redeclaring with different arguments).
pub const PRECONDITION_FAILED: u16 = 406;
/// 501: a malformed frame.
pub const FRAME_ERROR: u16 = 501;
/// 502: illegal values in a frame's fields.
pub const SYNTAX_ERROR: u16 = 502;
/// 503: an invalid sequence of frames or an unknown method.
pub const COMMAND_INVALID: u16 = 503;
/// 504: a channel that is not open, or opened twice.
pub const CHANNEL_ERROR: u16 = 504;
/// 505: a frame the receiver did not expect at that point.
pub const UNEXPECTED_FRAME: u16 = 505;
/// 506: the server ran out of a resource.
pub const RESOURCE_ERROR: u16 = 506;
/// 530: a request the current context does not allow.
pub const NOT_ALLOWED: u16 = 530;
/// 540: functionality the server does not implement.
pub const NOT_IMPLEMENTED: u16 = 540;
/// 541: an internal server error.
pub const INTERNAL_ERROR: u16 = 541;

/// The spec name of a reply code (`"FRAME_ERROR"`), as RabbitMQ prefixes its reply texts.
pub fn name(code: u16) -> Option<&'static str> {
    Some(match code {
        REPLY_SUCCESS => "REPLY_SUCCESS",
        CONTENT_TOO_LARGE => "CONTENT_TOO_LARGE",
        NO_ROUTE => "NO_ROUTE",
        NO_CONSUMERS => "NO_CONSUMERS",
        CONNECTION_FORCED => "CONNECTION_FORCED",
        INVALID_PATH => "INVALID_PATH",
        ACCESS_REFUSED => "ACCESS_REFUSED",
        NOT_FOUND => "NOT_FOUND",
        RESOURCE_LOCKED => "RESOURCE_LOCKED",
        PRECONDITION_FAILED => "PRECONDITION_FAILED",
        FRAME_ERROR => "FRAME_ERROR",
        SYNTAX_ERROR => "SYNTAX_ERROR",
        COMMAND_INVALID => "COMMAND_INVALID",
        CHANNEL_ERROR => "CHANNEL_ERROR",
        UNEXPECTED_FRAME => "UNEXPECTED_FRAME",
        RESOURCE_ERROR => "RESOURCE_ERROR",
        NOT_ALLOWED => "NOT_ALLOWED",
        NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
        INTERNAL_ERROR => "INTERNAL_ERROR",
        _ => return None,
    })
}

/// True for codes that close the whole connection (spec: "hard errors"); CONNECTION_FORCED and
/// INVALID_PATH are connection-level too although below 500.
pub fn is_hard_error(code: u16) -> bool {
    matches!(code, CONNECTION_FORCED | INVALID_PATH) || code >= 500
}
