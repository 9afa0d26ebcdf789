//! `::add-mask::` for every credential value a step knows, printed before anything else,
//! so the runner replaces each with `***` in the log from then on.

use std::io::Write;

/// The shortest line masked: masking a few characters would blank every word holding
/// them across the log, and no credential is that short.
const MIN_MASKED_CHARS: usize = 8;

/// The workflow commands that mask `values`, one line each. A value that spans lines is
/// masked line by line (the runner masks per line); blank and very short lines are skipped.
pub fn add_mask_lines<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for value in values {
        for line in value
            .lines()
            .map(str::trim)
            .filter(|l| l.chars().count() >= MIN_MASKED_CHARS)
        {
            out.push_str("::add-mask::");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Prints the mask commands on stdout (where the runner reads workflow commands).
pub fn announce<'a>(values: impl IntoIterator<Item = &'a str>) -> std::io::Result<()> {
    let lines = add_mask_lines(values);
    let mut out = std::io::stdout().lock();
    out.write_all(lines.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mask_per_line_of_each_value() {
        assert_eq!(
            add_mask_lines(["sk-ant-oat01-abc", " ", "line-one-of-a-pem\nline-two-of-a-pem \nab"]),
            "::add-mask::sk-ant-oat01-abc\n::add-mask::line-one-of-a-pem\n::add-mask::line-two-of-a-pem\n"
        );
    }
}
