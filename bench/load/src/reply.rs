//! Finding where the replies a load sends for end in the bytes read back: the simple RESP2
//! shapes GET and SET answer with (`+OK`, `-ERR ...`, `$n` bulk strings and `$-1`).

/// What one complete reply at the front of a buffer is.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// A reply that is not an error, of this many bytes.
    Ok(usize),
    /// An error reply, of this many bytes.
    Error(usize),
}

/// The first reply in `bytes`, None if it is not all there yet; Err for a shape the load
/// never asks for.
pub fn first(bytes: &[u8]) -> Result<Option<Reply>, String> {
    let Some(line_end) = bytes.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
    let line = &bytes[..line_end];
    let after_line = line_end + 2;
    match line.first() {
        Some(b'+') | Some(b':') => Ok(Some(Reply::Ok(after_line))),
        Some(b'-') => Ok(Some(Reply::Error(after_line))),
        Some(b'$') => {
            let length: i64 = std::str::from_utf8(&line[1..]).ok().and_then(|s| s.parse().ok()).ok_or("a bad bulk length")?;
            if length < 0 {
                return Ok(Some(Reply::Ok(after_line)));
            }
            let end = after_line + length as usize + 2;
            Ok((bytes.len() >= end).then_some(Reply::Ok(end)))
        }
        _ => Err(format!("an unexpected reply: {:?}", String::from_utf8_lossy(&line[..line.len().min(40)]))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shape_is_framed_and_a_partial_one_waits() {
        assert_eq!(first(b"+OK\r\n$3"), Ok(Some(Reply::Ok(5))));
        assert_eq!(first(b"$-1\r\n"), Ok(Some(Reply::Ok(5))));
        assert_eq!(first(b"$3\r\nabc\r\n+OK"), Ok(Some(Reply::Ok(9))));
        assert_eq!(first(b"$3\r\nabc\r"), Ok(None));
        assert_eq!(first(b"-OOM command not allowed\r\n"), Ok(Some(Reply::Error(26))));
        assert_eq!(first(b"+O"), Ok(None));
        assert!(first(b"*2\r\n").is_err());
    }
}
