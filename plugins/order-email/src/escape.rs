//! Text made safe for HTML: the one escaper every untrusted string passes through before it
//! reaches the HTML part of an e-mail.
//!
//! Written by hand rather than taken from a crate: the rule is five characters fixed by the
//! HTML standard, and a dependency would add code to every component for no gain.

/// `s` with `& < > " '` replaced by character references, safe as HTML text and inside a
/// quoted attribute value.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `s` on one line: every control character (CR, LF, tab, …) becomes a space and the ends are
/// trimmed, so inserted text can neither break a header nor forge lines of the plain text.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_tag_becomes_text() {
        assert_eq!(
            escape_html("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
    }

    #[test]
    fn quotes_and_ampersands_are_escaped() {
        assert_eq!(
            escape_html(r#"Tom & Jerry's "best""#),
            "Tom &amp; Jerry&#39;s &quot;best&quot;"
        );
    }

    #[test]
    fn an_existing_entity_is_escaped_again_rather_than_trusted() {
        assert_eq!(escape_html("&lt;"), "&amp;lt;");
    }

    #[test]
    fn plain_and_non_ascii_text_is_unchanged() {
        assert_eq!(escape_html("Chai — 250 g, ₹ ok"), "Chai — 250 g, ₹ ok");
    }

    #[test]
    fn line_breaks_become_spaces_on_one_line() {
        assert_eq!(
            one_line("Acme\r\nBcc: x@evil.test\n"),
            "Acme  Bcc: x@evil.test"
        );
    }
}
