//! A small line diff for readable assertion failures.

/// Renders a unified-style line diff of `expected` vs `actual` (`-` lines
/// only in expected, `+` only in actual, two spaces for common lines).
/// Trailing newline differences are shown explicitly.
pub fn line_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.split_inclusive('\n').collect();
    let b: Vec<&str> = actual.split_inclusive('\n').collect();
    let mut out = String::new();

    // LCS table; outputs are small, but cap the work anyway.
    if a.len().saturating_mul(b.len()) > 4_000_000 {
        out.push_str("(outputs too large for a line diff; first difference shown)\n");
        let pos = expected
            .bytes()
            .zip(actual.bytes())
            .position(|(x, y)| x != y)
            .unwrap_or(expected.len().min(actual.len()));
        out.push_str(&format!(
            "first difference at byte {pos} (expected {} bytes, actual {} bytes)\n",
            expected.len(),
            actual.len()
        ));
        return out;
    }
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let line = |tag: &str, l: &str| {
        let (body, nl) = match l.strip_suffix('\n') {
            Some(b) => (b, ""),
            None => (l, "  (no newline at end)"),
        };
        format!("{tag} {body}{nl}\n")
    };
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push_str(&line(" ", a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&line("-", a[i]));
            i += 1;
        } else {
            out.push_str(&line("+", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::line_diff;

    #[test]
    fn marks_changes() {
        let d = line_diff("a\nb\nc\n", "a\nB\nc");
        assert_eq!(d, "  a\n- b\n- c\n+ B\n+ c  (no newline at end)\n");
    }

    #[test]
    fn equal_is_all_context() {
        assert_eq!(line_diff("x\n", "x\n"), "  x\n");
    }
}
