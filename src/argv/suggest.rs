//! "Did you mean": the known word nearest to a mistyped one, as git suggests `status` for
//! `stauts`. Edit distance counts an adjacent swap as one edit, the commonest typo.

/// Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between the first i chars of a and the first j chars of b.
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `given`, if it is close enough to be what was meant: at most two
/// edits (one for words of up to four letters), or `given` is the start of exactly one candidate.
pub fn nearest<'a>(given: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let given_len = given.chars().count();
    let limit = if given_len <= 4 { 1 } else { 2 };
    let close = candidates
        .iter()
        .map(|c| (distance(given, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    if close.is_some() {
        return close;
    }
    let mut starting = candidates.iter().filter(|c| given_len >= 2 && c.starts_with(given));
    match (starting.next(), starting.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_word_that_was_meant() {
        assert_eq!(distance("lsit", "list"), 1, "a swap is one edit");
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        let verbs = ["init", "generate-certs", "unlock", "lock", "rotate", "reset", "set", "reveal", "list"];
        assert_eq!(nearest("lsit", &verbs), Some("list"));
        assert_eq!(nearest("unlokc", &verbs), Some("unlock"));
        assert_eq!(nearest("revael", &verbs), Some("reveal"));
        assert_eq!(nearest("generate", &verbs), Some("generate-certs"), "a unique prefix");
        assert_eq!(nearest("doctor", &verbs), None);
        assert_eq!(nearest("x", &verbs), None);
    }
}
