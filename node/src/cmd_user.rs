//! `gongjian user`: the people who use the node's web console, through the
//! same API (`/v1/users`) as the console's own user page. Passwords are
//! read from standard input (one line), never from the command line.

use std::io::BufRead;

use axum::http::Method;
use serde_json::{Value, json};

use crate::client::{Send, enc, print};
use crate::cmd_api::Common;
use crate::exit::{Coded, Exit, bail};

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is the first line of standard input.
    Add {
        #[command(flatten)]
        c: Common,
        /// Login name: lowercase letters, digits, `.`, `-`, `_`.
        name: String,
        /// administrator | operator | viewer
        #[arg(long)]
        role: String,
        /// The name written on the records this person makes (e.g. 王芳).
        #[arg(long, default_value = "")]
        display_name: String,
    },
    /// Every user with their role.
    List {
        #[command(flatten)]
        c: Common,
    },
    /// Change a user's role, name or password (`--password`: read from
    /// standard input), or disable or enable the account.
    Set {
        #[command(flatten)]
        c: Common,
        name: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// Read a new password from standard input.
        #[arg(long)]
        password: bool,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
    },
    /// Remove a user (their sessions end).
    Remove {
        #[command(flatten)]
        c: Common,
        name: String,
    },
    /// The audit log, newest first.
    Audit {
        #[command(flatten)]
        c: Common,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| anyhow::anyhow!("reading the password from standard input: {e}"))
        .code(Exit::BadInput)?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        return bail(
            Exit::BadInput,
            "no password on standard input (e.g. `read -s p; echo \"$p\" | gongjian user add ...`)",
        );
    }
    Ok(p)
}

fn call(c: &Common, method: Method, path: &str, body: Send) -> anyhow::Result<Value> {
    let client = c.client()?;
    let v = client.json(method, path, body);
    client.close();
    v
}

pub fn run(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            c,
            name,
            role,
            display_name,
        } => {
            let password = read_password()?;
            let v = call(
                &c,
                Method::POST,
                "/v1/users",
                Send::Json(json!({
                    "name": name, "role": role, "display_name": display_name, "password": password,
                })),
            )?;
            print(&v, c.json, None, &[]);
        }
        UserCommand::List { c } => {
            let v = call(&c, Method::GET, "/v1/users", Send::None)?;
            print(
                &v,
                c.json,
                Some("users"),
                &["name", "display_name", "role", "disabled"],
            );
        }
        UserCommand::Set {
            c,
            name,
            role,
            display_name,
            password,
            disable,
            enable,
        } => {
            let mut body = json!({});
            if let Some(r) = role {
                body["role"] = json!(r);
            }
            if let Some(d) = display_name {
                body["display_name"] = json!(d);
            }
            if password {
                body["password"] = json!(read_password()?);
            }
            if disable || enable {
                body["disabled"] = json!(disable);
            }
            let v = call(
                &c,
                Method::PATCH,
                &format!("/v1/users/{}", enc(&name)),
                Send::Json(body),
            )?;
            print(&v, c.json, None, &[]);
        }
        UserCommand::Remove { c, name } => {
            let v = call(
                &c,
                Method::DELETE,
                &format!("/v1/users/{}", enc(&name)),
                Send::None,
            )?;
            print(&v, c.json, None, &[]);
        }
        UserCommand::Audit { c, limit } => {
            let v = call(
                &c,
                Method::GET,
                &format!("/v1/audit?limit={limit}"),
                Send::None,
            )?;
            print(
                &v,
                c.json,
                Some("entries"),
                &["seq", "at", "person", "role", "action", "status", "detail"],
            );
        }
    }
    Ok(())
}
