//! Secrets in a scenario's text (a url's password), masked wherever sim shows or saves them.

pub(super) fn masked_url<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_some(&mask_password(url)),
        None => s.serialize_none(),
    }
}

/// The url with the password, if it has one, replaced by `***`: what may be printed or
/// written of it.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{masked}{}", &authority[at..])
        }
        None => authority.to_string(),
    };
    // A password can also be a parameter: `?password=…` (PostgreSQL), `?pass=…` (Redis).
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if matches!(key, "password" | "pass") => format!("{key}=***"),
                    _ => param.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
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
