//! `matterbak sql` streams: a query producing far more data than the memory it may use runs
//! through the real CSV and JSON writers without the process growing. The test runs alone in
//! a child process (`common::alone_in_child`), so the peak resident size (VmHWM) measured is
//! this test's, not that of the other tests sharing the test binary's process.

use crate::common;

use matterbak::catalog::{Access, Catalog};
use matterbak::results::{CsvWriter, JsonWriter};

/// Rows and text bytes per row of the generated result: about 45 MB per format.
const ROWS: u64 = 1_000_000;
const TEXT: usize = 40;

/// Peak resident set size of this process, in KiB (Linux only: the test fails elsewhere
/// rather than pass without measuring).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status (the peak memory measured; Linux only)");
    let line = status.lines().find(|l| l.starts_with("VmHWM:"));
    line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Counts what it is given and keeps none of it.
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_million_row_query_streams_in_constant_memory() {
    let name = module_path!().split_once("::").unwrap().1;
    if !common::alone_in_child(&format!(
        "{name}::a_million_row_query_streams_in_constant_memory"
    )) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    drop(Catalog::open(&dir.path().join("catalog.sqlite"), Access::ReadWrite).unwrap());
    let catalog = Catalog::open(&dir.path().join("catalog.sqlite"), Access::ReadOnly).unwrap();
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
         SELECT i, printf('%.{TEXT}c', 'x') AS text FROM n"
    );
    let before = peak_rss_kib();

    let mut csv = CsvWriter::new(Counter(0));
    catalog.run_sql(&sql, &mut csv).unwrap();
    let csv_bytes = csv.finish().unwrap().0;
    assert!(csv_bytes > ROWS * TEXT as u64, "{csv_bytes}");

    let mut json = JsonWriter::new(Counter(0));
    catalog.run_sql(&sql, &mut json).unwrap();
    let json_bytes = json.finish().unwrap().0;
    assert!(json_bytes > ROWS * TEXT as u64, "{json_bytes}");

    let after = peak_rss_kib();
    let grown_mib = (after.saturating_sub(before)) / 1024;
    assert!(
        grown_mib < 20,
        "peak memory grew by {grown_mib} MiB while {} MB of results went through",
        (csv_bytes + json_bytes) / 1_000_000
    );
}
