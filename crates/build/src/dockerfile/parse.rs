use super::{Dockerfile, ParseError};

/// Parses a whole Dockerfile. Unknown instructions, a missing FROM before the first
/// instruction that needs one, malformed JSON forms, flags an instruction does not take,
/// unterminated heredocs → `ParseError` with the line.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    todo!("{text}")
}
