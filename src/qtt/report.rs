//! Printing results: a line per case (or per file with `--summary-only`) and the summary
//! line, or one JSON document with `--json`.

use std::io::Write;

use serde_json::{Map, Value, json};

use super::case::{Outcome, Status};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `PASS|FAIL|SKIP file::case [reason]` as each case finishes.
    Cases,
    /// Counts per file.
    SummaryOnly,
    /// One JSON document at the end.
    Json,
}

/// Counts of passed, failed and skipped cases.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases that were skipped.
    pub skipped: usize,
}

impl Counts {
    fn add(&mut self, status: Status) {
        match status {
            Status::Pass => self.passed += 1,
            Status::Fail => self.failed += 1,
            Status::Skip => self.skipped += 1,
        }
    }

    fn line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }

    fn json(&self) -> Value {
        json!({"passed": self.passed, "failed": self.failed, "skipped": self.skipped})
    }
}

/// Collects results and prints them in the chosen style.
pub struct Reporter {
    style: Style,
    total: Counts,
    /// Per file, in the order files ran.
    files: Vec<(String, Counts)>,
    cases: Vec<Value>,
}

impl Reporter {
    /// A reporter printing in `style`.
    pub fn new(style: Style) -> Self {
        Reporter {
            style,
            total: Counts::default(),
            files: Vec::new(),
            cases: Vec::new(),
        }
    }

    /// Records the outcome of one case of `file`.
    pub fn case(&mut self, file: &str, name: &str, outcome: &Outcome) {
        self.total.add(outcome.status);
        match self.files.last_mut() {
            Some((f, counts)) if f == file => counts.add(outcome.status),
            _ => {
                let mut counts = Counts::default();
                counts.add(outcome.status);
                self.files.push((file.to_string(), counts));
            }
        }
        match self.style {
            Style::Cases => {
                let mut line = format!("{} {file}::{name}", outcome.status.as_str());
                if let Some(reason) = &outcome.reason {
                    line.push(' ');
                    line.push_str(&one_line(reason));
                }
                print_line(&line);
            }
            Style::SummaryOnly => {}
            Style::Json => self.cases.push(json!({
                "file": file,
                "name": name,
                "status": outcome.status.as_str(),
                "reason": outcome.reason,
            })),
        }
    }

    /// Prints the summary; returns the totals.
    pub fn finish(self) -> Counts {
        match self.style {
            Style::Cases => print_line(&self.total.line()),
            Style::SummaryOnly => {
                for (file, counts) in &self.files {
                    print_line(&format!("{file}: {}", counts.line()));
                }
                print_line(&self.total.line());
            }
            Style::Json => {
                let files: Map<String, Value> = self
                    .files
                    .iter()
                    .map(|(f, c)| (f.clone(), c.json()))
                    .collect();
                let doc = json!({
                    "summary": self.total.json(),
                    "files": files,
                    "cases": self.cases,
                });
                print_line(&doc.to_string());
            }
        }
        self.total
    }
}

/// Keeps a case on one line: error messages may span several.
fn one_line(text: &str) -> String {
    text.replace('\r', "").replace('\n', "\\n")
}

/// Prints a line, ignoring a closed stdout (e.g. piped into `head`) instead of panicking.
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}
