//! The job store: one SQLite file (WAL journal) holding every job with its full parameters,
//! state, progress, checkpoint step, outputs and provenance, and the event log that SSE clients
//! replay from (`Last-Event-ID`). Every change is one transaction, committed before anyone is
//! told about it, so a job the API acknowledged survives a restart, a `kill -9` or a closed
//! browser. (WAL with synchronous=NORMAL: a committed transaction survives the process dying;
//! only an OS crash or power loss can take the last few.)

use super::params::JobParams;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
    /// Was running when the server stopped; resumes from its last checkpoint before anything
    /// else runs.
    Interrupted,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
            State::Interrupted => "interrupted",
        }
    }
    fn parse(s: &str) -> State {
        match s {
            "queued" => State::Queued,
            "running" => State::Running,
            "done" => State::Done,
            "cancelled" => State::Cancelled,
            "interrupted" => State::Interrupted,
            _ => State::Failed,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub state: State,
    /// Place in the queue (0 runs next) while queued.
    pub queue_index: Option<usize>,
    pub params: JobParams,
    pub created: f64,
    pub started: Option<f64>,
    pub finished: Option<f64>,
    pub error: Option<String>,
    /// The last progress event's data.
    pub progress: Option<Value>,
    /// The first step a resumed run would start at (the last checkpoint); equal to the step
    /// count once the final latents are saved.
    pub checkpoint_step: Option<i64>,
    /// The step the latest run of this job started from (0: from the noise).
    pub resumed_from: Option<i64>,
    pub attempts: i64,
    pub outputs: Option<Value>,
    pub provenance: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: i64,
    pub job: Option<i64>,
    pub kind: String,
    pub data: Value,
}

pub struct Store {
    db: Mutex<Connection>,
    pub events: broadcast::Sender<Event>,
}

pub type StoreResult<T> = std::result::Result<T, String>;

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  state TEXT NOT NULL,
  position INTEGER NOT NULL,
  params TEXT NOT NULL,
  created REAL NOT NULL,
  started REAL,
  finished REAL,
  error TEXT,
  progress TEXT,
  checkpoint_step INTEGER,
  resumed_from INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  outputs TEXT,
  provenance TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, position);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job INTEGER,
  kind TEXT NOT NULL,
  data TEXT NOT NULL
);
";

/// Events kept for `Last-Event-ID` replay; older ones are pruned (a client further behind
/// gets a `resync` event and reloads the job list).
const KEEP_EVENTS: i64 = 20_000;

impl Store {
    pub fn open(path: &Path) -> StoreResult<Store> {
        let e = |what: &str, err: rusqlite::Error| format!("{}: {what}: {err}", path.display());
        let db = Connection::open(path).map_err(|err| e("opening the job store", err))?;
        db.busy_timeout(std::time::Duration::from_secs(10)).map_err(|err| e("busy_timeout", err))?;
        let mode: String = db.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(|err| e("WAL", err))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("{}: the file system refused SQLite's WAL journal (got {mode})", path.display()));
        }
        db.execute_batch("PRAGMA synchronous=NORMAL;").map_err(|err| e("pragma", err))?;
        db.execute_batch(SCHEMA).map_err(|err| e("creating tables", err))?;
        let (events, _) = broadcast::channel(4096);
        Ok(Store { db: Mutex::new(db), events })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Jobs that were running when the server stopped become `interrupted` (they resume first).
    pub fn recover(&self) -> StoreResult<Vec<i64>> {
        let ids: Vec<i64> = {
            let db = self.lock();
            let mut st = db.prepare("SELECT id FROM jobs WHERE state = 'running'").map_err(sql)?;
            let ids = st.query_map([], |r| r.get(0)).map_err(sql)?.collect::<Result<Vec<i64>, _>>().map_err(sql)?;
            ids
        };
        for &id in &ids {
            self.update(id, "state = 'interrupted', error = 'the server stopped during this run; it resumes from its last checkpoint'", params![])?;
        }
        Ok(ids)
    }

    pub fn insert(&self, p: &JobParams) -> StoreResult<Job> {
        let json = serde_json::to_string(p).map_err(|e| e.to_string())?;
        let id = {
            let mut db = self.lock();
            let tx = db.transaction().map_err(sql)?;
            let pos: i64 = tx.query_row("SELECT COALESCE(MAX(position), 0) + 1 FROM jobs", [], |r| r.get(0)).map_err(sql)?;
            tx.execute("INSERT INTO jobs (state, position, params, created) VALUES ('queued', ?1, ?2, ?3)", params![pos, json, now()])
                .map_err(sql)?;
            let id = tx.last_insert_rowid();
            tx.commit().map_err(sql)?;
            id
        };
        self.job_event(id)
    }

    pub fn get(&self, id: i64) -> StoreResult<Option<Job>> {
        let db = self.lock();
        let job = db
            .query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"), params![id], row_to_job)
            .optional()
            .map_err(sql)?;
        drop(db);
        match job {
            Some(mut j) => {
                if j.state == State::Queued {
                    j.queue_index = self.queue().ok().and_then(|q| q.iter().position(|&i| i == id));
                }
                Ok(Some(j))
            }
            None => Ok(None),
        }
    }

    /// Every job, newest first, with queue places filled in.
    pub fn list(&self) -> StoreResult<Vec<Job>> {
        let queue = self.queue()?;
        let db = self.lock();
        let mut st = db.prepare(&format!("SELECT {COLUMNS} FROM jobs ORDER BY id DESC")).map_err(sql)?;
        let mut jobs = st.query_map([], row_to_job).map_err(sql)?.collect::<Result<Vec<Job>, _>>().map_err(sql)?;
        for j in &mut jobs {
            j.queue_index = queue.iter().position(|&i| i == j.id);
        }
        Ok(jobs)
    }

    /// Queued job ids in run order.
    pub fn queue(&self) -> StoreResult<Vec<i64>> {
        let db = self.lock();
        let mut st = db.prepare("SELECT id FROM jobs WHERE state = 'queued' ORDER BY position, id").map_err(sql)?;
        let ids = st.query_map([], |r| r.get(0)).map_err(sql)?.collect::<Result<Vec<i64>, _>>().map_err(sql)?;
        Ok(ids)
    }

    pub fn last_event_id(&self) -> StoreResult<i64> {
        self.lock().query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0)).map_err(sql)
    }

    /// The next job to run (interrupted ones first, then the queue's head), marked running.
    pub fn claim_next(&self) -> StoreResult<Option<Job>> {
        let id: Option<i64> = {
            let mut db = self.lock();
            let tx = db.transaction().map_err(sql)?;
            let id: Option<i64> = tx
                .query_row(
                    "SELECT id FROM jobs WHERE state IN ('interrupted', 'queued')
                     ORDER BY CASE state WHEN 'interrupted' THEN 0 ELSE 1 END, position, id LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?;
            if let Some(id) = id {
                tx.execute(
                    "UPDATE jobs SET state = 'running', started = ?2, finished = NULL, attempts = attempts + 1 WHERE id = ?1",
                    params![id, now()],
                )
                .map_err(sql)?;
            }
            tx.commit().map_err(sql)?;
            id
        };
        match id {
            Some(id) => self.job_event(id).map(Some),
            None => Ok(None),
        }
    }

    /// Sets columns of one job (an SQL `SET` list with ?2.. parameters; ?1 is the id) and
    /// announces the job's new state.
    pub fn update(&self, id: i64, set: &str, values: &[&dyn rusqlite::ToSql]) -> StoreResult<Job> {
        {
            let db = self.lock();
            let mut all: Vec<&dyn rusqlite::ToSql> = vec![&id];
            all.extend_from_slice(values);
            db.execute(&format!("UPDATE jobs SET {set} WHERE id = ?1"), all.as_slice()).map_err(sql)?;
        }
        self.job_event(id)
    }

    /// Records progress (kept on the job and as an event), without a job event.
    pub fn progress(&self, id: i64, data: Value) -> StoreResult<()> {
        let text = data.to_string();
        self.lock().execute("UPDATE jobs SET progress = ?2 WHERE id = ?1", params![id, text]).map_err(sql)?;
        self.emit(Some(id), "progress", data)
    }

    /// Moves a queued job to place `index` of the queue (0 = next).
    pub fn move_to(&self, id: i64, index: usize) -> StoreResult<()> {
        {
            let mut db = self.lock();
            let tx = db.transaction().map_err(sql)?;
            let mut ids: Vec<i64> = {
                let mut st = tx.prepare("SELECT id FROM jobs WHERE state = 'queued' ORDER BY position, id").map_err(sql)?;
                let v = st.query_map([], |r| r.get(0)).map_err(sql)?.collect::<Result<Vec<i64>, _>>().map_err(sql)?;
                v
            };
            let Some(at) = ids.iter().position(|&i| i == id) else {
                return Err(format!("job {id} is not queued"));
            };
            ids.remove(at);
            ids.insert(index.min(ids.len()), id);
            let base: i64 = tx.query_row("SELECT COALESCE(MAX(position), 0) + 1 FROM jobs", [], |r| r.get(0)).map_err(sql)?;
            for (k, i) in ids.iter().enumerate() {
                tx.execute("UPDATE jobs SET position = ?2 WHERE id = ?1", params![i, base + k as i64]).map_err(sql)?;
            }
            tx.commit().map_err(sql)?;
        }
        self.emit(None, "queue", serde_json::json!({ "queue": self.queue()? }))
    }

    /// Changes state only if the job is in one of `from` (atomically); None if it was not.
    pub fn transition(&self, id: i64, from: &[State], to: State, extra_set: &str) -> StoreResult<Option<Job>> {
        let states = from.iter().map(|s| format!("'{}'", s.name())).collect::<Vec<_>>().join(",");
        let n = {
            let db = self.lock();
            let set = if extra_set.is_empty() { String::new() } else { format!(", {extra_set}") };
            db.execute(
                &format!("UPDATE jobs SET state = ?2{set} WHERE id = ?1 AND state IN ({states})"),
                params![id, to.name()],
            )
            .map_err(sql)?
        };
        if n == 0 {
            return Ok(None);
        }
        if to == State::Queued {
            let db = self.lock();
            db.execute("UPDATE jobs SET position = (SELECT COALESCE(MAX(position), 0) + 1 FROM jobs) WHERE id = ?1", params![id])
                .map_err(sql)?;
        }
        self.job_event(id).map(Some)
    }

    /// Events after `id`, oldest first; None when some of them were already pruned.
    pub fn events_after(&self, id: i64) -> StoreResult<Option<Vec<Event>>> {
        let db = self.lock();
        let oldest: i64 = db.query_row("SELECT COALESCE(MIN(id), 0) FROM events", [], |r| r.get(0)).map_err(sql)?;
        if oldest > id + 1 {
            return Ok(None);
        }
        let mut st = db.prepare("SELECT id, kind, data, job FROM events WHERE id > ?1 ORDER BY id").map_err(sql)?;
        let ev = st
            .query_map(params![id], |r| {
                let data: String = r.get(2)?;
                Ok(Event { id: r.get(0)?, job: r.get(3)?, kind: r.get(1)?, data: serde_json::from_str(&data).unwrap_or(Value::Null) })
            })
            .map_err(sql)?
            .collect::<Result<Vec<Event>, _>>()
            .map_err(sql)?;
        Ok(Some(ev))
    }

    fn job_event(&self, id: i64) -> StoreResult<Job> {
        let job = self.get(id)?.ok_or_else(|| format!("job {id} vanished"))?;
        self.emit(Some(id), "job", serde_json::to_value(&job).map_err(|e| e.to_string())?)?;
        Ok(job)
    }

    fn emit(&self, job: Option<i64>, kind: &str, data: Value) -> StoreResult<()> {
        let text = data.to_string();
        {
            let db = self.lock();
            db.execute("INSERT INTO events (job, kind, data) VALUES (?1, ?2, ?3)", params![job, kind, text]).map_err(sql)?;
            let id = db.last_insert_rowid();
            if id % 1000 == 0 {
                db.execute("DELETE FROM events WHERE id <= ?1", params![id - KEEP_EVENTS]).map_err(sql)?;
            }
            // Sent under the lock, so subscribers get events in id order (they drop any id at
            // or below the last they saw). Nobody listening is fine.
            let _ = self.events.send(Event { id, job, kind: kind.to_string(), data });
        }
        Ok(())
    }
}

fn sql(e: rusqlite::Error) -> String {
    format!("job store: {e}")
}

const COLUMNS: &str =
    "id, state, params, created, started, finished, error, progress, checkpoint_step, resumed_from, attempts, outputs, provenance";

fn row_to_job(r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let json = |i: usize| -> rusqlite::Result<Option<Value>> {
        let t: Option<String> = r.get(i)?;
        Ok(t.and_then(|t| serde_json::from_str(&t).ok()))
    };
    let params: String = r.get(2)?;
    let state: String = r.get(1)?;
    Ok(Job {
        id: r.get(0)?,
        state: State::parse(&state),
        queue_index: None,
        params: serde_json::from_str(&params)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))?,
        created: r.get(3)?,
        started: r.get(4)?,
        finished: r.get(5)?,
        error: r.get(6)?,
        progress: json(7)?,
        checkpoint_step: r.get(8)?,
        resumed_from: r.get(9)?,
        attempts: r.get(10)?,
        outputs: json(11)?,
        provenance: json(12)?,
    })
}
