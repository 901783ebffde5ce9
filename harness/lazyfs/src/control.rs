//! The control protocol of a `lazyfs mount` process: one request per line,
//! one JSON response per line.
//!
//! Requests are JSON (`{"op":"power_cut","torn":"prefix","seed":7}`,
//! `{"op":"stats"}`, `{"op":"exit"}`) or, for people at a terminal, words:
//! `cut [none|prefix|pages] [SEED]`, `stats`, `exit`. Responses are
//! `{"power_cut":{...}}`, `{"stats":{...}}`, `{"exiting":null}` or
//! `{"error":"..."}`.

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::model::{CutReport, Stats, TornMode};
use crate::mount::Mounted;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    PowerCut {
        #[serde(default)]
        torn: TornMode,
        #[serde(default)]
        seed: u64,
    },
    Stats,
    Exit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    PowerCut(CutReport),
    Stats(Stats),
    Exiting(()),
    Error(String),
}

/// Parses one request line (JSON or words).
pub fn parse_request(line: &str) -> Result<Request, String> {
    let line = line.trim();
    if line.starts_with('{') {
        return serde_json::from_str(line).map_err(|e| format!("bad request {line:?}: {e}"));
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["stats"] => Ok(Request::Stats),
        ["exit"] | ["quit"] => Ok(Request::Exit),
        ["cut", rest @ ..] | ["power-cut", rest @ ..] if rest.len() <= 2 => {
            let torn = match rest.first() {
                Some(t) => t.parse()?,
                None => TornMode::None,
            };
            let seed = match rest.get(1) {
                Some(s) => s
                    .parse()
                    .map_err(|_| format!("bad seed {s:?}: expected an unsigned integer"))?,
                None => 0,
            };
            Ok(Request::PowerCut { torn, seed })
        }
        _ => Err(format!(
            "unknown request {line:?}: expected `cut [none|prefix|pages] [SEED]`, `stats`, `exit` or JSON"
        )),
    }
}

/// Something that answers requests: a mounted filesystem.
pub trait Serve {
    fn handle(&self, request: &Request) -> Response;
}

impl Serve for Mounted {
    fn handle(&self, request: &Request) -> Response {
        handle(self, request)
    }
}

/// Answers one request.
pub fn handle(mounted: &Mounted, request: &Request) -> Response {
    match request {
        Request::PowerCut { torn, seed } => match mounted.power_cut(*torn, *seed) {
            Ok(r) => Response::PowerCut(r),
            Err(e) => Response::Error(e),
        },
        Request::Stats => Response::Stats(mounted.stats()),
        Request::Exit => Response::Exiting(()),
    }
}

/// Serves requests from `input` until it ends or asks to exit; returns
/// whether it asked to exit.
pub fn serve(server: &impl Serve, input: impl BufRead, mut output: impl Write) -> io::Result<bool> {
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let response = match parse_request(&line) {
            Ok(req) => server.handle(&req),
            Err(e) => Response::Error(e),
        };
        let exit = matches!(response, Response::Exiting(()));
        let text = serde_json::to_string(&response).map_err(io::Error::other)?;
        writeln!(output, "{text}")?;
        output.flush()?;
        if exit {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Sends one request over a connection and reads its response.
pub fn call(
    mut conn: impl Write,
    input: &mut impl BufRead,
    request: &Request,
) -> Result<Response, String> {
    let text = serde_json::to_string(request).map_err(|e| e.to_string())?;
    writeln!(conn, "{text}")
        .and_then(|()| conn.flush())
        .map_err(|e| format!("sending to lazyfs: {e}"))?;
    let mut line = String::new();
    let n = input
        .read_line(&mut line)
        .map_err(|e| format!("reading from lazyfs: {e}"))?;
    if n == 0 {
        return Err("lazyfs closed the control channel".into());
    }
    serde_json::from_str(&line).map_err(|e| format!("bad response from lazyfs {line:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_from_words_and_json() {
        assert_eq!(parse_request("stats"), Ok(Request::Stats));
        assert_eq!(
            parse_request("cut prefix 7"),
            Ok(Request::PowerCut {
                torn: TornMode::Prefix,
                seed: 7
            })
        );
        assert_eq!(
            parse_request("cut"),
            Ok(Request::PowerCut {
                torn: TornMode::None,
                seed: 0
            })
        );
        assert_eq!(
            parse_request(r#"{"op":"power_cut","torn":"pages","seed":3}"#),
            Ok(Request::PowerCut {
                torn: TornMode::Pages,
                seed: 3
            })
        );
        assert_eq!(parse_request(r#"{"op":"exit"}"#), Ok(Request::Exit));
        assert!(
            parse_request("cut sideways")
                .unwrap_err()
                .contains("unknown torn mode")
        );
        assert!(
            parse_request("cut none x")
                .unwrap_err()
                .contains("bad seed")
        );
        assert!(
            parse_request("reboot")
                .unwrap_err()
                .contains("unknown request")
        );
        assert!(
            parse_request("{\"op\":\"nope\"}")
                .unwrap_err()
                .contains("bad request")
        );
    }

    #[test]
    fn responses_round_trip() {
        for r in [
            Response::Exiting(()),
            Response::Error("x".into()),
            Response::Stats(Stats::default()),
            Response::PowerCut(CutReport::default()),
        ] {
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(
                serde_json::from_str::<Response>(&text).unwrap(),
                r,
                "{text}"
            );
        }
    }
}
