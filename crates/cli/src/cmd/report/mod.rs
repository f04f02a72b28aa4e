//! `ward report compliance`: fetches `sys/reports/compliance` and renders it as Markdown
//! (default), JSON (the API's report as it is), or one self-contained HTML page.

use clap::Subcommand;
use minijinja::{Environment, context};
use ward_api::report::ComplianceReport;

use crate::cmd::Outcome;
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::Format;

/// `ward report ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Judge keys, secrets, tokens, policies, audit devices and the seal against SOC 2
    /// (CC6.1, CC6.6, CC6.7, CC7.2) and PCI DSS 3.6 controls. `-format` markdown
    /// (default), json or html; needs root or `read` on `sys/reports/compliance`.
    Compliance {
        /// Write the report to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<String>,
        /// How far back the event checks (failed logins) look, e.g. `24h` (default 720h).
        #[arg(long, value_name = "DURATION")]
        period: Option<String>,
    },
}

/// The forms a report is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReportFormat {
    Markdown,
    Json,
    Html,
}

impl ReportFormat {
    /// From `-format` (or WARD_FORMAT): `table` means the human form, Markdown.
    fn parse(name: Option<&str>) -> Result<Self, CliError> {
        match name.map(str::to_ascii_lowercase).as_deref() {
            None | Some("markdown" | "md" | "table") => Ok(Self::Markdown),
            Some("json") => Ok(Self::Json),
            Some("html") => Ok(Self::Html),
            Some(_) => Err(CliError::Usage(format!(
                "Invalid report format {:?} (markdown, json or html)",
                name.unwrap_or_default()
            ))),
        }
    }
}

/// Runs `ward report ...`.
pub(crate) async fn run(global: &GlobalArgs, command: ReportCommand) -> Result<Outcome, CliError> {
    let ReportCommand::Compliance { out, period } = command;
    let format = ReportFormat::parse(global.format_name().as_deref())?;
    let context = global.context_with(Format::Json)?;
    let report = context
        .client
        .compliance_report(period.as_deref())
        .await
        .map_err(CliError::api("reading the compliance report"))?;
    let text = render(&report, format)?;
    let Some(path) = out else {
        return Ok(Outcome::ok(text));
    };
    std::fs::write(&path, text).map_err(|source| CliError::Io {
        action: format!("writing the report to {path}"),
        source,
    })?;
    let s = report.summary;
    Ok(Outcome::line(format!(
        "Success! Wrote the compliance report to {path}: {} failed, {} to review, {} passed.",
        s.failed, s.warnings, s.passed
    )))
}

const MARKDOWN_TEMPLATE: &str = include_str!("compliance.md");
const HTML_TEMPLATE: &str = include_str!("compliance.html");

/// The report as text in `format`.
fn render(report: &ComplianceReport, format: ReportFormat) -> Result<String, CliError> {
    let (name, source) = match format {
        ReportFormat::Json => {
            let mut text = serde_json::to_string_pretty(report)
                .map_err(|e| CliError::Failed(format!("Error encoding the report: {e}")))?;
            text.push('\n');
            return Ok(text);
        }
        ReportFormat::Markdown => ("compliance.md", MARKDOWN_TEMPLATE),
        // The `.html` name turns on HTML escaping of every value: names of policies, keys
        // and paths are chosen by users.
        ReportFormat::Html => ("compliance.html", HTML_TEMPLATE),
    };
    let mut env = Environment::new();
    env.add_filter("cell", markdown_cell);
    env.add_template(name, source)
        .and_then(|()| env.get_template(name))
        .and_then(|t| t.render(context! { r => minijinja::value::Serde(report) }))
        .map_err(|e| CliError::Failed(format!("Error rendering the report: {e}")))
}

/// A value made safe for one Markdown table cell: no line break, no column separator.
fn markdown_cell(value: String) -> String {
    value
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_api::report::{CheckStatus, ComplianceCheck, Evidence, ReportPeriod, ReportServer};

    fn report(subject: &str) -> ComplianceReport {
        let checks = vec![ComplianceCheck {
            id: "wildcard-policies".into(),
            title: "No policy grants a wildcard over administrative paths".into(),
            controls: vec!["SOC 2 CC6.1".into()],
            status: CheckStatus::Fail,
            summary: "1 wildcard rule(s) over administrative paths.".into(),
            evidence: vec![Evidence::new(subject, "path \"sys/*\" grants [read]")],
        }];
        ComplianceReport {
            format_version: 1,
            generated_at: "2026-12-06T00:00:00Z".into(),
            period: ReportPeriod {
                start: "2026-11-06T00:00:00Z".into(),
                end: "2026-12-06T00:00:00Z".into(),
                duration: "720h".into(),
            },
            server: ReportServer {
                version: "0.1.0".into(),
                cluster_name: "ward".into(),
                seal_type: "shamir".into(),
                storage_type: "sqlite".into(),
            },
            summary: ward_api::report::ReportSummary::of(&checks),
            checks,
        }
    }

    #[test]
    fn html_escapes_what_users_named() {
        let html = render(&report("policy <script>x|y</script>"), ReportFormat::Html).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains(r#"<span class="status fail">FAIL</span>"#));
    }

    #[test]
    fn markdown_keeps_one_row_per_item() {
        let md = render(&report("policy a|b\nc"), ReportFormat::Markdown).unwrap();
        assert!(md.contains("| policy a\\|b c |"), "{md}");
        assert!(md.contains("| FAIL | No policy grants"), "{md}");
    }

    #[test]
    fn formats_parse_and_table_means_markdown() {
        assert_eq!(ReportFormat::parse(None).unwrap(), ReportFormat::Markdown);
        assert_eq!(
            ReportFormat::parse(Some("table")).unwrap(),
            ReportFormat::Markdown
        );
        assert_eq!(
            ReportFormat::parse(Some("HTML")).unwrap(),
            ReportFormat::Html
        );
        assert!(ReportFormat::parse(Some("yaml")).is_err());
    }
}
