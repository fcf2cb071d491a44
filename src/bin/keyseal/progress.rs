//! Progress of long commands (`rotate-master`, `migrate`) on stderr, so stdout keeps only the
//! result: a bar on a terminal, otherwise a plain line at most once a second.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// One running count of rows; silent when `quiet` (`--json`).
pub struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    label: &'static str,
    last_line: Instant,
    quiet: bool,
}

impl Reporter {
    pub fn new(label: &'static str, quiet: bool) -> Reporter {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {pos}/{len} rows, {per_sec}, ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(label);
            bar
        });
        Reporter {
            bar,
            started: Instant::now(),
            label,
            last_line: Instant::now(),
            quiet,
        }
    }

    pub fn update(&mut self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        } else if !self.quiet
            && (self.last_line.elapsed() >= Duration::from_secs(1) || done == total)
        {
            self.last_line = Instant::now();
            #[allow(clippy::cast_precision_loss)]
            let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            eprintln!("{}: {done}/{total} rows ({rate:.0} rows/s)", self.label);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
