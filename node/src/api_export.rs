//! CSV and XLSX of every view list (`?format=csv` or `?format=xlsx`), since
//! district offices count in spreadsheets: one row per list entry, nested
//! fields flattened to `a.b` columns, Chinese kept (CSV with a UTF-8 BOM so
//! Excel reads it).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::ApiError;

/// A spreadsheet format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

/// Splits `format` out of a raw query string and parses the rest as `T`
/// (which refuses unknown parameters itself).
pub fn query<T: DeserializeOwned>(raw: Option<&str>) -> Result<(Option<Format>, T), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::bad(format!("query: {e}")))?;
    let mut format = None;
    let mut rest = Vec::new();
    for (k, v) in pairs {
        if k == "format" {
            format = match v.as_str() {
                "json" => None,
                "csv" => Some(Format::Csv),
                "xlsx" => Some(Format::Xlsx),
                other => {
                    return Err(ApiError::bad(format!(
                        "format: `{other}` is not one of json, csv, xlsx"
                    )));
                }
            };
        } else {
            rest.push((k, v));
        }
    }
    let rest =
        serde_urlencoded::to_string(&rest).map_err(|e| ApiError::bad(format!("query: {e}")))?;
    let t = serde_urlencoded::from_str(&rest).map_err(|e| ApiError::bad(format!("query: {e}")))?;
    Ok((format, t))
}

enum Cell {
    Text(String),
    Number(f64),
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Cell)>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                flatten(&key(k), x, out);
            }
        }
        Value::Array(a) => {
            let text: Vec<String> = a.iter().map(summary).collect();
            out.push((prefix.to_owned(), Cell::Text(text.join("; "))));
        }
        Value::Number(n) => out.push((
            prefix.to_owned(),
            n.as_f64()
                .map(Cell::Number)
                .unwrap_or_else(|| Cell::Text(n.to_string())),
        )),
        Value::String(s) => out.push((prefix.to_owned(), Cell::Text(s.clone()))),
        Value::Bool(b) => out.push((prefix.to_owned(), Cell::Text(b.to_string()))),
        Value::Null => out.push((prefix.to_owned(), Cell::Text(String::new()))),
    }
}

/// One list element in one cell: a scalar as is, an object by the fields
/// people read (title or name or kind, unit, note).
fn summary(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => ["title", "name", "kind", "unit", "note", "signed"]
            .iter()
            .filter_map(|k| o.get(*k))
            .filter(|x| !x.is_null() && *x != "")
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Rows as a table: the union of their flattened columns, in first-seen
/// order.
fn table(rows: &[Value]) -> (Vec<String>, Vec<Vec<Option<Cell>>>) {
    let mut columns: Vec<String> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut cells = Vec::new();
        flatten("", r, &mut cells);
        let mut row: Vec<Option<Cell>> = Vec::new();
        for (k, c) in cells {
            let i = *index.entry(k.clone()).or_insert_with(|| {
                columns.push(k);
                columns.len() - 1
            });
            if row.len() <= i {
                row.resize_with(i + 1, || None);
            }
            row[i] = Some(c);
        }
        out.push(row);
    }
    (columns, out)
}

/// Text other units wrote, made safe for a spreadsheet: a cell starting
/// with `=`, `+`, `-`, `@` (or a tab or carriage return) would run as a
/// formula when the district opens the CSV in Excel; a leading `'` keeps
/// it text.
fn defuse(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

/// An XLSX cell holds at most 32,767 characters: longer text (a long
/// joined column) is cut short of it.
fn fit_cell(s: &str) -> &str {
    const MAX: usize = 32_000;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The rows as a CSV or XLSX download named `name`.
pub fn respond(format: Format, name: &str, rows: &[Value]) -> Result<Response, ApiError> {
    let (columns, cells) = table(rows);
    let internal = |e: String| ApiError::internal(format!("writing the {name} export: {e}"));
    let (bytes, mime, ext) = match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer("\u{feff}".as_bytes().to_vec());
            w.write_record(&columns)
                .map_err(|e| internal(e.to_string()))?;
            for row in &cells {
                let rec: Vec<String> = (0..columns.len())
                    .map(|i| match row.get(i) {
                        Some(Some(Cell::Text(s))) => defuse(s),
                        Some(Some(Cell::Number(n))) => n.to_string(),
                        _ => String::new(),
                    })
                    .collect();
                w.write_record(&rec).map_err(|e| internal(e.to_string()))?;
            }
            let bytes = w.into_inner().map_err(|e| internal(e.to_string()))?;
            (bytes, "text/csv; charset=utf-8", "csv")
        }
        Format::Xlsx => {
            let mut wb = rust_xlsxwriter::Workbook::new();
            let ws = wb.add_worksheet();
            let bold = rust_xlsxwriter::Format::new().set_bold();
            let plain = rust_xlsxwriter::Format::new();
            for (c, h) in columns.iter().enumerate() {
                ws.write_string(0, c as u16, h, &bold)
                    .map_err(|e| internal(e.to_string()))?;
            }
            for (r, row) in cells.iter().enumerate() {
                let r = u32::try_from(r + 1).map_err(|e| internal(e.to_string()))?;
                for (c, cell) in row.iter().enumerate() {
                    let res = match cell {
                        Some(Cell::Text(s)) => ws
                            .write_string(r, c as u16, fit_cell(s), &plain)
                            .map(|_| ()),
                        Some(Cell::Number(n)) => {
                            ws.write_number(r, c as u16, *n, &plain).map(|_| ())
                        }
                        None => Ok(()),
                    };
                    res.map_err(|e| internal(e.to_string()))?;
                }
            }
            let bytes = wb.save_to_buffer().map_err(|e| internal(e.to_string()))?;
            (
                bytes,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "xlsx",
            )
        }
    };
    let disposition = format!("attachment; filename=\"gongjian-{name}.{ext}\"");
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).map_err(|e| internal(e.to_string()))?,
            ),
        ],
        bytes,
    )
        .into_response())
}

/// A grid forest as rows: each grid with its depth and summed counts.
pub fn grid_rows(nodes: &[Value]) -> Vec<Value> {
    fn walk(n: &Value, depth: usize, path: &str, out: &mut Vec<Value>) {
        let name = n["name"].as_str().unwrap_or("");
        let path = if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path} / {name}")
        };
        out.push(serde_json::json!({
            "path": path, "depth": depth, "level": n["level"], "unit": n["grid"]["unit"],
            "grid": n["grid"]["id"], "totals": n["totals"],
        }));
        for c in n["children"].as_array().into_iter().flatten() {
            walk(c, depth + 1, &path, out);
        }
    }
    let mut out = Vec::new();
    for n in nodes {
        walk(n, 0, "", &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_stay_text_and_long_cells_fit() {
        assert_eq!(
            defuse("=HYPERLINK(\"http://x\")"),
            "'=HYPERLINK(\"http://x\")"
        );
        assert_eq!(defuse("+1"), "'+1");
        assert_eq!(defuse("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse("独居老人助餐"), "独居老人助餐");
        let long = "助".repeat(40_000);
        assert_eq!(fit_cell(&long).chars().count(), 32_000);
        assert_eq!(fit_cell("短"), "短");
    }
}
