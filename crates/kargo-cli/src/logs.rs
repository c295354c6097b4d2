//! The server's log lines on stderr: `--log-format text` (a person reading) or `json` (one
//! object per line, for a log collector). Each line written while a request is answered names
//! it with `request_id`, the id of its `Audit-ID` response header and audit event
//! ([`RequestId::current`]).
//!
//! Our own formatters rather than `tracing-subscriber`'s: its formatters can add a field only
//! from a span, and a span per request costs an allocation and the formatting of its fields on
//! the read path even when nothing is logged; the request id is a thread-local set while its answer is polled instead. Colours
//! only on a terminal (and not with `NO_COLOR`); whatever a field holds, no control character
//! reaches the output (an escape sequence in a user name cannot repaint the operator's
//! terminal).

use std::fmt::{self, Write as _};

use clap::ValueEnum;
use kargo_server::http::observe::RequestId;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `2026-01-02T03:04:05.678901Z  WARN target: message key=value request_id=...`.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, the event's fields
    /// and `request_id`, all at the top level.
    Json,
}

/// Installs the process's subscriber: `filter` (`--log`) on stderr in `format`; the error
/// is a message for the operator.
pub fn init(filter: &str, format: LogFormat) -> Result<(), String> {
    let mut directives =
        tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| format!("--log: {e}"))?;
    // rustls warns, through the `log` bridge, of every client that names an IP address in
    // its TLS server name (curl, wrk, Python): the client's habit, not the server's problem,
    // once per connection. Its errors still show; `--log rustls=warn` brings the rest back.
    if !filter.contains("rustls")
        && let Ok(quiet) = "rustls=error".parse()
    {
        directives = directives.add_directive(quiet);
    }
    let filter = directives;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi && format == LogFormat::Text)
        .event_format(Lines { format })
        .try_init()
        .map_err(|e| e.to_string())?;
    log_panics();
    Ok(())
}

/// A panic becomes one ERROR line in the chosen format (with the request's id when a request
/// panicked) instead of the default hook's free text, which a JSON log reader would choke on.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(not a string)");
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(panic = message, %location, "a task panicked");
    }));
}

/// The event formatter of both formats.
struct Lines {
    format: LogFormat,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut fields = Fields::default();
        event.record(&mut fields);
        // A `log` record (from a dependency) arrives as an event of the `log` target, its own
        // target and level in `log.*` fields.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let line = Line {
            timestamp: &timestamp,
            level: *metadata.level(),
            target: metadata.target(),
            fields: &fields,
            request_id: RequestId::current(),
        };
        match self.format {
            LogFormat::Text => line.text(&mut writer),
            LogFormat::Json => line.json(&mut writer),
        }
    }
}

/// One event, ready to write.
struct Line<'a> {
    timestamp: &'a str,
    level: Level,
    target: &'a str,
    fields: &'a Fields,
    request_id: Option<RequestId>,
}

impl Line<'_> {
    fn text(&self, writer: &mut Writer<'_>) -> fmt::Result {
        let level = format!("{:>5}", self.level);
        let level = match (writer.has_ansi_escapes(), self.level) {
            (false, _) => level,
            (true, Level::ERROR) => format!("\x1b[31m{level}\x1b[0m"),
            (true, Level::WARN) => format!("\x1b[33m{level}\x1b[0m"),
            (true, Level::INFO) => format!("\x1b[32m{level}\x1b[0m"),
            (true, _) => format!("\x1b[34m{level}\x1b[0m"),
        };
        write!(writer, "{} {level} {}:", self.timestamp, self.target)?;
        if !self.fields.message.is_empty() {
            write!(writer, " ")?;
            write!(Sanitized(writer), "{}", self.fields.message)?;
        }
        for (name, value) in &self.fields.others {
            write!(writer, " {name}=")?;
            match value {
                Value::Text(text) => write!(Sanitized(writer), "{text}")?,
                other => write!(writer, "{}", other.json())?,
            }
        }
        if let Some(id) = self.request_id.filter(|_| !self.fields.has_request_id) {
            write!(writer, " request_id={id}")?;
        }
        writeln!(writer)
    }

    fn json(&self, writer: &mut Writer<'_>) -> fmt::Result {
        let mut object = serde_json::Map::new();
        object.insert("timestamp".into(), self.timestamp.into());
        object.insert("level".into(), self.level.as_str().into());
        object.insert("target".into(), self.target.into());
        object.insert("message".into(), self.fields.message.clone().into());
        for (name, value) in &self.fields.others {
            object.insert((*name).to_owned(), value.json());
        }
        if let Some(id) = self.request_id.filter(|_| !self.fields.has_request_id) {
            object.insert("request_id".into(), id.to_string().into());
        }
        let text = serde_json::to_string(&object).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// A field's value, typed as recorded.
enum Value {
    Text(String),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
}

impl Value {
    fn json(&self) -> serde_json::Value {
        match self {
            Value::Text(text) => text.as_str().into(),
            Value::Int(n) => (*n).into(),
            Value::Uint(n) => (*n).into(),
            Value::Float(n) => (*n).into(),
            Value::Bool(b) => (*b).into(),
        }
    }
}

/// An event's fields: its message, then the others in the order they were given.
#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(&'static str, Value)>,
    /// The event names its request itself (the 5xx line, written after the answer).
    has_request_id: bool,
}

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        match (field.name(), value) {
            ("message", Value::Text(text)) => self.message = text,
            // Said by the normalized metadata already.
            (name, _) if name.starts_with("log.") => {}
            (name, value) => {
                self.has_request_id |= name == "request_id";
                self.others.push((name, value));
            }
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, Value::Text(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::Text(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::Uint(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::Float(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, Value::Text(value.to_string()));
    }
}

/// Writes text with every control character escaped (`\n` as `\n`, ESC as `\u{1b}`), so that a
/// value is one line and cannot carry a terminal's escape sequence.
struct Sanitized<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Sanitized<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for c in text.chars() {
            if c.is_control() {
                write!(self.0, "{}", c.escape_default())?;
            } else {
                self.0.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(message: &str, others: Vec<(&'static str, Value)>) -> Fields {
        Fields {
            message: message.to_owned(),
            others,
            has_request_id: false,
        }
    }

    fn render(line: &Line<'_>, json: bool) -> String {
        let mut out = String::new();
        let mut writer = Writer::new(&mut out);
        if json {
            line.json(&mut writer).unwrap();
        } else {
            line.text(&mut writer).unwrap();
        }
        out
    }

    #[test]
    fn a_text_line_has_the_fields_after_the_message_and_the_request_id_last() {
        let fields = fields(
            "answered with a server error",
            vec![
                ("status", Value::Uint(504)),
                ("path", Value::Text("/api/v1".into())),
            ],
        );
        let id = RequestId::next();
        let line = Line {
            timestamp: "2026-01-02T03:04:05.000000Z",
            level: Level::WARN,
            target: "kargo_http",
            fields: &fields,
            request_id: Some(id),
        };
        assert_eq!(
            render(&line, false),
            format!(
                "2026-01-02T03:04:05.000000Z  WARN kargo_http: answered with a server error status=504 path=/api/v1 request_id={id}\n"
            )
        );
    }

    #[test]
    fn a_json_line_is_one_object_with_every_field_at_the_top_level() {
        let fields = fields(
            "created a store",
            vec![
                ("path", Value::Text("/d".into())),
                ("ok", Value::Bool(true)),
            ],
        );
        let line = Line {
            timestamp: "t",
            level: Level::INFO,
            target: "kargo_store",
            fields: &fields,
            request_id: None,
        };
        let text = render(&line, true);
        assert!(text.ends_with('\n') && text.lines().count() == 1, "{text}");
        let object: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            object,
            serde_json::json!({"timestamp": "t", "level": "INFO", "target": "kargo_store",
                "message": "created a store", "path": "/d", "ok": true})
        );
    }

    #[test]
    fn control_characters_in_values_are_escaped_in_text() {
        let fields = fields(
            "two\nlines",
            vec![("user", Value::Text("\x1b[31mred".into()))],
        );
        let line = Line {
            timestamp: "t",
            level: Level::INFO,
            target: "x",
            fields: &fields,
            request_id: None,
        };
        let text = render(&line, false);
        assert_eq!(text, "t  INFO x: two\\nlines user=\\u{1b}[31mred\n");
    }
}
