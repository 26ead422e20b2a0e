//! The control API server (axum). Authentication first: a request without the right bearer token
//! gets 401 and changes nothing. Handlers are thin: they parse, call [`Host`], and map typed errors
//! to status codes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;

use super::{
    DeployQuery, LogEntry, LogsQuery, RollbackRequest, SpawnRequest, SpawnResponse, Status,
};
use crate::error::{DeployError, SendError, SpawnError};
use crate::{DeployOptions, Host, Pid};

/// The header that carries a deploy's policy, as JSON (see `policy.rs` for the fields).
pub const POLICY_HEADER: &str = "hotswap-policy";

/// Log entries kept for `GET /v1/logs`.
const LOG_CAPACITY: usize = 10_000;

/// What every handler shares.
pub struct ApiState {
    host: Host,
    token_hash: [u8; 32],
    logs: LogBook,
    max_upload: usize,
}

impl ApiState {
    /// Wraps `host` for the API, starting the log book that records its events.
    /// `max_upload` caps request bodies, in bytes.
    pub fn new(host: Host, token: &str, max_upload: usize) -> Arc<Self> {
        let logs = LogBook::start(&host);
        Arc::new(Self {
            host,
            token_hash: Sha256::digest(token.as_bytes()).into(),
            logs,
            max_upload,
        })
    }
}

/// The control API's routes, with authentication and the state's upload cap.
pub fn router(state: Arc<ApiState>) -> Router {
    let max_upload = state.max_upload;
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/modules", get(modules))
        .route("/v1/modules/{name}", post(deploy))
        .route("/v1/modules/{name}/rollback", post(rollback))
        .route("/v1/processes", get(processes).post(spawn))
        .route("/v1/processes/{pid}", delete(stop))
        .route("/v1/processes/{pid}/messages", post(send))
        .route("/v1/logs", get(logs))
        .layer(DefaultBodyLimit::max(max_upload))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

async fn authenticate(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| Sha256::digest(t.trim().as_bytes()));
    // Comparing digests keeps the comparison independent of where the strings differ.
    let refusal = match given {
        None => {
            "missing `Authorization: Bearer <token>`; the token is in the data dir's `token` file"
        }
        Some(digest) if digest.as_slice() != state.token_hash => "wrong token",
        Some(_) => {
            let declared = request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
            let Some(declared) = declared.filter(|&n| n > state.max_upload) else {
                return next.run(request).await;
            };
            discard(request.into_body(), declared).await;
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the upload is {declared} bytes, over this host's cap of {} bytes; start \
                     `hotswap serve` with a larger `--max-upload-mib`",
                    state.max_upload
                ),
            )
            .into_response();
        }
    };
    discard(request.into_body(), state.max_upload).await;
    ApiError::new(StatusCode::UNAUTHORIZED, refusal).into_response()
}

/// Reads and drops up to `max` bytes of what the client is still sending (for at most 10 s), so
/// that it receives the refusal instead of a connection reset in the middle of its upload.
async fn discard(body: Body, max: usize) {
    let mut stream = body.into_data_stream();
    let drain = async {
        let mut read = 0;
        while read <= max
            && let Some(Ok(chunk)) = stream.next().await
        {
            read += chunk.len();
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
}

/// An error answer: `{"error": "..."}` with a status.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        let status = match e {
            DeployError::UnknownModule(_) | DeployError::UnknownVersion { .. } => {
                StatusCode::NOT_FOUND
            }
            DeployError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self::new(status, e.to_string())
    }
}

impl From<SendError> for ApiError {
    fn from(e: SendError) -> Self {
        let status = match e {
            SendError::NoSuchProcess(_) => StatusCode::NOT_FOUND,
            SendError::MailboxFull(_) => StatusCode::TOO_MANY_REQUESTS,
        };
        Self::new(status, e.to_string())
    }
}

impl From<SpawnError> for ApiError {
    fn from(e: SpawnError) -> Self {
        let status = match e {
            SpawnError::UnknownModule(_) => StatusCode::NOT_FOUND,
            SpawnError::InitFailed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self::new(status, e.to_string())
    }
}

fn pid(raw: &str) -> Result<Pid, ApiError> {
    raw.parse()
        .map_err(|e: String| ApiError::new(StatusCode::BAD_REQUEST, e))
}

async fn status(State(s): State<Arc<ApiState>>) -> Json<Status> {
    let (compiled, loaded_from_disk) = s.host.compile_stats();
    Json(Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        processes: s.host.processes().await.len(),
        modules: s.host.modules().await.len(),
        compiled,
        loaded_from_disk,
    })
}

async fn modules(State(s): State<Arc<ApiState>>) -> impl IntoResponse {
    Json(s.host.modules().await)
}

async fn deploy(
    State(s): State<Arc<ApiState>>,
    Path(name): Path<String>,
    Query(q): Query<DeployQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`{name}` is not a module name: use letters, digits, `-`, `_`, `.`"),
        ));
    }
    let policy = match headers.get(POLICY_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| serde_json::from_str(v).ok())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("the `{POLICY_HEADER}` header is not a JSON policy"),
                    )
                })?,
        ),
    };
    let options = DeployOptions {
        dry_run: q.dry_run,
        atomic: q.atomic,
        policy,
    };
    // In its own task: a client that hangs up mid-deploy must not cut a swap (or the write of the
    // version history) in half.
    let host = s.host.clone();
    let deploy = tokio::spawn(async move { host.deploy_with(&name, &body, options).await });
    Ok(Json(deploy.await.map_err(|e| internal(&e))??))
}

fn internal(e: &tokio::task::JoinError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the deploy task failed: {e}"),
    )
}

async fn rollback(
    State(s): State<Arc<ApiState>>,
    Path(name): Path<String>,
    body: Option<Json<RollbackRequest>>,
) -> Result<impl IntoResponse, ApiError> {
    let to = body.and_then(|Json(r)| r.to);
    let host = s.host.clone();
    let rollback = tokio::spawn(async move { host.rollback(&name, to).await });
    Ok(Json(rollback.await.map_err(|e| internal(&e))??))
}

async fn processes(State(s): State<Arc<ApiState>>) -> impl IntoResponse {
    Json(s.host.processes().await)
}

async fn spawn(
    State(s): State<Arc<ApiState>>,
    Json(req): Json<SpawnRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let pid = s.host.spawn(&req.module, req.args.as_bytes()).await?;
    Ok((StatusCode::CREATED, Json(SpawnResponse { pid })))
}

async fn send(
    State(s): State<Arc<ApiState>>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    s.host.send(pid(&raw)?, &body)?;
    Ok(StatusCode::ACCEPTED)
}

async fn stop(
    State(s): State<Arc<ApiState>>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.host.stop(pid(&raw)?)?;
    Ok(StatusCode::ACCEPTED)
}

async fn logs(State(s): State<Arc<ApiState>>, Query(q): Query<LogsQuery>) -> Response {
    let wanted = move |e: &LogEntry| q.pid.is_none_or(|p| e.event.pid() == Pid(p));
    // Subscribe before reading the book so nothing falls between the two.
    let live = s.logs.tx.subscribe();
    let past: Vec<LogEntry> = s.logs.snapshot().into_iter().filter(&wanted).collect();
    let last = past.last().map_or(0, |e| e.seq);
    let mut body = String::new();
    for entry in &past {
        body.push_str(&ndjson(entry));
    }
    if !q.follow {
        return ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response();
    }
    let head = tokio_stream::once(Ok::<_, std::convert::Infallible>(body));
    let tail = BroadcastStream::new(live).filter_map(move |e| match e {
        Ok(entry) if entry.seq > last && wanted(&entry) => Some(Ok(ndjson(&entry))),
        _ => None,
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(head.chain(tail)),
    )
        .into_response()
}

fn ndjson(entry: &LogEntry) -> String {
    let mut line = serde_json::to_string(entry).unwrap_or_default();
    line.push('\n');
    line
}

/// The last [`LOG_CAPACITY`] host events, numbered, plus a channel of new ones for followers.
struct LogBook {
    entries: Arc<Mutex<VecDeque<LogEntry>>>,
    tx: broadcast::Sender<LogEntry>,
}

impl LogBook {
    fn start(host: &Host) -> Self {
        let entries = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_CAPACITY)));
        let (tx, _) = broadcast::channel(4096);
        let mut events = host.subscribe();
        let (book, followers) = (entries.clone(), tx.clone());
        tokio::spawn(async move {
            let seq = AtomicU64::new(0);
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("log book fell behind and skipped {n} events");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let entry = LogEntry {
                    seq: seq.fetch_add(1, Ordering::Relaxed) + 1,
                    time_ms: now_ms(),
                    event,
                };
                {
                    let mut book = book.lock().unwrap_or_else(|p| p.into_inner());
                    if book.len() == LOG_CAPACITY {
                        book.pop_front();
                    }
                    book.push_back(entry.clone());
                }
                let _ = followers.send(entry);
            }
        });
        Self { entries, tx }
    }

    fn snapshot(&self) -> Vec<LogEntry> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
