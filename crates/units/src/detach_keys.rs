//! Detach keys: the key sequence that ends an attach (or exec) session while the container
//! keeps running. Docker's syntax (moby/term `ToBytes`): comma separated, each either a
//! single character or `ctrl-<c>` with `<c>` one of a-z, @, [, \, ], ^, _.
//! The daemon watches the stdin of TTY attach streams for it, as dockerd does, and the CLI
//! watches its own terminal input, as the docker CLI does.

/// A key the syntax does not allow (moby/term's "Unknown character").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey(pub String);

impl std::fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Unknown character: '{}'", self.0)
    }
}

impl std::error::Error for UnknownKey {}

/// dockerd's default, ctrl-p ctrl-q.
pub const DEFAULT: &[u8] = &[16, 17];

/// Parses a detach-keys specification; an empty one means the default.
pub fn parse(spec: &str) -> Result<Vec<u8>, UnknownKey> {
    if spec.is_empty() {
        return Ok(DEFAULT.to_vec());
    }
    let mut out = Vec::new();
    for key in spec.split(',').map(str::trim) {
        let invalid = || UnknownKey(key.to_string());
        if key.len() == 1 {
            out.push(key.as_bytes()[0]);
            continue;
        }
        let ctrl = key.strip_prefix("ctrl-").ok_or_else(invalid)?;
        let c = match ctrl.to_ascii_lowercase().as_bytes() {
            [c @ b'a'..=b'z'] => c - b'a' + 1,
            [b'@'] => 0,
            [b'['] => 27,
            [b'\\'] => 28,
            [b']'] => 29,
            [b'^'] => 30,
            [b'_'] => 31,
            _ => return Err(invalid()),
        };
        out.push(c);
    }
    Ok(out)
}

/// Streaming matcher over stdin chunks. Bytes that might start the sequence are held back
/// until it is clear they do not; then they are passed on unchanged (moby's copyEscapable).
#[derive(Debug, Clone)]
pub struct Matcher {
    keys: Vec<u8>,
    matched: usize,
}

/// What one chunk of input amounts to.
#[derive(Debug, PartialEq, Eq)]
pub struct Fed {
    /// Bytes to pass on to the container.
    pub forward: Vec<u8>,
    /// The sequence was completed; anything after it in the chunk is dropped.
    pub detached: bool,
}

impl Matcher {
    pub fn new(keys: Vec<u8>) -> Self {
        Matcher { keys, matched: 0 }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Fed {
        let mut forward = Vec::with_capacity(chunk.len());
        if self.keys.is_empty() {
            forward.extend_from_slice(chunk);
            return Fed {
                forward,
                detached: false,
            };
        }
        for &b in chunk {
            if b != self.keys[self.matched] {
                // The held-back prefix was ordinary input after all.
                forward.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b != self.keys[0] {
                    forward.push(b);
                    continue;
                }
            }
            self.matched += 1;
            if self.matched == self.keys.len() {
                self.matched = 0;
                return Fed {
                    forward,
                    detached: true,
                };
            }
        }
        Fed {
            forward,
            detached: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_syntax() {
        assert_eq!(parse("").unwrap(), vec![16, 17]);
        assert_eq!(parse("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(
            parse("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_").unwrap(),
            vec![0, 27, 28, 29, 30, 31]
        );
        assert!(parse("a,ctrl-A,,").is_err());
        assert_eq!(parse("a,ctrl-A").unwrap(), vec![b'a', 1]);
        assert_eq!(parse("x").unwrap(), vec![b'x']);
    }

    #[test]
    fn rejects_bad_keys() {
        for bad in ["ctrl-", "ctrl-1", "ctrl-ab", "shift-a", "ab"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("Unknown character"), "{bad}: {e}");
        }
    }

    #[test]
    fn detects_across_chunks_and_passes_partial_matches() {
        let mut m = Matcher::new(vec![16, 17]);
        assert_eq!(
            m.feed(b"ls\x10"),
            Fed {
                forward: b"ls".to_vec(),
                detached: false
            }
        );
        assert_eq!(
            m.feed(b"\x11rest"),
            Fed {
                forward: vec![],
                detached: true
            }
        );

        let mut m = Matcher::new(vec![16, 17]);
        // ctrl-p followed by something else is typed through, ctrl-p included.
        assert_eq!(
            m.feed(b"\x10x"),
            Fed {
                forward: b"\x10x".to_vec(),
                detached: false
            }
        );
        // A repeated first key restarts the match.
        assert_eq!(
            m.feed(b"\x10\x10\x11"),
            Fed {
                forward: b"\x10".to_vec(),
                detached: true
            }
        );
    }

    #[test]
    fn single_key_and_no_keys() {
        let mut m = Matcher::new(vec![b'q']);
        assert_eq!(
            m.feed(b"abq"),
            Fed {
                forward: b"ab".to_vec(),
                detached: true
            }
        );
        let mut m = Matcher::new(vec![]);
        assert_eq!(
            m.feed(b"\x10\x11"),
            Fed {
                forward: b"\x10\x11".to_vec(),
                detached: false
            }
        );
    }
}
