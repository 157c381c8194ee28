//! Idempotency keys: the first request under a key wins and is remembered with a hash of its
//! arguments, in the same transaction as the work it did. A retry with the same arguments gets
//! the first result back; the same key with other arguments is refused.

use sqlx::AnyConnection;

use super::error::{ServiceError, ServiceResult};

/// What a key lookup decided.
pub(super) enum Claim {
    /// The key is new; it is now reserved for this request and this resource.
    Fresh,
    /// The key was used before, for the same request, about this resource.
    Replay(String),
}

/// Reserves `key` for this request inside the caller's transaction, or reports the earlier
/// use. On PostgreSQL a concurrent request with the same key waits on the unique key until
/// the first commits, then sees its row.
pub(super) async fn claim(
    conn: &mut AnyConnection,
    owner: &str,
    key: &str,
    operation: &str,
    request_hash: &str,
    resource_id: &str,
    now_ms: i64,
) -> ServiceResult<Claim> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (owner_id, key, operation, request_hash, resource_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (owner_id, key) DO NOTHING",
    )
    .bind(owner)
    .bind(key)
    .bind(operation)
    .bind(request_hash)
    .bind(resource_id)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let (stored_operation, stored_hash, stored_resource): (String, String, String) =
        sqlx::query_as(
            "SELECT operation, request_hash, resource_id FROM idempotency_keys \
         WHERE owner_id = $1 AND key = $2",
        )
        .bind(owner)
        .bind(key)
        .fetch_one(conn)
        .await?;
    if stored_operation == operation && stored_hash == request_hash {
        Ok(Claim::Replay(stored_resource))
    } else {
        Err(ServiceError::IdempotencyMismatch {
            key: key.to_owned(),
        })
    }
}
