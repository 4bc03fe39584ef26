//! The HTTP side: the page, the JSON API, SSE, files — behind one guard that checks the Host
//! header (DNS rebinding), the Origin of state-changing requests (CSRF) and the access token.

use super::params::{self, JobRequest};
use super::store::{Event, State as JobState};
use super::App;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::broadcast;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Request bodies are small JSON; anything larger is refused before it is read.
const BODY_LIMIT: usize = 64 * 1024;

pub struct Security {
    /// Names the Host header may carry (lowercase; IPv6 in brackets).
    pub hosts: Vec<String>,
    pub port: u16,
    pub token: Option<String>,
}

impl Security {
    fn host_ok(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) if !n.is_empty() && (!n.contains(':') || n.ends_with(']')) => (n.to_string(), p.parse::<u16>().ok()),
            _ => (host.clone(), Some(80)),
        };
        port == Some(self.port) && self.hosts.contains(&name)
    }

    fn origin_ok(&self, origin: &str) -> bool {
        match origin.strip_prefix("http://") {
            Some(rest) => self.host_ok(rest.trim_end_matches('/')),
            None => false,
        }
    }
}

pub struct ApiError(StatusCode, String, Value);

impl ApiError {
    fn new(code: StatusCode, msg: impl Into<String>) -> ApiError {
        ApiError(code, msg.into(), Value::Null)
    }
    fn bad(msg: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, msg)
    }
    fn internal(msg: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.1 });
        if let (Some(m), Value::Object(extra)) = (body.as_object_mut(), self.2) {
            m.extend(extra);
        }
        (self.0, Json(body)).into_response()
    }
}

type ApiResult = std::result::Result<Response, ApiError>;

pub fn router(app: Arc<App>, security: Security) -> Router {
    Router::new()
        .route("/", get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }))
        .route("/app.js", get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }))
        .route("/app.css", get(|| async { page(APP_CSS, "text/css; charset=utf-8") }))
        .route("/api/info", get(info))
        .route("/api/models", get(models))
        .route("/api/queue", get(queue).post(set_queue))
        .route("/api/jobs", get(list).post(submit))
        .route("/api/jobs/{id}", get(get_job))
        .route("/api/jobs/{id}/cancel", post(cancel))
        .route("/api/jobs/{id}/move", post(move_job))
        .route("/api/jobs/{id}/duplicate", post(duplicate))
        .route("/api/jobs/{id}/retry", post(retry))
        .route("/api/jobs/{id}/files/{name}", get(file))
        .route("/api/events", get(events))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such page or API endpoint (see README: t2v serve)") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(Arc::new(security), guard))
        .with_state(app)
}

fn page(text: &'static str, ctype: &'static str) -> Response {
    ([(header::CONTENT_TYPE, ctype), (header::CACHE_CONTROL, "no-cache")], text).into_response()
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn guard(State(sec): State<Arc<Security>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !sec.host_ok(host) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!("Host '{host}' is not this server (refused as DNS rebinding protection); open http://localhost:{}/", sec.port),
        )
        .into_response();
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let o = origin.to_str().unwrap_or("?");
            if !sec.origin_ok(o) {
                return ApiError::new(StatusCode::FORBIDDEN, format!("cross-site request refused (Origin {o})")).into_response();
            }
        }
        if headers.get("sec-fetch-site").is_some_and(|v| v == "cross-site") {
            return ApiError::new(StatusCode::FORBIDDEN, "cross-site request refused (Sec-Fetch-Site: cross-site)").into_response();
        }
    }
    let mut set_cookie = None;
    if let Some(token) = &sec.token {
        let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix("t2v_token="));
        let query = req.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
        let ok = |t: Option<&str>| t.is_some_and(|t| constant_time_eq(t, token));
        if ok(query) {
            set_cookie = Some(format!("t2v_token={token}; HttpOnly; SameSite=Strict; Path=/"));
        } else if !ok(bearer) && !ok(cookie) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this server needs its access token: open the URL it printed (…/?token=…) or send 'Authorization: Bearer TOKEN'",
            )
            .into_response();
        }
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, c);
    }
    resp
}

fn ok_json(v: impl serde::Serialize) -> ApiResult {
    Ok(Json(v).into_response())
}

/// A JSON body, with a message saying what is wrong with it (axum's own rejection is terse).
fn parse_body<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &Bytes, empty_ok: bool) -> std::result::Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if empty_ok { Ok(None) } else { Err(ApiError::bad("the request body is empty; send a JSON object")) };
    }
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ctype.starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send the body as JSON (Content-Type: application/json), not '{ctype}'"),
        ));
    }
    serde_json::from_slice(body).map(Some).map_err(|e| ApiError::bad(format!("malformed JSON body: {e}")))
}

fn json_body<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> std::result::Result<T, ApiError> {
    parse_body(headers, body, false)?.ok_or_else(|| ApiError::bad("the request body is empty; send a JSON object"))
}

async fn info(State(app): State<Arc<App>>) -> ApiResult {
    let i = &app.gpu.info;
    ok_json(json!({
        "t2v_version": env!("CARGO_PKG_VERSION"),
        "adapter": i.name,
        "backend": format!("{:?}", i.backend),
        "driver": i.driver,
        "driver_info": i.driver_info,
        "device_memory": app.gpu.memory_capacity,
        "paused": app.paused.load(Ordering::SeqCst),
        "limits": { "max_side": params::MAX_SIDE, "max_frames": params::MAX_FRAMES, "max_steps": params::MAX_STEPS, "max_prompt_bytes": params::MAX_PROMPT_BYTES },
        "schedulers": ["ddim", "dpm++", "euler"],
    }))
}

async fn models(State(app): State<Arc<App>>) -> ApiResult {
    ok_json(json!({ "models": app.models }))
}

fn running_id(app: &App) -> Option<i64> {
    app.running.lock().unwrap_or_else(|p| p.into_inner()).job.as_ref().map(|(id, _)| *id)
}

async fn queue(State(app): State<Arc<App>>) -> ApiResult {
    let q = app.store.queue().map_err(ApiError::internal)?;
    ok_json(json!({ "paused": app.paused.load(Ordering::SeqCst), "queue": q, "running": running_id(&app) }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueChange {
    paused: bool,
}

async fn set_queue(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let c: QueueChange = json_body(&headers, &body)?;
    app.paused.store(c.paused, Ordering::SeqCst);
    app.notify();
    queue(State(app)).await
}

async fn list(State(app): State<Arc<App>>) -> ApiResult {
    // The event id first: a client that lists and then subscribes with `after` misses nothing.
    let last = app.store.last_event_id().map_err(ApiError::internal)?;
    let jobs = app.store.list().map_err(ApiError::internal)?;
    ok_json(json!({ "jobs": jobs, "last_event_id": last, "paused": app.paused.load(Ordering::SeqCst), "running": running_id(&app) }))
}

async fn get_job(State(app): State<Arc<App>>, Path(id): Path<i64>) -> ApiResult {
    match app.store.get(id).map_err(ApiError::internal)? {
        Some(j) => ok_json(j),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no job {id}"))),
    }
}

/// Plans the job and stores it, or refuses it with the plan when it cannot fit.
async fn enqueue(app: &Arc<App>, p: params::JobParams) -> ApiResult {
    let a = app.clone();
    let q = p.clone();
    let plan = tokio::task::spawn_blocking(move || a.plan(&q))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::bad(format!("cannot plan this job: {e}")))?;
    if !plan.fits() {
        let suggestion = format!(
            "use fewer frames (e.g. {}), a smaller size (e.g. {}×{}), or guidance_scale 1",
            (p.num_frames / 2).max(1),
            (p.width / 2 / 8).max(1) * 8,
            (p.height / 2 / 8).max(1) * 8
        );
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("this job does not fit the adapter's memory ({}); {suggestion}", app.gpu.info.name),
            json!({ "plan": plan.report(), "peak_bytes": plan.peak, "capacity_bytes": plan.capacity, "suggestion": suggestion }),
        ));
    }
    let a = app.clone();
    let job = tokio::task::spawn_blocking(move || a.store.insert(&p))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::internal)?;
    app.notify();
    Ok((StatusCode::CREATED, Json(job)).into_response())
}

async fn submit(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let req: JobRequest = json_body(&headers, &body)?;
    let p = params::resolve(req, &app.models).map_err(ApiError::bad)?;
    enqueue(&app, p).await
}

fn job_or_404(app: &App, id: i64) -> std::result::Result<super::store::Job, ApiError> {
    app.store.get(id).map_err(ApiError::internal)?.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no job {id}")))
}

async fn cancel(State(app): State<Arc<App>>, Path(id): Path<i64>) -> ApiResult {
    let job = job_or_404(&app, id)?;
    if let Some(j) = app
        .store
        .transition(id, &[JobState::Queued, JobState::Interrupted], JobState::Cancelled, "finished = strftime('%s','now')")
        .map_err(ApiError::internal)?
    {
        return ok_json(j);
    }
    if let Some((rid, flag)) = &app.running.lock().unwrap_or_else(|p| p.into_inner()).job {
        if *rid == id {
            // The worker stops before the next step or decoded frame.
            flag.store(true, Ordering::SeqCst);
            return Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "state": "running", "cancel_requested": true }))).into_response());
        }
    }
    Err(ApiError::new(StatusCode::CONFLICT, format!("job {id} is {} and cannot be cancelled", job.state.name())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveTo {
    /// Place in the queue, 0 = next.
    index: usize,
}

async fn move_job(State(app): State<Arc<App>>, Path(id): Path<i64>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let m: MoveTo = json_body(&headers, &body)?;
    job_or_404(&app, id)?;
    app.store.move_to(id, m.index).map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
    ok_json(json!({ "queue": app.store.queue().map_err(ApiError::internal)? }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Duplicate {
    /// A number, or "random" for a new random seed (vary seed); absent: the same seed (rerun exactly).
    seed: Option<Value>,
}

async fn duplicate(State(app): State<Arc<App>>, Path(id): Path<i64>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let d = parse_body::<Duplicate>(&headers, &body, true)?.unwrap_or_default();
    let mut p = job_or_404(&app, id)?.params;
    match d.seed {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "random" => {
            p.seed = params::random_seed();
            p.random_seed = true;
        }
        Some(v) => match v.as_u64() {
            Some(s) => {
                p.seed = s;
                p.random_seed = false;
            }
            None => return Err(ApiError::bad(format!("seed: {v} is neither a non-negative integer nor \"random\""))),
        },
    }
    enqueue(&app, p).await
}

async fn retry(State(app): State<Arc<App>>, Path(id): Path<i64>) -> ApiResult {
    let job = job_or_404(&app, id)?;
    match app
        .store
        .transition(id, &[JobState::Failed, JobState::Cancelled, JobState::Interrupted], JobState::Queued, "error = NULL, finished = NULL")
        .map_err(ApiError::internal)?
    {
        Some(j) => {
            app.notify();
            ok_json(j)
        }
        None => Err(ApiError::new(StatusCode::CONFLICT, format!("job {id} is {}; only failed, cancelled or interrupted jobs are retried", job.state.name()))),
    }
}

#[derive(Deserialize)]
struct FileQuery {
    download: Option<String>,
}

async fn file(State(app): State<Arc<App>>, Path((id, name)): Path<(i64, String)>, Query(q): Query<FileQuery>, headers: HeaderMap) -> ApiResult {
    // A fixed list of names: nothing from the URL reaches the file system but the job number.
    let ctype = match name.as_str() {
        "video.mp4" => "video/mp4",
        "video.gif" => "image/gif",
        "job.json" => "application/json",
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no file '{name}' (video.mp4, video.gif, job.json)"))),
    };
    let job = job_or_404(&app, id)?;
    let bytes = tokio::fs::read(app.job_dir(id).join(&name))
        .await
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, format!("job {id} ({}) has no {name}", job.state.name())))?;
    let len = bytes.len();
    let mut resp = axum::http::Response::builder().header(header::CONTENT_TYPE, ctype).header(header::ACCEPT_RANGES, "bytes");
    if q.download.is_some() {
        let ext = name.rsplit('.').next().unwrap_or("bin");
        resp = resp.header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"t2v-{id}-seed{}.{ext}\"", job.params.seed));
    }
    // One byte range (what video elements ask for when seeking).
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|r| r.strip_prefix("bytes=")).and_then(|r| {
        let (a, b) = r.split_once('-')?;
        let start: usize = if a.is_empty() { len.saturating_sub(b.parse().ok()?) } else { a.parse().ok()? };
        let end: usize = if a.is_empty() || b.is_empty() { len.checked_sub(1)? } else { b.parse::<usize>().ok()?.min(len.checked_sub(1)?) };
        (start <= end).then_some((start, end))
    });
    let out = match range {
        Some((s, e)) => resp
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {s}-{e}/{len}"))
            .body(Body::from(bytes[s..=e].to_vec())),
        None => resp.body(Body::from(bytes)),
    };
    out.map_err(|e| ApiError::internal(e.to_string()))
}

#[derive(Deserialize)]
struct EventsQuery {
    /// Replay events after this id (what `Last-Event-ID` does on reconnect).
    after: Option<i64>,
    /// Only this job's events.
    job: Option<i64>,
}

fn sse(e: &Event) -> SseEvent {
    SseEvent::default().id(e.id.to_string()).event(e.kind.clone()).data(e.data.to_string())
}

struct Feed {
    backlog: VecDeque<Event>,
    rx: broadcast::Receiver<Event>,
    last: i64,
    resync: bool,
    job: Option<i64>,
}

/// Server-Sent Events: `job` (a job's new state, the whole job), `progress` (phase, step i/N,
/// s/step, ETA, decode k/F), `queue` (new order), `resync` (the client fell too far behind:
/// reload the list). Ids are the store's event ids, so `Last-Event-ID` resumes exactly.
async fn events(State(app): State<Arc<App>>, headers: HeaderMap, Query(q): Query<EventsQuery>) -> ApiResult {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<i64>().ok())
        .or(q.after);
    // Subscribe before reading the backlog: nothing falls between the two.
    let rx = app.store.events.subscribe();
    let (backlog, resync, last) = match after {
        Some(a) => match app.store.events_after(a).map_err(ApiError::internal)? {
            Some(ev) => (ev, false, a),
            None => (Vec::new(), true, app.store.last_event_id().map_err(ApiError::internal)?),
        },
        None => (Vec::new(), false, app.store.last_event_id().map_err(ApiError::internal)?),
    };
    let feed = Feed { backlog: backlog.into(), rx, last, resync, job: q.job };
    let stream = futures_util::stream::unfold(feed, |mut f| async move {
        if f.resync {
            f.resync = false;
            return Some((Ok::<_, Infallible>(SseEvent::default().event("resync").data("{}")), f));
        }
        loop {
            let e = match f.backlog.pop_front() {
                Some(e) => e,
                None => match f.rx.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Some((Ok(SseEvent::default().event("resync").data("{}")), f));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            };
            if e.id <= f.last {
                continue;
            }
            f.last = e.id;
            if f.job.is_some() && e.job != f.job {
                continue;
            }
            return Some((Ok(sse(&e)), f));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}
