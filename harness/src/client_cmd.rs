//! `harness client`: one command against a cluster, or an interactive prompt.

use std::process::ExitCode;
use std::time::Duration;

use raftkv::client::{Client, ClientError, ClientOptions};
use raftkv::proto::Role;

const AFTER_HELP: &str = "\
Commands (also at the interactive prompt):
  set KEY VALUE      set KEY to VALUE
  get KEY            read KEY (linearizable); prints the value, or (absent)
  cas KEY FROM TO    set KEY to TO if its value is FROM; FROM `-` or `absent`
                     means the key must be absent
  noop               commit an empty entry (a write barrier)
  status             every node's view: id, role, term, leader, indexes
At the prompt also: help, quit (or exit, Ctrl-D). Quote arguments that
contain spaces: set k \"hello world\".

Exit status: 0 success, 1 error, 2 cas not applied, 3 usage error.
An error says whether the write definitely did not happen or its outcome is
unknown (for example a timeout: it may still be applied).";

#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Node addresses, comma-separated: HOST:PORT,HOST:PORT,...
    #[arg(long, value_name = "ADDRS", value_delimiter = ',', required = true)]
    cluster: Vec<String>,
    /// Session id (non-zero). Reusing an id across invocations continues its
    /// session; default: a random id.
    #[arg(long, value_name = "ID")]
    client_id: Option<u64>,
    /// Give up on a command after this long, retries included (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = raftkv::duration::parse, allow_hyphen_values = true)]
    timeout: Duration,
    /// Command and its arguments; none opens an interactive prompt.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
}

/// A parsed command.
#[derive(Debug, PartialEq, Eq)]
enum Cmd {
    Set {
        key: String,
        value: String,
    },
    Get {
        key: String,
    },
    Cas {
        key: String,
        from: Option<String>,
        to: String,
    },
    Noop,
    Status,
    Help,
    Quit,
}

fn parse(words: &[String]) -> Result<Cmd, String> {
    let Some(name) = words.first() else {
        return Err("empty command; try `help`".into());
    };
    let args = &words[1..];
    let want = |n: usize, usage: &str| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "`{name}` takes {n} argument(s), got {}; usage: {usage}",
                args.len()
            ))
        }
    };
    match name.to_ascii_lowercase().as_str() {
        "set" => {
            want(2, "set KEY VALUE")?;
            Ok(Cmd::Set {
                key: args[0].clone(),
                value: args[1].clone(),
            })
        }
        "get" => {
            want(1, "get KEY")?;
            Ok(Cmd::Get {
                key: args[0].clone(),
            })
        }
        "cas" => {
            want(
                3,
                "cas KEY FROM TO (FROM `-` or `absent`: key must be absent)",
            )?;
            let from = match args[1].as_str() {
                "-" | "absent" => None,
                v => Some(v.to_string()),
            };
            Ok(Cmd::Cas {
                key: args[0].clone(),
                from,
                to: args[2].clone(),
            })
        }
        "noop" => want(0, "noop").map(|_| Cmd::Noop),
        "status" => want(0, "status").map(|_| Cmd::Status),
        "help" | "?" => Ok(Cmd::Help),
        "quit" | "exit" => Ok(Cmd::Quit),
        other => Err(format!(
            "unknown command `{other}`; commands: set, get, cas, noop, status, help, quit"
        )),
    }
}

/// Splits a prompt line into words; double or single quotes group words.
fn split_line(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unclosed {q} quote"));
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs one command, printing its result. Returns the exit status.
async fn execute(client: &mut Client, cmd: Cmd) -> u8 {
    let result: Result<(String, u8), ClientError> = match cmd {
        Cmd::Set { key, value } => client
            .set(key, value.into_bytes())
            .await
            .map(|o| (format!("OK (index {})", o.index), 0)),
        Cmd::Get { key } => client.get(key).await.map(|o| match o.value {
            Some(v) => (show(&v), 0),
            None => ("(absent)".to_string(), 0),
        }),
        Cmd::Cas { key, from, to } => client
            .cas(key, from.map(String::into_bytes), to.into_bytes())
            .await
            .map(|o| {
                if o.applied {
                    (format!("OK (index {})", o.index), 0)
                } else {
                    let current = match o.previous {
                        Some(v) => format!("value is {:?}", show(&v)),
                        None => "key is absent".to_string(),
                    };
                    (format!("not applied: {current}"), 2)
                }
            }),
        Cmd::Noop => client
            .noop()
            .await
            .map(|o| (format!("OK (index {})", o.index), 0)),
        Cmd::Status => Ok(status(client).await),
        Cmd::Help => Ok((AFTER_HELP.to_string(), 0)),
        Cmd::Quit => Ok((String::new(), 0)),
    };
    match result {
        Ok((text, code)) => {
            if !text.is_empty() {
                println!("{text}");
            }
            code
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn role_name(role: i32) -> &'static str {
    match Role::try_from(role) {
        Ok(Role::Leader) => "leader",
        Ok(Role::Follower) => "follower",
        Ok(Role::Candidate) => "candidate",
        Ok(Role::PreCandidate) => "pre-candidate",
        _ => "unknown",
    }
}

async fn status(client: &Client) -> (String, u8) {
    let mut lines = Vec::new();
    let mut failures = 0;
    for node in client.status_all().await {
        match node.status {
            Ok(s) => {
                let leader = if s.leader_id == 0 {
                    "none".to_string()
                } else {
                    format!("{} ({})", s.leader_id, s.leader_addr)
                };
                lines.push(format!(
                    "{}: node {} {} term {} leader {} commit {} applied {} last {}",
                    node.addr,
                    s.node_id,
                    role_name(s.role),
                    s.term,
                    leader,
                    s.commit_index,
                    s.applied_index,
                    s.last_log_index
                ));
            }
            Err(e) => {
                failures += 1;
                lines.push(format!("{}: unreachable: {e}", node.addr));
            }
        }
    }
    let all_down = failures == lines.len();
    (lines.join("\n"), if all_down { 1 } else { 0 })
}

pub fn main(args: Args) -> ExitCode {
    if args.client_id == Some(0) {
        return crate::usage_error("--client-id must be non-zero");
    }
    if args.timeout.is_zero() {
        return crate::usage_error("--timeout must be positive");
    }
    for addr in &args.cluster {
        if let Err(e) = raftkv::client::check_address(addr) {
            return crate::usage_error(&format!("--cluster: {e}"));
        }
    }
    let one_shot = if args.command.is_empty() {
        None
    } else {
        match parse(&args.command) {
            Ok(Cmd::Help) => {
                println!("{AFTER_HELP}");
                return ExitCode::SUCCESS;
            }
            Ok(cmd) => Some(cmd),
            Err(e) => return crate::usage_error(&e),
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(crate::exit::USAGE);
        }
    };
    let overall = args.timeout;
    let options = ClientOptions {
        client_id: args.client_id.unwrap_or(0),
        resume_session: args.client_id.is_some(),
        overall_timeout: overall,
        request_timeout: overall.min(Duration::from_secs(2)),
        ..ClientOptions::default()
    };
    let mut client = match runtime.block_on(Client::connect(&args.cluster, options)) {
        Ok(c) => c,
        Err(e) => return crate::usage_error(&e.to_string()),
    };
    match one_shot {
        Some(cmd) => ExitCode::from(runtime.block_on(execute(&mut client, cmd))),
        None => prompt(&runtime, &mut client),
    }
}

/// The prompt's first line: which nodes answer and who leads, so that a
/// cluster that is not there is not called "connected".
fn greeting(statuses: &[raftkv::client::NodeStatus], client: &Client) -> String {
    let answering = statuses.iter().filter(|s| s.status.is_ok()).count();
    let id = client.client_id();
    if answering == 0 {
        let why: Vec<String> = statuses
            .iter()
            .filter_map(|s| s.status.as_ref().err().map(|e| format!("{}: {e}", s.addr)))
            .collect();
        return format!(
            "no node answers ({}); commands will retry until --timeout. Client {id}; `help` lists commands",
            why.join("; ")
        );
    }
    let leader = statuses
        .iter()
        .filter_map(|s| s.status.as_ref().ok())
        .filter(|s| s.role == Role::Leader as i32)
        .max_by_key(|s| s.term)
        .map(|s| format!("node {} leads", s.node_id))
        .unwrap_or_else(|| "no leader yet".into());
    format!(
        "connected: {answering} of {} nodes answer, {leader}. Client {id}; `help` lists commands",
        statuses.len()
    )
}

/// The interactive prompt: line editing and history via rustyline; works
/// with piped input too.
fn prompt(runtime: &tokio::runtime::Runtime, client: &mut Client) -> ExitCode {
    use rustyline::error::ReadlineError;
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot open the prompt: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{}",
        greeting(&runtime.block_on(client.status_all()), client)
    );
    let mut last = 0;
    loop {
        let line = match editor.readline("raftkv> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: reading input: {e}");
                return ExitCode::FAILURE;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line.as_str());
        let cmd = match split_line(&line).and_then(|words| parse(&words)) {
            Ok(cmd) => cmd,
            Err(e) => {
                eprintln!("error: {e}");
                last = 1;
                continue;
            }
        };
        if cmd == Cmd::Quit {
            break;
        }
        last = runtime.block_on(execute(client, cmd));
    }
    ExitCode::from(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn parses_commands() {
        assert_eq!(
            parse(&words(&["set", "k", "v"])),
            Ok(Cmd::Set {
                key: "k".into(),
                value: "v".into()
            })
        );
        assert_eq!(
            parse(&words(&["cas", "k", "-", "v"])),
            Ok(Cmd::Cas {
                key: "k".into(),
                from: None,
                to: "v".into()
            })
        );
        assert_eq!(
            parse(&words(&["cas", "k", "absent", "v"])).unwrap(),
            parse(&words(&["cas", "k", "-", "v"])).unwrap()
        );
        assert_eq!(
            parse(&words(&["CAS", "k", "a", "b"])),
            Ok(Cmd::Cas {
                key: "k".into(),
                from: Some("a".into()),
                to: "b".into()
            })
        );
        assert_eq!(parse(&words(&["noop"])), Ok(Cmd::Noop));
        let err = parse(&words(&["set", "k"])).unwrap_err();
        assert!(err.contains("set KEY VALUE"), "{err}");
        let err = parse(&words(&["frob"])).unwrap_err();
        assert!(err.contains("unknown command `frob`"), "{err}");
    }

    #[test]
    fn splits_quoted_words() {
        assert_eq!(
            split_line(r#"set k "hello world""#).unwrap(),
            words(&["set", "k", "hello world"])
        );
        assert_eq!(split_line("  get   k ").unwrap(), words(&["get", "k"]));
        assert_eq!(
            split_line(r#"set k '' "#).unwrap(),
            words(&["set", "k", ""])
        );
        assert_eq!(
            split_line(r#"set k "a\"b""#).unwrap(),
            words(&["set", "k", "a\"b"])
        );
        assert!(split_line(r#"set k "open"#).is_err());
    }
}
