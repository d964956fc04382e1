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

pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
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

/// `GET /events?filters=` as dockerd applies them: values of one key are alternatives, keys
/// must all match.
#[derive(Debug, Default)]
pub struct EventFilter {
    f: std::collections::HashMap<String, Vec<String>>,
}

const FILTER_KEYS: &[&str] = &[
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "service",
    "type",
    "volume",
    "config",
    "secret",
];

impl EventFilter {
    pub fn new(f: std::collections::HashMap<String, Vec<String>>) -> crate::Result<Self> {
        if let Some(k) = f.keys().find(|k| !FILTER_KEYS.contains(&k.as_str())) {
            return Err(crate::EngineError::InvalidArgument(format!(
                "invalid filter '{k}'"
            )));
        }
        Ok(EventFilter { f })
    }

    /// True when the key is absent or one of its values equals one of `candidates`.
    fn exact(&self, key: &str, candidates: &[&str]) -> bool {
        self.f
            .get(key)
            .is_none_or(|vals| vals.iter().any(|v| candidates.contains(&v.as_str())))
    }

    /// Like `exact`, but an ID also matches by prefix (dockerd's FuzzyMatch).
    fn fuzzy(&self, key: &str, id: &str, name: &str) -> bool {
        self.f.get(key).is_none_or(|vals| {
            vals.iter()
                .any(|v| v == name || (!v.is_empty() && id.starts_with(v.as_str())))
        })
    }

    fn labels(&self, attrs: &BTreeMap<String, String>) -> bool {
        self.f.get("label").is_none_or(|vals| {
            vals.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => attrs.get(k).is_some_and(|a| a == v),
                None => attrs.contains_key(l.as_str()),
            })
        })
    }

    fn typed(&self, key: &str, ev: &Event) -> bool {
        if !self.f.contains_key(key) {
            return true;
        }
        ev.kind == key
            && self.fuzzy(
                key,
                &ev.actor.id,
                ev.actor.attributes.get("name").map_or("", String::as_str),
            )
    }

    pub fn include(&self, ev: &Event) -> bool {
        let action_base = ev.action.split(':').next().unwrap_or("");
        let strip_tag = |s: &str| -> String {
            match s.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
                _ => s.to_string(),
            }
        };
        let image_name = ev
            .actor
            .attributes
            .get(if ev.kind == "image" { "name" } else { "image" })
            .map_or("", String::as_str);
        let image_ok = self.f.get("image").is_none_or(|vals| {
            let id = ev.actor.id.as_str();
            let (sid, sname) = (strip_tag(id), strip_tag(image_name));
            vals.iter()
                .any(|v| [id, image_name, sid.as_str(), sname.as_str()].contains(&v.as_str()))
        });
        self.exact("event", &[ev.action.as_str(), action_base])
            && self.exact("type", &[ev.kind.as_str()])
            && self.exact("scope", &[ev.scope.as_str()])
            && self.typed("container", ev)
            && self.typed("network", ev)
            && self.typed("volume", ev)
            && self.typed("daemon", ev)
            && image_ok
            && self.labels(&ev.actor.attributes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ev(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        event(
            kind,
            action,
            id,
            attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn filter(pairs: &[(&str, &str)]) -> EventFilter {
        let mut f: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in pairs {
            f.entry(k.to_string()).or_default().push(v.to_string());
        }
        EventFilter::new(f).unwrap()
    }

    #[test]
    fn filters_match_like_dockerd() {
        let start = ev(
            "container",
            "start",
            "abcdef",
            &[
                ("name", "web"),
                ("image", "busybox:latest"),
                ("tier", "front"),
            ],
        );
        let health = ev(
            "container",
            "health_status: healthy",
            "abcdef",
            &[("name", "web"), ("image", "busybox")],
        );
        let tag = ev("image", "tag", "sha256:1234", &[("name", "busybox:latest")]);
        assert!(filter(&[]).include(&start));
        assert!(filter(&[("event", "start"), ("event", "die")]).include(&start));
        assert!(!filter(&[("event", "die")]).include(&start));
        assert!(filter(&[("event", "health_status")]).include(&health));
        assert!(filter(&[("container", "web")]).include(&start));
        assert!(filter(&[("container", "abc")]).include(&start));
        assert!(!filter(&[("container", "web")]).include(&tag));
        assert!(filter(&[("image", "busybox")]).include(&start));
        assert!(filter(&[("image", "busybox")]).include(&tag));
        assert!(filter(&[("type", "image")]).include(&tag));
        assert!(!filter(&[("type", "image")]).include(&start));
        assert!(filter(&[("label", "tier=front")]).include(&start));
        assert!(filter(&[("label", "tier")]).include(&start));
        assert!(!filter(&[("label", "tier=back")]).include(&start));
        let mut bad = HashMap::new();
        bad.insert("colour".to_string(), vec!["x".to_string()]);
        assert!(EventFilter::new(bad).is_err());
    }

    #[test]
    fn wire_shape() {
        let e = ev("container", "die", "abc", &[("exitCode", "0")]);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Actor"]["Attributes"]["exitCode"], "0");
        assert!(v.get("status").is_none());
        assert!(v["timeNano"].as_i64().unwrap() > 0);
    }
}
