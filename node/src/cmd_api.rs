//! The commands that mirror the HTTP API (`item`, `view`, `grid`,
//! `agreement`, `whistle`, `need`, `status`, `api`): each is one request
//! through [`Client`], to the running daemon or, when none runs, to the
//! same API in this process. Tables for people, `--json` for scripts.

use std::path::PathBuf;

use axum::http::Method;
use serde_json::{Value, json};

use crate::client::{Client, Send, enc, print, query};
use crate::config::DataDir;
use crate::exit::{Coded, Exit, bail};

#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// The node's data directory.
    #[arg(long, env = "GONGJIAN_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Print JSON (one compact document per result) instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Common {
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        Client::connect(&DataDir(self.data_dir.clone()))
    }
}

const ITEM_COLUMNS: &[&str] = &[
    "id",
    "list_zh",
    "title",
    "category",
    "status_zh",
    "unit_name",
    "claimed",
];

fn print_item(c: &Common, v: &Value) {
    if c.json {
        println!("{v}");
    } else {
        print(v, false, None, &[]);
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum ItemCommand {
    /// Add a record to one of this unit's lists (signed, durable before it
    /// prints).
    Add {
        #[command(flatten)]
        c: Common,
        /// need | resource | service | project | responsibility | problem | wish
        #[arg(long)]
        list: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        area: Option<String>,
        /// The grid it belongs to (a grid id).
        #[arg(long)]
        grid: Option<String>,
        /// Projects only: announce for emergency claiming.
        #[arg(long)]
        urgent: bool,
        /// Add this many (numbered), printing each once durable.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
    },
    /// Set the status of a record (the owner's), or record handling of a
    /// problem escalated to this unit.
    Status {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        id: String,
        /// open | in_progress | resolved | closed
        #[arg(long)]
        status: String,
    },
    /// Claim another unit's project or micro-wish (认领).
    Claim {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Move one of this unit's problems up a level.
    Escalate {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        id: String,
        /// zone | community | street | district
        #[arg(long)]
        to: String,
        /// The handling unit (default: this unit's own community, street or
        /// district).
        #[arg(long)]
        handler: Option<String>,
    },
    /// One record with the acts joined to it.
    Show {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ViewCommand {
    /// List items of every unit in this node's scope.
    Items {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        list: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        street: Option<String>,
        #[arg(long)]
        community: Option<String>,
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        urgent: Option<bool>,
        #[arg(long)]
        claimed: Option<bool>,
        /// Text search (Chinese works).
        #[arg(long)]
        q: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        cursor: Option<String>,
        /// A unit above or below this one (default: this unit).
        #[arg(long)]
        scope: Option<String>,
    },
    /// Counts by street, community or unit × list × status.
    Stats {
        #[command(flatten)]
        c: Common,
        /// street | community | unit
        #[arg(long)]
        by: Option<String>,
        /// A unit above or below this one (default: this unit).
        #[arg(long)]
        scope: Option<String>,
    },
    /// Every unit in scope: last heard from, changes held and lacking.
    Units {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        scope: Option<String>,
    },
    /// The digest of the view over a unit's subtree.
    Digest {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        scope: Option<String>,
    },
    /// Open needs beside open resources of the same category and area.
    Matches {
        #[command(flatten)]
        c: Common,
        /// A unit above or below this one (default: this unit).
        #[arg(long)]
        scope: Option<String>,
    },
    /// Co-building agreements with their parties' signatures.
    Agreements {
        #[command(flatten)]
        c: Common,
        /// draft | signed | active | expired | terminated
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        party: Option<String>,
        #[arg(long)]
        expiring_within_days: Option<u32>,
        /// A unit above or below this one (default: this unit).
        #[arg(long)]
        scope: Option<String>,
    },
    /// The grid tree with counts summed up each level.
    Grids {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        scope: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum GridCommand {
    /// Add (or, with an existing --id, replace) one of this unit's grids.
    Add {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        id: Option<String>,
        /// zone | residential | micro | building
        #[arg(long)]
        level: String,
        #[arg(long)]
        name: String,
        /// The parent grid's id (as the view prints it).
        #[arg(long)]
        parent: Option<String>,
        #[arg(long, default_value = "")]
        leader: String,
        #[arg(long, default_value = "")]
        party_branch: String,
        #[arg(long)]
        staff: Vec<String>,
        #[arg(long, default_value_t = 0)]
        households: u64,
        #[arg(long, default_value_t = 0)]
        compounds: u64,
        #[arg(long, default_value_t = 0)]
        resident_units: u64,
        #[arg(long, default_value_t = 0)]
        posts: u64,
        #[arg(long, default_value_t = 0)]
        members: u64,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum AgreementCommand {
    /// Propose a co-building agreement with other units.
    Add {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        title: String,
        /// Another party's unit id (repeat for each).
        #[arg(long = "party", required = true)]
        parties: Vec<String>,
        /// First day, YYYY-MM-DD (China Standard Time).
        #[arg(long)]
        start: String,
        /// Last day, YYYY-MM-DD.
        #[arg(long)]
        end: String,
        /// A service this unit commits (repeat for each).
        #[arg(long = "service")]
        services: Vec<String>,
        #[arg(long, default_value = "")]
        contact: String,
    },
    /// Sign an agreement this unit is a party to, as this node holds it.
    Sign {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        id: String,
        #[arg(long, default_value = "")]
        note: String,
        /// This unit's own commitments, recorded before signing.
        #[arg(long = "service")]
        services: Vec<String>,
        #[arg(long)]
        contact: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum WhistleCommand {
    /// Blow a whistle (吹哨): call levels to respond.
    Add {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        title: String,
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        area: Option<String>,
        /// district | street | community | resident (repeat; none: all).
        #[arg(long = "level")]
        levels: Vec<String>,
    },
    /// Respond to another unit's whistle (报到).
    Respond {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum NeedCommand {
    /// Add a need (the same as `item add --list need`).
    Add {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        category: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Add this many needs (numbered), printing each once durable.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
    },
    /// List the needs of every unit in scope, or of one unit.
    List {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        unit: Option<String>,
    },
    /// Set the status of one of this unit's needs.
    Status {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        id: String,
        /// open | in_progress | resolved | closed
        #[arg(long)]
        status: String,
    },
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds of a day in China Standard Time (UTC+8): its first second,
/// or with `last` its last.
fn parse_day(flag: &str, s: &str, last: bool) -> anyhow::Result<i64> {
    let parts: Vec<&str> = s.split('-').collect();
    let nums: Option<Vec<i64>> = parts.iter().map(|p| p.parse().ok()).collect();
    let Some([y, m, d]) = nums.as_deref().and_then(|n| <[i64; 3]>::try_from(n).ok()) else {
        return bail(Exit::BadInput, format!("{flag}: `{s}` is not YYYY-MM-DD"));
    };
    let month_days = [
        31,
        28 + i64::from(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m)
        || d < 1
        || d > month_days[(m - 1) as usize]
        || !(1970..=9999).contains(&y)
    {
        return bail(Exit::BadInput, format!("{flag}: `{s}` is not a date"));
    }
    let start = days_from_civil(y, m, d) * 86_400 - 8 * 3600;
    Ok(if last { start + 86_399 } else { start })
}

/// POSTs `body` and prints the record the API answers with.
fn post(c: &Common, path: &str, body: Value) -> anyhow::Result<()> {
    let client = c.client()?;
    let v = client.json(Method::POST, path, Send::Json(body));
    client.close();
    print_item(c, &v?);
    Ok(())
}

/// GETs `path` and prints it: the rows under `key` as a table with
/// `columns`, or the JSON with `--json`.
fn show(c: &Common, path: &str, key: Option<&str>, columns: &[&str]) -> anyhow::Result<()> {
    let v = get(c, path)?;
    print(&v, c.json, key, columns);
    Ok(())
}

fn get(c: &Common, path: &str) -> anyhow::Result<Value> {
    let client = c.client()?;
    let v = client.json(Method::GET, path, Send::None);
    client.close();
    v
}

/// Every page of `GET /v1/view/items` with `q` (a query string without
/// cursor), as one list.
fn all_items(client: &Client, q: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if q.is_empty() { "?" } else { "&" };
        let path = match &cursor {
            None => format!("/v1/view/items{q}"),
            Some(c) => format!("/v1/view/items{q}{sep}cursor={}", enc(c)),
        };
        let page = client.json(Method::GET, &path, Send::None)?;
        out.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(out),
        }
    }
}

fn add_items(c: &Common, body: Value, title: &str, repeat: u32) -> anyhow::Result<()> {
    let client = c.client()?;
    for n in 1..=repeat {
        let mut b = body.clone();
        if repeat > 1 {
            b["title"] = json!(format!("{title} {n}"));
        }
        // Printed only once the node has made the write durable.
        let v = client.json(Method::POST, "/v1/items", Send::Json(b))?;
        print_item(c, &v);
    }
    client.close();
    Ok(())
}

pub fn item(cmd: ItemCommand) -> anyhow::Result<()> {
    match cmd {
        ItemCommand::Add {
            c,
            list,
            title,
            category,
            description,
            area,
            grid,
            urgent,
            repeat,
        } => {
            let body = json!({
                "list": list, "title": title, "category": category,
                "description": description, "area": area, "grid": grid,
                "urgent": urgent.then_some(true),
            });
            add_items(&c, body, &title, repeat)
        }
        ItemCommand::Status { c, id, status } => post(
            &c,
            &format!("/v1/items/{}/status", enc(&id)),
            json!({ "status": status }),
        ),
        ItemCommand::Claim { c, id, note } => post(
            &c,
            &format!("/v1/items/{}/claim", enc(&id)),
            json!({ "note": note }),
        ),
        ItemCommand::Escalate { c, id, to, handler } => post(
            &c,
            &format!("/v1/items/{}/escalate", enc(&id)),
            json!({ "to": to, "handler": handler }),
        ),
        ItemCommand::Show { c, id } => {
            let v = get(&c, &format!("/v1/view/items/{}", enc(&id)))?;
            print_item(&c, &v);
            Ok(())
        }
    }
}

pub fn view(cmd: ViewCommand) -> anyhow::Result<()> {
    match cmd {
        ViewCommand::Items {
            c,
            list,
            status,
            unit,
            street,
            community,
            category,
            urgent,
            claimed,
            q,
            limit,
            cursor,
            scope,
        } => {
            let path = format!(
                "/v1/view/items{}",
                query(&[
                    ("list", list),
                    ("status", status),
                    ("unit", unit),
                    ("street", street),
                    ("community", community),
                    ("category", category),
                    ("urgent", urgent.map(|b| b.to_string())),
                    ("claimed", claimed.map(|b| b.to_string())),
                    ("q", q),
                    ("limit", limit.map(|n| n.to_string())),
                    ("cursor", cursor),
                    ("scope", scope),
                ])
            );
            show(&c, &path, Some("items"), ITEM_COLUMNS)
        }
        ViewCommand::Stats { c, by, scope } => show(
            &c,
            &format!("/v1/view/stats{}", query(&[("by", by), ("scope", scope)])),
            Some("stats"),
            &["area_name", "area", "list", "status", "count"],
        ),
        ViewCommand::Units { c, scope } => show(
            &c,
            &format!("/v1/view/units{}", query(&[("scope", scope)])),
            Some("units"),
            &[
                "unit",
                "name",
                "kind",
                "last_heard",
                "documents",
                "changes_held",
                "heads_lacking",
            ],
        ),
        ViewCommand::Digest { c, scope } => show(
            &c,
            &format!("/v1/view/digest{}", query(&[("scope", scope)])),
            None,
            &[],
        ),
        ViewCommand::Matches { c, scope } => {
            let v = get(
                &c,
                &format!("/v1/view/matches{}", query(&[("scope", scope)])),
            )?;
            if c.json {
                println!("{v}");
            } else {
                let rows: Vec<Value> = v["matches"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        json!({
                            "need": m["need"]["title"],
                            "need_unit": m["need"]["unit_name"],
                            "category": m["need"]["category"],
                            "resources": m["resources"].as_array().into_iter().flatten()
                                .map(|r| format!("{} ({})", r["title"].as_str().unwrap_or(""), r["unit_name"].as_str().unwrap_or("")))
                                .collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                print(
                    &json!({ "matches": rows }),
                    false,
                    Some("matches"),
                    &["need", "need_unit", "category", "resources"],
                );
            }
            Ok(())
        }
        ViewCommand::Agreements {
            c,
            status,
            party,
            expiring_within_days,
            scope,
        } => show(
            &c,
            &format!(
                "/v1/view/agreements{}",
                query(&[
                    ("status", status),
                    ("party", party),
                    (
                        "expiring_within_days",
                        expiring_within_days.map(|d| d.to_string())
                    ),
                    ("scope", scope),
                ])
            ),
            Some("agreements"),
            &["id", "title", "status_zh", "parties", "ends_in_days"],
        ),
        ViewCommand::Grids { c, scope } => {
            let v = get(&c, &format!("/v1/view/grids{}", query(&[("scope", scope)])))?;
            if c.json {
                println!("{v}");
            } else {
                fn walk(n: &Value, depth: usize, rows: &mut Vec<Value>) {
                    let t = &n["totals"];
                    rows.push(json!({
                        "grid": format!("{}{}", "  ".repeat(depth), n["name"].as_str().unwrap_or("")),
                        "level": n["level"], "households": t["households"],
                        "compounds": t["compounds"], "resident_units": t["resident_units"],
                        "posts": t["posts"], "members": t["members"],
                    }));
                    for c in n["children"].as_array().into_iter().flatten() {
                        walk(c, depth + 1, rows);
                    }
                }
                let mut rows = Vec::new();
                for n in v["grids"].as_array().into_iter().flatten() {
                    walk(n, 0, &mut rows);
                }
                print(
                    &json!({ "grids": rows }),
                    false,
                    Some("grids"),
                    &[
                        "grid",
                        "level",
                        "households",
                        "compounds",
                        "resident_units",
                        "posts",
                        "members",
                    ],
                );
            }
            Ok(())
        }
    }
}

pub fn grid(cmd: GridCommand) -> anyhow::Result<()> {
    let GridCommand::Add {
        c,
        id,
        level,
        name,
        parent,
        leader,
        party_branch,
        staff,
        households,
        compounds,
        resident_units,
        posts,
        members,
    } = cmd;
    post(
        &c,
        "/v1/grids",
        json!({
            "id": id, "level": level, "name": name, "parent": parent,
            "leader": leader, "party_branch": party_branch, "staff": staff,
            "counts": {"households": households, "compounds": compounds,
                "resident_units": resident_units, "posts": posts, "members": members},
        }),
    )
}

pub fn agreement(cmd: AgreementCommand) -> anyhow::Result<()> {
    match cmd {
        AgreementCommand::Add {
            c,
            title,
            parties,
            start,
            end,
            services,
            contact,
        } => {
            let start = parse_day("--start", &start, false)?;
            let end = parse_day("--end", &end, true)?;
            post(
                &c,
                "/v1/agreements",
                json!({"title": title, "parties": parties, "start": start, "end": end,
                    "services": services, "contact": contact}),
            )
        }
        AgreementCommand::Sign {
            c,
            id,
            note,
            services,
            contact,
        } => {
            let mut body = json!({ "note": note });
            if !services.is_empty() {
                body["services"] = json!(services);
            }
            if let Some(ct) = contact {
                body["contact"] = json!(ct);
            }
            post(&c, &format!("/v1/agreements/{}/sign", enc(&id)), body)
        }
    }
}

pub fn whistle(cmd: WhistleCommand) -> anyhow::Result<()> {
    match cmd {
        WhistleCommand::Add {
            c,
            title,
            category,
            description,
            area,
            levels,
        } => post(
            &c,
            "/v1/whistles",
            json!({"title": title, "category": category, "description": description,
                    "area": area, "levels": levels}),
        ),
        WhistleCommand::Respond { c, id, note } => post(
            &c,
            &format!("/v1/whistles/{}/respond", enc(&id)),
            json!({ "note": note }),
        ),
    }
}

pub fn need(cmd: NeedCommand) -> anyhow::Result<()> {
    match cmd {
        NeedCommand::Add {
            c,
            title,
            category,
            description,
            repeat,
        } => {
            let body = json!({"list": "need", "title": title, "category": category,
                "description": description});
            add_items(&c, body, &title, repeat)
        }
        NeedCommand::List { c, unit } => {
            let client = c.client()?;
            let items = all_items(
                &client,
                &query(&[
                    ("list", Some("need".to_owned())),
                    ("unit", unit),
                    ("limit", Some("1000".to_owned())),
                ]),
            )?;
            client.close();
            let v = Value::Array(items);
            if c.json {
                println!("{v}");
            } else {
                print(&json!({ "items": v }), false, Some("items"), ITEM_COLUMNS);
            }
            Ok(())
        }
        NeedCommand::Status { c, id, status } => item(ItemCommand::Status { c, id, status }),
    }
}

/// `gongjian status`: the node, its store, its certificate, its peers.
pub fn status(c: Common) -> anyhow::Result<()> {
    let v = get(&c, "/v1/status")?;
    if !c.json
        && let Some(state) = v["certificate"]["state"].as_str()
        && state != "valid"
    {
        eprintln!(
            "warning: this node's certificate is {state}: {}",
            if state == "expiring" {
                format!(
                    "{} days left; ask the parent unit to renew it",
                    v["certificate"]["days_left"]
                )
            } else {
                v["certificate"]["why"].as_str().unwrap_or("").to_owned()
            }
        );
    }
    if !c.json
        && let Some(damaged) = v["damaged"].as_array()
        && !damaged.is_empty()
    {
        eprintln!(
            "warning: the store's {} files are damaged (counts stop at the damage): stop the node and run `gongjian verify --repair --data-dir DIR`",
            damaged
                .iter()
                .filter_map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    print(&v, c.json, None, &[]);
    Ok(())
}

/// `gongjian api METHOD PATH [--body JSON]`: any API request, for scripts.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    #[arg(long, env = "GONGJIAN_DATA_DIR")]
    data_dir: PathBuf,
    /// GET or POST.
    method: String,
    /// The path and query, e.g. `/v1/view/items?list=need`.
    path: String,
    /// A JSON request body.
    #[arg(long)]
    body: Option<String>,
}

pub fn api(a: ApiArgs) -> anyhow::Result<()> {
    let method = match a.method.to_ascii_uppercase().as_str() {
        "GET" => Method::GET,
        "POST" => Method::POST,
        other => return bail(Exit::BadInput, format!("method `{other}`: GET or POST")),
    };
    if !a.path.starts_with('/') {
        return bail(
            Exit::BadInput,
            format!("path `{}` must start with /", a.path),
        );
    }
    let body = match a.body {
        None => Send::None,
        Some(b) => Send::Json(
            serde_json::from_str(&b)
                .map_err(|e| anyhow::anyhow!("--body is not JSON: {e}"))
                .code(Exit::BadInput)?,
        ),
    };
    let client = Client::connect(&DataDir(a.data_dir))?;
    let v = client.json(method, &a.path, body);
    client.close();
    println!("{}", v?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_china_standard_time() {
        // 2026-01-01 00:00 +08:00 = 2025-12-31 16:00 UTC.
        assert_eq!(
            parse_day("--start", "2026-01-01", false).unwrap(),
            1_767_196_800
        );
        assert_eq!(
            parse_day("--end", "2026-01-01", true).unwrap(),
            1_767_196_800 + 86_399
        );
        assert!(parse_day("--start", "2026-02-29", false).is_err());
        assert!(parse_day("--start", "2024-02-29", false).is_ok());
        assert!(parse_day("--start", "2026-13-01", false).is_err());
        assert!(parse_day("--start", "26-1", false).is_err());
    }
}
