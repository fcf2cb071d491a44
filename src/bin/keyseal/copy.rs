//! `keyseal copy --to`: the whole store at `--db` into a new, empty one.

use crate::args::{Cli, CopyArgs};
use crate::output::{Failure, Outcome};

pub fn run(_cli: &Cli, _args: &CopyArgs) -> Outcome {
    Err(Failure("copy: not available yet".into()))
}
