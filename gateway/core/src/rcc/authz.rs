//! Which SIP user may control which line. With no table a user controls only the line it opened
//! its session with; a table (in the config or a CSV file) lists each user's lines, and a user
//! missing from it is refused.

use std::collections::HashMap;

use super::numbering::Numbering;
use crate::config::AuthorizationConfig;

/// The authorization policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Authorization {
    /// User URI (normalised) → lines; `None`: own-line policy.
    table: Option<HashMap<String, Vec<String>>>,
}

/// `sip:Alice@Contoso.com;transport=tls` → `sip:alice@contoso.com`.
pub(crate) fn normalise_user(uri: &str) -> String {
    let s = uri.trim().trim_start_matches('<');
    let s = s.split(['>', ';']).next().unwrap_or(s);
    let s = s.to_ascii_lowercase();
    if s.starts_with("sip:") || s.starts_with("sips:") {
        s
    } else {
        format!("sip:{s}")
    }
}

/// Parses `sip_uri,line` rows; blank lines and `#` comments are skipped; a header row
/// `sip_uri,line` is allowed.
pub fn parse_csv(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, device)) = line.split_once(',') else {
            return Err(format!(
                "line {}: expected `sip_uri,line`, got {line:?}",
                i + 1
            ));
        };
        let (user, device) = (user.trim(), device.trim());
        if i == 0 && user.eq_ignore_ascii_case("sip_uri") {
            continue;
        }
        if user.is_empty() || device.is_empty() {
            return Err(format!("line {}: empty field", i + 1));
        }
        rows.push((user.to_owned(), device.to_owned()));
    }
    Ok(rows)
}

impl Authorization {
    /// Builds the policy from `[authorization]`: its users and the rows the shell read from
    /// its file. No rows and no file: the own-line policy.
    pub(crate) fn from_config(config: &AuthorizationConfig) -> Authorization {
        let inline = config
            .users
            .iter()
            .flat_map(|u| u.lines.iter().map(|l| (u.uri.as_str(), l.as_str())));
        let from_file = config
            .file_rows
            .iter()
            .flatten()
            .map(|(u, l)| (u.as_str(), l.as_str()));
        let mut table: HashMap<String, Vec<String>> = HashMap::new();
        for (user, line) in inline.chain(from_file) {
            table
                .entry(normalise_user(user))
                .or_default()
                .push(line.to_owned());
        }
        if table.is_empty() && config.file.is_none() {
            return Authorization::default();
        }
        Authorization { table: Some(table) }
    }

    /// Whether `user` may open a session on `line`.
    pub(crate) fn may_open(&self, numbering: &Numbering, user: &str, line: &str) -> bool {
        match &self.table {
            None => true,
            Some(t) => t
                .get(&normalise_user(user))
                .is_some_and(|lines| lines.iter().any(|l| numbering.same_line(l, line))),
        }
    }

    /// Whether `user`, whose session is on `session_line`, may act on `device`.
    pub(crate) fn may_control(
        &self,
        numbering: &Numbering,
        user: &str,
        session_line: &str,
        device: &str,
    ) -> bool {
        numbering.same_line(session_line, device) || {
            match &self.table {
                None => false,
                Some(_) => self.may_open(numbering, user, device),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NumberingConfig, PbxProfile, UserLines};

    fn numbering() -> Numbering {
        Numbering::new(&NumberingConfig::default(), PbxProfile::Generic).expect("plan")
    }

    #[test]
    fn own_line_by_default() {
        let a = Authorization::default();
        let n = numbering();
        assert!(a.may_open(&n, "sip:alice@contoso.com", "tel:+14255550100;ext=100"));
        assert!(a.may_control(&n, "sip:alice@contoso.com", "tel:+1;ext=100", "tel:100"));
        assert!(!a.may_control(&n, "sip:alice@contoso.com", "tel:+1;ext=100", "tel:101"));
    }

    #[test]
    fn table_lists_lines() {
        let config = AuthorizationConfig {
            file: None,
            users: vec![UserLines {
                uri: "sip:Alice@Contoso.com".into(),
                lines: vec!["tel:+14255550100;ext=100".into()],
            }],
            file_rows: Some(vec![(
                "sip:alice@contoso.com".into(),
                "tel:+1;ext=105".into(),
            )]),
        };
        let a = Authorization::from_config(&config);
        let n = numbering();
        assert!(a.may_open(
            &n,
            "<sip:alice@contoso.com>;tag=x",
            "tel:+14255550100;ext=100"
        ));
        assert!(!a.may_open(&n, "sip:bob@contoso.com", "tel:+14255550100;ext=100"));
        assert!(!a.may_open(&n, "sip:alice@contoso.com", "tel:+1;ext=101"));
        assert!(a.may_control(
            &n,
            "sip:alice@contoso.com",
            "tel:+1;ext=100",
            "tel:+1;ext=105"
        ));
    }

    #[test]
    fn csv_errors_name_the_line() {
        assert_eq!(
            parse_csv("sip_uri,line\nsip:a@b,tel:1\n\n# c\nbroken"),
            Err("line 5: expected `sip_uri,line`, got \"broken\"".to_owned())
        );
        assert_eq!(parse_csv("sip:a@b, tel:1").map(|r| r.len()), Ok(1));
    }
}
