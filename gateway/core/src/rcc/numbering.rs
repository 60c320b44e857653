//! The device-ID map: LineURIs and dialled numbers to the PBX's device IDs, and PBX device IDs
//! back to what a Lync client should see. Configured by rules; the client's own LineURI is
//! always echoed verbatim (it compares strings).

use regex::Regex;

use crate::config::{LinePart, NumberingConfig, PbxProfile};

/// A compiled rewrite rule.
#[derive(Debug, Clone)]
struct Rule {
    pattern: Regex,
    replace: String,
}

/// The compiled numbering plan.
#[derive(Debug, Clone)]
pub(crate) struct Numbering {
    line: LinePart,
    to_pbx: Vec<Rule>,
    to_lync: Vec<Rule>,
    phone_context: Option<String>,
    profile: PbxProfile,
}

/// Compiles `list`'s rules, anchored (a rule rewrites whole numbers only); each pattern must
/// also stand alone, so `a)(?:b` is refused rather than read as `(?:a)(?:b)`. Every bad rule is
/// named in `problems`.
fn compile(list: &str, rules: &[crate::config::Rule], problems: &mut Vec<String>) -> Vec<Rule> {
    let mut compiled = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let anchored =
            Regex::new(&r.pattern).and_then(|_| Regex::new(&format!("^(?:{})$", r.pattern)));
        match anchored {
            Ok(pattern) => compiled.push(Rule {
                pattern,
                replace: r.replace.clone(),
            }),
            Err(e) => problems.push(format!("numbering.{list} #{}: {e}", i + 1)),
        }
    }
    compiled
}

fn apply(rules: &[Rule], s: &str) -> String {
    apply_traced(rules, s).1
}

/// The result, and which rule (0-based) made it (`None`: no rule matched, unchanged).
fn apply_traced(rules: &[Rule], s: &str) -> (Option<usize>, String) {
    for (i, r) in rules.iter().enumerate() {
        if r.pattern.is_match(s) {
            return (
                Some(i),
                r.pattern.replace(s, r.replace.as_str()).into_owned(),
            );
        }
    }
    (None, s.to_owned())
}

/// The number inside a `tel:` or `sip:` URI or a plain string, without parameters and visual
/// separators.
pub(crate) fn bare_number(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("tel:")
        .or_else(|| s.strip_prefix("TEL:"))
        .or_else(|| {
            s.strip_prefix("sip:")
                .or_else(|| s.strip_prefix("sips:"))
                .map(|r| r.split('@').next().unwrap_or(r))
        })
        .unwrap_or(s);
    let s = s.split(';').next().unwrap_or(s);
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect()
}

fn tel_param<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    uri.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

impl Numbering {
    /// Compiles the configured rules; the error names every rule that does not compile.
    pub(crate) fn new(
        config: &NumberingConfig,
        profile: PbxProfile,
    ) -> Result<Numbering, Vec<String>> {
        let mut problems = Vec::new();
        let to_pbx = compile("to_pbx", &config.to_pbx, &mut problems);
        let to_lync = compile("to_lync", &config.to_lync, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Numbering {
            line: config.line,
            to_pbx,
            to_lync,
            phone_context: config.phone_context.clone(),
            profile,
        })
    }

    /// The part of a LineURI the plan maps, and how it was chosen.
    fn line_part(&self, line: &str) -> (&'static str, String) {
        let number = bare_number(line);
        match self.line {
            LinePart::Ext => match tel_param(line, "ext") {
                Some(e) => ("its ;ext=", e.to_owned()),
                None => ("its number (no ;ext=)", number),
            },
            LinePart::Number => ("its number", number),
            LinePart::Digits => ("its digits", number.trim_start_matches('+').to_owned()),
        }
    }

    /// The PBX device a LineURI designates.
    pub(crate) fn line_to_device(&self, line: &str) -> String {
        apply(&self.to_pbx, &self.line_part(line).1)
    }

    /// The PBX number for a dialled string (`tel:+1 (425) 555-0100`, `+14255550100`, `200`).
    pub(crate) fn dialled_to_pbx(&self, dialled: &str) -> String {
        apply(&self.to_pbx, &bare_number(dialled))
    }

    /// A PBX device ID with the vendor's decoration removed (`N<…>;…` on OpenScape Voice,
    /// `ext:switch:ip:n` on Avaya).
    pub(crate) fn undecorate<'a>(&self, pbx: &'a str) -> &'a str {
        let s = pbx.trim();
        if let Some(inner) = s.strip_prefix("N<").and_then(|r| r.split_once('>')) {
            return inner.0;
        }
        if self.profile == PbxProfile::Aes
            && let Some((ext, _)) = s.split_once(':')
            && !ext.is_empty()
            && ext.bytes().all(|b| b.is_ascii_digit())
        {
            return ext;
        }
        s
    }

    /// What a client sees for a PBX device that is not its own line.
    pub(crate) fn to_lync(&self, pbx: &str) -> String {
        let n = apply(&self.to_lync, self.undecorate(pbx));
        if n.starts_with('+') {
            format!("tel:{n}")
        } else if let Some(ctx) = &self.phone_context {
            format!("tel:{n};phone-context={ctx}")
        } else {
            format!("tel:{n}")
        }
    }

    /// What happens to `input` in each direction, rule by rule: the numbering "test box".
    /// Lines that no rule maps say so.
    pub(crate) fn explain(&self, input: &str) -> String {
        let rule = |list: &str, rules: &[Rule], i: Option<usize>| match i {
            Some(i) => format!(
                "{list} #{} ('{}' -> '{}')",
                i + 1,
                rules[i]
                    .pattern
                    .as_str()
                    .trim_start_matches("^(?:")
                    .trim_end_matches(")$"),
                rules[i].replace
            ),
            None => format!("no {list} rule matches: passed unchanged"),
        };
        let mut out = format!("{input}\n");
        if input.trim_start().to_ascii_lowercase().starts_with("tel:") {
            let (part, chosen) = self.line_part(input);
            let (i, device) = apply_traced(&self.to_pbx, &chosen);
            out.push_str(&format!(
                "  as a LineURI: {part} {chosen} -> {} -> PBX device {device}\n",
                rule("to_pbx", &self.to_pbx, i)
            ));
        }
        let bare = bare_number(input);
        let (i, pbx) = apply_traced(&self.to_pbx, &bare);
        out.push_str(&format!(
            "  dialled: {bare} -> {} -> PBX number {pbx}\n",
            rule("to_pbx", &self.to_pbx, i)
        ));
        // A URI is what clients write; a bare number may also be what the PBX reports.
        if !input.contains(':') || self.undecorate(input) != input {
            let undecorated = self.undecorate(input);
            let (i, _) = apply_traced(&self.to_lync, undecorated);
            out.push_str(&format!(
                "  from the PBX: {undecorated} -> {} -> clients see {}\n",
                rule("to_lync", &self.to_lync, i),
                self.to_lync(input)
            ));
        }
        out
    }

    /// Whether two LineURIs designate the same device.
    pub(crate) fn same_line(&self, a: &str, b: &str) -> bool {
        a == b || self.line_to_device(a) == self.line_to_device(b)
    }
}

/// Whether `config`'s numbering maps a LineURI to a PBX device: a rule matched the part the
/// plan takes from it, or that part is already digits only (an extension).
pub fn maps_line(config: &crate::config::Config, line: &str) -> Result<bool, Vec<String>> {
    let n = Numbering::new(&config.numbering, config.pbx.profile)?;
    let (rule, device) = apply_traced(&n.to_pbx, &n.line_part(line).1);
    Ok(rule.is_some() || (!device.is_empty() && device.bytes().all(|b| b.is_ascii_digit())))
}

/// What `inputs` become towards the PBX and towards Lync under `config`'s numbering plan,
/// rule by rule (`rcc-gateway numbering`); the error names every rule that does not compile.
pub fn explain(config: &crate::config::Config, inputs: &[String]) -> Result<String, Vec<String>> {
    let n = Numbering::new(&config.numbering, config.pbx.profile)?;
    Ok(inputs
        .iter()
        .map(|i| n.explain(i))
        .collect::<Vec<_>>()
        .join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rule as R;

    fn plan() -> Numbering {
        let config = NumberingConfig {
            line: LinePart::Ext,
            to_pbx: vec![R {
                pattern: r"\+1425555(\d{4})".into(),
                replace: "$1".into(),
            }],
            to_lync: vec![R {
                pattern: r"(1\d{3})".into(),
                replace: "+1425555$1".into(),
            }],
            phone_context: Some("dialstring".into()),
        };
        Numbering::new(&config, PbxProfile::Osv).expect("rules compile")
    }

    #[test]
    fn explain_names_the_rule_or_that_none_matched() {
        let n = plan();
        let text = n.explain("tel:+14255551001;ext=1001");
        assert!(text.contains("as a LineURI: its ;ext= 1001 -> no to_pbx rule matches: passed unchanged -> PBX device 1001"), "{text}");
        assert!(
            text.contains("dialled: +14255551001 -> to_pbx #1"),
            "{text}"
        );
        assert!(text.contains("-> PBX number 1001"), "{text}");
        let back = n.explain("1002");
        assert!(back.contains("from the PBX: 1002 -> to_lync #1"), "{back}");
        assert!(back.contains("clients see tel:+14255551002"), "{back}");
        let outside = n.explain("+15550001");
        assert!(outside.contains("no to_pbx rule matches"), "{outside}");
        assert!(outside.contains("no to_lync rule matches"), "{outside}");
    }

    #[test]
    fn lines() {
        let n = plan();
        assert_eq!(n.line_to_device("tel:+14255550100;ext=100"), "100");
        assert_eq!(n.line_to_device("tel:+14255551001"), "1001");
        assert_eq!(
            n.line_to_device("tel:73124;phone-context=dialstring"),
            "73124"
        );
        assert!(n.same_line("tel:+14255551001", "tel:1001"));
    }

    #[test]
    fn dialled_numbers() {
        let n = plan();
        assert_eq!(n.dialled_to_pbx("tel:+1 (425) 555-1002"), "1002");
        assert_eq!(n.dialled_to_pbx("+3222220220"), "+3222220220");
        assert_eq!(n.dialled_to_pbx("sip:200@pbx"), "200");
    }

    #[test]
    fn shown_to_lync() {
        let n = plan();
        assert_eq!(n.to_lync("N<1002>;noa=nk"), "tel:+14255551002");
        assert_eq!(n.to_lync("+3222220220"), "tel:+3222220220");
        assert_eq!(n.to_lync("555"), "tel:555;phone-context=dialstring");
    }
}
