//! The engine's event bus: every state change a Docker client can watch through `GET /events`.
//!
//! Events go to live subscribers through a broadcast channel and into a bounded in-memory
//! history, so `--since` can replay recent ones (dockerd keeps 256 too; like dockerd's, the
//! history does not survive a daemon restart).

use crate::container::ContainerRecord;
use crate::Engine;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

const HISTORY: usize = 256;

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One event, serialized exactly as dockerd writes it (including the pre-1.22 `status`, `id`
/// and `from` fields that API 1.47 clients still receive for containers and images).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    history: Mutex<VecDeque<Arc<Event>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(1024).0,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }
}

impl EventBus {
    pub fn publish(&self, ev: Event) {
        let ev = Arc::new(ev);
        {
            let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(ev.clone());
        }
        // No subscriber is not an error.
        let _ = self.tx.send(ev);
    }

    /// The recorded history and a receiver for what comes after it, taken under one lock so
    /// that no event falls between the two.
    pub fn subscribe(&self) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        (h.iter().cloned().collect(), rx)
    }
}

fn now_nanos() -> i64 {
    chrono::Utc::now()
        .timestamp_nanos_opt()
        .unwrap_or_default()
}

fn event(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Event {
    let time_nano = now_nanos();
    Event {
        status: None,
        id: None,
        from: None,
        kind: kind.to_string(),
        action: action.to_string(),
        actor: Actor {
            id: id.to_string(),
            attributes,
        },
        scope: "local".into(),
        time: time_nano / 1_000_000_000,
        time_nano,
    }
}

impl Engine {
    /// A container event with dockerd's attributes: the container's labels, `image`, `name`,
    /// and `extra` (`exitCode` for die, `signal` for kill, `execID` for exec events…).
    pub fn emit_container(&self, rec: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        let mut attrs: BTreeMap<String, String> = rec
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        attrs.insert("image".into(), rec.image_name.clone());
        attrs.insert("name".into(), rec.name.clone());
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        let mut ev = event("container", action, &rec.id, attrs);
        ev.status = Some(action.to_string());
        ev.id = Some(rec.id.clone());
        ev.from = Some(rec.image_name.clone());
        self.events.publish(ev);
    }

    /// An image event; `id` is what dockerd puts there (the reference for tag/pull/push, the
    /// image ID for delete/untag/import/load/save), `name` its `name` attribute.
    pub fn emit_image(&self, id: &str, action: &str, name: &str, labels: BTreeMap<String, String>) {
        let mut attrs = labels;
        attrs.insert("name".into(), name.to_string());
        let mut ev = event("image", action, id, attrs);
        ev.status = Some(action.to_string());
        ev.id = Some(id.to_string());
        self.events.publish(ev);
    }

    /// Events of other kinds (network, volume, builder, daemon).
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        self.events.publish(event(kind, action, id, attributes));
    }
}
