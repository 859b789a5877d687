//! "Did you mean …?" suggestions for misspelt keys and values.
//!
//! The distance is the optimal-string-alignment edit distance (insertions, deletions,
//! substitutions and transpositions of neighbours), compared case-insensitively. A candidate is
//! suggested when it is within a third of the word's length (at least 1, at most 3 edits), or
//! when one word contains the other and is at least half as long.

/// The closest of `candidates` to `word`, if any is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_lowercase();
    let limit = (w.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .filter_map(|&c| {
            let cl = c.to_lowercase();
            let d = edit_distance(&w, &cl);
            let contained = (cl.contains(&w) || w.contains(&cl))
                && 2 * w.len().min(cl.len()) >= w.len().max(cl.len())
                && w.len().min(cl.len()) >= 3;
            (d <= limit || contained).then_some((d, c))
        })
        .min_by_key(|&(d, c)| (d, c))
        .map(|(_, c)| c)
}

/// Optimal-string-alignment distance between two strings (by characters).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[n][m]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("num_depth", "num_depths"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn suggestions() {
        let keys = ["num_depths", "window_size", "voxel_size", "cost_function"];
        assert_eq!(did_you_mean("num_depth", &keys), Some("num_depths"));
        assert_eq!(did_you_mean("Num_Depths", &keys), Some("num_depths"));
        assert_eq!(did_you_mean("windowsize", &keys), Some("window_size"));
        assert_eq!(did_you_mean("voxel", &keys), Some("voxel_size"));
        assert_eq!(did_you_mean("colour_norm", &keys), None);
        assert_eq!(did_you_mean("nc", &["ncc", "ssim"]), Some("ncc"));
    }
}
