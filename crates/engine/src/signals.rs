//! Signal names as Docker accepts them: "SIGTERM", "TERM", "term", "15".

pub fn parse(s: &str) -> Option<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let full = format!("SIG{name}");
    if let Some(rt) = name.strip_prefix("RTMIN") {
        let base = libc::SIGRTMIN();
        return match rt.strip_prefix('+') {
            None if rt.is_empty() => Some(base),
            Some(n) => n.parse::<i32>().ok().map(|n| base + n),
            None => None,
        };
    }
    full.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert_eq!(super::parse("SIGKILL"), Some(9));
        assert_eq!(super::parse("term"), Some(15));
        assert_eq!(super::parse("HUP"), Some(1));
        assert_eq!(super::parse("9"), Some(9));
        assert_eq!(super::parse("NOPE"), None);
        assert_eq!(super::parse("0"), None);
    }
}
