//! Progress bars: one style for the whole tool, silent with `-q` or when stderr is not a
//! terminal (indicatif's stderr target hides itself then).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar for `total` steps of `unit`, or a hidden one when `quiet`.
pub(crate) fn bar(total: u64, unit: &str, quiet: bool) -> ProgressBar {
    let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    let template =
        format!("{{msg:>12}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{elapsed}}, eta {{eta}})");
    // The template is a constant apart from the unit, which contains no braces.
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
