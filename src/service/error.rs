//! The errors the service layer returns to agents, workers and operators.
//!
//! Every variant carries a message written for the caller: what was wrong and what to do next.
//! Transports map them to their own shapes (an HTTP status and JSON body, an MCP tool error).

use crate::domain::money::Cents;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request itself is malformed or out of range.
    #[error("{0}")]
    InvalidInput(String),
    /// No key, or a key that is unknown or revoked.
    #[error("{0}")]
    Unauthorized(String),
    /// The key is valid but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing with that id is visible to the caller.
    #[error("{0}")]
    NotFound(String),
    /// The thing exists but is in a state that does not allow this.
    #[error("{0}")]
    Conflict(String),
    /// The agent's available balance does not cover the hold.
    #[error(
        "insufficient funds: this needs ${needed} but the available balance is ${available}; \
         add funds or lower the budget"
    )]
    InsufficientFunds { needed: Cents, available: Cents },
    /// The idempotency key was used before for a different request.
    #[error(
        "idempotency key {key:?} was already used for a different request; \
         use a new key for new work"
    )]
    IdempotencyMismatch { key: String },
    /// A fault on our side; the details are in the server log.
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

impl ServiceError {
    /// A stable machine-readable code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::InvalidInput(_) => "invalid_input",
            ServiceError::Unauthorized(_) => "unauthorized",
            ServiceError::Forbidden(_) => "forbidden",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::InsufficientFunds { .. } => "insufficient_funds",
            ServiceError::IdempotencyMismatch { .. } => "idempotency_key_reused",
            ServiceError::Internal(_) => "internal",
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ServiceError::InvalidInput(message.into())
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        ServiceError::Conflict(message.into())
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ServiceError::NotFound(message.into())
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        ServiceError::Internal(anyhow::Error::new(error).context("database error"))
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
