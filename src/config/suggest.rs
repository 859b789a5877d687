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

/// Optimal-string-alignment distance between two strings (by characters): `strsim`'s
/// `osa_distance`, the crate clap already uses for its own suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    strsim::osa_distance(a, b)
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
        // Optimal string alignment, not full Damerau: a transposed pair is not edited again.
        assert_eq!(edit_distance("ca", "abc"), 3);
        // Characters, not bytes.
        assert_eq!(edit_distance("Zürich", "Zurich"), 1);
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
