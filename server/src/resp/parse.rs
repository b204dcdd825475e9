//! Request parsing: multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline (`GET k\r\n`).
//!
//! The parser is resumable: a request that arrives in pieces is not re-scanned from its start
//! on every read, so a client trickling a million arguments costs linear time. Limits and error
//! texts are Redis's own (`networking.c`), because clients and tests match on them. After a
//! [`ProtocolError`] the connection must reply with it and close, as Redis does.

use std::ops::Range;

/// Longest inline request, and longest `*<count>` / `$<len>` line (Redis: PROTO_INLINE_MAX_SIZE).
pub const MAX_INLINE: usize = 64 * 1024;
/// Largest multibulk count accepted (Redis: INT_MAX).
pub const MAX_MULTIBULK: i64 = i32::MAX as i64;
/// Largest multibulk count and bulk length before a client has authenticated (Redis's values).
const UNAUTH_MULTIBULK: i64 = 10;
const UNAUTH_BULK: i64 = 16 * 1024;

/// Hard limits applied while parsing.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest bulk string accepted (`proto-max-bulk-len`).
    pub max_bulk_len: i64,
    /// Whether the client still has to authenticate (then Redis's tighter limits apply).
    pub unauthenticated: bool,
}

/// A malformed request. The text follows `-ERR Protocol error: ` in the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

fn protocol(msg: impl Into<String>) -> ProtocolError {
    ProtocolError(msg.into())
}

/// One argument of a parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Bytes at this range of the request (multibulk arguments, zero-copy).
    Span(Range<usize>),
    /// Bytes unescaped from an inline request.
    Owned(Vec<u8>),
}

/// A complete request: its arguments, and how many bytes of the buffer it used.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// Arguments, command name first. May be empty (an empty inline line, `*0`).
    pub args: &'a [Arg],
    /// Bytes to consume from the buffer.
    pub len: usize,
}

/// Parses requests from a growing buffer. Keeps the position inside a partly received
/// multibulk request between calls; the caller must not consume bytes until a request is
/// complete.
#[derive(Debug, Default)]
pub struct RequestParser {
    args: Vec<Arg>,
    /// Inside a multibulk request: arguments still expected, and where the next one starts.
    multibulk: Option<(usize, usize)>,
}

impl RequestParser {
    /// A parser at the start of a request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives back the argument list's memory after a request with many arguments, unless a
    /// request is half parsed (its arguments so far are still needed).
    pub fn shrink(&mut self) {
        const KEPT_ARGS: usize = 64;
        if self.multibulk.is_none() && self.args.capacity() > KEPT_ARGS {
            self.args = Vec::new();
        }
    }

    /// Parses the next complete request at the start of `buf`, or `None` if more bytes are
    /// needed.
    pub fn parse(&mut self, buf: &[u8], limits: Limits) -> Result<Option<Request<'_>>, ProtocolError> {
        if self.multibulk.is_none() {
            self.args.clear();
            match buf.first() {
                None => return Ok(None),
                Some(b'*') => match self.multibulk_header(buf, limits)? {
                    None => return Ok(None),
                    Some((0, len)) => return Ok(Some(Request { args: &[], len })),
                    Some((count, pos)) => self.multibulk = Some((count, pos)),
                },
                Some(_) => return self.inline(buf),
            }
        }
        let (mut remaining, mut pos) = self.multibulk.expect("inside a multibulk request");
        while remaining > 0 {
            match bulk(buf, pos, limits)? {
                None => {
                    self.multibulk = Some((remaining, pos));
                    return Ok(None);
                }
                Some((range, next)) => {
                    self.args.push(Arg::Span(range));
                    pos = next;
                    remaining -= 1;
                }
            }
        }
        self.multibulk = None;
        Ok(Some(Request { args: &self.args, len: pos }))
    }

    /// Parses `*<count>\r\n`: `Some((count, next position))`, count 0 for an ignored request.
    fn multibulk_header(&mut self, buf: &[u8], limits: Limits) -> Result<Option<(usize, usize)>, ProtocolError> {
        let Some(end) = find_crlf(buf, 1) else {
            if buf.len() > MAX_INLINE {
                return Err(protocol("too big mbulk count string"));
            }
            return Ok(None);
        };
        let count = parse_len(&buf[1..end]).filter(|&n| n <= MAX_MULTIBULK);
        let Some(count) = count else {
            return Err(protocol("invalid multibulk length"));
        };
        if limits.unauthenticated && count > UNAUTH_MULTIBULK {
            return Err(protocol("unauthenticated multibulk length"));
        }
        // Redis ignores `*0` and negative counts.
        Ok(Some((count.max(0) as usize, end + 2)))
    }

    /// Parses an inline request (a line of space-separated, optionally quoted, arguments).
    fn inline(&mut self, buf: &[u8]) -> Result<Option<Request<'_>>, ProtocolError> {
        let Some(newline) = buf.iter().position(|&c| c == b'\n') else {
            if buf.len() > MAX_INLINE {
                return Err(protocol("too big inline request"));
            }
            return Ok(None);
        };
        if newline > MAX_INLINE {
            return Err(protocol("too big inline request"));
        }
        let line = &buf[..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let words = split_args(line).ok_or_else(|| protocol("unbalanced quotes in request"))?;
        self.args.extend(words.into_iter().map(Arg::Owned));
        Ok(Some(Request { args: &self.args, len: newline + 1 }))
    }
}

/// Parses `$<len>\r\n<bytes>\r\n` at `pos`: the bytes' range and the position after.
fn bulk(buf: &[u8], pos: usize, limits: Limits) -> Result<Option<(Range<usize>, usize)>, ProtocolError> {
    let Some(&first) = buf.get(pos) else { return Ok(None) };
    if first != b'$' {
        return Err(protocol(format!("expected '$', got '{}'", first as char)));
    }
    let Some(end) = find_crlf(buf, pos + 1) else {
        if buf.len() - pos > MAX_INLINE {
            return Err(protocol("too big bulk count string"));
        }
        return Ok(None);
    };
    let len = parse_len(&buf[pos + 1..end]).filter(|&n| n >= 0 && n <= limits.max_bulk_len);
    let Some(len) = len else {
        return Err(protocol("invalid bulk length"));
    };
    if limits.unauthenticated && len > UNAUTH_BULK {
        return Err(protocol("unauthenticated bulk length"));
    }
    let start = end + 2;
    let stop = start + len as usize;
    // Like Redis, the two bytes after the payload are skipped, not checked.
    if buf.len() < stop + 2 {
        return Ok(None);
    }
    Ok(Some((start..stop, stop + 2)))
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let limit = buf.len().min(from + MAX_INLINE + 1);
    buf.get(from..limit)?.windows(2).position(|w| w == b"\r\n").map(|i| from + i)
}

/// A length as Redis's `string2ll` reads it (no `+`, no leading zeros).
fn parse_len(s: &[u8]) -> Option<i64> {
    meridian_crdt::parse_redis_int(s)
}

/// Splits an inline line into arguments like Redis's `sdssplitargs`: spaces separate;
/// `"..."` understands `\n \r \t \b \a \\ \" \xHH`; `'...'` understands `\'`; a closing quote
/// must be followed by a space or the end; a NUL byte ends the line, as it ends Redis's C
/// string. `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let line = &line[..line.iter().position(|&c| c == 0).unwrap_or(line.len())];
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        let mut quote: Option<u8> = None;
        loop {
            let Some(&c) = line.get(i) else {
                if quote.is_some() {
                    return None;
                }
                break;
            };
            match quote {
                // A closing quote must end the argument: `"a"b` is unbalanced.
                Some(q) if c == q => {
                    if line.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace()) {
                        return None;
                    }
                    i += 1;
                    break;
                }
                Some(b'"') => {
                    if c == b'\\' && i + 3 < line.len() && line[i + 1] == b'x' {
                        if let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3])) {
                            current.push(h * 16 + l);
                            i += 4;
                            continue;
                        }
                    }
                    if c == b'\\' && i + 1 < line.len() {
                        current.push(match line[i + 1] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                        i += 2;
                        continue;
                    }
                    current.push(c);
                }
                Some(_) => {
                    if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                        current.push(b'\'');
                        i += 2;
                        continue;
                    }
                    current.push(c);
                }
                None => match c {
                    b' ' | b'\n' | b'\r' | b'\t' => break,
                    b'"' | b'\'' => quote = Some(c),
                    _ => current.push(c),
                },
            }
            i += 1;
        }
        args.push(current);
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OPEN: Limits = Limits { max_bulk_len: 512 * 1024 * 1024, unauthenticated: false };

    fn args_of(buf: &[u8], req: &Request) -> Vec<Vec<u8>> {
        req.args
            .iter()
            .map(|a| match a {
                Arg::Span(r) => buf[r.clone()].to_vec(),
                Arg::Owned(v) => v.clone(),
            })
            .collect()
    }

    fn parse_all(buf: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut parser = RequestParser::new();
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(req) = parser.parse(&buf[pos..], OPEN)? {
            out.push(args_of(&buf[pos..], &req));
            pos += req.len;
        }
        Ok(out)
    }

    fn encode(args: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend(format!("${}\r\n", a.len()).bytes());
            out.extend(a);
            out.extend(b"\r\n");
        }
        out
    }

    #[test]
    fn multibulk_and_pipelines() {
        let got = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(got, vec![vec![b"GET".to_vec(), b"k".to_vec()], vec![b"PING".to_vec()]]);
    }

    #[test]
    fn inline_requests_and_quotes() {
        let got = parse_all(b"SET k \"a b\\x41\\n\" 'it\\'s'\r\nPING\n\r\n").unwrap();
        assert_eq!(got[0], vec![b"SET".to_vec(), b"k".to_vec(), b"a bA\n".to_vec(), b"it's".to_vec()]);
        assert_eq!(got[1], vec![b"PING".to_vec()]);
        assert_eq!(got[2], Vec::<Vec<u8>>::new());
        assert_eq!(parse_all(b"SET \"k\r\n").unwrap_err().0, "unbalanced quotes in request");
        assert_eq!(parse_all(b"SET \"k\"x\r\n").unwrap_err().0, "unbalanced quotes in request");
        assert_eq!(parse_all(b"GET k\0junk\r\n").unwrap()[0], vec![b"GET".to_vec(), b"k".to_vec()]);
    }

    #[test]
    fn malformed_frames_get_redis_errors() {
        let cases: [(&[u8], &str); 6] = [
            (b"*x\r\n", "invalid multibulk length"),
            (b"*3000000000\r\n", "invalid multibulk length"),
            (b"*1\r\n+OK\r\n", "expected '$', got '+'"),
            (b"*1\r\n$-1\r\n", "invalid bulk length"),
            (b"*1\r\n$abc\r\n", "invalid bulk length"),
            (b"*1\r\n$600000000\r\n", "invalid bulk length"),
        ];
        for (input, message) in cases {
            assert_eq!(parse_all(input).unwrap_err().0, message, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn oversized_lines_are_refused_before_they_end() {
        let long = vec![b'a'; MAX_INLINE + 2];
        assert_eq!(parse_all(&long).unwrap_err().0, "too big inline request");
        let mut count = b"*".to_vec();
        count.extend(vec![b'1'; MAX_INLINE + 2]);
        assert_eq!(parse_all(&count).unwrap_err().0, "too big mbulk count string");
        let mut bulk_len = b"*1\r\n$".to_vec();
        bulk_len.extend(vec![b'1'; MAX_INLINE + 2]);
        assert_eq!(parse_all(&bulk_len).unwrap_err().0, "too big bulk count string");
    }

    #[test]
    fn unauthenticated_clients_get_tight_limits() {
        let limits = Limits { unauthenticated: true, ..OPEN };
        let mut parser = RequestParser::new();
        let err = parser.parse(b"*11\r\n", limits).unwrap_err();
        assert_eq!(err.0, "unauthenticated multibulk length");
        let mut parser = RequestParser::new();
        let err = parser.parse(b"*1\r\n$20000\r\n", limits).unwrap_err();
        assert_eq!(err.0, "unauthenticated bulk length");
    }

    #[test]
    fn empty_and_negative_counts_are_skipped() {
        assert_eq!(parse_all(b"*0\r\n*-1\r\n*1\r\n$1\r\nx\r\n").unwrap().len(), 3);
    }

    proptest! {
        /// Any pipeline, cut into any pieces, parses to the same requests.
        #[test]
        fn split_reads_parse_the_same(
            reqs in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6), 1..8),
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..10),
        ) {
            let wire: Vec<u8> = reqs.iter().flat_map(|r| encode(r)).collect();
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
            points.push(wire.len());
            points.sort();
            let mut parser = RequestParser::new();
            let mut got = Vec::new();
            let mut start = 0;
            for end in points {
                while let Some(req) = parser.parse(&wire[start..end], OPEN).unwrap() {
                    got.push(args_of(&wire[start..end], &req));
                    start += req.len;
                }
            }
            prop_assert_eq!(got, reqs);
        }

        /// Arbitrary bytes never panic the parser; they parse or fail with a protocol error.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_all(&bytes);
        }
    }
}
