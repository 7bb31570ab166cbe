//! Rust `tracing` events as plain records for a sink. The NIF's sink sends
//! them to an Elixir process that hands them to Logger: inside a debug
//! adapter, stdout carries DAP and stderr may be shown to the user, so no
//! event is ever written to either.

use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// One tracing event, flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub level: Level,
    pub target: String,
    /// The event's message, then its other fields as `name=value`.
    pub message: String,
}

/// A layer handing every event at `max_level` or more severe to `sink`.
pub struct SinkLayer<F> {
    sink: F,
    max_level: Level,
}

impl<F: Fn(Record) + Send + Sync + 'static> SinkLayer<F> {
    pub fn new(max_level: Level, sink: F) -> Self {
        SinkLayer { sink, max_level }
    }
}

impl<S: Subscriber, F: Fn(Record) + Send + Sync + 'static> Layer<S> for SinkLayer<F> {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        *metadata.level() <= self.max_level
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = Text::default();
        event.record(&mut text);
        (self.sink)(Record {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            message: text.finish(),
        });
    }
}

/// Makes `sink` the process-wide destination of tracing events. Only the
/// first call in a process installs anything; true when this one did.
pub fn install(max_level: Level, sink: impl Fn(Record) + Send + Sync + 'static) -> bool {
    let subscriber = tracing_subscriber::registry().with(SinkLayer::new(max_level, sink));
    tracing::subscriber::set_global_default(subscriber).is_ok()
}

#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }

    fn field(&mut self, name: &str, value: fmt::Arguments<'_>) {
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        let _ = write!(self.fields, "{name}={value}");
    }
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.field(field.name(), format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.field(field.name(), format_args!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn collect(max_level: Level, emit: impl FnOnce()) -> Vec<Record> {
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        let subscriber = tracing_subscriber::registry().with(SinkLayer::new(max_level, move |r| {
            sink.lock().unwrap().push(r)
        }));
        tracing::subscriber::with_default(subscriber, emit);
        let records = records.lock().unwrap().clone();
        records
    }

    #[test]
    fn events_keep_their_level_target_message_and_fields() {
        let records = collect(Level::DEBUG, || {
            tracing::warn!(target: "debug_reload_watch", dirs = 3, path = "lib/a.ex", "watch failed");
            tracing::debug!("plain");
        });
        assert_eq!(
            records,
            vec![
                Record {
                    level: Level::WARN,
                    target: "debug_reload_watch".into(),
                    message: "watch failed dirs=3 path=\"lib/a.ex\"".into()
                },
                Record {
                    level: Level::DEBUG,
                    target: module_path!().into(),
                    message: "plain".into()
                }
            ]
        );
    }

    #[test]
    fn events_below_the_maximum_level_are_dropped() {
        let records = collect(Level::INFO, || {
            tracing::info!("kept");
            tracing::debug!("dropped");
            tracing::trace!("dropped");
        });
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].message, "kept");
    }
}
