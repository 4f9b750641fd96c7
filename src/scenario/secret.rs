//! Secrets in a scenario's text (a url's password, a conninfo's `password=`, the values of a
//! `headers` table), masked wherever sim shows or saves them: in the scenario it writes into
//! results.json, in the url a message names, and in every line of the file a message quotes.

/// What a secret is shown as.
const MASK: &str = "***";

pub(super) fn masked_url<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_some(&mask_password(url)),
        None => s.serialize_none(),
    }
}

/// The url with the password, if it has one, replaced by `***`: what may be printed or
/// written of it. A PostgreSQL conninfo (`host=… password=…`) has its `password=` masked.
pub fn mask_password(url: &str) -> String {
    mask_text(url)
}

/// `text` with every password in it masked: each url's (`scheme://user:PASSWORD@host`) and
/// each `password=` or `pass=` (a conninfo's, a url's query's), quoted or not.
pub fn mask_text(text: &str) -> String {
    mask_parameters(&mask_userinfo(text))
}

/// The password of every `scheme://user:password@` in `text`, masked.
fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends where the path, the query or the quoted string does.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '`') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(MASK);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Every `password=VALUE` and `pass=VALUE` in `text`, a word of its own, with VALUE masked:
/// up to the next space, `&` or quote, or the whole of a value in single quotes.
fn mask_parameters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let found = ["password=", "pass="]
            .iter()
            .filter_map(|key| {
                let mut from = 0;
                while let Some(at) = rest[from..].find(key).map(|i| i + from) {
                    let alone = rest[..at]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                    if alone {
                        return Some((at, key.len()));
                    }
                    from = at + key.len();
                }
                None
            })
            .min();
        let Some((at, len)) = found else { break };
        let value_from = at + len;
        out.push_str(&rest[..value_from]);
        let value = &rest[value_from..];
        let value_len = match value.strip_prefix('\'') {
            // A conninfo's quoted value, with `\'` inside it.
            Some(quoted) => {
                let mut escaped = false;
                quoted
                    .char_indices()
                    .find(|&(_, c)| {
                        let end = c == '\'' && !escaped;
                        escaped = c == '\\' && !escaped;
                        end
                    })
                    .map_or(value.len(), |(i, _)| i + 2)
            }
            None => value
                .find(|c: char| c.is_whitespace() || matches!(c, '&' | '"' | '\'' | '`' | '#'))
                .unwrap_or(value.len()),
        };
        if value_len > 0 {
            out.push_str(MASK);
        }
        rest = &value[value_len..];
    }
    out.push_str(rest);
    out
}

/// The line `number` (from 1) of a scenario's `text`, trimmed, with its secrets masked: also
/// each value of a `headers` table, by the table's name, whether the line is inside a
/// `[….headers]` table or holds a `headers = { … }` inline table.
pub fn masked_line(text: &str, number: usize) -> String {
    // Inside a `[….headers]` table; inside a `headers = {` spread over lines (TOML 1.1).
    let (mut in_table, mut in_inline) = (false, false);
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        let starts_inline = !in_inline && names_headers(trimmed) && trimmed.contains('{') && !trimmed.contains('}');
        if n + 1 == number {
            let line = if in_inline {
                // A key of the inline table, or its closing brace.
                if trimmed.contains('=') {
                    mask_value(trimmed)
                } else {
                    trimmed.to_string()
                }
            } else if in_table && !trimmed.starts_with('[') {
                mask_value(trimmed)
            } else {
                mask_inline_headers(trimmed)
            };
            return mask_text(&line);
        }
        if in_inline {
            in_inline = !trimmed.contains('}');
        } else if starts_inline {
            in_inline = true;
        } else if let Some(table) = trimmed.strip_prefix('[') {
            let name = table.trim_start_matches('[').split(']').next().unwrap_or("");
            in_table = name
                .rsplit('.')
                .next()
                .is_some_and(|last| unquote(last.trim()) == "headers");
        }
    }
    String::new()
}

/// Whether a line's key (before its `=`) ends in `headers`.
fn names_headers(line: &str) -> bool {
    line.split_once('=').is_some_and(|(key, _)| {
        key.trim()
            .rsplit('.')
            .next()
            .is_some_and(|last| unquote(last.trim()) == "headers")
    })
}

/// `key = value` with the value masked.
fn mask_value(line: &str) -> String {
    match line.split_once('=') {
        Some((key, _)) => format!("{}= {MASK}", key),
        None => MASK.into(),
    }
}

/// A line's `headers = { … }` (or `….headers = …`) with everything after `headers =` masked
/// but the keys of the inline table.
fn mask_inline_headers(line: &str) -> String {
    let Some((key, value)) = line.split_once('=') else {
        return line.to_string();
    };
    if !names_headers(line) {
        return line.to_string();
    }
    let Some(open) = value.find('{') else {
        return format!("{key}= {MASK}");
    };
    let inner = &value[open + 1..];
    let keys: Vec<String> = inner
        .split(',')
        .filter_map(|pair| pair.split_once('=').map(|(k, _)| format!("{} = {MASK}", k.trim())))
        .collect();
    format!("{key}= {{ {} }}", keys.join(", "))
}

fn unquote(name: &str) -> &str {
    name.trim_matches(|c| c == '"' || c == '\'')
}

/// Whether a header's value is a well-formed template: every `${` closed by `}` around a
/// variable's name (letters, digits and `_`, not starting with a digit).
pub(super) fn check_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(at) = rest.find("${") {
        let after = &rest[at + 2..];
        let Some(close) = after.find('}') else {
            return Err("a `${` is not closed by `}`: write ${NAME} for the environment variable NAME".into());
        };
        let name = &after[..close];
        let fine = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !fine {
            return Err(format!(
                "${{{name}}} is not an environment variable's name: use letters, digits and '_'"
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// A header's value with each `${VAR}` taken from the environment; the error names the
/// variable that is not set, never a value.
pub fn expand_env(template: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let close = after.find('}').ok_or("a `${` is not closed by `}`")?;
        let name = &after[..close];
        match std::env::var(name) {
            Ok(value) => out.push_str(&value),
            Err(_) => {
                return Err(format!(
                    "uses ${{{name}}}, which is not set in the environment (or not UTF-8): export {name} before sim runs"
                ));
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_password_is_masked() {
        for (text, shown) in [
            (
                "postgres://admin:s3cretpw@127.0.0.1:54329/postgres",
                "postgres://admin:***@127.0.0.1:54329/postgres",
            ),
            ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
            ("redis://h:1?pass=pw&db=1", "redis://h:1?pass=***&db=1"),
            ("postgres://u@h/db?password=pw", "postgres://u@h/db?password=***"),
            (
                "host=127.0.0.1 port=54329 user=admin password=s3cretpw",
                "host=127.0.0.1 port=54329 user=admin password=***",
            ),
            ("host=h password='a b\\' c' user=x", "host=h password=*** user=x"),
            (
                "url = \"postgres://admin:s3cretpw@127.0.0.1:54329/postgres\" junk",
                "url = \"postgres://admin:***@127.0.0.1:54329/postgres\" junk",
            ),
            ("no secret, bypass=1, compass=2", "no secret, bypass=1, compass=2"),
        ] {
            assert_eq!(mask_text(text), shown, "{text}");
        }
    }

    #[test]
    fn header_values_are_masked_by_the_tables_name() {
        let text = "[service.racy]\nheaders = { Authorization = \"Bearer abc\", X-Key = 'k' }\n\
                    [service.fixed.headers]\nAuthorization = \"Bearer def\"\n[stock]\ninitial = 5\n\
                    [service.third]\nheaders = {\n  Authorization = \"Bearer ghi\",\n}\nurl = \"http://h\"\n";
        assert_eq!(masked_line(text, 2), "headers = { Authorization = ***, X-Key = *** }");
        assert_eq!(masked_line(text, 4), "Authorization = ***");
        assert_eq!(masked_line(text, 6), "initial = 5");
        for n in 1..=6 {
            let line = masked_line(text, n);
            assert!(
                !line.contains("abc") && !line.contains("def") && !line.contains("'k'"),
                "{line}"
            );
        }
    }
}
