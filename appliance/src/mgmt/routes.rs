//! The API's routes: one table maps method and path to who may call it, whether it takes
//! a body, and the [`MgmtCommand`] it becomes; [`answer`] maps a command's reply or error
//! to a status code and body. Adding a route is one row in [`ROUTES`] (and its command).

use std::time::Duration;

use pipelines::spec::HumanDuration;

use super::command::{MgmtCommand, MgmtError, MgmtReply};
use super::http::Request;
use crate::drain::MAX_DEADLINE;
use crate::metrics::MetricsFormat;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone (`/healthz`).
    Open,
    /// The read token (`management.read_token_file`) or the write token, when set.
    Read,
    /// The write token (`management.token_file`), when set.
    Write,
}

/// How a route builds its command: from the head and, for routes with a body, the body.
type Build = fn(&Request, Option<String>) -> Result<MgmtCommand, Answer>;

/// One row of the table.
pub(crate) struct Route {
    /// `GET` routes answer `HEAD` too.
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) access: Access,
    /// Whether the route reads a body (framing checked, size capped).
    pub(crate) body: bool,
    pub(crate) build: Build,
}

/// Every route of the API.
pub(crate) const ROUTES: &[Route] = &[
    Route {
        method: "PUT",
        path: "/v1/manifests",
        access: Access::Write,
        body: true,
        build: |req, body| {
            Ok(MgmtCommand::ApplyManifests {
                yaml: body.unwrap_or_default(),
                confirm_remove_all: confirmed(req)?,
            })
        },
    },
    Route {
        method: "POST",
        path: "/v1/reload",
        access: Access::Write,
        body: false,
        build: |req, _| {
            Ok(MgmtCommand::UseFiles {
                confirm_remove_all: confirmed(req)?,
            })
        },
    },
    Route {
        method: "GET",
        path: "/v1/status",
        access: Access::Read,
        body: false,
        build: |req, _| match req.query_param("format") {
            None | Some("yaml" | "json") => Ok(MgmtCommand::Status),
            Some(other) => Err(Answer::text(
                400,
                &format!("format {other:?}: use yaml or json"),
            )),
        },
    },
    Route {
        method: "GET",
        path: "/metrics",
        access: Access::Read,
        body: false,
        build: |req, _| {
            Ok(MgmtCommand::Metrics(MetricsFormat::negotiate(
                req.header("accept"),
            )))
        },
    },
    Route {
        method: "GET",
        path: "/healthz",
        access: Access::Open,
        body: false,
        build: |_, _| Ok(MgmtCommand::Health),
    },
    // The drain state holds no backend address, but it is a status read like
    // `/v1/status`: open unless a read token is set.
    Route {
        method: "GET",
        path: "/v1/drain",
        access: Access::Read,
        body: false,
        build: |_, _| Ok(MgmtCommand::DrainStatus),
    },
    Route {
        method: "POST",
        path: "/v1/drain",
        access: Access::Write,
        body: false,
        build: |req, _| {
            Ok(MgmtCommand::Drain {
                deadline: drain_deadline(req)?,
            })
        },
    },
    Route {
        method: "DELETE",
        path: "/v1/drain",
        access: Access::Write,
        body: false,
        build: |_, _| Ok(MgmtCommand::Undrain),
    },
];

/// `?deadline=30s`, or nothing (the settings' `drain.deadline`); malformed or over
/// [`MAX_DEADLINE`] is a 400.
fn drain_deadline(req: &Request) -> Result<Option<Duration>, Answer> {
    let Some(text) = req.query_param("deadline") else {
        return Ok(None);
    };
    match text.parse::<HumanDuration>() {
        Ok(d) if d.0 <= MAX_DEADLINE => Ok(Some(d.0)),
        Ok(d) => Err(Answer::text(
            400,
            &format!("deadline {d} is out of range (0s to 24h)"),
        )),
        Err(e) => Err(Answer::text(400, &format!("deadline: {e}"))),
    }
}

/// `?confirm=remove-all`, or nothing; any other value is a mistake worth a 400.
fn confirmed(req: &Request) -> Result<bool, Answer> {
    match req.query_param("confirm") {
        None => Ok(false),
        Some("remove-all") => Ok(true),
        Some(other) => Err(Answer::text(
            400,
            &format!("confirm={other:?}: the only confirmation is confirm=remove-all"),
        )),
    }
}

/// The route for `req`, or the 404/405 answer.
pub(crate) fn find(req: &Request) -> Result<&'static Route, Answer> {
    let on_path: Vec<&Route> = ROUTES.iter().filter(|r| r.path == req.path).collect();
    if on_path.is_empty() {
        return Err(Answer::text(
            404,
            &format!("no such resource: {}", req.path),
        ));
    }
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    if let Some(route) = on_path.iter().find(|r| r.method == method) {
        return Ok(route);
    }
    let allow: Vec<&str> = on_path
        .iter()
        .flat_map(|r| {
            if r.method == "GET" {
                vec!["GET", "HEAD"]
            } else {
                vec![r.method]
            }
        })
        .collect();
    let allow = allow.join(", ");
    Err(Answer::text(405, &format!("method not allowed; use {allow}")).with_header("Allow", allow))
}

/// A response: status, content type, extra headers and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
}

const YAML: &str = "application/yaml";
const JSON: &str = "application/json";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

impl Answer {
    pub(crate) fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Answer {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A plain-text answer; a trailing newline is added for terminals.
    pub(crate) fn text(status: u16, message: &str) -> Self {
        let mut body = message.to_owned();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        Answer::new(status, TEXT, body)
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The body as text (plain-text answers).
    pub(crate) fn message(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The answer to a command's result.
pub(crate) fn answer<R: std::fmt::Display>(
    result: Result<MgmtReply, MgmtError<R>>,
    req: &Request,
) -> Answer {
    let err = |status, e: &MgmtError<R>| Answer::text(status, &e.to_string());
    match result {
        Ok(reply) => reply_answer(reply, req),
        Err(MgmtError::Refused(problems)) => Answer::text(422, &problems.to_string()),
        Err(e @ MgmtError::EmptySet) => err(400, &e),
        Err(e @ (MgmtError::RemovesAllListeners { .. } | MgmtError::WrongSource(_))) => {
            err(409, &e)
        }
        Err(e @ MgmtError::Persist(_)) => err(500, &e),
        Err(e @ MgmtError::ShuttingDown) => err(503, &e),
        Err(e @ MgmtError::Unsupported { .. }) => err(501, &e),
    }
}

fn reply_answer(reply: MgmtReply, req: &Request) -> Answer {
    match reply {
        MgmtReply::Applied { status_yaml } => Answer::new(200, YAML, status_yaml),
        MgmtReply::Status { yaml } => match req.query_param("format") {
            Some("json") => match yaml_documents_as_json(&yaml) {
                Ok(mut json) => {
                    json.push('\n');
                    Answer::new(200, JSON, json)
                }
                Err(e) => Answer::text(500, &format!("status is not valid YAML: {e}")),
            },
            _ => Answer::new(200, YAML, yaml),
        },
        MgmtReply::Metrics { format, body } => Answer::new(200, format.content_type(), body),
        MgmtReply::Health { healthy: true, .. } => Answer::text(200, "ok"),
        MgmtReply::Health {
            healthy: false,
            reasons,
        } => Answer::text(503, &unhealthy_body(&reasons)),
        MgmtReply::Drain(report) => Answer::new(200, YAML, report.to_yaml()),
    }
}

/// `/healthz` when unhealthy: `unhealthy`, then one reason per line.
fn unhealthy_body(reasons: &[String]) -> String {
    let mut body = String::from("unhealthy");
    for r in reasons {
        body.push('\n');
        body.push_str(r);
    }
    body
}

/// The status is a multi-document YAML stream; as JSON it is an array of the documents,
/// as `udplb check --output json` prints it.
fn yaml_documents_as_json(yaml: &str) -> Result<String, String> {
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(yaml) {
        let value = <serde_json::Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| e.to_string())?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    serde_json::to_string_pretty(&docs).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_has_one_route_per_method() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    a.path != b.path || a.method != b.method,
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
            assert!(a.access != Access::Open || a.path == "/healthz");
        }
    }
}
