//! Redis glob patterns (KEYS, SCAN MATCH, CONFIG GET): `*`, `?`, `[abc]`, `[^a-z]`, `\x`.
//!
//! Redis matches recursively and can take exponential time on patterns like `*a*a*a*b`; this
//! matcher backtracks only to the last `*`, which gives the same answers in O(pattern x subject).

/// True if `subject` matches `pattern`; `nocase` compares ASCII letters case-insensitively.
pub fn glob_match(pattern: &[u8], subject: &[u8], nocase: bool) -> bool {
    let (mut p, mut s) = (0, 0);
    // After a `*`: the pattern position following it, and the subject position it resumes at.
    let mut star: Option<(usize, usize)> = None;
    while s < subject.len() {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                while p < pattern.len() && pattern[p] == b'*' {
                    p += 1;
                }
                star = Some((p, s));
                continue;
            }
            if let Some(next) = match_one(pattern, p, subject[s], nocase) {
                p = next;
                s += 1;
                continue;
            }
        }
        match star {
            Some((star_p, star_s)) => {
                p = star_p;
                s = star_s + 1;
                star = Some((star_p, star_s + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches one subject byte against the single-byte token at `p`; returns the position after
/// the token.
fn match_one(pattern: &[u8], p: usize, c: u8, nocase: bool) -> Option<usize> {
    let eq = |a: u8, b: u8| if nocase { a.eq_ignore_ascii_case(&b) } else { a == b };
    match pattern[p] {
        b'?' => Some(p + 1),
        b'[' => {
            let mut i = p + 1;
            let negate = pattern.get(i) == Some(&b'^');
            if negate {
                i += 1;
            }
            let mut matched = false;
            while i < pattern.len() && pattern[i] != b']' {
                if pattern[i] == b'\\' && i + 1 < pattern.len() {
                    matched |= eq(pattern[i + 1], c);
                    i += 2;
                } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
                    let (mut lo, mut hi) = (pattern[i], pattern[i + 2]);
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    let c2 = if nocase { c.to_ascii_lowercase() } else { c };
                    let (lo, hi) = if nocase { (lo.to_ascii_lowercase(), hi.to_ascii_lowercase()) } else { (lo, hi) };
                    matched |= (lo..=hi).contains(&c2);
                    i += 3;
                } else {
                    matched |= eq(pattern[i], c);
                    i += 1;
                }
            }
            // An unterminated class ends at the end of the pattern, as in Redis.
            let next = (i + 1).min(pattern.len());
            (matched != negate).then_some(next)
        }
        b'\\' if p + 1 < pattern.len() => eq(pattern[p + 1], c).then_some(p + 2),
        literal => eq(literal, c).then_some(p + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn redis_glob_semantics() {
        let yes = |p: &str, s: &str| assert!(glob_match(p.as_bytes(), s.as_bytes(), false), "{p} ~ {s}");
        let no = |p: &str, s: &str| assert!(!glob_match(p.as_bytes(), s.as_bytes(), false), "{p} !~ {s}");
        yes("*", "");
        yes("h?llo", "hello");
        yes("h*llo", "heeeello");
        yes("h[ae]llo", "hallo");
        no("h[ae]llo", "hillo");
        yes("h[^e]llo", "hallo");
        no("h[^e]llo", "hello");
        yes("h[a-b]llo", "hbllo");
        yes("user:*:name", "user:42:name");
        no("user:*:name", "user:42:age");
        yes("a\\*b", "a*b");
        no("a\\*b", "axb");
        yes("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaab");
        no("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert!(glob_match(b"MAX*", b"maxmemory", true));
    }
}
