//! Parsing of JSON answers with errors that name what is wrong (empty, truncated, an HTML page, the wrong JSON
//! type, a missing or malformed member) without quoting the answer, which may hold tokens.

use crate::error::HttpError;

/// The first byte that is not whitespace (nor a UTF-8 byte order mark).
pub(crate) fn first_non_space(body: &[u8]) -> Option<u8> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    body.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// Parses a success answer as `T`. What is wrong is named without quoting the answer, which may hold tokens:
/// empty, truncated, not JSON (an HTML page, with its title: a proxy or captive portal), the wrong JSON type, or
/// the member that is missing or malformed.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    url: &str,
    what: &str,
) -> Result<T, HttpError> {
    let invalid = |reason: String| HttpError::InvalidResponse {
        url: url.to_string(),
        reason,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        invalid(describe_parse_error(
            body,
            url,
            what,
            e.inner(),
            &e.path().to_string(),
        ))
    })?;
    // Trailing bytes after the JSON value.
    de.end()
        .map_err(|e| invalid(describe_parse_error(body, url, what, &e, ".")))?;
    Ok(value)
}

fn describe_parse_error(body: &[u8], url: &str, what: &str, inner: &serde_json::Error, path: &str) -> String {
    use serde_json::error::Category;
    let first = first_non_space(body);
    match inner.classify() {
        _ if first.is_none() => format!("the {what} is empty"),
        Category::Eof => format!(
            "the {what} is truncated JSON (it ends after {} bytes)",
            body.len()
        ),
        Category::Syntax | Category::Io if first == Some(b'<') => {
            let host = url::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            match html_title(body) {
                Some(title) => format!("not JSON: an HTML page from {host} (title: \"{title}\")"),
                None => format!("not JSON: an HTML page from {host}"),
            }
        }
        Category::Syntax | Category::Io => format!(
            "the {what} is not JSON (line {}, column {})",
            inner.line(),
            inner.column()
        ),
        Category::Data => {
            let message = inner.to_string();
            if let Some(member) = missing_field(&message) {
                let member = if path == "." {
                    member
                } else {
                    format!("{path}.{member}")
                };
                format!("member '{member}' of the {what} is missing")
            } else if path == "." {
                let kind = match serde_json::from_slice::<serde_json::Value>(body) {
                    Ok(serde_json::Value::Array(_)) => "a JSON array",
                    Ok(serde_json::Value::String(_)) => "a JSON string",
                    Ok(serde_json::Value::Number(_)) => "a JSON number",
                    Ok(serde_json::Value::Bool(_)) => "a JSON boolean",
                    Ok(serde_json::Value::Null) => "JSON null",
                    _ => "not the expected JSON object",
                };
                format!("the {what} is {kind}, not the expected object")
            } else {
                match expectation(&message) {
                    Some(expected) => format!("member '{path}' of the {what} is malformed: {expected}"),
                    None => format!("member '{path}' of the {what} is malformed"),
                }
            }
        }
    }
}

/// The member named by serde's "missing field `name`" (a name from our own types, never a value).
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(name, _)| name.to_string())
}

/// What the member should have been: the "expected ..." end of serde's message, which comes from our types.
/// The start of the message may quote the value, so it is never shown.
fn expectation(message: &str) -> Option<String> {
    // serde_json appends the position; the expectation comes right before it.
    let message = message.rsplit_once(" at line ").map_or(message, |(m, _)| m);
    if let Some(expected) = message.strip_prefix("expected ") {
        // Our own custom messages start with "expected" and hold no value.
        return Some(format!("expected {expected}"));
    }
    if !(message.starts_with("invalid type: ")
        || message.starts_with("invalid value: ")
        || message.starts_with("invalid length "))
    {
        return None;
    }
    message
        .rsplit_once(", expected ")
        .map(|(_, expected)| format!("expected {expected}"))
}

/// The `<title>` of an HTML page, sanitised and short: it names the proxy or portal that answered.
pub(crate) fn html_title(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = start + lower[start..].find('>')? + 1;
    let close = open_end + lower[open_end..].find("</title")?;
    let title: String = text
        .get(open_end..close)?
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(|c| *c != '"')
        .take(80)
        .collect();
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(body: &str) -> String {
        match parse_json::<std::collections::HashMap<String, u64>>(
            body.as_bytes(),
            "https://h.example/x",
            "answer",
        ) {
            Err(HttpError::InvalidResponse { reason, .. }) => reason,
            other => panic!("expected an invalid answer, got {other:?}"),
        }
    }

    #[test]
    fn names_the_problem_without_quoting_values() {
        assert_eq!(reason(""), "the answer is empty");
        assert_eq!(
            reason("{\"a\":1"),
            "the answer is truncated JSON (it ends after 6 bytes)"
        );
        assert_eq!(reason("\u{feff}<html>"), "not JSON: an HTML page from h.example");
        assert_eq!(reason("{} x"), "the answer is not JSON (line 1, column 4)");
        assert_eq!(
            reason("[1]"),
            "the answer is a JSON array, not the expected object"
        );
        let wrong = reason(r#"{"a":"SECRET, expected nothing"}"#);
        assert_eq!(wrong, "member 'a' of the answer is malformed: expected u64");
    }

    #[test]
    fn an_html_title_is_short_and_clean() {
        let page = format!(
            "<HTML><Title lang=en>\r\n Portal\u{1b}[31m \"x\" {}</title>",
            "y".repeat(500)
        );
        let title = html_title(page.as_bytes()).unwrap();
        assert!(title.starts_with("Portal [31m x y"), "{title}");
        assert!(title.chars().count() <= 80 && !title.chars().any(char::is_control));
        assert_eq!(html_title(b"<html><title></title>"), None);
        assert_eq!(html_title(b"<title>never closed"), None);
    }
}
