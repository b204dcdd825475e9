//! Reply encoding for RESP2 and RESP3, written straight into the connection's output buffer.
//!
//! Commands describe replies by shape (`map`, `null`, `double`, ...) and the writer picks the
//! encoding for the protocol the client chose with HELLO: a RESP3 map is `%n`, the same map in
//! RESP2 is a flat array of `2n` items, exactly as Redis degrades it.

/// The protocol version a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, the default.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Protocol {
    /// The number HELLO reports.
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// An output buffer plus the protocol to encode in.
pub struct Reply<'a> {
    out: &'a mut Vec<u8>,
    /// The client's protocol.
    pub protocol: Protocol,
}

impl<'a> Reply<'a> {
    /// Writes replies into `out`.
    pub fn new(out: &'a mut Vec<u8>, protocol: Protocol) -> Self {
        Reply { out, protocol }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Drops everything written after `len` (an aborted reply).
    pub fn truncate(&mut self, len: usize) {
        self.out.truncate(len);
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string (`+...`); must not contain CR or LF.
    pub fn simple(&mut self, s: &str) {
        self.line(b'+', s.as_bytes());
    }

    /// An error (`-...`), e.g. `ERR syntax error`. CR and LF become spaces, as in Redis.
    pub fn error(&mut self, s: &str) {
        let clean: Vec<u8> = s.bytes().map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c }).collect();
        self.line(b'-', &clean);
    }

    /// An integer.
    pub fn int(&mut self, i: i64) {
        self.out.push(b':');
        self.number(i);
        self.crlf();
    }

    /// A bulk string.
    pub fn bulk(&mut self, b: &[u8]) {
        self.out.push(b'$');
        self.number(b.len() as i64);
        self.crlf();
        self.out.extend_from_slice(b);
        self.crlf();
    }

    /// A bulk string, or null if absent.
    pub fn bulk_or_null(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => self.bulk(b),
            None => self.null(),
        }
    }

    /// The null value (RESP2: the null bulk string).
    pub fn null(&mut self) {
        match self.protocol {
            Protocol::Resp2 => self.out.extend_from_slice(b"$-1\r\n"),
            Protocol::Resp3 => self.out.extend_from_slice(b"_\r\n"),
        }
    }

    /// The null array (RESP2: `*-1`), e.g. an aborted EXEC.
    pub fn null_array(&mut self) {
        match self.protocol {
            Protocol::Resp2 => self.out.extend_from_slice(b"*-1\r\n"),
            Protocol::Resp3 => self.out.extend_from_slice(b"_\r\n"),
        }
    }

    /// The header of an array of `n` items.
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n);
    }

    /// The header of an out-of-band message of `n` items (pub/sub): RESP3 push, RESP2 array.
    pub fn push(&mut self, n: usize) {
        match self.protocol {
            Protocol::Resp2 => self.header(b'*', n),
            Protocol::Resp3 => self.header(b'>', n),
        }
    }

    /// The header of a map of `n` pairs (RESP2: an array of `2n` items).
    pub fn map(&mut self, n: usize) {
        match self.protocol {
            Protocol::Resp2 => self.header(b'*', n * 2),
            Protocol::Resp3 => self.header(b'%', n),
        }
    }

    /// The header of a set of `n` items (RESP2: an array).
    pub fn set(&mut self, n: usize) {
        match self.protocol {
            Protocol::Resp2 => self.header(b'*', n),
            Protocol::Resp3 => self.header(b'~', n),
        }
    }

    /// A double as Redis 7.0 prints it (RESP3 `,`; RESP2 a bulk string).
    pub fn double(&mut self, d: f64) {
        let text = meridian_crdt::format_score(d);
        match self.protocol {
            Protocol::Resp2 => self.bulk(text.as_bytes()),
            Protocol::Resp3 => self.line(b',', text.as_bytes()),
        }
    }

    /// A double, or null if absent.
    pub fn double_or_null(&mut self, d: Option<f64>) {
        match d {
            Some(d) => self.double(d),
            None => self.null(),
        }
    }

    /// The header of a list of `n` pairs (member and score, field and value): RESP2 flattens
    /// it to `2n` items, RESP3 nests each pair (see [`Reply::pair`]), as Redis 7 does.
    pub fn pairs(&mut self, n: usize) {
        match self.protocol {
            Protocol::Resp2 => self.header(b'*', n * 2),
            Protocol::Resp3 => self.header(b'*', n),
        }
    }

    /// The start of one pair of a [`Reply::pairs`] list.
    pub fn pair(&mut self) {
        if self.protocol == Protocol::Resp3 {
            self.header(b'*', 2);
        }
    }

    /// Text meant for humans (INFO, CLIENT LIST): RESP3 verbatim `txt`, RESP2 bulk string.
    pub fn verbatim(&mut self, text: &str) {
        match self.protocol {
            Protocol::Resp2 => self.bulk(text.as_bytes()),
            Protocol::Resp3 => {
                self.out.push(b'=');
                self.number(text.len() as i64 + 4);
                self.crlf();
                self.out.extend_from_slice(b"txt:");
                self.out.extend_from_slice(text.as_bytes());
                self.crlf();
            }
        }
    }

    fn header(&mut self, kind: u8, n: usize) {
        self.out.push(kind);
        self.number(n as i64);
        self.crlf();
    }

    fn line(&mut self, kind: u8, body: &[u8]) {
        self.out.push(kind);
        self.out.extend_from_slice(body);
        self.crlf();
    }

    /// `i` in decimal, digit by digit (every reply header and integer goes through here; the
    /// formatting machinery of `write!` costs more than the rest of a small reply).
    fn number(&mut self, i: i64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = i.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        if i < 0 {
            self.out.push(b'-');
        }
        self.out.extend_from_slice(&digits[at..]);
    }

    fn crlf(&mut self) {
        self.out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(protocol: Protocol, f: impl FnOnce(&mut Reply)) -> String {
        let mut out = Vec::new();
        f(&mut Reply::new(&mut out, protocol));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn shapes_degrade_to_resp2_like_redis() {
        let both = |f: fn(&mut Reply)| (encode(Protocol::Resp2, f), encode(Protocol::Resp3, f));
        assert_eq!(both(|r| r.null()), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|r| r.null_array()), ("*-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|r| r.map(2)), ("*4\r\n".into(), "%2\r\n".into()));
        assert_eq!(both(|r| r.verbatim("hi")), ("$2\r\nhi\r\n".into(), "=6\r\ntxt:hi\r\n".into()));
    }

    #[test]
    fn integers_print_in_decimal_to_both_ends_of_the_range() {
        for (i, text) in [(0, ":0\r\n"), (7, ":7\r\n"), (-42, ":-42\r\n"), (i64::MAX, ":9223372036854775807\r\n"), (i64::MIN, ":-9223372036854775808\r\n")] {
            assert_eq!(encode(Protocol::Resp2, |r| r.int(i)), text);
        }
        assert_eq!(encode(Protocol::Resp2, |r| r.bulk(&[b'x'; 1234])).len(), 1234 + 9);
    }

    #[test]
    fn errors_never_break_the_frame() {
        assert_eq!(encode(Protocol::Resp2, |r| r.error("ERR a\r\nb")), "-ERR a  b\r\n");
    }
}
