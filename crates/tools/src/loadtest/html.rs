//! `--report FILE.html`: the report as one self-contained page. The template
//! (`report.html`) carries its CSS and the script that draws the SVG charts; the report
//! itself is embedded as JSON, so the page needs no network to be viewed (its
//! Content-Security-Policy forbids any).

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::report::LoadtestReport;
use crate::ToolError;

const TEMPLATE: &str = include_str!("report.html");
const PLACEHOLDER: &str = "/*REPORT_JSON*/";

/// An HTML report file opened before the run.
pub(crate) struct HtmlFile {
    path: PathBuf,
    file: File,
}

pub(crate) fn create(path: &Path) -> Result<HtmlFile, ToolError> {
    let file = File::create(path).map_err(|source| ToolError::WriteFile {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(HtmlFile {
        path: path.to_path_buf(),
        file,
    })
}

impl HtmlFile {
    pub fn write(mut self, report: &LoadtestReport) -> Result<(), ToolError> {
        let page = render(report);
        self.file
            .write_all(page.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| ToolError::WriteFile {
                path: self.path.clone(),
                source,
            })
    }
}

/// The page: the template with the report's JSON in its data block. `<`, `>` and `&`
/// are escaped as JSON unicode escapes so no value (a server's header, a URL) can close
/// the script element.
pub fn render(report: &LoadtestReport) -> String {
    let json = serde_json::to_string(report)
        .unwrap_or_else(|err| format!("{{\"error\": {:?}}}", err.to_string()))
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    TEMPLATE.replacen(PLACEHOLDER, &json, 1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_template_has_one_data_block_and_loads_nothing() {
        let template = super::TEMPLATE;
        assert_eq!(template.matches(super::PLACEHOLDER).count(), 1);
        // The SVG namespace is an identifier, not something fetched.
        let rest = template.replace("http://www.w3.org/2000/svg", "");
        for remote in ["http://", "https://", "src=", "href=", "@import", "url("] {
            assert!(!rest.contains(remote), "the template refers to {remote}");
        }
    }
}
