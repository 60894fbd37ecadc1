//! The probe's text report: the requests as a table, what the edge changed (with
//! `--direct`), the checks, the verdict. JSON is the model serialized as it is.

use std::fmt::Write as _;

use super::model::{Change, DirectComparison, ProbeReport};

impl ProbeReport {
    /// The human-readable report: the requests as a table, the checks, the verdict.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "cors-edge probe  {}", self.url);
        let asked = if self.request_headers.is_empty() {
            format!("preflights ask for {}", self.method)
        } else {
            format!(
                "preflights ask for {} with {}",
                self.method,
                self.request_headers.join(", ")
            )
        };
        let _ = writeln!(
            out,
            "  origins {}; {asked}{}",
            self.origins.join(", "),
            if self.credentials {
                "; credentialed"
            } else {
                ""
            }
        );
        match &self.connection {
            Some(connection) => {
                let _ = writeln!(out, "  connection {}", connection.describe());
            }
            None => {
                let _ = writeln!(out, "  connection: none completed");
            }
        }
        let _ = writeln!(out);

        let header = [
            "#", "request", "origin", "method", "status", "ACAO", "Vary", "cache", "Age",
        ]
        .map(str::to_string);
        let rows: Vec<[String; 9]> = self
            .exchanges
            .iter()
            .map(|exchange| {
                let seen = &exchange.headers;
                let request = if exchange.try_number > 1 {
                    format!("{} (try {})", exchange.kind.label(), exchange.try_number)
                } else {
                    exchange.kind.label().to_string()
                };
                [
                    exchange.step.to_string(),
                    request,
                    exchange.origin.clone().unwrap_or_else(|| "-".into()),
                    exchange.method.clone(),
                    exchange
                        .status
                        .map_or_else(|| "ERROR".into(), |status| status.to_string()),
                    dash(&seen.access_control_allow_origin),
                    abbreviate_vary(&dash(&seen.vary)),
                    seen.cache_status.as_deref().map_or_else(
                        || "-".into(),
                        |status| {
                            status
                                .split_once(": ")
                                .map_or(status, |(_, v)| v)
                                .to_string()
                        },
                    ),
                    dash(&seen.age),
                ]
            })
            .collect();
        write_table(&mut out, "", &header, &rows);
        for exchange in &self.exchanges {
            if let Some(error) = &exchange.error {
                let _ = writeln!(out, "  request {} failed: {error}", exchange.step);
            }
        }
        if self.exchanges.iter().any(|exchange| {
            exchange
                .headers
                .vary
                .as_deref()
                .is_some_and(|vary| vary.to_ascii_lowercase().contains("access-control-request"))
        }) {
            let _ = writeln!(
                out,
                "  (ACR-Method/ACR-Headers: Access-Control-Request-Method/-Headers)"
            );
        }
        let _ = writeln!(out);
        if let Some(direct) = &self.direct {
            render_direct(&mut out, direct);
        }

        let _ = writeln!(out, "checks");
        let id_width = self
            .checks
            .iter()
            .map(|check| check.id.len())
            .max()
            .unwrap_or(0);
        for check in &self.checks {
            let _ = writeln!(
                out,
                "  {}  {:<id_width$}  {}",
                check.verdict.label(),
                check.id,
                check.message
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "overall: {} ({} failed, {} warnings, {} checks)",
            self.overall.label(),
            self.failed,
            self.warnings,
            self.checks.len()
        );
        out
    }
}

fn dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".to_string())
}

/// Keeps the table narrow: the two preflight request headers are long and common.
fn abbreviate_vary(vary: &str) -> String {
    vary.replace("Access-Control-Request-Method", "ACR-Method")
        .replace("access-control-request-method", "ACR-Method")
        .replace("Access-Control-Request-Headers", "ACR-Headers")
        .replace("access-control-request-headers", "ACR-Headers")
}

/// Left-aligned columns two spaces apart, each line prefixed with `indent`.
fn write_table<const N: usize>(
    out: &mut String,
    indent: &str,
    header: &[String; N],
    rows: &[[String; N]],
) {
    let mut widths = header.clone().map(|cell| cell.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{indent}{}", line.join("  ").trim_end());
    }
}

/// The side-by-side diff: each field the edge changed, the origin's value beside the
/// edge's, and the requests it was seen on.
fn render_direct(out: &mut String, direct: &DirectComparison) {
    let _ = writeln!(out, "edge vs origin (--direct {})", direct.url);
    if let Some(connection) = &direct.connection {
        let _ = writeln!(out, "  origin connection {}", connection.describe());
    }
    let failed = direct
        .exchanges
        .iter()
        .filter(|exchange| exchange.error.is_some())
        .count();
    if failed > 0 {
        let _ = writeln!(
            out,
            "  {failed} of {} requests to the origin failed",
            direct.exchanges.len()
        );
    }
    if direct.differences.is_empty() {
        let _ = writeln!(out, "  no difference in status or headers");
        let _ = writeln!(out);
        return;
    }
    let header = ["field", "change", "origin", "edge", "requests"].map(str::to_string);
    let rows: Vec<[String; 5]> = direct
        .differences
        .iter()
        .map(|difference| {
            [
                difference.field.clone(),
                match difference.change {
                    Change::Added => "added",
                    Change::Stripped => "stripped",
                    Change::Changed => "changed",
                }
                .to_string(),
                abbreviate_vary(&dash(&difference.origin_value)),
                abbreviate_vary(&dash(&difference.edge_value)),
                steps(&difference.steps, direct.exchanges.len()),
            ]
        })
        .collect();
    write_table(out, "  ", &header, &rows);
    let _ = writeln!(out);
}

/// `all`, or `#1 #2 #5`, or `#1 #2 … (7)`.
fn steps(steps: &[usize], total: usize) -> String {
    if steps.len() == total && total > 1 {
        return "all".to_string();
    }
    let shown: Vec<String> = steps
        .iter()
        .take(6)
        .map(|step| format!("#{step}"))
        .collect();
    if steps.len() > 6 {
        format!("{} … ({})", shown.join(" "), steps.len())
    } else {
        shown.join(" ")
    }
}
