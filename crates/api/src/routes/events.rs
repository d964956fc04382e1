//! `GET /events`: recorded events since `since`, then live ones until `until` (or forever),
//! one JSON object per line. Headers go out at once so `docker events` knows it is connected.

use crate::error::ApiResult;
use crate::query::{parse_timestamp, Params};
use crate::stream::json_line;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use berth_engine::events::{Event, EventFilter};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};

struct Feed {
    backlog: VecDeque<Arc<Event>>,
    rx: broadcast::Receiver<Arc<Event>>,
    filter: EventFilter,
    until_nanos: Option<i64>,
}

fn encode(ev: &Event) -> Bytes {
    json_line(&serde_json::to_value(ev).unwrap_or_default())
}

impl Feed {
    /// The next event to send, or None when the stream is over.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(ev) = self.backlog.pop_front() {
            return Some(encode(&ev));
        }
        loop {
            let recv = self.rx.recv();
            let ev = match self.until_nanos {
                None => recv.await,
                Some(until) => {
                    let left = until - berth_engine::events::now_nanos();
                    if left <= 0 {
                        return None;
                    }
                    match tokio::time::timeout(std::time::Duration::from_nanos(left as u64), recv)
                        .await
                    {
                        Ok(r) => r,
                        Err(_) => return None,
                    }
                }
            };
            match ev {
                Ok(ev) if self.until_nanos.is_some_and(|u| ev.time_nano > u) => return None,
                Ok(ev) if self.filter.include(&ev) => return Some(encode(&ev)),
                Ok(_) => {}
                // A reader too slow for 1024 events misses some rather than stalling the bus.
                Err(RecvError::Lagged(n)) => tracing::warn!("events subscriber lagged by {n}"),
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

pub async fn events(State(engine): State<AppState>, p: Params) -> ApiResult<Response> {
    // Unlike logs, `since=0` asks for everything recorded (the epoch is a real bound here).
    let since = match p.get("since") {
        Some("0") => chrono::DateTime::from_timestamp(0, 0),
        s => parse_timestamp(s)?,
    };
    let until = parse_timestamp(p.get("until"))?;
    let filter = EventFilter::new(p.filters()?)?;
    let (history, rx) = engine.events.subscribe();
    let since_nanos = since.and_then(|t| t.timestamp_nanos_opt());
    let until_nanos = until.and_then(|t| t.timestamp_nanos_opt());
    let backlog = match since_nanos {
        // Without `since` only what happens from now on is sent, as dockerd.
        None => VecDeque::new(),
        Some(s) => history
            .into_iter()
            .filter(|e| e.time_nano >= s && until_nanos.is_none_or(|u| e.time_nano <= u))
            .filter(|e| filter.include(e))
            .collect(),
    };
    let feed = Feed {
        backlog,
        rx,
        filter,
        until_nanos,
    };
    let body = futures_util::stream::unfold(feed, |mut f| async move {
        let chunk = f.next().await?;
        Some((Ok::<_, std::io::Error>(chunk), f))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}
